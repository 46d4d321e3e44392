"""Go (RE2) regular expressions, translated to Python's ``re``.

nsqd's auth server hands out topic and channel patterns in Go's regexp syntax; this
module compiles them with Go's acceptance rules: Perl-only syntax Go rejects is rejected
(lookarounds, backreferences, possessive quantifiers, ``\\Z``) and RE2-only syntax is
handled (``\\z``, ``\\Q…\\E``, POSIX classes, ``\\pL``, octal escapes, mid-pattern flags,
repeat counts over 1000 rejected).  Subjects are ASCII topic/channel names.
"""
from __future__ import annotations

import re
import unicodedata

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
