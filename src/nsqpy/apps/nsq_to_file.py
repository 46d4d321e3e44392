"""``nsq_to_file``: consume topics and write the messages to (rotating, optionally
gzipped) files (flags.md §7).

One consumer and one file writer per topic.  Each message body is appended with a
``\\n``; messages are finished only after the file has been synced: when the batch
reaches ``--max-in-flight``, on the ``--sync-interval`` timer, when the consumer is
starved, when a file is opened or rotated, and at exit.

File names come from ``--filename-format`` (``<TOPIC>``, ``<HOST>``, ``<PID>``,
``<DATETIME>`` (strftime of local time with ``--datetime-format``), ``<REV>``
(``-%06d``)).  Rotation: the computed name changes, the file is older than
``--rotate-interval`` or bigger than ``--rotate-size``.  With ``--gzip`` every sync
ends a gzip member (the file is a concatenation of members).  With a ``--work-dir``
files are written there and moved to ``--output-dir`` (hard link + unlink, never
overwriting) when closed.  Without ``--topic``, topics matching ``--topic-pattern``
are discovered from the lookupds' ``/topics`` every ``--topic-refresh``.

SIGHUP closes the current files (reopened with the next message); SIGINT/SIGTERM stop
the consumers, sync, close, exit 0.
"""
from __future__ import annotations

import asyncio
import json
import os
import posixpath
import signal
import socket
import struct
import time
import zlib
from typing import Any

import aiohttp

from ..client import Consumer, Message
from ..goflags import FlagSet
from ..goregexp import GoRegexpError, compile_go_regexp
from ..gotime import MINUTE, SECOND, format_duration
from ..log import Logger, parse_log_level
from . import common
from .filenames import go_time_format, strftime, strftime_to_go_layout  # noqa: F401

TOOL = "nsq_to_file"
ACCEPT = "application/vnd.nsq; version=1.0"

MISSING_REV = "missing <REV> in --filename-format when gzip, rotation, or work dir enabled"


def flagset() -> FlagSet:
    # [quirk, kept] upstream names this flag set "nsqd": "Usage of nsqd:"
    fs = FlagSet("nsqd")
    fs.bool("version", False, "print version string")
    fs.string("log-level", "info", "set log verbosity: debug, info, warn, error, or fatal")
    fs.string("log-prefix", "[nsq_to_file] ", "log message prefix")
    fs.string("channel", "nsq_to_file", "nsq channel")
    fs.int("max-in-flight", 200, "max number of messages to allow in flight")
    fs.string("output-dir", "/tmp", "directory to write output files to")
    fs.string("work-dir", "", "directory for in-progress files before moving to output-dir")
    fs.string("datetime-format", "%Y-%m-%d_%H",
              "strftime compatible format for <DATETIME> in filename format")
    fs.string("filename-format", "<TOPIC>.<HOST><REV>.<DATETIME>.log",
              "output filename format (<TOPIC>, <HOST>, <PID>, <DATETIME>, <REV> are replaced. "
              "<REV> is increased when file already exists)")
    fs.string("host-identifier", "",
              "value to output in log filename in place of hostname. <SHORT_HOST> and "
              "<HOSTNAME> are valid replacement tokens")
    fs.int("gzip-level", 6, "gzip compression level (1-9, 1=BestSpeed, 9=BestCompression)")
    fs.bool("gzip", False, "gzip output files.")
    fs.bool("skip-empty-files", False, "skip writing empty files")
    fs.duration("topic-refresh", MINUTE, "how frequently the topic list should be refreshed")
    fs.string("topic-pattern", "", "only log topics matching the following pattern")
    fs.int("rotate-size", 0, "rotate the file when it grows bigger than `rotate-size` bytes")
    fs.duration("rotate-interval", 0, "rotate the file every duration")
    fs.duration("sync-interval", 30 * SECOND, "sync file to disk every duration")
    fs.duration("http-client-connect-timeout", 2 * SECOND, "timeout for HTTP connect")
    fs.duration("http-client-request-timeout", 5 * SECOND, "timeout for HTTP request")
    fs.str_list("nsqd-tcp-address", "nsqd TCP address (may be given multiple times)")
    fs.str_list("lookupd-http-address", "lookupd HTTP address (may be given multiple times)")
    fs.str_list("topic", "nsq topic (may be given multiple times)")
    fs.define("consumer-opt", "str_list", [], common.CONSUMER_OPT_HELP,
              parse=common.validate_opt)
    return fs


