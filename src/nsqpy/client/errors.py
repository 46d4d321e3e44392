"""Exceptions raised by :mod:`nsqpy.client`."""

from __future__ import annotations

from ..protocol.errors import ProtocolError

__all__ = ["NSQError", "ConnectionClosedError", "NotConnectedError", "ProtocolError",
           "AuthRequiredError", "IdentifyError", "ResponseError"]


class NSQError(Exception):
    """Base class of the client's own errors."""


class ConnectionClosedError(NSQError, ConnectionError):
    """The connection closed (or could not be opened) before a reply arrived."""


class NotConnectedError(NSQError, ConnectionError):
    """No usable nsqd connection (a producer with every address failing)."""


class AuthRequiredError(NSQError):
    """nsqd requires AUTH but no ``auth_secret`` is configured ("Auth Required")."""


class IdentifyError(NSQError):
    """IDENTIFY or a feature upgrade (TLS/snappy/deflate) failed."""


class ResponseError(NSQError):
    """nsqd answered a command with an error frame: ``code`` (``E_BAD_TOPIC`` …) and
    ``desc``; :attr:`fatal` tells whether nsqd closes the connection after it."""

    def __init__(self, data: bytes) -> None:
        text = data.decode("utf-8", "replace")
        code, _, desc = text.partition(" ")
        super().__init__(text)
        self.code = code
        self.desc = desc
        self.fatal = code not in ("E_FIN_FAILED", "E_REQ_FAILED", "E_TOUCH_FAILED")
