"""nsqd without ``--auth-http-address``: every command is allowed and ``AUTH`` answers
``E_AUTH_DISABLED``.  The full auth-server client (:mod:`.auth`, with its Go-regexp
engine and HTTP client) is only imported by an nsqd that has auth servers."""
from ..protocol.errors import ProtocolError


class NeedsRefresh(Exception):
    """The client's cached authorizations expired: re-query the auth server
    (``await Authorizer.refresh_if_expired(client)``) and re-run the command."""


class NoAuth:
    enabled = False

    def check(self, client, name: bytes, topic: str, channel: str) -> None:
        pass

    def check_before_body(self, client, name: bytes, params) -> None:
        pass

    async def authenticate(self, client, secret: bytes) -> bytes:
        raise ProtocolError("E_AUTH_DISABLED", "AUTH disabled")

    async def refresh_if_expired(self, client) -> None:
        pass

    async def close(self) -> None:
        pass


def new_authorizer(opts, log):
    """The daemon's authorizer: :class:`~.auth.Authorizer` when auth servers are set."""
    if getattr(opts, "auth_http_addresses", None):
        from .auth import Authorizer
        return Authorizer(opts, log)
    return NoAuth()
