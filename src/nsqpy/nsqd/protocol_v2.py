"""One nsqd TCP connection speaking protocol V2 (tcp-protocol.md).

An ``asyncio.Protocol``: bytes go into the sans-IO :class:`CommandParser`, commands
come out and are executed against the broker.  Responses produced while handling one
read are written with a single ``write``; message frames are buffered up to the
client's output buffer size / timeout (§9).
"""
import asyncio
import time
from time import monotonic

from ..engine.backend import BackendError
from ..engine.channel import ChannelError
from ..engine.consumer import (STATE_CLOSING, STATE_DISCONNECTED, STATE_INIT,
                               STATE_SUBSCRIBED, Consumer)
from ..engine.topic import TopicError
from ..protocol import commands as cmds
from ..protocol.compression import CompressionError
from ..protocol.errors import ProtocolError
from ..protocol.frames import (CLOSE_WAIT_FRAME, HEARTBEAT_FRAME, OK_FRAME, encode_error,
                               encode_response)
from ..protocol.identify import feature_negotiation_response, parse_identify
from .noauth import NeedsRefresh

MAGIC_V2 = b"  V2"
CLIENT_TIMEOUT = 60.0                    # upstream's fixed --client-timeout
DEFAULT_OUTPUT_BUFFER_SIZE = 16384
BAD_PROTOCOL_FRAME = encode_error(b"E_BAD_PROTOCOL")
INFLATE_CHUNK = 1 << 20                  # deflate input is inflated at most this much at a time

_MUST_BE_INIT = {cmds.Identify.NAME, cmds.Auth.NAME, cmds.Sub.NAME}
_MUST_BE_SUBSCRIBED_OR_CLOSING = {cmds.Fin.NAME, cmds.Req.NAME, cmds.Touch.NAME}


