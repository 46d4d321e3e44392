"""Admin-action notifications (spec nsqadmin.md §4): after each admin action a JSON
document is POSTed to ``--notification-http-endpoint``, asynchronously and in order,
by one background task; failures are only logged."""
from __future__ import annotations

import asyncio
import socket
import time
from urllib.parse import quote

from ..gojson import go_json, integral_floats

__all__ = ["Notifier", "admin_action"]


def _basic_auth_user(request) -> str:
    import base64
    auth = request.headers.get("Authorization", "")
    parts = auth.split(" ", 1)
    if len(parts) != 2 or parts[0] != "Basic":
        return ""
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return ""
    user, sep, _pw = decoded.partition(":")
    return user if sep else ""


def _request_url(request) -> str:
    """Go's url.URL{Scheme, Host, Path, RawQuery}.String() of the admin request."""
    scheme = "http"
    if request.transport is not None and request.transport.get_extra_info("sslcontext"):
        scheme = "https"
    if request.headers.get("X-Scheme") == "https":
        scheme = "https"
    host = request.headers.get("Host", "")
    path = quote(request.path.encode("utf-8", "surrogateescape"), safe="/:@$&+,;=-._~")
    url = f"{scheme}://{host}{path}"
    qs = request.raw_path.partition("?")[2]
    if qs:
        url += "?" + qs
    return url


def admin_action(action: str, topic: str, channel: str, node: str, request,
                 remote: str, via: str) -> dict:
    a = {"action": action, "topic": topic}
    if channel:
        a["channel"] = channel
    if node:
        a["node"] = node
    a["timestamp"] = int(time.time())
    user = _basic_auth_user(request)
    if user:
        a["user"] = user
    a["remote_ip"] = remote
    a["user_agent"] = request.headers.get("User-Agent", "")
    a["url"] = _request_url(request)
    a["via"] = via
    return a


class Notifier:
    def __init__(self, admin):
        self.admin = admin
        self.queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        try:
            self.via = socket.gethostname()
        except OSError:  # pragma: no cover
            self.via = ""

    def notify(self, action: str, topic: str, channel: str, node: str, request) -> None:
        if not self.admin.opts.notification_http_endpoint:
            return
        from ..httpapi import remote_addr
        doc = admin_action(action, topic, channel, node, request, remote_addr(request), self.via)
        if self.queue is None:
            self.queue = asyncio.Queue()
        self.queue.put_nowait(doc)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        assert self.queue is not None
        while True:
            doc = await self.queue.get()
            endpoint = self.admin.opts.notification_http_endpoint
            try:
                status, _reason, _h, _body = await self.admin.client.request(
                    "POST", endpoint, data=go_json(integral_floats(doc)),
                    headers={"Content-Type": "application/json"}, accept=False)
            except Exception as e:  # noqa: BLE001
                self.admin.log.error(f"failed to POST notification - {e}")

    async def stop(self, drain_timeout: float = 1.0) -> None:
        if self._task is None:
            return
        if self.queue is not None and not self.queue.empty():
            deadline = asyncio.get_running_loop().time() + drain_timeout
            while not self.queue.empty() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.02)
        t, self._task = self._task, None
        for _ in range(20):
            t.cancel()
            done, _pending = await asyncio.wait({t}, timeout=0.1)
            if done:
                break
