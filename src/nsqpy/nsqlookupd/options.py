"""nsqlookupd command-line flags and config-file resolution (spec flags.md §0, §2, §4).

Attribute names of :class:`Options` are the config-file keys; durations are int
nanoseconds.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..configfile import ConfigError
from ..daemon_main import define_log_level, parse_flags_and_config, os_hostname
from ..goflags import FlagExit, FlagSet
from ..gotime import SECOND

__all__ = ["Options", "OptionsError", "ConfigError", "FlagExit", "nsqlookupd_flagset",
           "parse_nsqlookupd_options", "OPTION_KEYS"]


class OptionsError(Exception):
    """A fatal option problem; ``str(e)`` is the text logged after ``FATAL: `` with the
    fixed ``[nsqlookupd] `` prefix (Go's lg.LogFatal). Exit code 1."""


@dataclass
class Options:
    log_level: str = "info"
    log_prefix: str = "[nsqlookupd] "
    tcp_address: str = "0.0.0.0:4160"
    http_address: str = "0.0.0.0:4161"
    broadcast_address: str = ""
    inactive_producer_timeout: int = 300 * SECOND
    tombstone_lifetime: int = 45 * SECOND
    # not settable ---------------------------------------------------------
    hostname: str = ""
    config_file: str = ""

    def __post_init__(self) -> None:
        if not self.hostname:
            self.hostname = os_hostname()
        if not self.broadcast_address:
            self.broadcast_address = self.hostname


OPTION_KEYS = ("log_level", "log_prefix", "tcp_address", "http_address", "broadcast_address",
               "inactive_producer_timeout", "tombstone_lifetime")


def nsqlookupd_flagset(hostname: str | None = None) -> FlagSet:
    """nsqlookupd's flag set (Go ``nsqlookupdFlagSet``), in upstream's definition order."""
    host = hostname if hostname is not None else os_hostname()
    fs = FlagSet("nsqlookupd")
    fs.string("config", "", "path to config file", configurable=False)
    fs.bool("version", False, "print version string", configurable=False)
    define_log_level(fs)
    fs.string("log-prefix", "[nsqlookupd] ", "log message prefix", field="LogPrefix")
    fs.bool("verbose", False, "[deprecated] has no effect, use --log-level", configurable=False)
    fs.string("tcp-address", "0.0.0.0:4160", "<addr>:<port> to listen on for TCP clients",
              field="TCPAddress")
    fs.string("http-address", "0.0.0.0:4161", "<addr>:<port> to listen on for HTTP clients",
              field="HTTPAddress")
    fs.string("broadcast-address", host,
              "address of this lookupd node, (default to the OS hostname)",
              field="BroadcastAddress")
    fs.duration("inactive-producer-timeout", 300 * SECOND,
                "duration of time a producer will remain in the active list since its last "
                "ping", field="InactiveProducerTimeout")
    fs.duration("tombstone-lifetime", 45 * SECOND,
                "duration of time a producer will remain tombstoned if registration remains",
                field="TombstoneLifetime")
    return fs


def parse_nsqlookupd_options(argv: list[str], hostname: str | None = None) -> Options:
    """Parse nsqlookupd's command line (without the program name).

    Order as upstream's main: flags (FlagExit 2 on errors, 0 for help), ``--version``
    (FlagExit(0, version line, stream="stdout")), ``--config`` loading (ConfigError
    ``failed to load config file …``), the config's ``log_level`` check (OptionsError
    ``failed parsing log_level <v>``), then resolution (ConfigError ``Resolve failed to
    coerce …``, std-log form). Positional arguments are ignored.
    """
    host = hostname if hostname is not None else os_hostname()
    fs = nsqlookupd_flagset(host)
    resolved, config_path = parse_flags_and_config(fs, argv, "nsqlookupd", OptionsError)
    opts = Options(hostname=host, config_file=config_path)
    for f in fields(Options):
        if f.name in OPTION_KEYS:
            setattr(opts, f.name, resolved[f.name])
    return opts
