"""nsqd command-line flags, config-file resolution and option validation
(spec flags.md §1, §4; ``/config`` encodings of nsqd-http.md).

Attribute names of :class:`Options` are the config-file keys; durations are int
nanoseconds.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Any, Callable

from .. import version_string
from ..configfile import ConfigError, go_os_error, load_config_file, resolve
from ..daemon_main import check_config_log_level, define_log_level, os_hostname
from ..goflags import KEEP, FlagExit, FlagSet
from ..gostrconv import (GoNumError, go_fmt_v, go_json_float, go_json_string, go_quote,
                         parse_go_bool, parse_go_int)
from ..gotime import HOUR, MILLISECOND, MINUTE, SECOND
from ..log import parse_log_level

__all__ = [
    "Options", "OptionsError", "OptionsConfigError", "ConfigError", "FlagExit", "OPTION_SPECS", "GO_FIELDS",
    "TLS_NOT_REQUIRED", "TLS_REQUIRED_EXCEPT_HTTP", "TLS_REQUIRED",
    "TLS_VERSIONS", "default_node_id", "default_options", "nsqd_flagset",
    "parse_nsqd_options", "validate_nsqd_options", "config_value_json",
    "parse_tls_required", "parse_tls_min_version",
]

TLS_NOT_REQUIRED = 0
TLS_REQUIRED_EXCEPT_HTTP = 1
TLS_REQUIRED = 2

TLS_VERSIONS = {"tls1.0": 0x0301, "tls1.1": 0x0302, "tls1.2": 0x0303, "tls1.3": 0x0304}
"""--tls-min-version names -> TLS protocol version numbers (769..772). ``ssl3.0``
is listed in the help text but rejected, as in v1.3.0."""


class OptionsError(Exception):
    """A fatal option problem; ``str(e)`` is the complete text nsqd logs after
    ``FATAL: `` (e.g. ``failed to instantiate nsqd - --node-id must be [0,1024)``),
    ``reason`` the inner error. Exit code 1."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason if reason is not None else message

    def emit(self, logger: Any) -> None:
        logger.fatal(self.message)


class OptionsConfigError(OptionsError, ConfigError):
    """A :class:`ConfigError` raised by :func:`parse_nsqd_options`; also an
    OptionsError so one ``except OptionsError`` handles every fatal option problem.
    ``emit`` prints it the ConfigError way (std-log line for coercion failures)."""

    def __init__(self, err: ConfigError):
        ConfigError.__init__(self, err.message, err.std_log)
        self.reason = err.message

    def emit(self, logger: Any = None, stream: Any = None) -> None:
        ConfigError.emit(self, logger, stream)


# ---------------------------------------------------------------------------
# the option table
# ---------------------------------------------------------------------------

def default_node_id(hostname: str) -> int:
    """CRC32-IEEE(MD5(hostname)) % 1024, as nsqd's NewOptions."""
    import hashlib
    return zlib.crc32(hashlib.md5(hostname.encode("utf-8", "surrogateescape")).digest()) % 1024


_HOST = os_hostname()

