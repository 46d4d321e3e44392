"""Sans-IO HTTP/1.1 for the daemons' servers, parsed as Go's net/http reads requests.

No I/O and no asyncio here: :mod:`.server` feeds bytes in and writes the bytes built here.

* :func:`find_head_end` / :func:`parse_head`: a request head (request line + header
  fields, CRLF or bare LF line ends) into ``(method, target, version, headers)``, with
  :func:`body_framing` for its body (Content-Length, chunked, or none);
* :class:`ChunkedDecoder`: ``Transfer-Encoding: chunked`` bodies, incrementally;
* :class:`Headers`: case-insensitive, first value wins on ``get`` (Go's ``Header.Get``);
* :func:`response_head` and :func:`error_response`: the bytes Go's server writes.

Malformed input raises :class:`ParseError` carrying the exact response Go sends (``400 Bad
Request``, ``431 Request Header Fields Too Large``, ``501`` for an unsupported
transfer-coding, ``505`` for HTTP/2+ request lines) — nothing else escapes.
"""
from __future__ import annotations

import time

__all__ = ["MAX_HEADER_BYTES", "ChunkedDecoder", "Headers", "ParseError", "body_framing",
           "canonical", "error_response", "find_head_end", "http_date", "parse_head",
           "reason_phrase", "response_head"]

MAX_HEADER_BYTES = (1 << 20) + 4096
"""Go's ``DefaultMaxHeaderBytes`` (1 MiB) plus the 4096 bytes of slack its reader allows."""

MAX_CHUNK_LINE = 4096

# -- errors ---------------------------------------------------------------------------------------
_ERR_HEADERS = b"\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"


def error_response(status: int, text: str = "") -> bytes:
    """Go's ``conn.serve`` answer to an unreadable request (then the connection closes)."""
    if status == 431:
        pub = b"431 Request Header Fields Too Large"
        return b"HTTP/1.1 " + pub + _ERR_HEADERS + pub
    if status == 501:
        return b"HTTP/1.1 501 Not Implemented" + _ERR_HEADERS + b"Unsupported transfer encoding"
    if text:
        pub = f"{status} {reason_phrase(status)}: {text}".encode("latin-1", "replace")
    else:
        pub = b"400 Bad Request"
    return b"HTTP/1.1 " + pub + _ERR_HEADERS + pub


class ParseError(ValueError):
    """A request Go would refuse: ``status`` (400/431/501/505), ``text`` (Go's detail for
    statusError answers, else ""), and ``response`` (the bytes to send before closing)."""

    def __init__(self, status: int = 400, text: str = "", detail: str = ""):
        super().__init__(detail or text or str(status))
        self.status = status
        self.text = text

    @property
    def response(self) -> bytes:
        return error_response(self.status, self.text)


# -- headers --------------------------------------------------------------------------------------
_CANON: dict = {}


def canonical(name: str) -> str:
    """textproto.CanonicalMIMEHeaderKey (``x-nsq-content-type`` -> ``X-Nsq-Content-Type``)."""
    c = _CANON.get(name)
    if c is None:
        if not _is_token(name):
            return name
        c = "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))
        if len(_CANON) < 4096:
            _CANON[name] = c
    return c


class Headers:
    """Request or response header fields: case-insensitive ``get``/``in``/``[]`` (first
    value), ``items()`` in arrival order, ``getall``, ``add``, ``[k] = v`` (replaces),
    ``popall``. Built from ``(name, value)`` pairs."""
    __slots__ = ("_first", "_items")

    def __init__(self, items=None):
        self._items: list = []
        self._first: dict = {}
        if items:
            for k, v in (items.items() if hasattr(items, "items") else items):
                self.add(k, v)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))
        low = name.lower()
        if low not in self._first:
            self._first[low] = value

    def get(self, name: str, default=None):
        return self._first.get(name.lower(), default)

    def getall(self, name: str, default=None) -> list:
        low = name.lower()
        out = [v for k, v in self._items if k.lower() == low]
        if out:
            return out
        if default is not None:
            return default
        raise KeyError(name)

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __setitem__(self, name: str, value: str) -> None:
        self.popall(name, None)
        self.add(name, value)

    def popall(self, name: str, default=...):
        low = name.lower()
        if low not in self._first:
            if default is ...:
                raise KeyError(name)
            return default
        out = [v for k, v in self._items if k.lower() == low]
        self._items = [(k, v) for k, v in self._items if k.lower() != low]
        del self._first[low]
        return out

    def items(self) -> list:
        return list(self._items)

    def keys(self) -> list:
        return [k for k, _ in self._items]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


# -- request heads --------------------------------------------------------------------------------
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                   b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_TOKEN_CACHE: dict = {}