# ---------------------------------------------------------------------------
# gzip members
# ---------------------------------------------------------------------------

class GzipMember:
    """One gzip member written to ``fd`` as Go's ``gzip.Writer`` does: the header
    (no name, mtime 0, OS 255) goes out with the first write or at close; ``close``
    ends the deflate stream and writes the CRC-32/size trailer."""

    def __init__(self, fd: int, level: int) -> None:
        self.fd = fd
        self.level = level
        self.comp = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.crc = 0
        self.size = 0
        self.header_written = False
        self.closed = False

    def _header(self) -> bytes:
        xfl = 2 if self.level == 9 else 4 if self.level == 1 else 0
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes((xfl, 255))

    def _out(self, data: bytes) -> None:
        if not self.header_written:
            data = self._header() + data
            self.header_written = True
        if data:
            _write_all(self.fd, data)

    def write(self, data: bytes) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.size = (self.size + len(data)) & 0xFFFFFFFF
        self._out(self.comp.compress(data))

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._out(self.comp.flush(zlib.Z_FINISH) + struct.pack("<II", self.crc, self.size))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


# ---------------------------------------------------------------------------
# paths (Go path.Join / filepath.Join semantics)
# ---------------------------------------------------------------------------

def go_join(*parts: str) -> str:
    """Go's ``filepath.Join``: join the non-empty parts with ``/`` and Clean."""
    joined = "/".join(p for p in parts if p)
    if not joined:
        return ""
    cleaned = posixpath.normpath(joined)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def make_dir_for(path: str) -> None:
    """Go's ``os.MkdirAll(dir, 0770)`` for the directory of ``path`` (every level it
    creates gets mode 0770 before umask)."""
    d = posixpath.dirname(path)
    if not d or os.path.isdir(d):
        return
    missing = []
    while d and not os.path.isdir(d):
        missing.append(d)
        parent = posixpath.dirname(d)
        if parent == d:
            break
        d = parent
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o770)
        except FileExistsError:
            if not os.path.isdir(level):
                raise


def exclusive_rename(src: str, dst: str) -> None:
    """Move ``src`` to ``dst`` without ever replacing ``dst`` (link, then unlink)."""
    os.link(src, dst)
    os.unlink(src)


def _os_error_text(e: OSError) -> str:
    return f"{e.filename}: {e.strerror}" if e.filename else str(e)


# ---------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------

