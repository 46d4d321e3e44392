"""What the daemon commands (nsqd, nsqlookupd) share: the ``--log-level`` option and the
config file's ``log_level`` check, and ``main``'s skeleton — parse the command line
(flag exits, fatal option errors), then run the daemon on uvloop until SIGINT/SIGTERM.

A command's ``main``::

    def main(argv=None):
        opts = parse_or_exit(parse_options, argv, OptionsError, report_option_error)
        run_daemon(Daemon, opts, StartupError, report_startup_error)
"""
from __future__ import annotations

import asyncio
import signal
import socket
import sys
from typing import Any, Callable

from .goflags import FlagExit, FlagSet
from .gostrconv import go_fmt_v
from .log import LEVEL_LABELS, LEVEL_NAMES, Logger, parse_log_level

__all__ = ["LOG_LEVEL_HELP", "check_config_log_level", "define_log_level", "os_hostname",
           "parse_level_name", "parse_or_exit", "run_daemon"]

LOG_LEVEL_HELP = "set log verbosity: debug, info, warn, error, or fatal"


def os_hostname() -> str:
    """os.Hostname(), ``localhost`` if it fails."""
    try:
        return socket.gethostname()
    except OSError:  # pragma: no cover
        return "localhost"


# -- --log-level / log_level ---------------------------------------------------------------------
def parse_level_name(s: str) -> str:
    """A level as the flag accepts it (``WARN``, ``warning``, …) -> its canonical name."""
    return LEVEL_NAMES[parse_log_level(s)]


def _level_label(name: Any) -> str:
    if isinstance(name, int):
        return LEVEL_LABELS.get(name, "invalid")
    try:
        return LEVEL_LABELS[parse_log_level(name)]
    except ValueError:
        return "invalid"


def _coerce_level(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v in LEVEL_NAMES:
        return LEVEL_NAMES[v]
    return parse_level_name(str(v))


def define_log_level(fs: FlagSet, flag: str = "log-level", default: str = "info",
                     help_text: str = LOG_LEVEL_HELP, key: str = "log_level",
                     field: str = "LogLevel") -> None:
    """Define the ``lg.LogLevel`` flag (Go's ``--log-level``) on ``fs``."""
    fs.custom(flag, default, help_text, parse=parse_level_name, to_str=_level_label,
              zero_str="invalid", coerce=_coerce_level, key=key, field=field)


def check_config_log_level(cfg: dict, error: Callable[[str], Exception]) -> None:
    """The config file's ``log_level``, checked and made canonical before resolution;
    raises ``error("failed parsing log_level <v>")``."""
    if "log_level" in cfg:
        v = cfg["log_level"]
        try:
            cfg["log_level"] = parse_level_name(go_fmt_v(v))
        except ValueError:
            raise error(f"failed parsing log_level {go_fmt_v(v)}") from None


# -- main ------------------------------------------------------------------------------------------
def parse_flags_and_config(fs: FlagSet, argv, app: str, options_error) -> tuple[dict, str]:
    """Upstream main's order: flags, ``--version`` (FlagExit to stdout), ``--config``
    loading, the config's ``log_level`` check, then resolution.  Returns the resolved
    values and the config path."""
    from . import version_string
    from .configfile import load_config_file, resolve
    values, explicit, _positional = fs.parse(argv)
    if values["version"]:
        raise FlagExit(0, version_string(app) + "\n", stream="stdout")
    cfg: dict = {}
    config_path = values["config"]
    if config_path:
        cfg = load_config_file(config_path)
    check_config_log_level(cfg, options_error)
    return resolve(fs, values, explicit, cfg), config_path


def parse_or_exit(parse: Callable, argv, errors, report: Callable[[Exception], None]):
    """``parse(argv)`` (``argv`` defaults to ``sys.argv[1:]``). A FlagExit prints its
    message and exits with its code; an exception of type ``errors`` is ``report``-ed,
    then exit 1."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return parse(argv)
    except FlagExit as e:
        e.exit()
    except errors as e:
        report(e)
        sys.exit(1)


async def _serve(make, opts, log, startup_error, report) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = None
    try:
        daemon = make(opts, log)
        await daemon.start()
    except startup_error as e:
        report(log, e)
        if daemon is not None:
            await daemon.stop()
        return 1
    await stop.wait()
    await daemon.stop()
    return 0


def run_daemon(make: Callable, opts, startup_error, report: Callable) -> None:
    """Log with ``opts.log_prefix``/``opts.log_level``, ``daemon = make(opts, log)``,
    ``await daemon.start()``, wait for SIGINT/SIGTERM, ``await daemon.stop()``, exit 0. A
    ``startup_error`` from make or start is ``report(log, e)``-ed, the daemon stopped,
    exit 1."""
    log = Logger(opts.log_prefix, opts.log_level)
    try:
        import uvloop
        run = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        run = asyncio.run
    sys.exit(run(_serve(make, opts, log, startup_error, report)))
