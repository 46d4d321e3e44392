"""Shared plumbing for the NSQ tools (nsq_tail, nsq_to_file, nsq_to_http, ...).

What every tool needs, the way the Go tools behave (spec flags.md §6-§7):

* flag parsing with :class:`~nsqpy.goflags.FlagSet`: :func:`parse_args` turns a
  :class:`~nsqpy.goflags.FlagExit` into the printout + exit code (bad flag: one line
  and the usage on stderr, exit 2; ``-h``: usage, exit 0);
* the consumer flags (:func:`add_consumer_flags`: ``--nsqd-tcp-address``,
  ``--lookupd-http-address``, ``--consumer-opt``, ``--max-in-flight``) and the
  ``--producer-opt`` flag (:func:`add_producer_opt_flag`); option strings are
  validated while parsing, so ``--consumer-opt=bogus,1`` is a flag error;
* :func:`check_consumer_addresses`: exactly one of the two address kinds, else the
  Go fatal lines (``--nsqd-tcp-address or --lookupd-http-address required`` /
  ``use --nsqd-tcp-address or --lookupd-http-address not both``), exit 1;
* :func:`consumer_config` / :func:`producer_config`: a client :class:`Config` with the
  passthrough options, ``user_agent = <tool>/1.3.0 go-nsq/1.1.0`` and max-in-flight;
* Go ``log`` package lines (:func:`std_log`, :func:`fatal`) and the client library's
  log records on stderr in go-nsq's style (:func:`setup_client_logging`), one line
  each, never a traceback;
* :func:`start_consumer`: connect like go-nsq's ``ConnectToNSQDs`` +
  ``ConnectToNSQLookupds`` (a failure here is fatal; a connection lost later is
  logged and retried by the client);
* :func:`stop_consumers`: graceful stop (CLS everywhere, wait for in-flight);
* :func:`on_signals` and :func:`run`: signal handlers and running a coroutine on
  uvloop, turning unexpected exceptions into a one-line fatal error.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any, Callable, Coroutine, Iterable, NoReturn, Sequence

from .. import NSQ_VERSION
from ..client import DEFAULT_USER_AGENT, Config, ConfigError, Consumer
from ..goflags import FlagExit, FlagSet
from ..log import format_std_log

__all__ = [
    "NSQ_VERSION", "CONSUMER_OPT_HELP", "PRODUCER_OPT_HELP",
    "user_agent", "version_line", "print_version",
    "std_log", "fatal", "exit_now", "write_stderr", "setup_client_logging",
    "parse_args", "validate_opt", "add_consumer_flags", "add_producer_opt_flag", "add_version_flag",
    "check_consumer_addresses", "consumer_config", "producer_config",
    "new_consumer", "start_consumer", "stop_consumers", "connect_error_text",
    "on_signals", "run", "main_guard",
]

CONSUMER_OPT_HELP = ("option to passthrough to nsq.Consumer (may be given multiple times, "
                     "http://godoc.org/github.com/nsqio/go-nsq#Config)")
PRODUCER_OPT_HELP = ("option to passthrough to nsq.Producer (may be given multiple times, "
                     "http://godoc.org/github.com/nsqio/go-nsq#Config)")

NEED_ADDRESS = "--nsqd-tcp-address or --lookupd-http-address required"
NOT_BOTH = "use --nsqd-tcp-address or --lookupd-http-address not both"


# ---------------------------------------------------------------------------
# identity
# ---------------------------------------------------------------------------

def user_agent(tool: str) -> str:
    """``nsq_tail/1.3.0 go-nsq/1.1.0``: the IDENTIFY user agent the tools send."""
    return f"{tool}/{NSQ_VERSION} {DEFAULT_USER_AGENT}"


def version_line(tool: str) -> str:
    """``nsq_tail v1.3.0`` (the tools print no build info, unlike the daemons)."""
    return f"{tool} v{NSQ_VERSION}"


def print_version(tool: str) -> None:
    """Print :func:`version_line` to stdout (the caller then exits 0)."""
    sys.stdout.write(version_line(tool) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------
# logging
# ---------------------------------------------------------------------------

def write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def std_log(msg: str, *args: Any) -> None:
    """Go ``log.Printf``: ``2026/11/24 21:25:56 <msg>`` on stderr."""
    if args:
        msg = msg % args
    write_stderr(format_std_log(msg))


def fatal(msg: str, *args: Any, code: int = 1) -> NoReturn:
    """Go ``log.Fatal``: one std-log line on stderr, then exit 1.

    Outside an event loop this raises ``SystemExit``; inside one (a handler, a task)
    it flushes stdout/stderr and ends the process at once with ``os._exit`` — like
    Go's ``os.Exit``, nothing else runs (no half-stopped tasks printing tracebacks)."""
    std_log(msg, *args)
    exit_now(code)