# key -> (kind, default, flag name, Go struct field); order = Go Options struct order
_TABLE: list[tuple[str, str, Any, str, str]] = [
    ("id", "int", None, "node-id", "ID"),
    ("log_level", "log_level", "info", "log-level", "LogLevel"),
    ("log_prefix", "str", "[nsqd] ", "log-prefix", "LogPrefix"),
    ("tcp_address", "str", "0.0.0.0:4150", "tcp-address", "TCPAddress"),
    ("http_address", "str", "0.0.0.0:4151", "http-address", "HTTPAddress"),
    ("https_address", "str", "0.0.0.0:4152", "https-address", "HTTPSAddress"),
    ("broadcast_address", "str", None, "broadcast-address", "BroadcastAddress"),
    ("broadcast_tcp_port", "int", 0, "broadcast-tcp-port", "BroadcastTCPPort"),
    ("broadcast_http_port", "int", 0, "broadcast-http-port", "BroadcastHTTPPort"),
    ("nsqlookupd_tcp_addresses", "str_list", [], "lookupd-tcp-address", "NSQLookupdTCPAddresses"),
    ("auth_http_addresses", "str_list", [], "auth-http-address", "AuthHTTPAddresses"),
    ("http_client_connect_timeout", "duration", 2 * SECOND, "http-client-connect-timeout",
     "HTTPClientConnectTimeout"),
    ("http_client_request_timeout", "duration", 5 * SECOND, "http-client-request-timeout",
     "HTTPClientRequestTimeout"),
    ("data_path", "str", "", "data-path", "DataPath"),
    ("mem_queue_size", "int", 10000, "mem-queue-size", "MemQueueSize"),
    ("max_bytes_per_file", "int", 104857600, "max-bytes-per-file", "MaxBytesPerFile"),
    ("sync_every", "int", 2500, "sync-every", "SyncEvery"),
    ("sync_timeout", "duration", 2 * SECOND, "sync-timeout", "SyncTimeout"),
    ("durable", "bool", False, "durable", "Durable"),     # nsqpy only: docs/durability.md
    ("queue_scan_selection_count", "int", 20, "queue-scan-selection-count",
     "QueueScanSelectionCount"),
    ("queue_scan_worker_pool_max", "int", 4, "queue-scan-worker-pool-max",
     "QueueScanWorkerPoolMax"),
    ("msg_timeout", "duration", 60 * SECOND, "msg-timeout", "MsgTimeout"),
    ("max_msg_timeout", "duration", 15 * MINUTE, "max-msg-timeout", "MaxMsgTimeout"),
    ("max_msg_size", "int", 1048576, "max-msg-size", "MaxMsgSize"),
    ("max_body_size", "int", 5242880, "max-body-size", "MaxBodySize"),
    ("max_req_timeout", "duration", 1 * HOUR, "max-req-timeout", "MaxReqTimeout"),
    ("max_heartbeat_interval", "duration", 60 * SECOND, "max-heartbeat-interval",
     "MaxHeartbeatInterval"),
    ("max_rdy_count", "int", 2500, "max-rdy-count", "MaxRdyCount"),
    ("max_output_buffer_size", "int", 65536, "max-output-buffer-size", "MaxOutputBufferSize"),
    ("max_output_buffer_timeout", "duration", 30 * SECOND, "max-output-buffer-timeout",
     "MaxOutputBufferTimeout"),
    ("min_output_buffer_timeout", "duration", 25 * MILLISECOND, "min-output-buffer-timeout",
     "MinOutputBufferTimeout"),
    ("output_buffer_timeout", "duration", 250 * MILLISECOND, "output-buffer-timeout",
     "OutputBufferTimeout"),
    ("max_channel_consumers", "int", 0, "max-channel-consumers", "MaxChannelConsumers"),
    ("statsd_address", "str", "", "statsd-address", "StatsdAddress"),
    ("statsd_prefix", "str", "nsq.%s", "statsd-prefix", "StatsdPrefix"),
    ("statsd_interval", "duration", 60 * SECOND, "statsd-interval", "StatsdInterval"),
    ("statsd_mem_stats", "bool", True, "statsd-mem-stats", "StatsdMemStats"),
    ("statsd_udp_packet_size", "int", 508, "statsd-udp-packet-size", "StatsdUDPPacketSize"),
    ("statsd_exclude_ephemeral", "bool", False, "statsd-exclude-ephemeral",
     "StatsdExcludeEphemeral"),
    ("e2e_processing_latency_window_time", "duration", 10 * MINUTE,
     "e2e-processing-latency-window-time", "E2EProcessingLatencyWindowTime"),
    ("e2e_processing_latency_percentiles", "float_list", [], "e2e-processing-latency-percentile",
     "E2EProcessingLatencyPercentiles"),
    ("tls_cert", "str", "", "tls-cert", "TLSCert"),
    ("tls_key", "str", "", "tls-key", "TLSKey"),
    ("tls_client_auth_policy", "str", "", "tls-client-auth-policy", "TLSClientAuthPolicy"),
    ("tls_root_ca_file", "str", "", "tls-root-ca-file", "TLSRootCAFile"),
    ("tls_required", "tls_required", TLS_NOT_REQUIRED, "tls-required", "TLSRequired"),
    ("tls_min_version", "tls_min_version", TLS_VERSIONS["tls1.0"], "tls-min-version",
     "TLSMinVersion"),
    ("deflate", "bool", True, "deflate", "DeflateEnabled"),
    ("max_deflate_level", "int", 6, "max-deflate-level", "MaxDeflateLevel"),
    ("snappy", "bool", True, "snappy", "SnappyEnabled"),
]


