"""Topic and channel name validation (spec tcp-protocol §13)."""

from __future__ import annotations

import re

__all__ = ["is_valid_topic_name", "is_valid_channel_name", "is_valid_name", "is_ephemeral",
           "EPHEMERAL_SUFFIX"]

EPHEMERAL_SUFFIX = "#ephemeral"

# fullmatch() gives Go's `^...$` semantics (no match before a trailing newline).
_NAME_RE_B = re.compile(rb"[.a-zA-Z0-9_-]+(?:#ephemeral)?")
_NAME_RE_S = re.compile(r"[.a-zA-Z0-9_-]+(?:#ephemeral)?", re.ASCII)
_match_b = _NAME_RE_B.fullmatch
_match_s = _NAME_RE_S.fullmatch

# Small memo of recently seen valid names: publishing validates the topic on every
# PUB and the set of live names is small.
_valid_cache: set = set()
_CACHE_MAX = 4096


def is_valid_name(name: str | bytes) -> bool:
    """1..64 bytes and ``^[.a-zA-Z0-9_-]+(#ephemeral)?$``."""
    if name.__class__ is not str and name.__class__ is not bytes:
        if not isinstance(name, (str, bytes, bytearray, memoryview)):
            return False
        name = str(name) if isinstance(name, str) else bytes(name)
    if name in _valid_cache:
        return True
    if name.__class__ is str:
        # Non-ASCII characters never match, so len(str) == len(bytes) for valid names.
        if not 1 <= len(name) <= 64 or _match_s(name) is None:
            return False
    else:
        if not 1 <= len(name) <= 64 or _match_b(name) is None:
            return False
    if len(_valid_cache) >= _CACHE_MAX:
        _valid_cache.clear()
    _valid_cache.add(name)
    return True


is_valid_topic_name = is_valid_name
is_valid_channel_name = is_valid_name


def is_ephemeral(name: str) -> bool:
    """True if the name ends with ``#ephemeral``."""
    if isinstance(name, (bytes, bytearray)):
        return name.endswith(b"#ephemeral")
    return name.endswith(EPHEMERAL_SUFFIX)
