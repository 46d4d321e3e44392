"""``nsqd`` command: parse Go-style flags, run the daemon until SIGINT/SIGTERM."""
from ..configfile import ConfigError
from ..daemon_main import parse_or_exit, run_daemon
from ..log import Logger
from .daemon import NSQD, StartupError
from .options import OptionsError, parse_nsqd_options


def _option_fatal(e: OptionsError) -> None:
    if isinstance(e, ConfigError):      # config-file coercion errors print as Go's std log
        e.emit(Logger("[nsqd] "))
    else:
        Logger("[nsqd] ").fatal(str(e))


def _startup_fatal(log, e: StartupError) -> None:
    log.fatal(str(e))


def main(argv=None) -> None:
    opts = parse_or_exit(parse_nsqd_options, argv, OptionsError, _option_fatal)
    run_daemon(NSQD, opts, StartupError, _startup_fatal)


if __name__ == "__main__":
    main()