def _host_default(key: str, default: Any, hostname: str) -> Any:
    if key == "id":
        return default_node_id(hostname)
    if key == "broadcast_address":
        return hostname
    return default


OPTION_SPECS: dict[str, tuple[str, Any, str]] = {
    key: (kind, _host_default(key, default, _HOST), flag)
    for key, kind, default, flag, _go in _TABLE
}
"""config key -> (kind, default, flag name). Kinds: int, str, bool, duration (int ns),
str_list, float_list, log_level (name), tls_required (0/1/2), tls_min_version (769..772).
``id`` and ``broadcast_address`` defaults are computed from this host's name."""

GO_FIELDS: dict[str, str] = {key: go for key, _k, _d, _f, go in _TABLE}
"""config key -> Go ``nsqd.Options`` field name (used in Go-format error messages)."""


@dataclass
class Options:
    """Resolved nsqd options. Attribute = config key; durations in int nanoseconds."""

    id: int = OPTION_SPECS["id"][1]
    log_level: str = "info"
    log_prefix: str = "[nsqd] "
    tcp_address: str = "0.0.0.0:4150"
    http_address: str = "0.0.0.0:4151"
    https_address: str = "0.0.0.0:4152"
    broadcast_address: str = _HOST
    broadcast_tcp_port: int = 0
    broadcast_http_port: int = 0
    nsqlookupd_tcp_addresses: list[str] = field(default_factory=list)
    auth_http_addresses: list[str] = field(default_factory=list)
    http_client_connect_timeout: int = 2 * SECOND
    http_client_request_timeout: int = 5 * SECOND
    data_path: str = ""
    mem_queue_size: int = 10000
    max_bytes_per_file: int = 104857600
    sync_every: int = 2500
    sync_timeout: int = 2 * SECOND
    durable: bool = False
    queue_scan_selection_count: int = 20
    queue_scan_worker_pool_max: int = 4
    msg_timeout: int = 60 * SECOND
    max_msg_timeout: int = 15 * MINUTE
    max_msg_size: int = 1048576
    max_body_size: int = 5242880
    max_req_timeout: int = 1 * HOUR
    max_heartbeat_interval: int = 60 * SECOND
    max_rdy_count: int = 2500
    max_output_buffer_size: int = 65536
    max_output_buffer_timeout: int = 30 * SECOND
    min_output_buffer_timeout: int = 25 * MILLISECOND
    output_buffer_timeout: int = 250 * MILLISECOND
    max_channel_consumers: int = 0
    statsd_address: str = ""
    statsd_prefix: str = "nsq.%s"
    statsd_interval: int = 60 * SECOND
    statsd_mem_stats: bool = True
    statsd_udp_packet_size: int = 508
    statsd_exclude_ephemeral: bool = False
    e2e_processing_latency_window_time: int = 10 * MINUTE
    e2e_processing_latency_percentiles: list[float] = field(default_factory=list)
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_auth_policy: str = ""
    tls_root_ca_file: str = ""
    tls_required: int = TLS_NOT_REQUIRED
    tls_min_version: int = 0x0301
    deflate: bool = True
    max_deflate_level: int = 6
    snappy: bool = True

    # internal (not settable) -------------------------------------------
    queue_scan_interval: int = 100 * MILLISECOND
    queue_scan_refresh_interval: int = 5 * SECOND
    queue_scan_dirty_percent: float = 0.25
    client_timeout: int = 60 * SECOND
    hostname: str = _HOST
    """OS hostname (for /info ``hostname`` and statsd prefix substitution)."""
    config_file: str = ""
    """The --config path given ("" when none)."""

    @property
    def log_level_number(self) -> int:
        """1=debug 2=info 3=warn 4=error 5=fatal."""
        return parse_log_level(self.log_level)


def default_options(hostname: str | None = None) -> Options:
    """Built-in defaults for this host (``id``/``broadcast_address`` from its name)."""
    host = hostname if hostname is not None else _HOST
    return Options(id=default_node_id(host), broadcast_address=host, hostname=host)


# ---------------------------------------------------------------------------
# special option types
# ---------------------------------------------------------------------------

def parse_tls_required(s: str) -> int:
    """Go's tlsRequiredOption.Set: ``tcp-https`` -> 1, ParseBool true -> 2, false -> 0."""
    s = s.lower()
    if s == "tcp-https":
        return TLS_REQUIRED_EXCEPT_HTTP
    return TLS_REQUIRED if parse_go_bool(s) else TLS_NOT_REQUIRED


