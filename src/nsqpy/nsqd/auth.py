"""Authorization of TCP clients against auth servers (tcp-protocol.md §6.2, §12).

Without ``--auth-http-address`` every command is allowed and AUTH answers
``E_AUTH_DISABLED``.  With it, AUTH queries the auth server(s) and caches the reply on
the client (``client.auth_state``) for its ``ttl``; SUB/PUB/MPUB/DPUB are checked
against the cached authorizations.

The connection runs commands synchronously, so the API is split:

* ``await authenticate(client, secret)`` — the AUTH command; returns the response body.
* ``check(client, name, topic, channel)`` — synchronous, cached data only.  Raises
  ``E_AUTH_FIRST`` / ``E_UNAUTHORIZED`` (:class:`ProtocolError`) or
  :class:`NeedsRefresh` when the cache expired: the caller pauses reading,
  ``await refresh_if_expired(client)`` (which raises ``E_AUTH_FAILED`` when the
  re-query fails) and runs the command again.
* ``check_before_body(client, name, params_or_topic)`` — MPUB's check before its body
  is read (nsqd checks MPUB auth before reading the body).  It never raises
  NeedsRefresh: with an expired cache it defers to the ``check`` after the body.

Auth server exchange (v1.3.0 ``internal/auth``): start at a random address and try the
others in order; ``://`` in the address → used as the URL, else
``http://<addr>/auth``; GET with the query ``common_name, remote_ip, secret, tls``
(sorted, ``url.Values.Encode`` escaping) and ``Accept: application/vnd.nsq;
version=1.0``; non-200 fails (a 403 over plain http retries over https at the
``https_port`` of the JSON body, like nsq's http_api client).  The reply is decoded
like Go's ``encoding/json`` into nsq's struct (case-insensitive keys, integers only
for ``ttl``, nulls ignored); an unknown permission, a regexp Go's RE2 would reject or
``ttl <= 0`` fails.  ``auth_http_request_method = "post"`` (post-1.3.0 flag) POSTs the
same values to the bare endpoint as the JSON encoding of Go's ``url.Values``
(``{"common_name":[""],...}``, ``Content-Type: application/json``), which is what
upstream's ``POSTV1`` sends.

Authorization regexps are Go RE2 syntax; :func:`compile_go_regexp` translates them to
Python ``re`` (rejecting Perl-only syntax RE2 refuses: lookaround, backreferences,
possessive/atomic groups, ``\\Z``; handling RE2-only syntax: ``\\z``, ``\\Q..\\E``,
POSIX classes, ``\\pX``, octal escapes, mid-pattern flags, literal ``{``).  The
subjects are validated topic/channel names (ASCII), which the translation relies on.
"""
from __future__ import annotations

import json
import random
import re
import time
import unicodedata
from urllib.parse import quote_plus, urlsplit, urlunsplit

from ..goflags import go_json_string
from ..protocol.errors import ProtocolError
from ..protocol.goquote import go_quote

__all__ = [
    "Authorizer", "AuthState", "Authorization", "NeedsRefresh", "AuthQueryError",
    "GoRegexpError", "compile_go_regexp", "decode_auth_reply", "ACCEPT_V1",
]

ACCEPT_V1 = "application/vnd.nsq; version=1.0"
_GO_USER_AGENT = "Go-http-client/1.1"


class NeedsRefresh(Exception):
    """The client's cached authorizations expired: re-query the auth server
    (``await Authorizer.refresh_if_expired(client)``) and re-run the command."""


class AuthQueryError(Exception):
    """Querying or validating the auth server's reply failed (text is only logged)."""


# ------------------------------------------------------------------------------------------------
# Go RE2 syntax -> Python re (ASCII subjects)
# ------------------------------------------------------------------------------------------------
class GoRegexpError(ValueError):
    pass


