"""``nsqlookupd`` command: parse Go-style flags, run the daemon until SIGINT/SIGTERM."""
from ..configfile import ConfigError
from ..daemon_main import parse_or_exit, run_daemon
from ..log import Logger
from .daemon import NSQLookupd, StartupError
from .options import OptionsError, parse_nsqlookupd_options

FATAL_PREFIX = "[nsqlookupd] "   # lg.LogFatal's fixed prefix (not --log-prefix)


def _go_extra(err: str) -> str:
    """``logFatal("failed to instantiate nsqlookupd", err)``: upstream passes the error
    without a verb, so Go's fmt appends it as ``%!(EXTRA *errors.errorString=…)``."""
    return f"failed to instantiate nsqlookupd%!(EXTRA *errors.errorString={err})"


def _option_fatal(e: Exception) -> None:
    if isinstance(e, ConfigError):
        e.emit(Logger(FATAL_PREFIX))
    else:
        Logger(FATAL_PREFIX).fatal(str(e))


def _startup_fatal(log, e: StartupError) -> None:
    Logger(FATAL_PREFIX, stream=log.stream).fatal(_go_extra(str(e)))


def main(argv=None) -> None:
    opts = parse_or_exit(parse_nsqlookupd_options, argv, (ConfigError, OptionsError),
                         _option_fatal)
    run_daemon(NSQLookupd, opts, StartupError, _startup_fatal)


if __name__ == "__main__":
    main()
