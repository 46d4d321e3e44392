"""Protocol error type shared by the parser, the server and the client."""

from __future__ import annotations

__all__ = ["ProtocolError", "NON_FATAL_CODES"]

#: The only error codes after which nsqd keeps the connection open.
NON_FATAL_CODES = frozenset({"E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED"})


class ProtocolError(Exception):
    """An NSQ protocol error: ``<code> <desc>`` in an error frame.

    ``desc`` is a ``str``; raw client bytes that are not valid UTF-8 (e.g. an
    unknown command name echoed back) are carried as ``surrogateescape``
    characters so that :meth:`frame_data` reproduces them byte for byte.
    """

    __slots__ = ("code", "desc", "fatal")

    def __init__(self, code: str, desc: str, fatal: bool = True) -> None:
        super().__init__(code, desc)
        self.code = code
        self.desc = desc
        self.fatal = fatal

    def frame_data(self) -> bytes:
        """The error frame payload, e.g. ``b"E_INVALID invalid command FOO"``."""
        return (self.code + " " + self.desc).encode("utf-8", "surrogateescape")

    def __str__(self) -> str:
        return self.code + " " + self.desc

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.desc!r}, fatal={self.fatal!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtocolError):
            return NotImplemented
        return (self.code, self.desc, self.fatal) == (other.code, other.desc, other.fatal)

    __hash__ = Exception.__hash__