_ASCII_CHARS = [chr(i) for i in range(128)]
_DIGITS = set("0123456789")
_UPPER = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_LOWER = set("abcdefghijklmnopqrstuvwxyz")
_WORD = _DIGITS | _UPPER | _LOWER | {"_"}
_PERL_CLASSES = {
    "d": _DIGITS,
    "s": set("\t\n\f\r "),
    "w": _WORD,
}
_POSIX_CLASSES = {
    "alnum": _DIGITS | _UPPER | _LOWER,
    "alpha": _UPPER | _LOWER,
    "ascii": set(_ASCII_CHARS),
    "blank": set("\t "),
    "cntrl": {chr(i) for i in range(32)} | {"\x7f"},
    "digit": _DIGITS,
    "graph": {chr(i) for i in range(33, 127)},
    "lower": _LOWER,
    "print": {chr(i) for i in range(32, 127)},
    "punct": {chr(i) for i in range(33, 127)} - _DIGITS - _UPPER - _LOWER,
    "space": set("\t\n\v\f\r "),
    "upper": _UPPER,
    "word": _WORD,
    "xdigit": _DIGITS | set("abcdefABCDEF"),
}
# General categories Go knows (unicode.Categories) - their ASCII members come from
# unicodedata, which agrees with Go on ASCII.
_CATEGORIES = {"C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc",
               "Me", "Mn", "N", "Nd", "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po",
               "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl", "Zp", "Zs"}