def parse_tls_min_version(s: str) -> Any:
    """Go's tlsMinVersionOption.Set; ``""`` keeps the current value (returns KEEP)."""
    s = s.lower()
    if s == "":
        return KEEP
    v = TLS_VERSIONS.get(s)
    if v is None:
        raise ValueError(f"unknown tlsVersionOption {go_quote(s)}")
    return v


def _coerce_int_like(v: Any) -> int:
    """go-options coerceInt64 (validated special keys arrive as digit strings)."""
    if isinstance(v, bool):
        raise ValueError("invalid int64 value type bool")
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        return parse_go_int(v, 10, 64)
    raise ValueError(f"invalid int64 value type {type(v).__name__}")


# ---------------------------------------------------------------------------
# flag set
# ---------------------------------------------------------------------------

_HELP = {
    "id": "unique part for message IDs, (int) in range [0,1024) (default is hash of hostname)",
    "log_level": "set log verbosity: debug, info, warn, error, or fatal",
    "log_prefix": "log message prefix",
    "tcp_address": "<addr>:<port> to listen on for TCP clients",
    "http_address": "<addr>:<port> to listen on for HTTP clients",
    "https_address": "<addr>:<port> to listen on for HTTPS clients",
    "broadcast_address": "address that will be registered with lookupd (defaults to the OS "
                         "hostname)",
    "broadcast_tcp_port": "TCP port that will be registered with lookupd (defaults to the TCP "
                          "port that this nsqd is listening on)",
    "broadcast_http_port": "HTTP port that will be registered with lookupd (defaults to the "
                           "HTTP port that this nsqd is listening on)",
    "nsqlookupd_tcp_addresses": "lookupd TCP address (may be given multiple times)",
    "auth_http_addresses": "<addr>:<port> or a full url to query auth server (may be given "
                           "multiple times)",
    "http_client_connect_timeout": "timeout for HTTP connect",
    "http_client_request_timeout": "timeout for HTTP request",
    "data_path": "path to store disk-backed messages",
    "mem_queue_size": "number of messages to keep in memory (per topic/channel)",
    "max_bytes_per_file": "number of bytes per diskqueue file before rolling",
    "sync_every": "number of messages per diskqueue fsync",
    "sync_timeout": "duration of time per diskqueue fsync",
    "durable": "[nsqpy] acknowledge PUB/MPUB/DPUB only once fsynced (group commit) and "
               "journal in-flight/deferred messages, so kill -9 loses no acknowledged "
               "message (implies --mem-queue-size=0)",
    "queue_scan_selection_count": "number of channels to check per cycle (every 100ms) for "
                                  "in-flight and deferred timeouts",
    "queue_scan_worker_pool_max": "max concurrency for checking in-flight and deferred message "
                                  "timeouts",
    "msg_timeout": "default duration to wait before auto-requeing a message",
    "max_msg_timeout": "maximum duration before a message will timeout",
    "max_msg_size": "maximum size of a single message in bytes",
    "max_body_size": "maximum size of a single command body",
    "max_req_timeout": "maximum requeuing timeout for a message",
    "max_heartbeat_interval": "maximum client configurable duration of time between client "
                              "heartbeats",
    "max_rdy_count": "maximum RDY count for a client",
    "max_output_buffer_size": "maximum client configurable size (in bytes) for a client output "
                              "buffer",
    "max_output_buffer_timeout": "maximum client configurable duration of time between flushing "
                                 "to a client",
    "min_output_buffer_timeout": "minimum client configurable duration of time between flushing "
                                 "to a client",
    "output_buffer_timeout": "default duration of time between flushing data to clients",
    "max_channel_consumers": "maximum channel consumer connection count per nsqd instance "
                             "(default 0, i.e., unlimited)",
    "statsd_address": "UDP <addr>:<port> of a statsd daemon for pushing stats",
    "statsd_prefix": "prefix used for keys sent to statsd (%s for host replacement)",
    "statsd_interval": "duration between pushing to statsd",
    "statsd_mem_stats": "toggle sending memory and GC stats to statsd",
    "statsd_udp_packet_size": "the size in bytes of statsd UDP packets",
    "statsd_exclude_ephemeral": "Skip ephemeral topics and channels when sending stats to statsd",
    "e2e_processing_latency_window_time": "calculate end to end latency quantiles for this "
                                          "duration of time (ie: 60s would only show quantile "
                                          "calculations from the past 60 seconds)",
    "e2e_processing_latency_percentiles": "message processing time percentiles (as float (0, "
                                          "1.0]) to track (can be specified multiple times or "
                                          "comma separated '1.0,0.99,0.95', default none)",
    "tls_cert": "path to certificate file",
    "tls_key": "path to key file",
    "tls_client_auth_policy": "client certificate auth policy ('require' or 'require-verify')",
    "tls_root_ca_file": "path to certificate authority file",
    "tls_required": "require TLS for client connections (true, false, tcp-https)",
    "tls_min_version": "minimum SSL/TLS version acceptable ('ssl3.0', 'tls1.0', 'tls1.1', "
                       "'tls1.2' or 'tls1.3')",
    "deflate": "enable deflate feature negotiation (client compression)",
    "max_deflate_level": "max deflate compression level a client can negotiate (> values == > "
                         "nsqd CPU usage)",
    "snappy": "enable snappy feature negotiation (client compression)",
}


