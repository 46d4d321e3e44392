"""``nsqadmin`` command: parse Go-style flags, run the web UI until SIGINT/SIGTERM."""
import asyncio
import signal
import sys

from ..configfile import ConfigError
from ..goflags import FlagExit
from ..log import Logger
from .options import (FATAL_PREFIX, OptionsError, parse_nsqadmin_options,
                      validate_nsqadmin_options)


async def serve(opts, log) -> int:
    from .daemon import NSQAdmin, StartupError
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    admin = NSQAdmin(opts, log)
    try:
        await admin.start()
    except StartupError as e:
        Logger(FATAL_PREFIX, stream=log.stream).fatal(f"failed to instantiate nsqadmin - {e}")
        await admin.stop()
        return 1
    await stop.wait()
    await admin.stop()
    return 0


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_nsqadmin_options(argv)
    except FlagExit as e:
        e.exit()
        return
    except ConfigError as e:
        e.emit(Logger(FATAL_PREFIX))
        sys.exit(1)
    except OptionsError as e:
        Logger(FATAL_PREFIX).fatal(str(e))
        sys.exit(1)
    try:
        validate_nsqadmin_options(opts)
    except OptionsError as e:
        Logger(FATAL_PREFIX).fatal(f"failed to instantiate nsqadmin - {e}")
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