_ESCAPE_CHARS = {"a": "\x07", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_REPEAT = re.compile(r"\{([0-9]+)(?:(,)([0-9]*))?\}")
_MAX_REPEAT = 1000


def _unicode_class(name: str) -> tuple[set, bool]:
    """(ASCII members, matches something non-ASCII) of ``\\p{name}``."""
    if name == "Any":
        return set(_ASCII_CHARS), True
    if name in _CATEGORIES:
        return {c for c in _ASCII_CHARS if unicodedata.category(c).startswith(name)}, True
    if name == "Latin":
        return _UPPER | _LOWER, True
    if name == "Common":
        return set(_ASCII_CHARS) - _UPPER - _LOWER, True
    if re.fullmatch(r"[A-Z][A-Za-z_]*", name):
        return set(), True          # a script: no ASCII members (approximation)
    raise GoRegexpError(f"invalid character class range: `\\p{{{name}}}`")


class _GoRegexpTranslator:
    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.names: set[str] = set()

    def error(self, code: str, frag: str = "") -> GoRegexpError:
        return GoRegexpError(f"error parsing regexp: {code}: `{frag or self.p}`")

    # -- escapes --------------------------------------------------------------------------------
    def _escape(self, in_class: bool):
        """Parse an escape at self.i (the backslash).  Returns ("char", c) or
        ("class", (ascii_set, nonascii)) or ("text", python_text) (assertions)."""
        p, i = self.p, self.i
        if i + 1 >= len(p):
            raise self.error("trailing backslash at end of expression", "")
        c = p[i + 1]
        self.i = i + 2
        if c in "dDsSwW":
            s = _PERL_CLASSES[c.lower()]
            if c.isupper():
                return "class", (set(_ASCII_CHARS) - s, True)
            return "class", (set(s), False)
        if c in "pP":
            j = self.i
            if j >= len(p):
                raise self.error("invalid character class range", p[i:])
            if p[j] == "{":
                k = p.find("}", j)
                if k < 0:
                    raise self.error("invalid character class range", p[i:])
                name = p[j + 1:k]
                self.i = k + 1
            else:
                name = p[j]
                self.i = j + 1
            negate = c == "P"
            if name.startswith("^"):
                negate = not negate
                name = name[1:]
            members, nonascii = _unicode_class(name)
            if negate:
                return "class", (set(_ASCII_CHARS) - members, True)
            return "class", (members, nonascii)
        if "1" <= c <= "7" or c == "0":
            # Go: a single non-zero digit is a backreference (unsupported); else octal
            if c != "0" and not (self.i < len(p) and "0" <= p[self.i] <= "7"):
                raise self.error("invalid escape sequence", p[i:self.i])
            value = ord(c) - 48
            for _ in range(2):
                if self.i < len(p) and "0" <= p[self.i] <= "7":
                    value = value * 8 + ord(p[self.i]) - 48
                    self.i += 1
                else:
                    break
            return "char", chr(value)
        if c == "x":
            j = self.i
            if j < len(p) and p[j] == "{":
                k = p.find("}", j)
                digits = p[j + 1:k] if k > 0 else ""
                if k < 0 or not digits or not re.fullmatch(r"[0-9A-Fa-f]+", digits) \
                        or int(digits, 16) > 0x10FFFF:
                    raise self.error("invalid escape sequence", p[i:k + 1 if k > 0 else len(p)])
                self.i = k + 1
                return "char", chr(int(digits, 16))
            digits = p[j:j + 2]
            if len(digits) < 2 or not re.fullmatch(r"[0-9A-Fa-f]{2}", digits):
                raise self.error("invalid escape sequence", p[i:j + 2])
            self.i = j + 2
            return "char", chr(int(digits, 16))
        if c in _ESCAPE_CHARS:
            return "char", _ESCAPE_CHARS[c]
        if not in_class:
            if c == "A":
                return "text", r"\A"
            if c == "z":
                return "text", r"\Z"
            if c in "bB":
                return "text", "\\" + c
            if c == "C":
                return "class", (set(_ASCII_CHARS), True)
        if ord(c) < 0x80 and not c.isalnum():
            return "char", c
        raise self.error("invalid escape sequence", p[i:self.i])

    # -- classes --------------------------------------------------------------------------------
    def _class(self, icase: bool):
        p = self.p
        start = self.i
        self.i += 1
        negate = False
        if self.i < len(p) and p[self.i] == "^":
            negate = True
            self.i += 1
        members: set = set()
        nonascii = False
        first = True
        while True:
            if self.i >= len(p):
                raise self.error("missing closing ]", p[start:])
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if c == "[" and p.startswith("[:", self.i):
                k = p.find(":]", self.i + 2)
                if k >= 0:
                    name = p[self.i + 2:k]
                    neg = name.startswith("^")
                    group = _POSIX_CLASSES.get(name[1:] if neg else name)
                    if group is None:
                        raise self.error("invalid character class range", p[self.i:k + 2])
                    if neg:
                        members |= set(_ASCII_CHARS) - group
                        nonascii = True
                    else:
                        members |= group
                    self.i = k + 2
                    continue
            lo_kind, lo = self._class_char()
            if lo_kind == "class":
                members |= lo[0]
                nonascii = nonascii or lo[1]
                continue
            hi = lo
            if self.i + 1 < len(p) and p[self.i] == "-" and p[self.i + 1] != "]":
                self.i += 1
                hi_kind, hi = self._class_char()
                if hi_kind == "class":
                    raise self.error("invalid character class range", p[start:self.i])
                if hi < lo:
                    raise self.error("invalid character class range", f"{lo}-{hi}")
            for cp in range(ord(lo), min(ord(hi), 127) + 1):
                members.add(chr(cp))
            if ord(hi) >= 0x80:
                nonascii = True
        if icase:
            members |= {m.swapcase() for m in members if m.isalpha()}
        if negate:
            members = set(_ASCII_CHARS) - members
            nonascii = True
        return members, nonascii

    def _class_char(self):
        p = self.p
        c = p[self.i]
        if c == "\\":
            kind, value = self._escape(in_class=True)
            if kind == "text":          # pragma: no cover - no assertions inside classes
                raise self.error("invalid escape sequence", value)
            return kind, value
        self.i += 1
        return "char", c

    @staticmethod
    def _emit_class(members: set, nonascii: bool) -> str:
        parts = [re.escape(c) if c not in "\\]^-[" else "\\" + c for c in sorted(members)]
        if nonascii:
            parts.append("\\x80-\\U0010ffff")
        if not parts:
            return "[^\\x00-\\U0010ffff]"       # matches nothing
        return "[" + "".join(parts) + "]"

    # -- the whole expression ---------------------------------------------------------------------
    def translate(self) -> str:
        p = self.p
        out = self.out
        # per open group: (flag groups opened at the enclosing level, its icase)
        stack: list[tuple[list[str], bool]] = []
        level_flags: list[str] = []     # "(?flags:" openers from (?flags) at this level
        icase = False
        can_repeat = False       # the previous item is something a quantifier may follow
        repeated = False         # the previous item is a quantifier
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                kind, value = self._escape(in_class=False)
                if kind == "char":
                    out.append(re.escape(value))
                elif kind == "class":
                    out.append(self._emit_class(*value))
                else:
                    out.append("(?:" + value + ")")
                can_repeat, repeated = True, False
            elif c == "[":
                out.append(self._emit_class(*self._class(icase)))
                can_repeat, repeated = True, False
            elif c == "(" and p.startswith("(?P<", self.i):
                k = p.find(">", self.i)
                name = p[self.i + 4:k] if k > 0 else ""
                if k < 0 or not re.fullmatch(r"[A-Za-z0-9_]+", name):
                    raise self.error("invalid named capture", p[self.i:k + 1 if k > 0 else None])
                if name in self.names:
                    raise self.error("duplicate capture group name", name)
                self.names.add(name)
                out.append("(")          # names don't affect matching (Go allows "1a")
                self.i = k + 1
                stack.append((level_flags, icase))
                level_flags = []
                can_repeat = repeated = False
            elif c == "(" and p.startswith("(?", self.i):
                icase = self._flags_group(stack, level_flags, icase)
                if p[self.i - 1] == ":":
                    level_flags = []
                can_repeat = repeated = False
            elif c == "(":
                out.append("(")
                stack.append((level_flags, icase))
                level_flags = []
                self.i += 1
                can_repeat = repeated = False
            elif c == ")":
                if not stack:
                    raise self.error("unexpected )", p)
                out.append(")" * len(level_flags) + ")")
                level_flags, icase = stack.pop()
                self.i += 1
                can_repeat, repeated = True, False
            elif c == "|":
                out.append(")" * len(level_flags) + "|" + "".join(level_flags))
                self.i += 1
                can_repeat = repeated = False
            elif c in "*+?":
                if repeated:
                    raise self.error("invalid nested repetition operator", p[self.i - 1:self.i + 1])
                if not can_repeat:
                    raise self.error("missing argument to repetition operator", c)
                self.i += 1
                out.append(c + self._lazy())
                can_repeat, repeated = False, True
            elif c == "{" and _REPEAT.match(p, self.i):
                m = _REPEAT.match(p, self.i)
                lo = int(m.group(1))
                hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else -1)
                if lo > _MAX_REPEAT or hi > _MAX_REPEAT or (hi >= 0 and hi < lo):
                    raise self.error("invalid repeat count", m.group(0))
                if repeated:
                    raise self.error("invalid nested repetition operator", m.group(0))
                if not can_repeat:
                    raise self.error("missing argument to repetition operator", m.group(0))
                self.i = m.end()
                out.append(m.group(0) + self._lazy())
                can_repeat, repeated = False, True
            else:
                if c in "^$":
                    out.append("(?:" + c + ")")
                elif c == ".":
                    out.append(".")
                else:
                    out.append(re.escape(c))     # includes a literal "{"
                self.i += 1
                can_repeat, repeated = True, False
        if stack:
            raise self.error("missing closing )", p)
        out.append(")" * len(level_flags))
        return "".join(out)

    def _lazy(self) -> str:
        if self.i < len(self.p) and self.p[self.i] == "?":
            self.i += 1
            return "?"
        return ""

    def _flags_group(self, stack: list, level_flags: list, icase: bool) -> bool:
        """``(?flags)`` / ``(?flags:`` at self.i (Go's parsePerlFlags).  Returns the new
        case-folding state; pushes a group for ``:``."""
        p = self.p
        j = self.i + 2
        flags, neg = "", ""
        sign_seen = False
        new_icase = icase
        end = None
        while j < len(p):
            ch = p[j]
            if ch in "imsU":
                if sign_seen:
                    neg += ch
                else:
                    flags += ch
                if ch == "i":
                    new_icase = not sign_seen
            elif ch == "-" and not sign_seen:
                sign_seen = True
            elif ch in ":)":
                end = ch
            else:
                break
            j += 1
            if end is not None:
                break
        if end is None or (sign_seen and not neg):
            raise self.error("invalid or unsupported Perl syntax", p[self.i:j + 1])
        self.i = j
        # U (ungreedy) cannot change whether an unanchored search matches: dropped
        py = "".join(f for f in flags if f in "ims")
        pyneg = "".join(f for f in neg if f in "ims")
        opener = "(?" + py + ("-" + pyneg if pyneg else "") + ":"
        if end == ":":
            self.out.append(opener)
            stack.append((level_flags, icase))
        elif py or pyneg:
            # (?flags) applies to the rest of the current group (also after "|")
            self.out.append(opener)
            level_flags.append(opener)
        return new_icase


