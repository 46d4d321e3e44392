"""Responses as NSQ's Go ``internal/http_api`` writes them.

``v1_ok`` / ``v1_err`` are ``http_api.V1``'s ``RespondV1`` (``X-Nsq-Content-Type: nsq;
version=1.0``; str/bytes bodies raw as text/plain, ``None`` empty, anything else compact
Go-style JSON, errors as ``{"message":…}``); ``plain`` is ``http_api.PlainText``.
Every response is a :class:`Resp`, which sends no ``Server`` header (Go sends none).
"""
from __future__ import annotations

from aiohttp import web

from ..gojson import go_json

__all__ = ["HTML_CT", "JSON_CT", "NSQ_CT_HEADER", "NSQ_CT_VALUE", "TEXT_CT", "V1_JSON_HEADERS",
           "Err", "RawJSON", "Resp", "go_json", "plain", "text_response", "v1_err", "v1_ok"]

NSQ_CT_HEADER = "X-Nsq-Content-Type"
NSQ_CT_VALUE = "nsq; version=1.0"
JSON_CT = "application/json; charset=utf-8"
TEXT_CT = "text/plain; charset=utf-8"
HTML_CT = "text/html; charset=utf-8"

_V1_HEADERS = {NSQ_CT_HEADER: NSQ_CT_VALUE}
V1_JSON_HEADERS = {"Content-Type": JSON_CT, NSQ_CT_HEADER: NSQ_CT_VALUE}
_V1_TEXT_HEADERS = {NSQ_CT_HEADER: NSQ_CT_VALUE, "Content-Type": TEXT_CT}
_TEXT_HEADERS = {"Content-Type": TEXT_CT}


class Err(Exception):
    """An API error (``http_api.Err``): HTTP status ``code`` and message ``text``.
    Raised by a handler, it becomes ``v1_err`` (V1 routes) or ``plain`` (PLAIN routes)."""

    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code
        self.text = text


class Resp(web.Response):
    """A Response without aiohttp's ``Server`` header (Go sends none)."""

    async def _write_headers(self) -> None:
        self._headers.popall("Server", None)
        await super()._write_headers()


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