def exit_now(code: int = 0) -> NoReturn:
    """End the process with ``code``: ``sys.exit`` outside an event loop, else flush
    the standard streams and ``os._exit`` (Go's ``os.Exit``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


_GO_NSQ_LEVELS = {logging.DEBUG: "DBG", logging.INFO: "INF", logging.WARNING: "WRN",
                  logging.ERROR: "ERR", logging.CRITICAL: "ERR"}


class _GoNsqFormatter(logging.Formatter):
    """go-nsq's log line: ``2026/11/24 21:25:56 INF    1 <message>``; an exception
    is appended as `` - <type>: <text>`` instead of a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            msg = record.getMessage()
        except Exception:  # pragma: no cover - bad format args
            msg = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            msg += f" - {type(exc).__name__}: {exc}"
        msg = msg.replace("\n", " ")
        tag = _GO_NSQ_LEVELS.get(record.levelno, "INF")
        return format_std_log(f"{tag:<4} {1:3d} {msg}").rstrip("\n")


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # pragma: no cover
            return
        write_stderr(line + "\n")


_client_handler: _StderrHandler | None = None


def setup_client_logging(level: int | str = "info") -> None:
    """Send the client library's log records (logger ``nsqpy.client``) to stderr as
    go-nsq lines, at ``level`` and above (``debug``/``info``/``warn``/``error``/``fatal``
    or a :mod:`logging` level number).  Idempotent."""
    global _client_handler
    if isinstance(level, str):
        level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
                 "warning": logging.WARNING, "error": logging.ERROR,
                 "fatal": logging.CRITICAL}.get(level.lower(), logging.INFO)
    lg = logging.getLogger("nsqpy.client")
    if _client_handler is None:
        _client_handler = _StderrHandler()
        _client_handler.setFormatter(_GoNsqFormatter())
        lg.addHandler(_client_handler)
        lg.propagate = False
    lg.setLevel(level)
    # asyncio's own "Task exception was never retrieved"/callback tracebacks
    aio = logging.getLogger("asyncio")
    if not any(isinstance(h, _StderrHandler) for h in aio.handlers):
        h = _StderrHandler()
        h.setFormatter(_GoNsqFormatter())
        aio.addHandler(h)
        aio.propagate = False


# ---------------------------------------------------------------------------
# flags
# ---------------------------------------------------------------------------

