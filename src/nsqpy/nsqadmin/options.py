"""nsqadmin command-line flags, config-file resolution and startup checks
(spec flags.md §0, §3, §4; nsqadmin.md §5).

Attribute names of :class:`Options` are the config-file keys; durations are int
nanoseconds.
"""
from __future__ import annotations

import ipaddress
import os
import posixpath
import socket
from dataclasses import dataclass, field, fields

from ..configfile import ConfigError, go_os_error
from ..daemon_main import define_log_level, parse_flags_and_config
from ..goflags import FlagExit, FlagSet
from ..gostrconv import go_json_string
from ..gotime import SECOND
from ..log import parse_log_level

__all__ = ["Options", "OptionsError", "ConfigError", "FlagExit", "nsqadmin_flagset",
           "parse_nsqadmin_options", "validate_nsqadmin_options", "normalize_base_path",
           "config_value", "OPTION_KINDS", "parse_cidr"]

FATAL_PREFIX = "[nsqadmin] "


class OptionsError(Exception):
    """A fatal option problem; ``str(e)`` is the text logged after ``FATAL: `` with the
    fixed ``[nsqadmin] `` prefix. Exit code 1."""


@dataclass
class Options:
    log_level: str = "info"
    log_prefix: str = "[nsqadmin] "
    http_address: str = "0.0.0.0:4171"
    base_path: str = "/"
    dev_static_dir: str = ""
    graphite_url: str = ""
    proxy_graphite: bool = False
    statsd_prefix: str = "nsq.%s"
    statsd_counter_format: str = "stats.counters.%s.count"
    statsd_gauge_format: str = "stats.gauges.%s"
    statsd_interval: int = 60 * SECOND
    nsqlookupd_http_addresses: list[str] = field(default_factory=list)
    nsqd_http_addresses: list[str] = field(default_factory=list)
    http_client_connect_timeout: int = 2 * SECOND
    http_client_request_timeout: int = 5 * SECOND
    http_client_tls_insecure_skip_verify: bool = False
    http_client_tls_root_ca_file: str = ""
    http_client_tls_cert: str = ""
    http_client_tls_key: str = ""
    allow_config_from_cidr: str = "127.0.0.1/8"
    notification_http_endpoint: str = ""
    acl_http_header: str = "X-Forwarded-User"
    admin_users: list[str] = field(default_factory=list)
    # not settable ---------------------------------------------------------
    config_file: str = ""


OPTION_KINDS: dict[str, str] = {
    "log_level": "log_level", "log_prefix": "str", "http_address": "str", "base_path": "str",
    "dev_static_dir": "str", "graphite_url": "str", "proxy_graphite": "bool",
    "statsd_prefix": "str", "statsd_counter_format": "str", "statsd_gauge_format": "str",
    "statsd_interval": "duration", "nsqlookupd_http_addresses": "str_list",
    "nsqd_http_addresses": "str_list", "http_client_connect_timeout": "duration",
    "http_client_request_timeout": "duration", "http_client_tls_insecure_skip_verify": "bool",
    "http_client_tls_root_ca_file": "str", "http_client_tls_cert": "str",
    "http_client_tls_key": "str", "allow_config_from_cidr": "str",
    "notification_http_endpoint": "str", "acl_http_header": "str", "admin_users": "str_list",
}
"""config key -> kind, for ``GET /config/<key>``."""