def nsqd_flagset(hostname: str | None = None) -> FlagSet:
    """nsqd's flag set (Go ``nsqdFlagSet``); flag keys are the config keys."""
    host = hostname if hostname is not None else _HOST
    fs = FlagSet("nsqd")
    fs.bool("version", False, "print version string", configurable=False)
    fs.string("config", "", "path to config file", configurable=False)
    fs.bool("verbose", False, "[deprecated] has no effect, use --log-level", configurable=False)
    fs.bool("worker-id", False, "[deprecated] use --node-id", configurable=False)
    for key, kind, default, flag, go in _TABLE:
        default = _host_default(key, default, host)
        help_text = _HELP[key]
        kw = {"key": key, "field": go}
        if kind == "log_level":
            define_log_level(fs, flag, default, help_text, **kw)
        elif kind == "tls_required":
            fs.custom(flag, default, help_text, parse=parse_tls_required, to_str=str,
                      zero_str="0", is_bool=True, coerce=_coerce_int_like, **kw)
        elif kind == "tls_min_version":
            fs.custom(flag, default, help_text, parse=parse_tls_min_version, to_str=str,
                      zero_str="0", coerce=_coerce_int_like, **kw)
        elif kind in ("str_list", "float_list"):
            fs.define(flag, kind, list(default), help_text, **kw)
        else:
            fs.define(flag, kind, default, help_text, **kw)
    return fs


# ---------------------------------------------------------------------------
# parsing / validation
# ---------------------------------------------------------------------------

def _validate_config(cfg: dict) -> None:
    """nsqd's config.Validate(): special keys checked and translated first."""
    if "tls_required" in cfg:
        v = cfg["tls_required"]
        try:
            cfg["tls_required"] = parse_tls_required(go_fmt_v(v))
        except GoNumError:
            raise OptionsError(f"failed parsing tls_required {go_fmt_v(v)}") from None
    if "tls_min_version" in cfg:
        v = cfg["tls_min_version"]
        try:
            t = parse_tls_min_version(go_fmt_v(v))
        except ValueError:
            raise OptionsError(f"failed parsing tls_min_version {go_fmt_v(v)}") from None
        if t is KEEP:
            del cfg["tls_min_version"]  # "" means "use the default"
        else:
            cfg["tls_min_version"] = t
    check_config_log_level(cfg, OptionsError)