def parse_args(fs: FlagSet, argv: Sequence[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Parse ``argv`` (default ``sys.argv[1:]``); returns ``(values, positional)``
    keyed by flag key (``-`` → ``_``).  Help / errors print and exit like Go."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        values, _explicit, rest = fs.parse(args)
    except FlagExit as e:
        e.exit()
        raise AssertionError("unreachable")  # pragma: no cover
    return values, rest


def validate_opt(text: str) -> list[str]:
    """Flag parser for ``--consumer-opt``/``--producer-opt``: check one ``key,value``
    client option (ValueError with the reason) and keep the text."""
    Config().set_opt(text)
    return [text]


_opt_validator = validate_opt


def add_version_flag(fs: FlagSet, help: str = "print version string") -> None:
    fs.bool("version", False, help)


def add_consumer_flags(fs: FlagSet, *, max_in_flight: int = 200,
                       consumer_opt_help: str = CONSUMER_OPT_HELP,
                       nsqd_help: str = "nsqd TCP address (may be given multiple times)",
                       lookupd_help: str = "lookupd HTTP address (may be given multiple times)",
                       ) -> None:
    """Define ``--nsqd-tcp-address``, ``--lookupd-http-address`` (repeatable),
    ``--consumer-opt`` (repeatable, validated ``key,value``) and ``--max-in-flight``.
    Values: ``nsqd_tcp_address``, ``lookupd_http_address``, ``consumer_opt`` (lists of
    str) and ``max_in_flight`` (int)."""
    fs.str_list("nsqd-tcp-address", nsqd_help)
    fs.str_list("lookupd-http-address", lookupd_help)
    fs.define("consumer-opt", "str_list", [], consumer_opt_help, parse=validate_opt)
    fs.int("max-in-flight", max_in_flight, "max number of messages to allow in flight")


def add_producer_opt_flag(fs: FlagSet, help: str = PRODUCER_OPT_HELP) -> None:
    """Define ``--producer-opt`` (repeatable, validated); value key ``producer_opt``."""
    fs.define("producer-opt", "str_list", [], help, parse=validate_opt)


def check_consumer_addresses(values: dict[str, Any], *, required_msg: str = NEED_ADDRESS,
                             not_both_msg: str = NOT_BOTH) -> None:
    """Exactly one of ``--nsqd-tcp-address`` / ``--lookupd-http-address``, else fatal."""
    nsqd = values.get("nsqd_tcp_address") or []
    lookupd = values.get("lookupd_http_address") or []
    if not nsqd and not lookupd:
        fatal(required_msg)
    if nsqd and lookupd:
        fatal(not_both_msg)


def _config(opts: Iterable[str], tool: str) -> Config:
    cfg = Config()
    for opt in opts:
        try:
            cfg.set_opt(opt)
        except ConfigError as e:  # validated at parse time already
            fatal(str(e))
    cfg.user_agent = user_agent(tool)
    return cfg


def consumer_config(values: dict[str, Any], tool: str, max_in_flight: int | None = None) -> Config:
    """Config from ``--consumer-opt`` values, then user agent and max-in-flight
    (``max_in_flight`` argument, else the ``--max-in-flight`` value) on top, as the
    Go tools do."""
    cfg = _config(values.get("consumer_opt") or [], tool)
    mif = values.get("max_in_flight", 200) if max_in_flight is None else max_in_flight
    try:
        cfg.max_in_flight = mif
    except ConfigError as e:
        fatal(str(e))
    return cfg


def producer_config(values: dict[str, Any], tool: str) -> Config:
    """Config from ``--producer-opt`` values with the tool's user agent."""
    return _config(values.get("producer_opt") or [], tool)


# ---------------------------------------------------------------------------
# consumers
# ---------------------------------------------------------------------------

def new_consumer(topic: str, channel: str, handler: Any, config: Config,
                 **kw: Any) -> Consumer:
    """A :class:`Consumer`, or fatal (Go ``nsq.NewConsumer`` error) for bad names or
    an invalid configuration."""
    try:
        return Consumer(topic, channel, handler, config=config, **kw)
    except (ValueError, ConfigError) as e:
        fatal(str(e))


async def start_consumer(consumer: Consumer, nsqd_addresses: Sequence[str],
                         lookupd_addresses: Sequence[str]) -> None:
    """Connect to every nsqd (a failure is fatal, like go-nsq's ``ConnectToNSQDs``
    error in the Go tools), then add the lookupds (a bad address is fatal; failing
    queries are only logged and retried)."""
    for addr in nsqd_addresses:
        try:
            await consumer.connect_to_nsqd(addr)
        except Exception as e:  # noqa: BLE001 - any connect failure is the tool's end
            fatal(connect_error_text(addr, e))
    if lookupd_addresses:
        try:
            await consumer.connect_to_nsqlookupds(list(lookupd_addresses))
        except ValueError as e:
            fatal(_one_line(e))


async def stop_consumers(consumers: Iterable[Consumer]) -> None:
    """Graceful stop: CLS to every connection of every consumer, then wait until
    their in-flight messages are answered and the connections closed."""
    cs = list(consumers)
    for c in cs:
        c.stop()
    if cs:
        await asyncio.gather(*(c.wait_closed() for c in cs), return_exceptions=True)


def connect_error_text(addr: str, e: BaseException) -> str:
    """A failed connection as Go words it: ``dial tcp 127.0.0.1:1: connect: connection
    refused``; other errors as their one-line text."""
    if isinstance(e, OSError) and e.strerror and not isinstance(e, TimeoutError):
        return f"dial tcp {addr}: connect: {e.strerror[:1].lower()}{e.strerror[1:]}"
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return f"dial tcp {addr}: i/o timeout"
    return _one_line(e)


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.replace("\n", " ")


# ---------------------------------------------------------------------------
# signals and the event loop
# ---------------------------------------------------------------------------

def on_signals(callback: Callable[[int], Any],
               signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Call ``callback(signum)`` on the running loop for each of ``signals``."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, callback, sig)


def run(main: Callable[[], Coroutine[Any, Any, int | None]] | Coroutine[Any, Any, int | None]) -> int:
    """Run ``main`` (a coroutine or coroutine function) on uvloop (asyncio as a
    fallback) and return its exit code (``None`` → 0).  SystemExit passes through;
    any other exception becomes a one-line fatal error (exit 1)."""
    coro = main() if callable(main) else main
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a declared dependency
            result = asyncio.run(coro)
        else:
            result = uvloop.run(coro)
    except KeyboardInterrupt:
        return 0
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        fatal(f"ERROR: {_one_line(e)}")
    return 0 if result is None else int(result)


def run_tool(tool: str, flags: FlagSet, validate: Callable[[dict[str, Any]], Any],
             run_opts: Callable[[Any], Coroutine[Any, Any, int | None]],
             argv: Sequence[str] | None) -> None:
    """A consumer tool's whole ``main``: parse ``flags`` (``--version`` prints and exits),
    ``validate`` the values into options, client logging, ``run_opts(options)``."""
    def body() -> int:
        values, _rest = parse_args(flags, argv)
        if values["version"]:
            print_version(tool)
            return 0
        opts = validate(values)
        setup_client_logging()
        return run(run_opts(opts))
    main_guard(body)


def main_guard(fn: Callable[[], Any]) -> None:
    """Run a tool's synchronous ``main`` body: exit with its return code; an unexpected
    exception is one fatal line, not a traceback; a closed stdout exits quietly."""
    try:
        code = fn()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            sys.exit(1)
    except Exception as e:  # noqa: BLE001
        fatal(f"ERROR: {_one_line(e)}")
    sys.exit(0 if code is None else int(code))

