"""The nsqadmin daemon: HTTP server + cluster queries + history sampler + notifier.

``NSQAdmin(opts, log)``; ``await start()`` logs the version line, binds the listener
(``listen (<addr>) failed - …`` as StartupError) and logs ``HTTP: listening on …``;
``await stop()`` closes everything.
"""
from __future__ import annotations

import asyncio

from .. import version_string
from ..nsqlookupd.daemon import StartupError, bind_tcp, listen_address
from .clusterinfo import ClusterInfo
from .history import History
from .notify import Notifier
from .options import env_float
from .upstream import Client

__all__ = ["NSQAdmin", "StartupError"]


class NSQAdmin:
    def __init__(self, opts, log):
        self.opts = opts
        self.log = log
        self.client = Client(opts)
        self.ci = ClusterInfo(self.client, log)
        self.history = History(self, interval=env_float("NSQADMIN_HISTORY_INTERVAL", 10.0),
                               window=env_float("NSQADMIN_HISTORY_WINDOW", 3600.0))
        self.notifier = Notifier(self)
        self.http_server = None
        self.http_listen_address = ""
        self._sock = None
        self.stopped = False

    async def start(self) -> None:
        self.log.info(version_string("nsqadmin"))
        address = self.opts.http_address
        try:
            self._sock = bind_tcp(address)
        except StartupError as e:
            raise StartupError(f"listen ({address}) failed - {e}") from None
        except ValueError as e:
            raise StartupError(f"listen ({address}) failed - listen tcp: address {address}: "
                               f"{e}") from None
        from .http_api import start_http_server
        self.http_listen_address = listen_address(self._sock)
        self.http_server = await start_http_server(self, self._sock)
        self.log.info(f"HTTP: listening on {self.http_listen_address}")
        self.history.start()

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.history.stop()
        if self.http_server is not None:
            await self.http_server.close()
            self.log.info(f"HTTP: closing {self.http_listen_address}")
        elif self._sock is not None:
            self._sock.close()
        await self.notifier.stop()
        await self.client.close()
        await asyncio.sleep(0)