def nsqadmin_flagset() -> FlagSet:
    """nsqadmin's flag set (Go ``nsqadminFlagSet``), in upstream's definition order."""
    fs = FlagSet("nsqadmin")
    fs.string("config", "", "path to config file", configurable=False)
    fs.bool("version", False, "print version string", configurable=False)
    define_log_level(fs)
    fs.string("log-prefix", "[nsqadmin] ", "log message prefix", field="LogPrefix")
    fs.bool("verbose", False, "[deprecated] has no effect, use --log-level", configurable=False)
    fs.string("http-address", "0.0.0.0:4171", "<addr>:<port> to listen on for HTTP clients",
              field="HTTPAddress")
    fs.string("base-path", "/", "URL base path", field="BasePath")
    fs.string("dev-static-dir", "", "(development use only)", field="DevStaticDir")
    fs.string("graphite-url", "", "graphite HTTP address", field="GraphiteURL")
    fs.bool("proxy-graphite", False, "proxy HTTP requests to graphite", field="ProxyGraphite")
    fs.string("statsd-counter-format", "stats.counters.%s.count",
              "The counter stats key formatting applied by the implementation of statsd. "
              "If no formatting is desired, set this to an empty string.",
              field="StatsdCounterFormat")
    fs.string("statsd-gauge-format", "stats.gauges.%s",
              "The gauge stats key formatting applied by the implementation of statsd. "
              "If no formatting is desired, set this to an empty string.",
              field="StatsdGaugeFormat")
    fs.string("statsd-prefix", "nsq.%s",
              "prefix used for keys sent to statsd (%s for host replacement, must match nsqd)",
              field="StatsdPrefix")
    fs.duration("statsd-interval", 60 * SECOND,
                "time interval nsqd is configured to push to statsd (must match nsqd)",
                field="StatsdInterval")
    fs.string("notification-http-endpoint", "",
              "HTTP endpoint (fully qualified) to which POST notifications of admin actions "
              "will be sent", field="NotificationHTTPEndpoint")
    fs.duration("http-client-connect-timeout", 2 * SECOND, "timeout for HTTP connect",
                field="HTTPClientConnectTimeout")
    fs.duration("http-client-request-timeout", 5 * SECOND, "timeout for HTTP request",
                field="HTTPClientRequestTimeout")
    fs.bool("http-client-tls-insecure-skip-verify", False,
            "configure the HTTP client to skip verification of TLS certificates",
            field="HTTPClientTLSInsecureSkipVerify")
    fs.string("http-client-tls-root-ca-file", "", "path to CA file for the HTTP client",
              field="HTTPClientTLSRootCAFile")
    fs.string("http-client-tls-cert", "", "path to certificate file for the HTTP client",
              field="HTTPClientTLSCert")
    fs.string("http-client-tls-key", "", "path to key file for the HTTP client",
              field="HTTPClientTLSKey")
    fs.string("allow-config-from-cidr", "127.0.0.1/8",
              "A CIDR from which to allow HTTP requests to the /config endpoint",
              field="AllowConfigFromCIDR")
    fs.string("acl-http-header", "X-Forwarded-User",
              "HTTP header to check for authenticated admin users", field="ACLHTTPHeader")
    fs.str_list("lookupd-http-address", "lookupd HTTP address (may be given multiple times)",
                key="nsqlookupd_http_addresses", field="NSQLookupdHTTPAddresses")
    fs.str_list("nsqd-http-address", "nsqd HTTP address (may be given multiple times)",
                key="nsqd_http_addresses", field="NSQDHTTPAddresses")
    fs.str_list("admin-user",
                "admin user (may be given multiple times; if specified, only these users will "
                "be able to perform privileged actions; acl-http-header is used to determine "
                "the authenticated user)", key="admin_users", field="AdminUsers")
    return fs


def parse_nsqadmin_options(argv: list[str]) -> Options:
    """Parse nsqadmin's command line (without the program name).

    Order as upstream's main: flags (FlagExit 2 on errors, 0 for help), ``--version``
    (FlagExit(0, version line, stream="stdout")), ``--config`` loading (ConfigError
    ``failed to load config file …``), the config's ``log_level`` check (OptionsError
    ``failed parsing log_level <v>``), then resolution (ConfigError ``Resolve failed to
    coerce …``). Positional arguments are ignored. Startup checks are separate
    (:func:`validate_nsqadmin_options`).
    """
    fs = nsqadmin_flagset()
    resolved, config_path = parse_flags_and_config(fs, argv, "nsqadmin", OptionsError)
    opts = Options(config_file=config_path)
    for f in fields(Options):
        if f.name in OPTION_KINDS:
            setattr(opts, f.name, resolved[f.name])
    return opts


# ---------------------------------------------------------------------------
# startup checks (nsqadmin.New)
# ---------------------------------------------------------------------------

def normalize_base_path(p: str) -> str:
    """Leading ``/`` added, then Go's path.Clean (so no trailing ``/``); ``""`` -> ``/``."""
    if not p:
        return "/"
    if p[0] != "/":
        p = "/" + p
    cleaned = posixpath.normpath(p)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _split_host_port(addr: str) -> tuple[str, str]:
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0:
            raise ValueError(f"address {addr}: missing ']' in address")
        rest = addr[end + 1:]
        if not rest.startswith(":"):
            raise ValueError(f"address {addr}: missing port in address")
        return addr[1:end], rest[1:]
    i = addr.rfind(":")
    if i < 0:
        raise ValueError(f"address {addr}: missing port in address")
    host, port = addr[:i], addr[i + 1:]
    if ":" in host:
        raise ValueError(f"address {addr}: too many colons in address")
    return host, port


def resolve_tcp_addr(addr: str) -> None:
    """Go's net.ResolveTCPAddr("tcp", addr); raises ValueError with Go-like text."""
    host, port = _split_host_port(addr)
    if port:
        if port.isdigit():
            if int(port) > 65535:
                raise ValueError(f"address {port}: invalid port")
        else:
            try:
                socket.getservbyname(port, "tcp")
            except OSError:
                raise ValueError(f"lookup tcp/{port}: unknown port") from None
    if host:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            return
        except ValueError:
            pass
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror:
            raise ValueError(f"lookup {host}: no such host") from None


