"""``nsqd`` command: parse Go-style flags, run the daemon until SIGINT/SIGTERM."""
import asyncio
import signal
import sys

from ..goflags import FlagExit
from ..log import Logger
from .daemon import NSQD, StartupError
from .options import OptionsError, parse_nsqd_options


async def serve(opts, log) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nsqd = None
    try:
        nsqd = NSQD(opts, log)
        await nsqd.start()
    except StartupError as e:
        log.fatal(str(e))
        if nsqd is not None:
            await nsqd.stop()
        return 1
    await stop.wait()
    await nsqd.stop()
    return 0


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_nsqd_options(argv)
    except FlagExit as e:
        if e.message:
            stream = sys.stdout if e.code == 0 and e.to_stdout else sys.stderr
            stream.write(e.message if e.message.endswith("\n") else e.message + "\n")
        sys.exit(e.code)
    except OptionsError as e:
        Logger("[nsqd] ").fatal(str(e))
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