class ClientV2(asyncio.Protocol, Consumer):
    def __init__(self, nsqd):
        self.init_consumer()
        self.nsqd = nsqd
        self.broker = nsqd.broker
        self.log = nsqd.log
        opts = nsqd.opts
        self.poke = nsqd.busy_poll.poke
        self.transport = None
        self.magic = b""
        self.parser = cmds.CommandParser(nsqd.limits, self._precheck, self._mpub_precheck)
        self.out = []                     # pending frames
        self.out_size = 0                 # bytes of message frames among them
        self.respond_pending = False      # a response is queued: flush at the end of this read
        self.commit = self.broker.committer   # --durable: OKs wait for the group commit
        self.holds = []                   # (commit step, len(out) it releases) while held
        self.closed = False
        self.flush_timer = None
        self.flush_scheduled = False      # a flush at the end of this loop turn is queued
        self.heartbeat_timer = None
        self.idle_timer = None
        self.last_read = monotonic()
        self.write_paused_at = None
        self.reading_paused_for_write = False
        # identity and negotiated settings
        self.remote_ip = ""
        self.remote_port = 0
        self.client_id = ""
        self.hostname = ""
        self.user_agent = ""
        self.connect_ts = int(time.time())
        self.heartbeat_interval = CLIENT_TIMEOUT / 2
        self.output_buffer_size = DEFAULT_OUTPUT_BUFFER_SIZE
        self.output_buffer_timeout = opts.output_buffer_timeout / 1e9
        self.msg_timeout = opts.msg_timeout / 1e9
        self.max_req_timeout_ms = opts.max_req_timeout // 1_000_000
        self.busy = None                  # the async step (TLS upgrade, auth query) in progress
        self.encoder = None               # snappy/deflate stream encoder once negotiated
        self.decoder = None
        self.tls = False
        self.tls_common_name = ""
        self.ssl_object = None
        self.auth_state = None
        self.snappy = False
        self.deflate = False
        self.authed = False
        self.auth_identity = ""
        self.auth_identity_url = ""
        self.pub_counts = {}

    # -- connection lifecycle -------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.remote_ip, self.remote_port = peer[0], peer[1]
        else:
            self.remote_ip, self.remote_port = "", 0
        self.client_id = self.hostname = self.remote_ip
        self.nsqd.clients.add(self)
        self.log.info(f"TCP: new client({self.remote_address})")
        loop = asyncio.get_running_loop()
        self.loop = loop
        self.heartbeat_timer = loop.call_later(self.heartbeat_interval, self._heartbeat)
        self.idle_timer = loop.call_later(2 * self.heartbeat_interval, self._idle_check)

    @property
    def remote_address(self) -> str:
        ip = self.remote_ip
        if ":" in ip:
            ip = f"[{ip}]"
        return f"{ip}:{self.remote_port}"

    def connection_lost(self, exc) -> None:
        if self.closed:
            return
        self.closed = True
        self.log.info(f"PROTOCOL(V2): [{self.remote_address}] exiting ioloop")
        for timer in (self.heartbeat_timer, self.idle_timer, self.flush_timer):
            if timer is not None:
                timer.cancel()
        self.nsqd.clients.discard(self)
        self.state = STATE_DISCONNECTED      # its in-flight messages time out; it never gets more
        ch = self.channel
        if ch is not None:
            ch.remove_consumer(self)
        self.out = []

    def close_connection(self) -> None:
        """Close from the server side (channel deleted, shutdown)."""
        if self.transport is not None and not self.closed:
            self.flush()
            self.transport.close()
            self.connection_lost(None)

    def eof_received(self) -> bool:
        """The client half-closed: a command cut inside its size or body gets its error."""
        if not self.closed and self.busy is None:
            err = self.parser.eof_error()
            if err is not None:
                self._fatal(err)
        return False

    # The transport's write buffer is full (the client is not reading): like Go's blocked
    # writer, stop delivering messages to it, and stop reading its commands once one has a
    # response, so what nsqd buffers per client stays bounded.
    def pause_writing(self) -> None:
        self.write_paused_at = monotonic()
        self.output_blocked = True
        self.update_ready()

    def resume_writing(self) -> None:
        self.write_paused_at = None
        self.output_blocked = False
        if self.closed:
            return
        if self.reading_paused_for_write:
            self.reading_paused_for_write = False
            if self.busy is None:
                self.transport.resume_reading()
                self._process()
                if self.deflate and self.decoder.pending and not self.closed:
                    self.data_received(b"")
        if not self.closed:
            self.update_ready()

    # -- timers -----------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        if self.closed:
            return
        paused = self.write_paused_at
        if paused is not None and monotonic() - paused > self.heartbeat_interval:
            self.log.error(f"PROTOCOL(V2): [{self.remote_address}] write timeout")
            self.transport.abort()
            self.connection_lost(None)
            return
        self.out.append(HEARTBEAT_FRAME)
        self.flush()
        self.heartbeat_timer = self.loop.call_later(self.heartbeat_interval, self._heartbeat)

    def _idle_check(self) -> None:
        if self.closed or self.heartbeat_interval <= 0:
            return
        limit = 2 * self.heartbeat_interval
        idle = monotonic() - self.last_read
        if idle >= limit:
            self.log.error(f"PROTOCOL(V2): [{self.remote_address}] read timeout "
                           f"(no command in {limit:g}s)")
            self.transport.close()
            self.connection_lost(None)
            return
        self.idle_timer = self.loop.call_later(limit - idle, self._idle_check)

    def _rearm_timers(self) -> None:
        for timer in (self.heartbeat_timer, self.idle_timer):
            if timer is not None:
                timer.cancel()
        self.heartbeat_timer = self.idle_timer = None
        if self.heartbeat_interval > 0:
            self.heartbeat_timer = self.loop.call_later(self.heartbeat_interval, self._heartbeat)
            self.idle_timer = self.loop.call_later(2 * self.heartbeat_interval, self._idle_check)

    # -- output -------------------------------------------------------------------------------
    def flush_soon(self) -> None:
        """Flush at the end of this loop turn: everything delivered meanwhile (a whole
        MPUB's worth, a batch of refills) goes out in one write."""
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.out and not self.closed:
            out = self.out
            self.out = []
            self.out_size = 0
            self.respond_pending = False
            data = out[0] if len(out) == 1 else b"".join(out)
            if self.encoder is not None:
                data = self.encoder.encode(data)
            self.transport.write(data)
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None

    def _timed_flush(self) -> None:
        self.flush_timer = None
        self.flush()

    def send_frames(self, frames) -> None:
        self.out += frames
        self.out_size += sum(map(len, frames))
        if self.out_size >= self.output_buffer_size:
            self.flush_soon()
        elif (self.flush_timer is None and not self.flush_scheduled
              and self.output_buffer_timeout > 0):
            self.flush_timer = self.loop.call_later(self.output_buffer_timeout, self._timed_flush)

    def _fatal(self, err: ProtocolError) -> None:
        self.log.error(f"[{self.remote_address}] - {err.code} {err.desc}")
        self.out.append(encode_error(err.frame_data()))
        self.flush()
        self.transport.close()
        self.connection_lost(None)

    # -- input ---------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if len(self.magic) < 4:
            need = 4 - len(self.magic)
            self.magic += data[:need]
            data = data[need:]
            if len(self.magic) < 4:
                return
            self.log.info(f"CLIENT({self.remote_address}): desired protocol magic "
                          f"'{self.magic.decode('latin-1')}'")
            if self.magic != MAGIC_V2:
                self.log.error(f"client({self.remote_address}) bad protocol magic "
                               f"'{self.magic.decode('latin-1')}'")
                self.transport.write(BAD_PROTOCOL_FRAME)
                self.transport.close()
                self.connection_lost(None)
                return
            if not data:
                return
        self.last_read = monotonic()
        self.poke()
        decoder = self.decoder
        if decoder is None:
            self.parser.feed(data)
            if self.busy is None:
                self._process()
            return
        try:
            data = decoder.decode(data, INFLATE_CHUNK) if self.deflate else decoder.decode(data)
            while True:
                self.parser.feed(data)
                if self.busy is None:
                    self._process()
                if (self.closed or self.busy is not None or not self.deflate
                        or not decoder.pending or self.reading_paused_for_write):
                    return                     # (an async step or resume_writing resumes it)
                data = decoder.decode(b"", INFLATE_CHUNK)   # inflate the rest bit by bit
        except CompressionError as e:
            self.log.error(f"[{self.remote_address}] - failed to decompress: {e}")
            self.transport.close()
            self.connection_lost(None)

    def _process(self) -> None:
        """Run every complete command; stop early while an async step (TLS, auth) runs."""
        parser = self.parser
        handlers = self.HANDLERS
        try:
            while not self.closed and self.busy is None and not self.reading_paused_for_write:
                if self.state >= STATE_SUBSCRIBED and (self.tls or not self.nsqd.tls_required_tcp):
                    fins = parser.take_fins()        # a whole run of FINs in one call
                    if fins:
                        self._fin_many(fins)
                cmd = parser.next_command()
                if cmd is None:
                    break
                try:
                    handlers[cmd.__class__](self, cmd)
                except NeedsRefresh:
                    self._run_async(self._refresh_then_retry(cmd))
                if self.respond_pending and self.write_paused_at is not None:
                    self.reading_paused_for_write = True     # resume_writing goes on
                    self.transport.pause_reading()
                    break
        except ProtocolError as err:      # everything the parser and handlers raise is fatal
            self._fatal(err)
            return
        ch = self.channel
        if ch is not None and self.ready:
            ch.pump()
        if self.respond_pending and not self.closed:
            self.flush()          # responses go out now, with any messages queued behind them

    # -- async steps: reading pauses until they finish ----------------------------------------
    def _run_async(self, coro) -> None:
        self.flush()
        self.transport.pause_reading()
        self.busy = self.loop.create_task(coro)
        self.busy.add_done_callback(self._async_done)

    def _async_done(self, task) -> None:
        self.busy = None
        if self.closed:
            return
        exc = task.exception() if not task.cancelled() else None
        if isinstance(exc, ProtocolError):
            self._fatal(exc)
            return
        if exc is not None:
            self.log.error(f"[{self.remote_address}] - {exc!r}")
            self.transport.close()
            self.connection_lost(None)
            return
        self.transport.resume_reading()
        self._process()
        if self.deflate and self.decoder.pending and self.busy is None and not self.closed:
            self.data_received(b"")       # inflate what waited behind the async step

    async def _refresh_then_retry(self, cmd) -> None:
        await self.nsqd.auth.refresh_if_expired(self)
        try:
            self.HANDLERS[cmd.__class__](self, cmd)
        except NeedsRefresh:
            raise ProtocolError("E_AUTH_FAILED", "AUTH failed") from None

    def _respond(self, frame: bytes) -> None:
        """Queue a response; it is written at the end of the current read (§9: immediate)."""
        self.out.append(frame)
        self.respond_pending = True

    def _precheck(self, name: bytes, params) -> object:
        if self.nsqd.tls_required_tcp and not self.tls and name != b"IDENTIFY":
            raise ProtocolError("E_INVALID",
                                f"cannot {name.decode('latin-1')} in current state (TLS required)")
        state = self.state
        if name in _MUST_BE_INIT:
            if state != STATE_INIT:
                raise ProtocolError("E_INVALID", f"cannot {name.decode()} in current state")
            if name == b"SUB" and self.heartbeat_interval <= 0:
                raise ProtocolError("E_INVALID", "cannot SUB with heartbeats disabled")
        elif name == b"RDY":
            if state == STATE_CLOSING:
                return cmds.SKIP
            if state != STATE_SUBSCRIBED:
                raise ProtocolError("E_INVALID", "cannot RDY in current state")
        elif name in _MUST_BE_SUBSCRIBED_OR_CLOSING:
            if state != STATE_SUBSCRIBED and state != STATE_CLOSING:
                raise ProtocolError("E_INVALID", f"cannot {name.decode()} in current state")
        elif name == b"CLS":
            if state != STATE_SUBSCRIBED:
                raise ProtocolError("E_INVALID", "cannot CLS in current state")
        return None

    def _mpub_precheck(self, topic: str) -> None:
        """MPUB checks auth and creates the topic before reading the body (upstream order)."""
        try:
            self.nsqd.auth.check(self, b"MPUB", topic, "")
        except NeedsRefresh:
            pass        # the expired grant is re-queried when the complete MPUB runs
        self.broker.get_topic(topic)

    # -- commands ---------------------------------------------------------------------------------
    def _identify(self, cmd) -> None:
        nsqd = self.nsqd
        data = parse_identify(cmd.body, nsqd.identify_config)
        self.log.info(f"[{self.remote_address}] IDENTIFY: {data}")
        self.client_id = data.client_id
        self.hostname = data.hostname
        self.user_agent = data.user_agent
        self.heartbeat_interval = data.heartbeat_interval_ms / 1000.0
        self.output_buffer_size = data.output_buffer_size
        self.output_buffer_timeout = data.output_buffer_timeout_ms / 1000.0
        self.sample_rate = data.sample_rate
        self.msg_timeout = data.msg_timeout_ms / 1000.0
        self._rearm_timers()
        if not data.feature_negotiation:
            self._respond(OK_FRAME)
            return
        neg = nsqd.negotiation
        body = feature_negotiation_response(data, neg)   # raises if both compressions
        self._respond(encode_response(body))
        self.flush()                                     # the JSON goes out in plain text
        tls = data.tls_v1 and neg.tls_enabled
        snappy = data.snappy and neg.snappy_enabled
        deflate = data.deflate and neg.deflate_enabled
        if not (tls or snappy or deflate):
            return
        # bytes buffered before the upgrade are discarded, like upstream
        self.parser = cmds.CommandParser(nsqd.limits, self._precheck, self._mpub_precheck)
        if tls:
            self._run_async(self._upgrade(data, tls, snappy, deflate))
        else:
            self._compress(data, snappy, deflate)

    async def _upgrade(self, data, tls, snappy, deflate) -> None:
        try:
            transport = await asyncio.wait_for(self.loop.start_tls(
                self.transport, self, self.nsqd.ssl_context, server_side=True), 5.0)
        except (OSError, asyncio.TimeoutError, ValueError) as e:
            self.log.error(f"[{self.remote_address}] - TLS handshake failed: {e!r}")
            self.transport.abort()
            self.connection_lost(None)
            return
        self.transport = transport
        self.tls = True
        ssl_object = transport.get_extra_info("ssl_object")
        cert = transport.get_extra_info("peercert") or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    self.tls_common_name = value
        self.ssl_object = ssl_object
        self.out.append(OK_FRAME)
        self.flush()
        if snappy or deflate:
            self._compress(data, snappy, deflate)

    def _compress(self, data, snappy, deflate) -> None:
        from ..protocol.compression import (DeflateDecoder, DeflateEncoder, SnappyDecoder,
                                            SnappyEncoder)
        if snappy:
            self.encoder, self.decoder = SnappyEncoder(), SnappyDecoder()
            self.snappy = True
        else:
            level = min(data.deflate_level or 6, self.nsqd.opts.max_deflate_level)
            self.encoder, self.decoder = DeflateEncoder(level), DeflateDecoder()
            self.deflate = True
        self.out.append(OK_FRAME)
        self.flush()

    def _auth(self, cmd) -> None:
        self._run_async(self._authenticate(cmd.secret))

    async def _authenticate(self, secret: bytes) -> None:
        body = await self.nsqd.auth.authenticate(self, secret)
        self.out.append(encode_response(body))
        self.flush()

    def _sub(self, cmd) -> None:
        self.nsqd.auth.check(self, b"SUB", cmd.topic, cmd.channel)
        topic = self.broker.get_topic(cmd.topic)
        ch = topic.get_channel(cmd.channel)
        try:
            ch.add_consumer(self)
        except ChannelError as e:
            raise ProtocolError("E_SUB_FAILED", f"SUB failed {e}") from None
        self.state = STATE_SUBSCRIBED
        self._respond(OK_FRAME)

    def _rdy(self, cmd) -> None:
        self.set_rdy(cmd.count)

    def _fin(self, cmd) -> None:
        try:
            self.channel.finish(self, cmd.msg_id)
        except ChannelError as e:
            self._respond(encode_error(
                b"E_FIN_FAILED FIN %s failed %s" % (cmd.msg_id, str(e).encode())))

    def _fin_many(self, ids) -> None:
        for msg_id in self.channel.finish_many(self, ids):   # the ones that failed
            try:
                self.channel.finish(self, msg_id)
            except ChannelError as e:
                self._respond(encode_error(
                    b"E_FIN_FAILED FIN %s failed %s" % (msg_id, str(e).encode())))

    def _req(self, cmd) -> None:
        delay = cmd.timeout_ms
        if delay > self.max_req_timeout_ms:
            self.log.info(f"PROTOCOL(V2): [{self.remote_address}] REQ timeout {delay} out of "
                          f"range 0-{self.max_req_timeout_ms}. Setting to max.")
            delay = self.max_req_timeout_ms
        try:
            self.channel.requeue(self, cmd.msg_id, delay)
        except ChannelError as e:
            self._respond(encode_error(
                b"E_REQ_FAILED REQ %s failed %s" % (cmd.msg_id, str(e).encode())))

    def _touch(self, cmd) -> None:
        try:
            self.channel.touch(self, cmd.msg_id)
        except ChannelError as e:
            self._respond(encode_error(
                b"E_TOUCH_FAILED TOUCH %s failed %s" % (cmd.msg_id, str(e).encode())))

    def _cls(self, cmd) -> None:
        self.rdy = 0
        self.state = STATE_CLOSING
        self.update_ready()
        self._respond(CLOSE_WAIT_FRAME)

    def _nop(self, cmd) -> None:
        pass

    def _publish(self, name: str, topic_name: str, bodies, defer_ms: int = 0) -> None:
        self.nsqd.auth.check(self, name.encode(), topic_name, "")
        topic = self.broker.get_topic(topic_name)
        try:
            topic.put_many(bodies, defer_ms)
        except (TopicError, BackendError) as e:
            raise ProtocolError(f"E_{name}_FAILED", f"{name} failed {e}") from None
        self.pub_counts[topic_name] = self.pub_counts.get(topic_name, 0) + len(bodies)
        self._respond(OK_FRAME)
        if self.commit is not None:
            self._hold_until_commit()

    # -- --durable: output waits for the commit covering the last publish ----------------------
    def _hold_until_commit(self) -> None:
        """Keep everything queued so far (this OK included) until the next group commit
        ends; parsing goes on, so pipelined publishes share the commit."""
        step = self.commit.started + 1
        holds = self.holds
        if holds and holds[-1][0] == step:
            holds[-1] = (step, len(self.out))
            return
        holds.append((step, len(self.out)))
        self.commit.request(self._commit_done)
        self.flush = self._held_flush            # instance attribute: flushes wait

    def _held_flush(self) -> None:
        self.flush_scheduled = False

    def _commit_done(self, step: int, ok: bool) -> None:
        if self.closed:
            return
        if not ok:                               # not on disk: never say OK
            self.out = []
            del self.flush                       # back to ClientV2.flush for the error
            self.holds = []
            self._fatal(ProtocolError("E_PUB_FAILED", "PUB failed durable commit failed"))
            return
        holds = self.holds
        cut = 0
        while holds and holds[0][0] <= step:
            cut = holds.pop(0)[1]
        if not holds:
            del self.flush                       # back to ClientV2.flush
            self.flush()
        elif cut:
            frames = self.out[:cut]
            del self.out[:cut]
            self.holds = [(s, n - cut) for s, n in holds]
            self.out_size = max(0, self.out_size - sum(map(len, frames)))
            data = b"".join(frames)
            if self.encoder is not None:
                data = self.encoder.encode(data)
            self.transport.write(data)

    def _pub(self, cmd) -> None:
        self._publish("PUB", cmd.topic, (cmd.body,))

    def _mpub(self, cmd) -> None:
        self._publish("MPUB", cmd.topic, cmd.bodies)

    def _dpub(self, cmd) -> None:
        self._publish("DPUB", cmd.topic, (cmd.body,), cmd.defer_ms)

    HANDLERS = {
        cmds.Identify: _identify, cmds.Auth: _auth, cmds.Sub: _sub, cmds.Rdy: _rdy,
        cmds.Fin: _fin, cmds.Req: _req, cmds.Touch: _touch, cmds.Cls: _cls, cmds.Nop: _nop,
        cmds.Pub: _pub, cmds.Mpub: _mpub, cmds.Dpub: _dpub,
    }

    # -- stats --------------------------------------------------------------------------------------
    def stats_dict(self, topic_filter=None) -> dict:
        d = {
            "client_id": self.client_id,
            "hostname": self.hostname,
            "version": "V2",
            "remote_address": self.remote_address,
            "state": self.state,
            "ready_count": self.rdy,
            "in_flight_count": self.in_flight,
            "message_count": self.message_count,
            "finish_count": self.finish_count,
            "requeue_count": self.requeue_count,
            "connect_ts": self.connect_ts,
            "sample_rate": self.sample_rate,
            "deflate": self.deflate,
            "snappy": self.snappy,
            "user_agent": self.user_agent,
        }
        if self.authed:
            d["authed"] = True
        if self.auth_identity:
            d["auth_identity"] = self.auth_identity
        if self.auth_identity_url:
            d["auth_identity_url"] = self.auth_identity_url
        pubs = [{"topic": t, "count": n} for t, n in self.pub_counts.items()
                if topic_filter is None or t == topic_filter]
        if pubs:
            d["pub_counts"] = pubs
        d.update(self.tls_stats())
        return d

    def tls_stats(self) -> dict:
        if self.tls:
            from .tls import tls_stats
            return tls_stats(self.ssl_object)
        return {"tls": False, "tls_cipher_suite": "", "tls_version": "",
                "tls_negotiated_protocol": "", "tls_negotiated_protocol_is_mutual": False}

    def __repr__(self) -> str:
        return f"<ClientV2 {self.remote_address} {self.client_id}>"