def parse_nsqd_options(argv: list[str], hostname: str | None = None, *,
                       validate: bool = True) -> Options:
    """Parse nsqd's command line (without the program name) into :class:`Options`.

    Order as nsqd's main: flags (FlagExit 2 on errors, 0 for help), ``--version``
    (FlagExit(0, version line, stream="stdout")), ``--config`` loading (ConfigError),
    special config keys (OptionsError ``failed parsing …``), resolution (ConfigError
    ``Resolve failed to coerce …``), then — unless ``validate=False`` —
    :func:`validate_nsqd_options` (OptionsError ``failed to instantiate nsqd - …``).
    """
    host = hostname if hostname is not None else os_hostname()
    fs = nsqd_flagset(host)
    values, explicit, _positional = fs.parse(argv)  # positional args are ignored by nsqd
    if values["version"]:
        raise FlagExit(0, version_string("nsqd") + "\n", stream="stdout")
    cfg: dict = {}
    config_path = values["config"]
    try:
        if config_path:
            cfg = load_config_file(config_path)
        _validate_config(cfg)
        resolved = resolve(fs, values, explicit, cfg)
    except ConfigError as e:
        raise OptionsConfigError(e) from None
    opts = Options(hostname=host, config_file=config_path)
    for f in fields(Options):
        if f.name in OPTION_SPECS:
            setattr(opts, f.name, resolved[f.name])
    if "e2e_processing_latency_percentiles" in explicit:
        # internal/app.FloatArray keeps flag values sorted descending
        opts.e2e_processing_latency_percentiles = sorted(
            opts.e2e_processing_latency_percentiles, reverse=True)
    if validate:
        validate_nsqd_options(opts)
    return opts


def _default_tls_check(opts: Options) -> bool:
    """Without a real TLS builder: TLS is configured iff cert or key is set; a
    missing/unreadable file fails like Go's tls.LoadX509KeyPair."""
    if not opts.tls_cert and not opts.tls_key:
        return False
    for path in (opts.tls_cert, opts.tls_key):
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise ValueError(go_os_error("open", path, e)) from None
    return True


def validate_nsqd_options(opts: Options,
                          build_tls_config: Callable[[Options], Any] | None = None) -> Any:
    """The checks of nsqd.New(), in Go's order (the data-path lock, which Go does
    first, is the daemon's business):

    ``--max-deflate-level must be [1,9]``, ``--node-id must be [0,1024)``,
    tls-client-auth-policy forcing tls_required=2 when it was 0, building the TLS
    config (``build_tls_config(opts)`` returns a config or None when TLS is not
    configured, raising on error -> ``failed to build TLS config - <err>``),
    ``cannot require TLS client connections without TLS key and cert``,
    ``invalid E2E processing latency percentile: <v>``.

    Raises OptionsError(``failed to instantiate nsqd - <reason>``); returns what
    ``build_tls_config`` returned (a bool without a builder).
    """
    def fail(reason: str) -> OptionsError:
        return OptionsError(f"failed to instantiate nsqd - {reason}", reason)

    if opts.max_deflate_level < 1 or opts.max_deflate_level > 9:
        raise fail("--max-deflate-level must be [1,9]")
    if opts.id < 0 or opts.id >= 1024:
        raise fail("--node-id must be [0,1024)")
    if opts.tls_client_auth_policy != "" and opts.tls_required == TLS_NOT_REQUIRED:
        opts.tls_required = TLS_REQUIRED
    builder = build_tls_config or _default_tls_check
    try:
        tls_config = builder(opts)
    except OptionsError:
        raise
    except Exception as e:  # noqa: BLE001 - any builder failure is fatal
        raise fail(f"failed to build TLS config - {e}") from None
    if not tls_config and opts.tls_required != TLS_NOT_REQUIRED:
        raise fail("cannot require TLS client connections without TLS key and cert")
    for v in opts.e2e_processing_latency_percentiles:
        if v <= 0 or v > 1:
            raise fail(f"invalid E2E processing latency percentile: {go_fmt_v(float(v))}")
    return tls_config


# ---------------------------------------------------------------------------
# /config encodings
# ---------------------------------------------------------------------------

def config_value_json(opts: Options, key: str) -> tuple[str, bytes]:
    """Body for ``GET /config/<key>``: ("json", JSON bytes) or ("text", raw bytes)
    for strings. Raises KeyError for an unknown option (-> 400 INVALID_OPTION)."""
    kind = OPTION_SPECS[key][0]
    v = getattr(opts, key)
    if kind == "str":
        return "text", v.encode("utf-8", "surrogateescape")
    if kind == "bool":
        return "json", b"true" if v else b"false"
    if kind in ("int", "duration", "tls_required", "tls_min_version"):
        return "json", str(int(v)).encode()
    if kind == "log_level":
        n = v if isinstance(v, int) else parse_log_level(v)
        return "json", str(n).encode()
    if kind == "str_list":
        return "json", ("[" + ",".join(go_json_string(s) for s in v) + "]").encode()
    if kind == "float_list":
        return "json", ("[" + ",".join(go_json_float(float(f)) for f in v) + "]").encode()
    raise KeyError(key)  # pragma: no cover