def parse_cidr(s: str):
    """Go's net.ParseCIDR (host bits allowed); ValueError ``invalid CIDR address: <s>``."""
    if "/" not in s:
        raise ValueError(f"invalid CIDR address: {s}")
    addr, _, bits = s.partition("/")
    if not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        raise ValueError(f"invalid CIDR address: {s}")
    try:
        return ipaddress.ip_network(f"{addr}/{int(bits)}", strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR address: {s}") from None


def _check_url(u: str) -> None:
    """The failures Go's url.Parse reports for the forms people actually mistype."""
    for ch in u:
        if ord(ch) < 0x20 or ord(ch) == 0x7f:
            raise ValueError(f'parse {go_json_string(u)}: net/url: invalid control character '
                             f'in URL')
    if u.startswith(":"):
        raise ValueError(f'parse {go_json_string(u)}: missing protocol scheme')
    rest = u.split("://", 1)
    if len(rest) == 2:
        authority = rest[1].split("/", 1)[0].rsplit("@", 1)[-1]
        if authority.startswith("[") and "]" not in authority:
            raise ValueError(f"parse {go_json_string(u)}: missing ']' in host")
        if not authority.startswith("["):
            _, colon, port = authority.partition(":")
            if colon and port and not port.isdigit():
                raise ValueError(f'parse {go_json_string(u)}: invalid port '
                                 f'{go_json_string(":" + port)} after host')


def validate_nsqadmin_options(opts: Options) -> None:
    """The checks of nsqadmin.New(), in Go's order (listening is the daemon's business).
    Raises OptionsError with the inner error text; normalises ``base_path``."""
    if not opts.nsqd_http_addresses and not opts.nsqlookupd_http_addresses:
        raise OptionsError("--nsqd-http-address or --lookupd-http-address required")
    if opts.nsqd_http_addresses and opts.nsqlookupd_http_addresses:
        raise OptionsError("use --nsqd-http-address or --lookupd-http-address not both")
    if opts.http_client_tls_cert and not opts.http_client_tls_key:
        raise OptionsError("--http-client-tls-key must be specified with --http-client-tls-cert")
    if opts.http_client_tls_key and not opts.http_client_tls_cert:
        raise OptionsError("--http-client-tls-cert must be specified with --http-client-tls-key")
    if opts.http_client_tls_cert and opts.http_client_tls_key:
        for path in (opts.http_client_tls_cert, opts.http_client_tls_key):
            try:
                with open(path, "rb"):
                    pass
            except OSError as e:
                raise OptionsError(
                    f"failed to LoadX509KeyPair {opts.http_client_tls_cert}, "
                    f"{opts.http_client_tls_key} - {go_os_error('open', path, e)}") from None
        try:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_cert_chain(opts.http_client_tls_cert, opts.http_client_tls_key)
        except (OSError, ValueError) as e:
            raise OptionsError(
                f"failed to LoadX509KeyPair {opts.http_client_tls_cert}, "
                f"{opts.http_client_tls_key} - tls: failed to find any PEM data "
                f"({e})") from None
    if opts.http_client_tls_root_ca_file:
        path = opts.http_client_tls_root_ca_file
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise OptionsError(f"failed to read TLS root CA file {path} - "
                               f"{go_os_error('open', path, e)}") from None
        if b"-----BEGIN CERTIFICATE-----" not in data:
            raise OptionsError(f"failed to AppendCertsFromPEM {path}")
    for address in opts.nsqlookupd_http_addresses:
        try:
            resolve_tcp_addr(address)
        except ValueError as e:
            raise OptionsError(
                f"failed to resolve --lookupd-http-address ({address}) - {e}") from None
    for address in opts.nsqd_http_addresses:
        try:
            resolve_tcp_addr(address)
        except ValueError as e:
            raise OptionsError(
                f"failed to resolve --nsqd-http-address ({address}) - {e}") from None
    if opts.proxy_graphite:
        try:
            _check_url(opts.graphite_url)
        except ValueError as e:
            raise OptionsError(
                f"failed to parse --graphite-url ({opts.graphite_url}) - {e}") from None
    if opts.allow_config_from_cidr:
        try:
            parse_cidr(opts.allow_config_from_cidr)
        except ValueError as e:
            raise OptionsError(f"failed to parse --allow-config-from-cidr "
                               f"({opts.allow_config_from_cidr}) - {e}") from None
    opts.base_path = normalize_base_path(opts.base_path)


# ---------------------------------------------------------------------------
# /config encodings
# ---------------------------------------------------------------------------

def config_value(opts: Options, key: str) -> tuple[str, bytes]:
    """Body for ``GET /config/<key>``: ("json", JSON bytes) or ("text", raw bytes) for
    strings. Raises KeyError for an unknown option (-> 400 INVALID_OPTION)."""
    kind = OPTION_KINDS[key]
    v = getattr(opts, key)
    if kind == "str":
        return "text", v.encode("utf-8", "surrogateescape")
    if kind == "bool":
        return "json", b"true" if v else b"false"
    if kind == "duration":
        return "json", str(int(v)).encode()
    if kind == "log_level":
        return "json", str(parse_log_level(v)).encode()
    if kind == "str_list":
        return "json", ("[" + ",".join(go_json_string(s) for s in v) + "]").encode()
    raise KeyError(key)  # pragma: no cover


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default