def _is_token(s: str) -> bool:
    if not s:
        return False
    for ch in s:
        o = ord(ch)
        if o > 126 or o not in _TCHAR:
            return False
    return True


def _valid_name(name: str) -> bool:
    ok = _TOKEN_CACHE.get(name)
    if ok is None:
        ok = _is_token(name)
        if len(_TOKEN_CACHE) < 4096:
            _TOKEN_CACHE[name] = ok
    return ok


_BAD_VALUE = frozenset(bytes(range(0, 32)).replace(b"\t", b"") + b"\x7f")
_BAD_URI = frozenset(bytes(range(0, 33)) + b"\x7f")


def find_head_end(buf, start: int = 0):
    """``(head_end, body_start)`` of the first complete head in ``buf[start:]`` (the head is
    ``buf[start:head_end]``), or None. Lines may end in CRLF or a bare LF, as Go's reader
    allows."""
    lfcr = buf.find(b"\n\r\n", start)
    if lfcr >= 0:
        lf = buf.find(b"\n\n", start, lfcr)
        if lf < 0:
            return lfcr, lfcr + 3
        return lf, lf + 2
    lf = buf.find(b"\n\n", start)
    if lf >= 0:
        return lf, lf + 2
    return None


def _version(proto: str):
    if proto == "HTTP/1.1":
        return (1, 1)
    if proto == "HTTP/1.0":
        return (1, 0)
    if (len(proto) != 8 or not proto.startswith("HTTP/") or proto[6] != "."
            or not proto[5].isdigit() or not proto[7].isdigit()
            or not proto[5].isascii() or not proto[7].isascii()):
        raise ParseError(400, detail="malformed HTTP version")
    return (int(proto[5]), int(proto[7]))


def parse_head(head) -> tuple:
    """``(method, target, version, headers)`` of a complete request head (the bytes up to,
    not including, the empty line). Raises :class:`ParseError` as Go refuses requests."""
    if isinstance(head, (bytearray, memoryview)):
        head = bytes(head)
    lines = head.split(b"\n")
    line = lines[0]
    if line[-1:] == b"\r":
        line = line[:-1]
    parts = line.split(b" ", 2)
    if len(parts) != 3:
        raise ParseError(400, detail="malformed HTTP request")
    method = parts[0].decode("latin-1")
    if not _valid_name(method):
        raise ParseError(400, detail="invalid method")
    target = parts[1]
    version = _version(parts[2].decode("latin-1"))
    if version[0] != 1:
        if not (version == (2, 0) and method == "PRI" and target == b"*"):
            raise ParseError(505, "unsupported protocol version")
    if not target or _BAD_URI.intersection(target):
        raise ParseError(400, detail="bad request URI")
    if target[0] != 47 and target != b"*" and b"://" not in target[:16]:  # 47: "/"
        if method != "CONNECT":
            raise ParseError(400, detail="bad request URI")
    target = target.decode("latin-1")
    headers = Headers()
    items = headers._items
    first = headers._first
    for raw in lines[1:]:
        if raw[-1:] == b"\r":
            raw = raw[:-1]
        name, sep, value = raw.partition(b":")
        if not sep:
            raise ParseError(400, detail="malformed MIME header line")
        name = name.decode("latin-1")
        if not _valid_name(name):
            raise ParseError(400, detail="invalid header name")
        value = value.strip(b" \t")
        if _BAD_VALUE.intersection(value):
            raise ParseError(400, detail="invalid header value")
        value = value.decode("latin-1")
        items.append((name, value))
        low = name.lower()
        if low not in first:
            first[low] = value
        elif low == "host":
            raise ParseError(400, "too many Host headers")
    if version >= (1, 1) and "host" not in first and method != "CONNECT":
        raise ParseError(400, "missing required Host header")
    return method, target, version, headers


def body_framing(version: tuple, headers: Headers):
    """``(chunked, length)``: ``(True, None)`` for a chunked body, else ``(False, n)`` with
    the Content-Length (0 when absent). Raises ParseError as Go's ``readTransfer`` does."""
    first = headers._first
    te = first.get("transfer-encoding")
    if te is not None and version >= (1, 1):
        if len(headers.getall("transfer-encoding")) != 1 or te.lower() != "chunked":
            raise ParseError(501)
        return True, None
    cl = first.get("content-length")
    if cl is None:
        return False, 0
    all_cl = headers.getall("content-length") if len(headers._items) > 1 else [cl]
    if len(all_cl) > 1:
        if any(v.strip() != cl.strip() for v in all_cl):
            raise ParseError(400, detail="multiple Content-Length headers")
    cl = cl.strip()
    if not cl.isdigit() or not cl.isascii() or len(cl) > 19:
        raise ParseError(400, detail="bad Content-Length")
    return False, int(cl)


