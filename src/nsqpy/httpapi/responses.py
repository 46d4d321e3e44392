"""Responses as NSQ's Go ``internal/http_api`` writes them.

``v1_ok`` / ``v1_err`` are ``http_api.V1``'s ``RespondV1`` (``X-Nsq-Content-Type: nsq;
version=1.0``; str/bytes bodies raw as text/plain, ``None`` empty, anything else compact
Go-style JSON, errors as ``{"message":…}``); ``plain`` is ``http_api.PlainText``.
Every response is a :class:`Resp` (status, body bytes, header fields; no ``Server``
header, as Go sends none), written by :mod:`.server` with Date and Content-Length.
"""
from __future__ import annotations

from ..gojson import go_json
from .h1 import Headers, render_fields

__all__ = ["HTML_CT", "JSON_CT", "NSQ_CT_HEADER", "NSQ_CT_VALUE", "TEXT_CT", "V1_JSON_HEADERS",
           "Err", "RawJSON", "Resp", "go_json", "plain", "text_response", "v1_err", "v1_ok"]

NSQ_CT_HEADER = "X-Nsq-Content-Type"
NSQ_CT_VALUE = "nsq; version=1.0"
JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"



class FrozenHeaders(dict):
    """A constant set of header fields, rendered once (never mutate one)."""
    __slots__ = ("rendered",)

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.rendered = render_fields(self)


_V1_HEADERS = FrozenHeaders({NSQ_CT_HEADER: NSQ_CT_VALUE})
V1_JSON_HEADERS = FrozenHeaders({"Content-Type": JSON_CT, NSQ_CT_HEADER: NSQ_CT_VALUE})
_V1_TEXT_HEADERS = FrozenHeaders({NSQ_CT_HEADER: NSQ_CT_VALUE, "Content-Type": TEXT_CT})
_TEXT_HEADERS = FrozenHeaders({"Content-Type": TEXT_CT})


class Err(Exception):
    """An API error (``http_api.Err``): HTTP status ``code`` and message ``text``.
    Raised by a handler, it becomes ``v1_err`` (V1 routes) or ``plain`` (PLAIN routes)."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


class Resp:
    """A response: ``status``, ``body`` (bytes), ``headers`` (a :class:`~.h1.Headers`,
    copied on first access from the mapping given), ``reason`` (None: Go's StatusText).
    ``force_close()`` closes the connection after it is sent."""
    __slots__ = ("_fields", "_given", "_headers", "body", "close", "reason", "status")

    def __init__(self, *, status: int = 200, body=b"", headers=None, reason=None):
        self.status = status
        self.reason = reason
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.body = body if body is not None else b""
        self._given = headers
        self._headers = None
        self.close = False

    @property
    def headers(self) -> Headers:
        h = self._headers
        if h is None:
            h = self._headers = Headers(self._given)
        return h

    @classmethod
    def ok(cls, body: bytes, headers) -> "Resp":
        """A 200 with ``body`` (bytes) and FrozenHeaders: the hot path of v1_ok."""
        r = cls.__new__(cls)
        r.status = 200
        r.reason = None
        r.body = body
        r._given = headers
        r._headers = None
        r.close = False
        return r

    def force_close(self) -> None:
        self.close = True

    def fields(self) -> bytes:
        """The handler's header fields as written on the wire (see h1.render_fields)."""
        h = self._headers
        if h is None:
            h = self._given
            if h is None:
                return b""
            if type(h) is FrozenHeaders:
                return h.rendered
        return render_fields(h)

    def __repr__(self) -> str:
        return f"<Resp {self.status} {len(self.body)} bytes>"


class RawJSON:
    """A V1 handler result that is already JSON text (sent as is)."""
    __slots__ = ("body",)

    def __init__(self, body):
        self.body = body.encode() if isinstance(body, str) else bytes(body)


def v1_ok(result) -> Resp:
    """RespondV1(200, result): str/bytes raw, None empty, RawJSON as is, else JSON."""
    if result is None:
        return Resp(status=200, body=b"", headers=_V1_HEADERS)
    if isinstance(result, str):
        result = result.encode("utf-8", "surrogateescape")
    if result.__class__ is bytes:
        return Resp.ok(result, _V1_TEXT_HEADERS if result else _V1_HEADERS)
    if isinstance(result, (bytes, bytearray)):
        return Resp(status=200, body=result,
                    headers=_V1_TEXT_HEADERS if result else _V1_HEADERS)
    if isinstance(result, RawJSON):
        return Resp(status=200, body=result.body, headers=V1_JSON_HEADERS)
    return Resp(status=200, body=go_json(result), headers=V1_JSON_HEADERS)


_ERR_BODIES: dict = {}


def v1_err(code: int, text: str) -> Resp:
    """RespondV1(code, Err): ``{"message":"<text>"}``."""
    body = _ERR_BODIES.get(text)
    if body is None:
        body = go_json({"message": text})
        if len(_ERR_BODIES) < 256:
            _ERR_BODIES[text] = body
    return Resp(status=code, body=body, headers=V1_JSON_HEADERS)


def plain(code: int, text) -> Resp:
    """PlainText: the text as is (text/plain unless empty)."""
    if text is None:
        text = b""
    elif isinstance(text, str):
        text = text.encode("utf-8", "surrogateescape")
    return Resp(status=code, body=text, headers=_TEXT_HEADERS if text else None)


def text_response(body, content_type: str = TEXT_CT) -> Resp:
    """200 with ``body`` and ``X-Content-Type-Options: nosniff`` (net/http/pprof style)."""
    if isinstance(body, str):
        body = body.encode()
    return Resp(status=200, body=body, headers={
        "Content-Type": content_type, "X-Content-Type-Options": "nosniff"})
