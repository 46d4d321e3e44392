"""``nsqlookupd`` command: parse Go-style flags, run the daemon until SIGINT/SIGTERM."""
import asyncio
import signal
import sys

from ..configfile import ConfigError
from ..goflags import FlagExit
from ..log import Logger
from .daemon import NSQLookupd, StartupError
from .options import OptionsError, parse_nsqlookupd_options

FATAL_PREFIX = "[nsqlookupd] "   # lg.LogFatal's fixed prefix (not --log-prefix)


def _go_extra(err: str) -> str:
    """``logFatal("failed to instantiate nsqlookupd", err)``: upstream passes the error
    without a verb, so Go's fmt appends it as ``%!(EXTRA *errors.errorString=…)``."""
    return f"failed to instantiate nsqlookupd%!(EXTRA *errors.errorString={err})"


async def serve(opts, log) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    lookupd = NSQLookupd(opts, log)
    try:
        await lookupd.start()
    except StartupError as e:
        Logger(FATAL_PREFIX, stream=log.stream).fatal(_go_extra(str(e)))
        await lookupd.stop()
        return 1
    await stop.wait()
    await lookupd.stop()
    return 0


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_nsqlookupd_options(argv)
    except FlagExit as e:
        e.exit()
        return
    except ConfigError as e:
        e.emit(Logger(FATAL_PREFIX))
        sys.exit(1)
    except OptionsError as e:
        Logger(FATAL_PREFIX).fatal(str(e))
        sys.exit(1)
    log = Logger(opts.log_prefix, opts.log_level)
    try:
        import uvloop
        code = uvloop.run(serve(opts, log))
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        code = asyncio.run(serve(opts, log))
    sys.exit(code)


if __name__ == "__main__":
    main()