# -- chunked bodies -------------------------------------------------------------------------------
class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` decoding: ``feed(buf, pos)`` returns
    ``(data, new_pos)`` — the body bytes decoded from ``buf[pos:]`` and how far it got;
    ``done`` turns true after the last chunk and the trailer section. Raises ParseError on
    malformed framing."""
    __slots__ = ("done", "_left", "_state")

    # states: 0 chunk-size line, 1 chunk data (_left bytes), 2 CRLF after data, 3 trailers
    def __init__(self):
        self.done = False
        self._left = 0
        self._state = 0

    def feed(self, buf, pos: int):
        out = []
        n = len(buf)
        while pos < n and not self.done:
            st = self._state
            if st == 1:
                take = min(self._left, n - pos)
                out.append(bytes(buf[pos:pos + take]))
                pos += take
                self._left -= take
                if self._left == 0:
                    self._state = 2
            elif st == 0 or st == 2 or st == 3:
                nl = buf.find(b"\n", pos, pos + MAX_CHUNK_LINE)
                if nl < 0:
                    if n - pos >= MAX_CHUNK_LINE:
                        raise ParseError(400, detail="chunk line too long")
                    break
                line = bytes(buf[pos:nl])
                pos = nl + 1
                if line[-1:] == b"\r":
                    line = line[:-1]
                if st == 2:
                    if line:
                        raise ParseError(400, detail="malformed chunked encoding")
                    self._state = 0
                elif st == 3:
                    if not line:
                        self.done = True
                else:
                    size = line.split(b";", 1)[0].strip(b" \t")
                    if not size or len(size) > 16 or size.strip(b"0123456789abcdefABCDEF"):
                        raise ParseError(400, detail="invalid byte in chunk length")
                    left = int(size, 16)
                    if left == 0:
                        self._state = 3
                    else:
                        self._left = left
                        self._state = 1
        return b"".join(out) if len(out) != 1 else out[0], pos


# -- responses ------------------------------------------------------------------------------------
_REASONS = {
    100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted",
    204: "No Content", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
    303: "See Other", 304: "Not Modified", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required",
    413: "Request Entity Too Large", 414: "Request URI Too Long",
    415: "Unsupported Media Type", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}


def reason_phrase(status: int) -> str:
    """Go's StatusText (``status code N`` for unknown codes, as Go's status line)."""
    r = _REASONS.get(status)
    if r is None:
        try:
            import http
            r = http.HTTPStatus(status).phrase
        except ValueError:
            r = f"status code {status}"
        _REASONS[status] = r
    return r


_STATUS_LINES: dict = {}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_date_cache = [0, b""]


def http_date(now: float | None = None) -> bytes:
    """``Date: ...\\r\\n`` for the current second (cached)."""
    sec = int(time.time() if now is None else now)
    if sec != _date_cache[0]:
        t = time.gmtime(sec)
        _date_cache[0] = sec
        _date_cache[1] = (f"Date: {_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} "
                          f"{t.tm_year} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT\r\n"
                          ).encode()
    return _date_cache[1]


def render_fields(headers) -> bytes:
    """Header fields as Go writes a handler's ``Header``: canonical names, sorted (stable
    for repeats); Content-Length and Date are the server's own."""
    if not headers:
        return b""
    items = headers.items()
    pairs = []
    for k, v in items:
        k = canonical(k)
        if k == "Content-Length" or k == "Date":
            continue
        v = str(v).replace("\r", " ").replace("\n", " ")
        pairs.append((k, v))
    pairs.sort(key=lambda kv: kv[0])
    return "".join(f"{k}: {v}\r\n" for k, v in pairs).encode("latin-1", "replace")


def response_head(version: tuple, status: int, reason, fields: bytes, length,
                  connection: bytes = b"") -> bytes:
    """Status line, ``fields`` (from :func:`render_fields`), Date, Content-Length (omitted
    when ``length`` is None), ``connection`` (e.g. ``b"Connection: close\\r\\n"``)."""
    if reason is None:
        sl = _STATUS_LINES.get((version, status))
        if sl is None:
            sl = (f"HTTP/1.{1 if version >= (1, 1) else 0} {status} "
                  f"{reason_phrase(status)}\r\n").encode("latin-1")
            _STATUS_LINES[(version, status)] = sl
    else:
        sl = (f"HTTP/1.{1 if version >= (1, 1) else 0} {status} {reason}\r\n"
              ).encode("latin-1", "replace")
    cl = b"" if length is None else b"Content-Length: %d\r\n" % length
    return b"".join((sl, fields, http_date(), cl, connection, b"\r\n"))
