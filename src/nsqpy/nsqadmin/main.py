"""``nsqadmin`` command: parse Go-style flags, run the web UI until SIGINT/SIGTERM."""
from ..configfile import ConfigError
from ..daemon_main import parse_or_exit, run_daemon
from ..log import Logger
from .options import (FATAL_PREFIX, OptionsError, parse_nsqadmin_options,
                      validate_nsqadmin_options)


def _parse(argv):
    opts = parse_nsqadmin_options(argv)
    try:
        validate_nsqadmin_options(opts)
    except OptionsError as e:
        raise OptionsError(f"failed to instantiate nsqadmin - {e}") from None
    return opts


def _option_fatal(e: Exception) -> None:
    if isinstance(e, ConfigError):
        e.emit(Logger(FATAL_PREFIX))
    else:
        Logger(FATAL_PREFIX).fatal(str(e))


def _startup_fatal(log, e: Exception) -> None:
    Logger(FATAL_PREFIX, stream=log.stream).fatal(f"failed to instantiate nsqadmin - {e}")


def main(argv=None) -> None:
    opts = parse_or_exit(_parse, argv, (ConfigError, OptionsError), _option_fatal)
    from .daemon import NSQAdmin, StartupError  # after parsing: --help/--version stay fast
    run_daemon(NSQAdmin, opts, StartupError, _startup_fatal)


if __name__ == "__main__":
    main()