def compile_go_regexp(pattern: str) -> re.Pattern:
    """Compile a Go (RE2) regexp for unanchored ``search`` against ASCII subjects.
    Raises :class:`GoRegexpError` where Go's ``regexp.Compile`` fails."""
    if "\\Q" in pattern:
        pattern = _expand_quoted(pattern)
    py = _GoRegexpTranslator(pattern).translate()
    try:
        return re.compile(py, re.ASCII)
    except re.error as e:       # e.g. a duplicate group name
        raise GoRegexpError(f"error parsing regexp: {e}: `{pattern}`") from None


def _expand_quoted(pattern: str) -> str:
    """Replace RE2's ``\\Q...\\E`` literal spans by escaped text (outside classes)."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            if not in_class and pattern[i + 1] == "Q":
                end = pattern.find("\\E", i + 2)
                lit = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append("".join("\\" + ch if ord(ch) < 0x80 and not ch.isalnum()
                                   else ch for ch in lit))
                i = len(pattern) if end < 0 else end + 2
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            out.append(c)
            i += 1
            if i < len(pattern) and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < len(pattern) and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# auth state
# ------------------------------------------------------------------------------------------------
class Authorization:
    __slots__ = ("topic", "channels", "permissions", "_topic_re", "_channel_res")

    def __init__(self, topic: str = "", channels=None, permissions=None) -> None:
        self.topic = topic
        self.channels = list(channels or [])
        self.permissions = list(permissions or [])
        self._topic_re = None
        self._channel_res = None

    def validate(self) -> None:
        """nsq's checks, in its order; raises AuthQueryError."""
        for perm in self.permissions:
            if perm not in ("subscribe", "publish"):
                raise AuthQueryError(f"unknown permission {perm}")
        try:
            self._topic_re = compile_go_regexp(self.topic)
        except GoRegexpError as e:
            raise AuthQueryError(f"unable to compile topic {go_quote(self.topic)} {e}") from None
        res = []
        for ch in self.channels:
            try:
                res.append(compile_go_regexp(ch))
            except GoRegexpError as e:
                raise AuthQueryError(f"unable to compile channel {go_quote(ch)} {e}") from None
        self._channel_res = res

    def has_permission(self, permission: str) -> bool:
        return permission in self.permissions

    def is_allowed(self, topic: str, channel: str) -> bool:
        if not self.has_permission("subscribe" if channel != "" else "publish"):
            return False
        if self._topic_re is None:
            self.validate()
        if self._topic_re.search(topic) is None:
            return False
        return any(r.search(channel) is not None for r in self._channel_res)

    def __repr__(self) -> str:
        return (f"Authorization(topic={self.topic!r}, channels={self.channels!r}, "
                f"permissions={self.permissions!r})")


