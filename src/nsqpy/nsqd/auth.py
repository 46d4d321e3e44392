"""Authorization of TCP clients (tcp-protocol.md §6.2, §12).

Without ``--auth-http-address`` every command is allowed and AUTH answers
``E_AUTH_DISABLED``.  The auth-server exchange is the next milestone; until it exists
a configured auth server makes AUTH fail rather than silently allow everything.
"""
from ..protocol.errors import ProtocolError


class Authorizer:
    def __init__(self, opts, log):
        self.addresses = list(opts.auth_http_addresses or [])
        self.log = log

    @property
    def enabled(self) -> bool:
        return bool(self.addresses)

    def authenticate(self, client, secret: bytes) -> None:
        if client.authed:
            raise ProtocolError("E_INVALID", "AUTH already set")
        if not self.enabled:
            raise ProtocolError("E_AUTH_DISABLED", "AUTH disabled")
        self.log.error("PROTOCOL(V2): auth server queries are not implemented yet")
        raise ProtocolError("E_AUTH_FAILED", "AUTH failed")

    def check_before_body(self, client, name: bytes, params) -> None:
        if self.enabled and name == b"MPUB":
            self._require(client, name)

    def check(self, client, name: bytes, topic: str, channel: str) -> None:
        if self.enabled:
            self._require(client, name)

    @staticmethod
    def _require(client, name: bytes) -> None:
        if not client.authed:
            raise ProtocolError("E_AUTH_FIRST", f"AUTH required before {name.decode()}")
        raise ProtocolError("E_UNAUTHORIZED", "AUTH failed")