class Options:
    """The parsed flags, attribute names as upstream's Options fields (snake case)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.topics: list[str] = values["topic"]
        self.topic_pattern: str = values["topic_pattern"]
        self.topic_refresh: int = values["topic_refresh"]
        self.channel: str = values["channel"]
        self.nsqd_tcp_addresses: list[str] = values["nsqd_tcp_address"]
        self.lookupd_http_addresses: list[str] = values["lookupd_http_address"]
        self.consumer_opts: list[str] = values["consumer_opt"]
        self.max_in_flight: int = values["max_in_flight"]
        self.http_client_connect_timeout: int = values["http_client_connect_timeout"]
        self.http_client_request_timeout: int = values["http_client_request_timeout"]
        self.log_prefix: str = values["log_prefix"]
        self.log_level: str = values["log_level"]
        self.output_dir: str = values["output_dir"]
        self.work_dir: str = values["work_dir"]
        self.datetime_format: str = values["datetime_format"]
        self.filename_format: str = values["filename_format"]
        self.host_identifier: str = values["host_identifier"]
        self.gzip_level: int = values["gzip_level"]
        self.gzip: bool = values["gzip"]
        self.skip_empty_files: bool = values["skip_empty_files"]
        self.rotate_size: int = values["rotate_size"]
        self.rotate_interval: int = values["rotate_interval"]
        self.sync_interval: int = values["sync_interval"]


def compute_filename_format(opts: Options, topic: str) -> str:
    """The per-topic filename template (``<DATETIME>`` and ``<REV>`` left in).
    Raises ValueError(MISSING_REV)."""
    hostname = socket.gethostname()
    short = hostname.split(".")[0]
    identifier = short
    if opts.host_identifier:
        identifier = opts.host_identifier.replace("<SHORT_HOST>", short)
        identifier = identifier.replace("<HOSTNAME>", hostname)
    cff = opts.filename_format
    if opts.gzip or opts.rotate_size > 0 or opts.rotate_interval > 0 \
            or opts.work_dir != opts.output_dir:
        if "<REV>" not in cff:
            raise ValueError(MISSING_REV)
    else:
        cff = cff.replace("<REV>", "")
    cff = cff.replace("<TOPIC>", topic)
    cff = cff.replace("<HOST>", identifier)
    cff = cff.replace("<PID>", str(os.getpid()))
    if opts.gzip and not cff.endswith(".gz"):
        cff += ".gz"
    return cff


# ---------------------------------------------------------------------------
# the per-topic file logger
# ---------------------------------------------------------------------------

class FileLogger:
    """Consumer + file writer for one topic; :meth:`router` is its event loop."""

    def __init__(self, log: Logger, opts: Options, topic: str, cfg: Any) -> None:
        self.log = log
        self.opts = opts
        self.topic = topic
        self.tag = f"[{topic}/{opts.channel}]"
        self.filename_format = compute_filename_format(opts, topic)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.consumer = Consumer(topic, opts.channel, self._handle, config=cfg)
        # current file
        self.fd: int | None = None
        self.path = ""
        self.gz: GzipMember | None = None
        self.filename = ""
        self.open_time = 0.0
        self.filesize = 0
        self.rev = 0

    async def connect(self) -> None:
        for addr in self.opts.nsqd_tcp_addresses:
            try:
                await self.consumer.connect_to_nsqd(addr)
            except Exception as e:  # noqa: BLE001
                self.consumer.stop()
                raise ConnectionError(common.connect_error_text(addr, e)) from None
        if self.opts.lookupd_http_addresses:
            await self.consumer.connect_to_nsqlookupds(self.opts.lookupd_http_addresses)

    def _handle(self, msg: Message) -> None:
        msg.disable_auto_response()
        self.events.put_nowait(("msg", msg))

    def hup(self) -> None:
        self.events.put_nowait(("hup", None))

    def term(self) -> None:
        self.events.put_nowait(("term", None))

    def _fatal(self, msg: str, *args: Any) -> None:
        self.log.fatal(f"{self.tag} {msg}", *args)
        common.exit_now(1)

    # -- the event loop ------------------------------------------------------------------
    async def _ticker(self) -> None:
        interval = self.opts.sync_interval / 1e9
        while True:
            await asyncio.sleep(interval)
            self.events.put_nowait(("tick", None))

    async def _watch_stop(self) -> None:
        await self.consumer.wait_closed()
        self.events.put_nowait(("stopped", None))

    async def router(self) -> None:
        output: list[Message] = []
        cap = max(self.opts.max_in_flight, 1)
        ticker = asyncio.ensure_future(self._ticker()) if self.opts.sync_interval > 0 else None
        watcher: asyncio.Future[None] | None = None
        try:
            while True:
                kind, msg = await self.events.get()
                sync = close_file = exit_ = False
                if kind == "stopped":
                    sync = close_file = exit_ = True
                elif kind == "term":
                    if ticker is not None:
                        ticker.cancel()
                        ticker = None
                    if watcher is None:
                        watcher = asyncio.ensure_future(self._watch_stop())
                        self.consumer.stop()
                    sync = True
                elif kind == "hup":
                    sync = close_file = True
                elif kind == "tick":
                    if self.needs_rotation():
                        if self.opts.skip_empty_files:
                            close_file = True
                        else:
                            self.update_file()
                    sync = True
                else:  # message
                    if self.needs_rotation():
                        self.update_file()
                        sync = True
                    self.write(msg.body + b"\n")
                    output.append(msg)
                    if len(output) >= cap:
                        sync = True

                if sync or self.consumer.is_starved():
                    if output:
                        self.log.info("%s syncing %d records to disk", self.tag, len(output))
                        self.sync()
                        for m in output:
                            m.finish()
                        output.clear()
                if close_file:
                    self.close()
                if exit_:
                    return
        finally:
            if ticker is not None:
                ticker.cancel()

    # -- file handling -------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        try:
            if self.gz is not None:
                self.gz.write(data)
            else:
                assert self.fd is not None
                _write_all(self.fd, data)
        except OSError as e:
            self._fatal("writing message to disk: %s", _os_error_text(e))
        self.filesize += len(data)

    def sync(self) -> None:
        try:
            if self.gz is not None:
                # end this gzip member and start a new one: the trailer's checksum marks
                # the messages that were acknowledged
                self.gz.close()
                os.fsync(self.fd)  # type: ignore[arg-type]
                self.gz = GzipMember(self.fd, self.opts.gzip_level)  # type: ignore[arg-type]
            elif self.fd is not None:
                os.fsync(self.fd)
        except OSError as e:
            self._fatal("failed syncing messages: %s", _os_error_text(e))

    def current_filename(self) -> str:
        return self.filename_format.replace("<DATETIME>", strftime(self.opts.datetime_format))

    def needs_rotation(self) -> bool:
        if self.fd is None:
            return True
        filename = self.current_filename()
        if filename != self.filename:
            self.log.info("%s new filename %s, rotating...", self.tag, filename)
            return True
        if self.opts.rotate_interval > 0:
            since = time.monotonic() - self.open_time
            if since * 1e9 > self.opts.rotate_interval:
                self.log.info("%s %s since last open, rotating...", self.tag,
                              format_duration(int(since * 1e9)))
                return True
        if self.opts.rotate_size > 0 and self.filesize > self.opts.rotate_size:
            self.log.info("%s %s currently %d bytes (> %d), rotating...", self.tag, self.path,
                          self.filesize, self.opts.rotate_size)
            return True
        return False

    def _output_name(self, work_path: str) -> str:
        wd = self.opts.work_dir
        rest = work_path[len(wd):] if work_path.startswith(wd) else work_path
        return go_join(self.opts.output_dir, rest)

    def close(self) -> None:
        if self.fd is None:
            return
        fd, src = self.fd, self.path
        try:
            if self.gz is not None:
                self.gz.close()
        except OSError as e:
            self._fatal("failed to close GZIP writer: %s", _os_error_text(e))
        try:
            os.fsync(fd)
        except OSError as e:
            self._fatal("failed to fsync output file: %s", _os_error_text(e))
        try:
            os.close(fd)
        except OSError as e:
            self._fatal("failed to close output file: %s", _os_error_text(e))
        self.fd = None
        self.gz = None
        if self.opts.work_dir != self.opts.output_dir:
            self._move(src)

    def _move(self, src: str) -> None:
        dst = self._output_name(src)
        self.log.info("%s moving finished file %s to %s", self.tag, src, dst)
        try:
            exclusive_rename(src, dst)
            return
        except FileExistsError:
            pass
        except OSError as e:
            self._fatal("unable to move file from %s to %s: %s", src, dst, e.strerror or e)
        # the optimistic move failed: bump the revision until a free name is found
        dst_tmpl = go_join(posixpath.dirname(dst), posixpath.basename(self.filename))
        i = self.rev + 1
        while True:
            self.log.warning("%s destination file already exists: %s", self.tag, dst)
            dst = dst_tmpl.replace("<REV>", "-%06d" % i)
            try:
                exclusive_rename(src, dst)
            except FileExistsError:
                i += 1
                continue
            except OSError as e:
                self._fatal("unable to rename file from %s to %s: %s", src, dst,
                            e.strerror or e)
            self.log.info("%s renamed finished file %s to %s to avoid overwrite", self.tag,
                          src, dst)
            return

    def update_file(self) -> None:
        self.close()  # uses the current filename and rev to resolve a move conflict
        filename = self.current_filename()
        if filename != self.filename:
            self.rev = 0
        else:
            self.rev += 1
        self.filename = filename
        self.open_time = time.monotonic()
        opts = self.opts
        full_path = go_join(opts.work_dir, filename)
        try:
            make_dir_for(full_path)
        except OSError as e:
            self._fatal("unable to create dir: %s", _os_error_text(e))
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        if opts.gzip or opts.rotate_interval > 0:
            flags |= os.O_EXCL
        else:
            flags |= os.O_APPEND
        while True:
            abs_name = full_path.replace("<REV>", "-%06d" % self.rev)
            if opts.work_dir != opts.output_dir:
                out_name = self._output_name(abs_name)
                try:
                    make_dir_for(out_name)
                except OSError as e:
                    self._fatal("unable to create dir: %s", _os_error_text(e))
                try:
                    os.stat(out_name)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    self._fatal("unable to stat output file %s: %s", out_name, e.strerror or e)
                else:
                    self.log.warning("%s output file already exists: %s", self.tag, out_name)
                    self.rev += 1
                    continue
            try:
                fd = os.open(abs_name, flags, 0o666)
            except FileExistsError:
                self.log.warning("%s working file already exists: %s", self.tag, abs_name)
                self.rev += 1
                continue
            except OSError as e:
                self._fatal("unable to open %s: %s", abs_name, e.strerror or e)
            self.log.info("%s opening %s", self.tag, abs_name)
            try:
                self.filesize = os.fstat(fd).st_size
            except OSError as e:
                self._fatal("unable to stat file %s: %s", abs_name, e.strerror or e)
            if opts.rotate_size > 0 and self.filesize > opts.rotate_size:
                self.log.info("%s %s currently %d bytes (> %d), rotating...", self.tag,
                              abs_name, self.filesize, opts.rotate_size)
                os.close(fd)
                self.rev += 1
                continue
            break
        self.fd = fd
        self.path = abs_name
        self.gz = GzipMember(fd, opts.gzip_level) if opts.gzip else None


# ---------------------------------------------------------------------------
# topic discovery and the whole tool
# ---------------------------------------------------------------------------

class TopicDiscoverer:
    def __init__(self, log: Logger, opts: Options, cfg: Any) -> None:
        self.log = log
        self.opts = opts
        self.cfg = cfg
        self.topics: dict[str, FileLogger] = {}
        self.routers: list[asyncio.Task[None]] = []
        self.pattern: Any = None
        self.pattern_ok = True
        if opts.topic_pattern:
            try:
                self.pattern = compile_go_regexp(opts.topic_pattern)
            except (GoRegexpError, ValueError):
                self.pattern_ok = False  # Go: MatchString fails → nothing allowed

    def is_topic_allowed(self, topic: str) -> bool:
        if not self.opts.topic_pattern:
            return True
        if not self.pattern_ok:
            return False
        return self.pattern.search(topic) is not None

    async def update_topics(self, topics: list[str]) -> None:
        for topic in topics:
            if topic in self.topics:
                continue
            if not self.is_topic_allowed(topic):
                self.log.warning("skipping topic %s (doesn't match pattern %s)", topic,
                                 self.opts.topic_pattern)
                continue
            try:
                fl = FileLogger(self.log, self.opts, topic, self.cfg)
                await fl.connect()
            except Exception as e:  # noqa: BLE001 - logged, like upstream
                self.log.error("couldn't create logger for new topic %s: %s", topic,
                               str(e).replace("\n", " "))
                continue
            self.topics[topic] = fl
            self.routers.append(asyncio.ensure_future(fl.router()))

    async def lookupd_topics(self, session: aiohttp.ClientSession) -> list[str]:
        async def one(addr: str) -> list[str]:
            url = (addr if "://" in addr else "http://" + addr).rstrip("/") + "/topics"
            async with session.get(url, headers={"Accept": ACCEPT}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"got response {resp.status} {resp.reason} from {url}")
            data = json.loads(body)
            if isinstance(data, dict) and "data" in data and "topics" not in data:
                data = data["data"]
            return list(data.get("topics") or [])

        results = await asyncio.gather(*(one(a) for a in self.opts.lookupd_http_addresses),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise RuntimeError("; ".join(str(e) or type(e).__name__ for e in errors))
        topics: set[str] = set()
        for r in results:
            topics.update(r)  # type: ignore[arg-type]
        return sorted(topics)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        term = asyncio.Event()

        def on_hup(_sig: int) -> None:
            for fl in self.topics.values():
                fl.hup()

        common.on_signals(lambda _sig: term.set())
        common.on_signals(on_hup, (signal.SIGHUP,))

        await self.update_topics(self.opts.topics)
        poller: asyncio.Task[None] | None = None
        session: aiohttp.ClientSession | None = None
        if not self.opts.topics:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
                total=self.opts.http_client_request_timeout / 1e9,
                connect=self.opts.http_client_connect_timeout / 1e9))

            async def poll() -> None:
                assert session is not None
                while True:
                    await asyncio.sleep(self.opts.topic_refresh / 1e9)
                    try:
                        topics = await self.lookupd_topics(session)
                    except Exception as e:  # noqa: BLE001
                        self.log.error("could not retrieve topic list: %s",
                                       str(e) or type(e).__name__)
                        continue
                    await self.update_topics(topics)

            poller = loop.create_task(poll())
        await term.wait()
        if poller is not None:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
        for fl in self.topics.values():
            fl.term()
        if self.routers:
            await asyncio.gather(*self.routers)
        if session is not None:
            await session.close()
        return 0


def _main() -> int:
    values, rest = common.parse_args(flagset())
    if rest:
        common.fatal("unknown arguments: [%s]", " ".join(rest))
    try:
        level = parse_log_level(values["log_level"])
    except ValueError:
        common.fatal("--log-level is invalid")
    log = Logger(values["log_prefix"], level)
    if values["version"]:
        common.print_version(TOOL)
        return 0
    opts = Options(values)
    if not opts.channel:
        common.fatal("--channel is required")
    if opts.http_client_connect_timeout <= 0:
        common.fatal("--http-client-connect-timeout should be positive")
    if opts.http_client_request_timeout <= 0:
        common.fatal("--http-client-request-timeout should be positive")
    common.check_consumer_addresses(values,
                                    required_msg=common.NEED_ADDRESS + ".")
    if opts.gzip_level < 1 or opts.gzip_level > 9:
        common.fatal("invalid --gzip-level value (%d), should be 1-9", opts.gzip_level)
    if not opts.topics and not opts.topic_pattern:
        common.fatal("--topic or --topic-pattern required")
    if not opts.topics and not opts.lookupd_http_addresses:
        common.fatal("--lookupd-http-address must be specified when no --topic specified")
    if not opts.work_dir:
        opts.work_dir = opts.output_dir
    try:
        compute_filename_format(opts, "")
    except ValueError as e:
        log.fatal(str(e))
        return 1
    cfg = common.consumer_config(values, TOOL)
    common.setup_client_logging("info")
    return common.run(TopicDiscoverer(log, opts, cfg).run())


def main() -> None:
    common.main_guard(_main)


if __name__ == "__main__":
    main()