class AuthState:
    """One auth server reply, cached on the client (``client.auth_state``)."""

    __slots__ = ("secret", "ttl", "identity", "identity_url", "authorizations", "expires")

    def __init__(self, secret: bytes = b"", ttl: int = 0, identity: str = "",
                 identity_url: str = "", authorizations=None, expires: float = 0.0) -> None:
        self.secret = secret
        self.ttl = ttl
        self.identity = identity
        self.identity_url = identity_url
        self.authorizations = list(authorizations or [])
        self.expires = expires

    def is_expired(self, now: float) -> bool:
        return self.expires < now

    def is_allowed(self, topic: str, channel: str) -> bool:
        return any(a.is_allowed(topic, channel) for a in self.authorizations)

    def response_body(self) -> bytes:
        """The AUTH response: Go's json.Marshal of identity / identity_url / count."""
        return ('{"identity":' + go_json_string(self.identity)
                + ',"identity_url":' + go_json_string(self.identity_url)
                + ',"permission_count":' + str(len(self.authorizations)) + "}").encode("utf-8")


# ------------------------------------------------------------------------------------------------
# decoding the reply like Go's encoding/json into nsq's State struct
# ------------------------------------------------------------------------------------------------
class _JSONFloat(str):
    """A JSON number with a fraction/exponent (Go refuses it for an int field)."""


def _reject_constant(name: str):
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_MAX_INT = (1 << 63) - 1


def _fold(key: str) -> str:
    return key.casefold()


def _go_string(value, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or isinstance(value, _JSONFloat):
        raise AuthQueryError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                             f"{field} of type string")
    return value


def _go_string_list(value, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AuthQueryError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                             f"{field} of type []string")
    return [_go_string(v, field) for v in value]


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float, _JSONFloat)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list) and not isinstance(value, _Object):
        return "array"
    return "object"


def _decode_authorization(value) -> Authorization:
    a = Authorization()
    if value is None:
        return a
    for key, v in value:
        k = _fold(key)
        if k == "topic":
            a.topic = _go_string(v, "Authorization.authorizations.topic")
        elif k == "channels":
            a.channels = _go_string_list(v, "Authorization.authorizations.channels")
        elif k == "permissions":
            a.permissions = _go_string_list(v, "Authorization.authorizations.permissions")
    return a


def _is_object(value) -> bool:
    return isinstance(value, _Object)


class _Object(list):
    """A JSON object as its (key, value) pairs."""


def decode_auth_reply(body: bytes, secret: bytes = b"") -> AuthState:
    """Decode (not yet validate) an auth server reply like Go's ``json.Unmarshal`` into
    ``auth.State``.  Raises :class:`AuthQueryError`."""
    try:
        text = body.decode("utf-8", "replace")
        doc = json.loads(text, object_pairs_hook=_Object, parse_float=_JSONFloat,
                         parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise AuthQueryError(str(e)) from None
    state = AuthState(secret=secret)
    if doc is None:
        return state
    if not _is_object(doc):
        raise AuthQueryError(f"json: cannot unmarshal {_json_kind(doc)} into Go value of type auth.State")
    for key, v in doc:
        k = _fold(key)
        if k == "ttl":
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or isinstance(v, _JSONFloat):
                kind = "number " + v if isinstance(v, _JSONFloat) else _json_kind(v)
                raise AuthQueryError(f"json: cannot unmarshal {kind} into Go struct field "
                                     "State.ttl of type int")
            if not -_MAX_INT - 1 <= v <= _MAX_INT:
                raise AuthQueryError(f"json: cannot unmarshal number {v} into Go struct field "
                                     "State.ttl of type int")
            state.ttl = v
        elif k == "identity":
            state.identity = _go_string(v, "State.identity")
        elif k == "identity_url":
            state.identity_url = _go_string(v, "State.identity_url")
        elif k == "authorizations":
            if v is None:
                state.authorizations = []
            elif isinstance(v, list) and not _is_object(v):
                items = []
                for item in v:
                    if item is not None and not _is_object(item):
                        raise AuthQueryError(
                            f"json: cannot unmarshal {_json_kind(item)} into Go struct field "
                            "State.authorizations of type auth.Authorization")
                    items.append(_decode_authorization(item))
                state.authorizations = items
            else:
                raise AuthQueryError(f"json: cannot unmarshal {_json_kind(v)} into Go struct "
                                     "field State.authorizations of type []auth.Authorization")
    return state


def _validate(state: AuthState) -> None:
    for a in state.authorizations:
        a.validate()
    if state.ttl <= 0:
        raise AuthQueryError(f"invalid TTL {state.ttl} (must be >0)")


# ------------------------------------------------------------------------------------------------
# the authorizer
# ------------------------------------------------------------------------------------------------
def _query_values(remote_ip: str, tls: bool, common_name: str, secret: bytes) -> list:
    # url.Values.Encode: sorted by key
    return [("common_name", common_name.encode("utf-8", "surrogateescape")),
            ("remote_ip", remote_ip.encode("utf-8", "surrogateescape")),
            ("secret", bytes(secret)),
            ("tls", b"true" if tls else b"false")]


def encode_query(values: list) -> str:
    """Go's ``url.Values.Encode`` (QueryEscape: space → ``+``, unreserved kept)."""
    return "&".join(f"{k}={quote_plus(v, safe='')}" for k, v in values)


def _post_body(values: list) -> bytes:
    """``json.Marshal(url.Values)``: keys sorted, each value a one-element list."""
    parts = []
    for k, v in values:
        s = v.decode("utf-8", "replace")
        parts.append(f"{go_json_string(k)}:[{go_json_string(s)}]")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def _https_endpoint(endpoint: str, body: bytes) -> str:
    """nsq http_api ``httpsEndpoint``: same URL, scheme https, port from the 403 body."""
    try:
        doc = json.loads(body.decode("utf-8", "replace"), parse_float=_JSONFloat,
                         parse_constant=_reject_constant)
    except ValueError as e:
        raise AuthQueryError(str(e)) from None
    port = 0
    if isinstance(doc, dict):
        v = doc.get("https_port")
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int):
                raise AuthQueryError("json: cannot unmarshal into Go struct field .https_port of type int")
            port = v
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit(("https", f"{host}:{port}", parts.path, parts.query, parts.fragment))


def _client_label(client) -> str:
    addr = getattr(client, "remote_address", None)
    if addr:
        return addr
    return getattr(client, "remote_ip", "") or ""


class Authorizer:
    """Per-daemon auth-server client; state per connection lives on the client."""

    def __init__(self, opts, log, clock=time.monotonic):
        self.opts = opts
        self.addresses = list(getattr(opts, "auth_http_addresses", None) or [])
        self.log = log
        self.clock = clock
        self.method = (getattr(opts, "auth_http_request_method", "get") or "get").lower()
        self.connect_timeout = (getattr(opts, "http_client_connect_timeout", 2_000_000_000)
                                or 0) / 1e9
        self.request_timeout = (getattr(opts, "http_client_request_timeout", 5_000_000_000)
                                or 0) / 1e9
        self._session = None
        self._rand = random.Random()

    @property
    def enabled(self) -> bool:
        return bool(self.addresses)

    # -- commands ---------------------------------------------------------------------------------
    async def authenticate(self, client, secret: bytes) -> bytes:
        """The AUTH command after its body was read.  Sets ``client.auth_state``,
        ``authed``, ``auth_identity``, ``auth_identity_url``; returns the response body."""
        state = getattr(client, "auth_state", None)
        if state is not None and state.authorizations:
            raise ProtocolError("E_INVALID", "AUTH already set")
        if not self.enabled:
            raise ProtocolError("E_AUTH_DISABLED", "AUTH disabled")
        try:
            new = await self.query_any(client, bytes(secret))
        except AuthQueryError as e:
            self.log.warn(f"PROTOCOL(V2): [{_client_label(client)}] AUTH failed {e}")
            raise ProtocolError("E_AUTH_FAILED", "AUTH failed") from None
        self._apply(client, new)
        if not new.authorizations:
            raise ProtocolError("E_UNAUTHORIZED", "AUTH no authorizations found")
        return new.response_body()

    async def refresh_if_expired(self, client) -> None:
        """Re-query the auth server with the client's secret if its cache expired;
        ``E_AUTH_FAILED`` (fatal) when that fails."""
        state = getattr(client, "auth_state", None)
        if state is None or not state.is_expired(self.clock()):
            return
        try:
            new = await self.query_any(client, state.secret)
        except AuthQueryError as e:
            self.log.warn(f"PROTOCOL(V2): [{_client_label(client)}] AUTH failed - {e}")
            raise ProtocolError("E_AUTH_FAILED", "AUTH failed") from None
        self._apply(client, new)

    def check(self, client, name: bytes, topic: str, channel: str) -> None:
        """nsqd's CheckAuth for SUB (channel set) and PUB/MPUB/DPUB (channel "")."""
        if not self.addresses:
            return
        cmd = name.decode("latin-1") if isinstance(name, (bytes, bytearray)) else str(name)
        state = getattr(client, "auth_state", None)
        if state is None or not state.authorizations:
            raise ProtocolError("E_AUTH_FIRST", f"AUTH required before {cmd}")
        if state.is_expired(self.clock()):
            raise NeedsRefresh()
        if not state.is_allowed(topic, channel):
            raise ProtocolError("E_UNAUTHORIZED",
                                f"AUTH failed for {cmd} on {go_quote(topic)} {go_quote(channel)}")

    def check_before_body(self, client, name: bytes, params) -> None:
        """MPUB's check before its body is read.  ``params`` is the topic name (str) or
        the command's parameters after the name (``[topic, ...]``, bytes)."""
        if not self.addresses:
            return
        if isinstance(params, str):
            topic = params
        elif params:
            t = params[0]
            topic = t.decode("utf-8", "surrogateescape") if isinstance(t, (bytes, bytearray)) else str(t)
        else:
            topic = ""
        try:
            self.check(client, name, topic, "")
        except NeedsRefresh:
            pass        # re-checked (and refreshed) once the body has been read

    # -- queries ----------------------------------------------------------------------------------
    def _apply(self, client, state: AuthState) -> None:
        client.auth_state = state
        client.authed = bool(state.authorizations)
        client.auth_identity = state.identity
        client.auth_identity_url = state.identity_url

    async def query_any(self, client, secret: bytes) -> AuthState:
        """QueryAnyAuthd: random start, every address once; the accumulated error."""
        remote_ip = getattr(client, "remote_ip", "") or ""
        tls = bool(getattr(client, "tls", False))
        common_name = (getattr(client, "tls_common_name", "") or "") if tls else ""
        values = _query_values(remote_ip, tls, common_name, secret)
        n = len(self.addresses)
        start = self._rand.randrange(n) if n else 0
        errors = None
        for k in range(n):
            addr = self.addresses[(start + k) % n]
            try:
                state = await self.query_one(addr, values, secret)
            except AuthQueryError as e:
                msg = f"failed to auth against {addr} - {e}"
                errors = msg if errors is None else f"{errors}; {msg}"
                continue
            return state
        raise AuthQueryError(errors or "no auth server configured")

    async def query_one(self, addr: str, values: list, secret: bytes) -> AuthState:
        import aiohttp
        from yarl import URL
        endpoint = addr if "://" in addr else f"http://{addr}/auth"
        headers = {"Accept": ACCEPT_V1, "User-Agent": _GO_USER_AGENT,
                   "Accept-Encoding": "gzip"}
        if self.method == "post":
            method, url, data = "POST", endpoint, _post_body(values)
            headers["Content-Type"] = "application/json"
        else:
            method, url, data = "GET", f"{endpoint}?{encode_query(values)}", None
        session = self._get_session()
        for _ in range(2):
            label = "Get" if method == "GET" else "Post"
            try:
                async with session.request(method, URL(url, encoded=True), data=data,
                                           headers=headers) as resp:
                    body = await resp.read()
                    status, reason = resp.status, resp.reason or ""
            except aiohttp.ClientError as e:
                raise AuthQueryError(f'{label} "{url}": {e or type(e).__name__}') from None
            except TimeoutError:
                raise AuthQueryError(f'{label} "{url}": context deadline exceeded '
                                     "(Client.Timeout exceeded while awaiting headers)") from None
            except (OSError, ValueError) as e:
                raise AuthQueryError(f'{label} "{url}": {e}') from None
            if status == 200:
                break
            if status == 403 and not url.startswith("https"):
                url = _https_endpoint(url, body)
                continue
            raise AuthQueryError(f"got response {status} {reason} "
                                 f"{go_quote(body)}")
        else:               # pragma: no cover - the https retry is never retried again
            raise AuthQueryError(f"got response {status} {reason} {go_quote(body)}")
        state = decode_auth_reply(body, secret)
        _validate(state)
        state.expires = self.clock() + state.ttl
        return state

    def _get_session(self):
        import aiohttp
        if self._session is None or self._session.closed:
            from .tls import build_client_ssl_context
            try:
                ssl_ctx = build_client_ssl_context(self.opts)
            except (ValueError, OSError) as e:
                raise AuthQueryError(f"failed to build client TLS config - {e}") from None
            except AttributeError:
                ssl_ctx = None
            timeout = aiohttp.ClientTimeout(total=self.request_timeout or None,
                                            sock_connect=self.connect_timeout or None)
            connector = aiohttp.TCPConnector(ssl=ssl_ctx if ssl_ctx is not None else True,
                                             force_close=True)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=timeout, trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
