"""nsqd flags, config file resolution, validation and /config encodings
(flags.md §1, §4; nsqd-http.md "/config")."""
import hashlib
import io
import re
import zlib

import pytest

from nsqpy import version_string
from nsqpy.configfile import ConfigError, load_config_file
from nsqpy.goflags import FlagExit
from nsqpy.log import Logger
from nsqpy.nsqd.options import (GO_FIELDS, OPTION_SPECS, Options, OptionsError,
                                config_value_json, default_node_id, nsqd_flagset,
                                parse_nsqd_options, validate_nsqd_options)

HOST = "testhost"
S = 1_000_000_000
MS = 1_000_000


def opts(*argv, **kw):
    return parse_nsqd_options(list(argv), hostname=HOST, **kw)


@pytest.fixture
def cfg(tmp_path):
    def write(text):
        p = tmp_path / "nsqd.cfg"
        p.write_text(text)
        return str(p)
    return write


# -- defaults -------------------------------------------------------------

# flags.md §1 table: flag -> (config key, default)
SPEC_TABLE = {
    "log-level": ("log_level", "info"),
    "log-prefix": ("log_prefix", "[nsqd] "),
    "node-id": ("id", None),
    "tcp-address": ("tcp_address", "0.0.0.0:4150"),
    "http-address": ("http_address", "0.0.0.0:4151"),
    "https-address": ("https_address", "0.0.0.0:4152"),
    "broadcast-address": ("broadcast_address", HOST),
    "broadcast-tcp-port": ("broadcast_tcp_port", 0),
    "broadcast-http-port": ("broadcast_http_port", 0),
    "lookupd-tcp-address": ("nsqlookupd_tcp_addresses", []),
    "auth-http-address": ("auth_http_addresses", []),
    "http-client-connect-timeout": ("http_client_connect_timeout", 2 * S),
    "http-client-request-timeout": ("http_client_request_timeout", 5 * S),
    "data-path": ("data_path", ""),
    "mem-queue-size": ("mem_queue_size", 10000),
    "max-bytes-per-file": ("max_bytes_per_file", 104857600),
    "sync-every": ("sync_every", 2500),
    "sync-timeout": ("sync_timeout", 2 * S),
    "durable": ("durable", False),
    "queue-scan-worker-pool-max": ("queue_scan_worker_pool_max", 4),
    "queue-scan-selection-count": ("queue_scan_selection_count", 20),
    "msg-timeout": ("msg_timeout", 60 * S),
    "max-msg-timeout": ("max_msg_timeout", 15 * 60 * S),
    "max-msg-size": ("max_msg_size", 1048576),
    "max-req-timeout": ("max_req_timeout", 3600 * S),
    "max-body-size": ("max_body_size", 5242880),
    "max-heartbeat-interval": ("max_heartbeat_interval", 60 * S),
    "max-rdy-count": ("max_rdy_count", 2500),
    "max-output-buffer-size": ("max_output_buffer_size", 65536),
    "max-output-buffer-timeout": ("max_output_buffer_timeout", 30 * S),
    "min-output-buffer-timeout": ("min_output_buffer_timeout", 25 * MS),
    "output-buffer-timeout": ("output_buffer_timeout", 250 * MS),
    "max-channel-consumers": ("max_channel_consumers", 0),
    "statsd-address": ("statsd_address", ""),
    "statsd-interval": ("statsd_interval", 60 * S),
    "statsd-mem-stats": ("statsd_mem_stats", True),
    "statsd-prefix": ("statsd_prefix", "nsq.%s"),
    "statsd-udp-packet-size": ("statsd_udp_packet_size", 508),
    "statsd-exclude-ephemeral": ("statsd_exclude_ephemeral", False),
    "e2e-processing-latency-percentile": ("e2e_processing_latency_percentiles", []),
    "e2e-processing-latency-window-time": ("e2e_processing_latency_window_time", 600 * S),
    "tls-cert": ("tls_cert", ""),
    "tls-key": ("tls_key", ""),
    "tls-client-auth-policy": ("tls_client_auth_policy", ""),
    "tls-root-ca-file": ("tls_root_ca_file", ""),
    "tls-required": ("tls_required", 0),
    "tls-min-version": ("tls_min_version", 769),
    "deflate": ("deflate", True),
    "max-deflate-level": ("max_deflate_level", 6),
    "snappy": ("snappy", True),
}


def test_all_defaults_match_spec_table():
    o = opts()
    for flag, (key, default) in SPEC_TABLE.items():
        if default is None:
            continue
        assert getattr(o, key) == default, key


def test_option_specs_cover_exactly_the_spec_table():
    assert set(OPTION_SPECS) == {key for key, _ in SPEC_TABLE.values()}
    for flag, (key, _) in SPEC_TABLE.items():
        assert OPTION_SPECS[key][2] == flag
    assert set(GO_FIELDS) == set(OPTION_SPECS)


def test_flag_keys_are_config_names():
    fs = nsqd_flagset(HOST)
    for flag, (key, _) in SPEC_TABLE.items():
        assert fs.lookup(flag).key == key
    for name in ("version", "config", "verbose", "worker-id"):
        assert fs.lookup(name).configurable is False


def test_node_id_default_is_crc32_of_md5_hostname():
    assert default_node_id("vm") == 617  # spec example "ID: 617" on host "vm"
    expected = zlib.crc32(hashlib.md5(HOST.encode()).digest()) % 1024
    assert opts().id == expected


def test_broadcast_address_defaults_to_hostname():
    assert opts().broadcast_address == HOST
    assert opts().hostname == HOST


def test_internal_constants():
    o = opts()
    assert (o.queue_scan_interval, o.queue_scan_refresh_interval, o.queue_scan_dirty_percent,
            o.client_timeout) == (100 * MS, 5 * S, 0.25, 60 * S)


# -- flags ------------------------------------------------------------------

def test_flags_set_values():
    o = opts("--tcp-address=127.0.0.1:0", "-msg-timeout", "30s", "--mem-queue-size=0",
             "--lookupd-tcp-address=a:4160", "--lookupd-tcp-address", "b:4160",
             "--auth-http-address=http://x/auth", "--deflate=false", "--node-id=5",
             "--max-deflate-level=9", "--data-path=/tmp", "--statsd-prefix=p.%s")
    assert o.tcp_address == "127.0.0.1:0"
    assert o.msg_timeout == 30 * S
    assert o.mem_queue_size == 0
    assert o.nsqlookupd_tcp_addresses == ["a:4160", "b:4160"]
    assert o.auth_http_addresses == ["http://x/auth"]
    assert o.deflate is False
    assert o.id == 5
    assert o.max_deflate_level == 9
    assert o.data_path == "/tmp"
    assert o.statsd_prefix == "p.%s"


def test_e2e_percentiles_from_flags_sorted_descending():
    o = opts("--e2e-processing-latency-percentile=0.5,0.99",
             "--e2e-processing-latency-percentile", "0.75")
    assert o.e2e_processing_latency_percentiles == [0.99, 0.75, 0.5]


def test_log_level_flag_case_insensitive_kept_lowercase():
    assert opts("--log-level=WARN").log_level == "warn"
    assert opts("--log-level", "Debug").log_level == "debug"
    assert opts("--log-level=warn").log_level_number == 3


def test_log_level_flag_invalid():
    with pytest.raises(FlagExit) as ei:
        opts("--log-level=loud")
    assert ei.value.code == 2
    assert ei.value.message.startswith(
        "invalid value \"loud\" for flag -log-level: invalid log level 'loud' "
        "(debug, info, warn, error, fatal)\nUsage of nsqd:\n")


@pytest.mark.parametrize("argv,val", [
    (["--tls-required"], 2), (["--tls-required=true"], 2), (["--tls-required=false"], 0),
    (["--tls-required=tcp-https"], 1), (["--tls-required=TCP-HTTPS"], 1),
    (["--tls-required=1"], 2),
])
def test_tls_required_flag_forms(argv, val):
    assert opts(*argv, validate=False).tls_required == val


def test_tls_required_flag_invalid():
    with pytest.raises(FlagExit) as ei:
        opts("--tls-required=maybe")
    assert ei.value.code == 2
    assert ei.value.message.startswith(
        'invalid boolean value "maybe" for -tls-required: strconv.ParseBool: parsing "maybe": '
        'invalid syntax\n')


@pytest.mark.parametrize("name,num", [("tls1.0", 769), ("tls1.1", 770), ("TLS1.2", 771),
                                      ("tls1.3", 772)])
def test_tls_min_version_flag(name, num):
    assert opts(f"--tls-min-version={name}").tls_min_version == num


def test_tls_min_version_ssl3_rejected():
    with pytest.raises(FlagExit) as ei:
        opts("--tls-min-version=ssl3.0")
    assert ei.value.code == 2
    assert ei.value.message.startswith(
        'invalid value "ssl3.0" for flag -tls-min-version: unknown tlsVersionOption "ssl3.0"\n')


def test_tls_min_version_empty_flag_keeps_value():
    assert opts("--tls-min-version=").tls_min_version == 769


def test_deprecated_flags_accepted_without_effect():
    assert opts("--verbose", "--worker-id") == opts()


def test_positional_arguments_ignored():
    o = opts("--mem-queue-size=3", "extra", "--mem-queue-size=4")
    assert o.mem_queue_size == 3


def test_duration_flag_without_unit_is_invalid():
    with pytest.raises(FlagExit) as ei:
        opts("--msg-timeout=60")
    assert ei.value.code == 2
    assert ei.value.message.startswith('invalid value "60" for flag -msg-timeout: parse error\n')


def test_unknown_flag_exit_2():
    with pytest.raises(FlagExit) as ei:
        opts("--bogus")
    assert ei.value.code == 2
    assert ei.value.message.startswith("flag provided but not defined: -bogus\nUsage of nsqd:\n")


def test_help_exit_0_usage():
    with pytest.raises(FlagExit) as ei:
        opts("--help")
    assert ei.value.code == 0 and ei.value.stream == "stderr"
    u = ei.value.message
    assert u.startswith("Usage of nsqd:\n  -auth-http-address value\n")
    assert "  -log-level value\n    \tset log verbosity: debug, info, warn, error, or fatal " \
           "(default INFO)\n" in u
    assert "  -msg-timeout duration\n    \tdefault duration to wait before auto-requeing a " \
           "message (default 1m0s)\n" in u
    assert "  -tcp-address string\n    \t<addr>:<port> to listen on for TCP clients " \
           "(default \"0.0.0.0:4150\")\n" in u
    assert "(default 769)" in u
    names = re.findall(r"^  -(\S+)", u, re.M)
    assert names == sorted(names) and len(names) == len(SPEC_TABLE) + 4


def test_version_to_stdout_exit_0_before_config(tmp_path):
    with pytest.raises(FlagExit) as ei:
        opts("--version", f"--config={tmp_path}/missing.toml")
    assert ei.value.code == 0
    assert ei.value.stream == "stdout"
    assert ei.value.message == version_string("nsqd") + "\n"
    assert ei.value.to_stdout
    assert re.match(r"^nsqd v1\.3\.0 \(built w/", ei.value.message)


def test_version_false_is_not_version():
    assert opts("--version=false").tcp_address == "0.0.0.0:4150"


# -- config file ---------------------------------------------------------------

def test_config_file_values_used(cfg):
    path = cfg('''
id = 42
log_level = "debug"
tcp_address = "127.0.0.1:14150"
nsqlookupd_tcp_addresses = ["l1:4160", "l2:4160"]
auth_http_addresses = ["a1:4181"]
mem_queue_size = 5
deflate = false
statsd_prefix = "x.%s"
e2e_processing_latency_percentiles = [0.5, 0.99]
''')
    o = opts(f"--config={path}")
    assert o.id == 42
    assert o.log_level == "debug"
    assert o.tcp_address == "127.0.0.1:14150"
    assert o.nsqlookupd_tcp_addresses == ["l1:4160", "l2:4160"]
    assert o.auth_http_addresses == ["a1:4181"]
    assert o.mem_queue_size == 5
    assert o.deflate is False
    assert o.statsd_prefix == "x.%s"
    assert o.e2e_processing_latency_percentiles == [0.5, 0.99]  # config order kept
    assert o.config_file == path


def test_flag_beats_config_beats_default(cfg):
    path = cfg('mem_queue_size = 5\nmax_rdy_count = 7\nnsqlookupd_tcp_addresses = ["cfg:1"]\n')
    o = opts(f"--config={path}", "--mem-queue-size=9", "--lookupd-tcp-address=flag:1")
    assert o.mem_queue_size == 9
    assert o.max_rdy_count == 7
    assert o.sync_every == 2500
    assert o.nsqlookupd_tcp_addresses == ["flag:1"]


def test_flag_given_at_default_value_still_wins(cfg):
    path = cfg("mem_queue_size = 5\n")
    assert opts(f"--config={path}", "--mem-queue-size=10000").mem_queue_size == 10000


def test_config_durations_strings_and_integer_milliseconds(cfg):
    path = cfg('msg_timeout = 30000\nsync_timeout = "500ms"\nmax_req_timeout = "1h30m"\n')
    o = opts(f"--config={path}")
    assert o.msg_timeout == 30 * S
    assert o.sync_timeout == 500 * MS
    assert o.max_req_timeout == 90 * 60 * S


def test_config_string_lists_as_comma_string(cfg):
    path = cfg('nsqlookupd_tcp_addresses = "a:1,b:2"\n')
    assert opts(f"--config={path}").nsqlookupd_tcp_addresses == ["a:1", "b:2"]


def test_config_float_list_as_comma_string(cfg):
    path = cfg('e2e_processing_latency_percentiles = "0.5, 0.99,1.0"\n')
    assert opts(f"--config={path}").e2e_processing_latency_percentiles == [0.5, 0.99, 1.0]


def test_config_ints_and_bools_from_strings(cfg):
    path = cfg('mem_queue_size = "77"\nsnappy = "false"\n')
    o = opts(f"--config={path}")
    assert o.mem_queue_size == 77 and o.snappy is False


def test_config_unknown_keys_ignored(cfg):
    path = cfg('no_such_option = 1\nversion = true\nconfig = "x"\n[table]\nx = 1\n')
    o = opts(f"--config={path}")
    o.config_file = ""
    assert o == opts()


@pytest.mark.parametrize("text,val", [
    ("tls_required = true", 2), ("tls_required = false", 0), ('tls_required = "tcp-https"', 1),
    ('tls_required = "true"', 2),
])
def test_config_tls_required(cfg, text, val):
    assert opts(f"--config={cfg(text)}", validate=False).tls_required == val


@pytest.mark.parametrize("text,val", [
    ('tls_min_version = "tls1.2"', 771), ('tls_min_version = "TLS1.3"', 772),
    ('tls_min_version = ""', 769),
])
def test_config_tls_min_version(cfg, text, val):
    assert opts(f"--config={cfg(text)}").tls_min_version == val


@pytest.mark.parametrize("text,msg", [
    ('tls_required = "maybe"', "failed parsing tls_required maybe"),
    ('tls_min_version = "ssl3.0"', "failed parsing tls_min_version ssl3.0"),
    ("tls_min_version = 771", "failed parsing tls_min_version 771"),
    ('log_level = "loud"', "failed parsing log_level loud"),
    ('log_level = "warning"', "failed parsing log_level warning"),
])
def test_config_special_keys_validated(cfg, text, msg):
    with pytest.raises(OptionsError) as ei:
        opts(f"--config={cfg(text)}")
    assert str(ei.value) == msg


def test_config_log_level_case_insensitive(cfg):
    path = cfg('log_level = "ERROR"')
    assert opts(f"--config={path}").log_level == "error"


@pytest.mark.parametrize("text,msg", [
    ('msg_timeout = "abc"',
     'Resolve failed to coerce value abc (1m0s) for field MsgTimeout - '
     'time: invalid duration "abc"'),
    ('msg_timeout = "60"',
     'Resolve failed to coerce value 60 (1m0s) for field MsgTimeout - '
     'time: missing unit in duration "60"'),
    ('mem_queue_size = "x"',
     'Resolve failed to coerce value x (10000) for field MemQueueSize - '
     'strconv.ParseInt: parsing "x": invalid syntax'),
    ("mem_queue_size = 1.5",
     "Resolve failed to coerce value 1.5 (10000) for field MemQueueSize - "
     "invalid int64 value type float64"),
    ('deflate = "yes"',
     'Resolve failed to coerce value yes (true) for field DeflateEnabled - '
     'strconv.ParseBool: parsing "yes": invalid syntax'),
    ('e2e_processing_latency_percentiles = "0.5,x"',
     'Resolve failed to coerce value 0.5,x ([]) for field E2EProcessingLatencyPercentiles - '
     'strconv.ParseFloat: parsing "x": invalid syntax'),
    ("msg_timeout = 1.5",
     "Resolve failed to coerce value 1.5 (1m0s) for field MsgTimeout - "
     "invalid time.Duration value type float64"),
])
def test_config_uncoercible_value_fatal(cfg, text, msg):
    with pytest.raises(ConfigError) as ei:
        opts(f"--config={cfg(text)}")
    assert str(ei.value) == msg
    assert ei.value.std_log is True


def test_config_string_from_non_string_go_sprintf(cfg):
    assert opts(f"--config={cfg('statsd_prefix = 5')}").statsd_prefix == "%!s(int64=5)"


def test_config_int_for_bool_is_go_quirk(cfg):
    # go-options coerceBool: an integer means `v == 0`
    assert opts(f"--config={cfg('snappy = 1')}").snappy is False
    assert opts(f"--config={cfg('snappy = 0')}").snappy is True


def test_config_file_missing(tmp_path):
    p = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as ei:
        opts(f"--config={p}")
    assert str(ei.value) == f"failed to load config file {p} - open {p}: no such file or directory"
    assert ei.value.std_log is False


def test_config_errors_are_also_options_errors(tmp_path, cfg):
    with pytest.raises(OptionsError) as ei:
        opts(f"--config={tmp_path}/nope.toml")
    assert isinstance(ei.value, ConfigError) and not ei.value.std_log
    assert str(ei.value).startswith("failed to load config file ")
    with pytest.raises(OptionsError) as ei:
        opts(f"--config={cfg('msg_timeout = true')}")
    assert ei.value.std_log
    s = io.StringIO()
    ei.value.emit(Logger("[nsqd] ", stream=s))
    assert s.getvalue().endswith(
        " ERROR: Resolve failed to coerce value true (1m0s) for field MsgTimeout - "
        "invalid time.Duration value type bool\n")


def test_config_file_bad_toml(cfg):
    path = cfg("this is = = not toml\n")
    with pytest.raises(ConfigError) as ei:
        load_config_file(path)
    assert str(ei.value).startswith(f"failed to load config file {path} - ")


def test_config_error_emit_formats():
    s = io.StringIO()
    ConfigError("Resolve failed to coerce value x", std_log=True).emit(Logger("[nsqd] ", stream=s))
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ERROR: Resolve failed to coerce value x\n",
                        s.getvalue())
    s = io.StringIO()
    ConfigError("failed to load config file x - y").emit(Logger("[nsqd] ", stream=s))
    assert re.fullmatch(r"\[nsqd\] \S+ \S+ FATAL: failed to load config file x - y\n", s.getvalue())


def test_config_example_keys_all_accepted(cfg):
    """The reference contrib/nsqd.cfg.example keys (flags.md §4)."""
    path = cfg('''
log_level = "info"
id = 0
tcp_address = "0.0.0.0:4150"
http_address = "0.0.0.0:4151"
https_address = "0.0.0.0:4152"
broadcast_address = "b"
nsqlookupd_tcp_addresses = ["127.0.0.1:4160"]
http_client_connect_timeout = "2s"
http_client_request_timeout = "5s"
data_path = ""
mem_queue_size = 10000
max_bytes_per_file = 104857600
sync_every = 2500
sync_timeout = "2s"
msg_timeout = "60s"
max_msg_timeout = "15m"
max_msg_size = 1024768
max_req_timeout = "1h"
max_body_size = 5123000
max_heartbeat_interval = "60s"
max_rdy_count = 2500
max_output_buffer_size = 65536
max_output_buffer_timeout = "1s"
statsd_address = ""
statsd_prefix = "nsq.%s"
statsd_interval = "60s"
statsd_mem_stats = true
statsd_udp_packet_size = 508
e2e_processing_latency_percentiles = [1.0, 0.99, 0.95]
e2e_processing_latency_window_time = "10m"
tls_cert = ""
tls_key = ""
tls_client_auth_policy = ""
tls_root_ca_file = ""
tls_required = false
tls_min_version = ""
deflate = true
max_deflate_level = 6
snappy = true
''')
    o = opts(f"--config={path}")
    assert o.id == 0 and o.broadcast_address == "b" and o.max_msg_size == 1024768
    assert o.max_output_buffer_timeout == S
    assert o.e2e_processing_latency_percentiles == [1.0, 0.99, 0.95]


# -- validation ------------------------------------------------------------------

@pytest.mark.parametrize("argv,reason", [
    (["--node-id=1024"], "--node-id must be [0,1024)"),
    (["--node-id=-1"], "--node-id must be [0,1024)"),
    (["--max-deflate-level=0"], "--max-deflate-level must be [1,9]"),
    (["--max-deflate-level=10"], "--max-deflate-level must be [1,9]"),
    (["--e2e-processing-latency-percentile=1.5"],
     "invalid E2E processing latency percentile: 1.5"),
    (["--e2e-processing-latency-percentile=0"], "invalid E2E processing latency percentile: 0"),
    (["--tls-required"], "cannot require TLS client connections without TLS key and cert"),
    (["--tls-required=tcp-https"],
     "cannot require TLS client connections without TLS key and cert"),
    (["--tls-client-auth-policy=require"],
     "cannot require TLS client connections without TLS key and cert"),
])
def test_fatal_validation(argv, reason):
    with pytest.raises(OptionsError) as ei:
        opts(*argv)
    assert ei.value.reason == reason
    assert str(ei.value) == f"failed to instantiate nsqd - {reason}"


def test_validation_order_deflate_before_node_id():
    with pytest.raises(OptionsError) as ei:
        opts("--node-id=2000", "--max-deflate-level=0")
    assert ei.value.reason == "--max-deflate-level must be [1,9]"


def test_valid_boundaries():
    o = opts("--node-id=0", "--max-deflate-level=1", "--e2e-processing-latency-percentile=1.0")
    assert o.id == 0
    assert opts("--node-id=1023", "--max-deflate-level=9").id == 1023


def test_validate_false_skips_checks():
    assert opts("--node-id=5000", validate=False).id == 5000


def test_tls_client_auth_policy_forces_required(tmp_path):
    cert = tmp_path / "c.pem"
    key = tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    o = opts(f"--tls-cert={cert}", f"--tls-key={key}", "--tls-client-auth-policy=require")
    assert o.tls_required == 2
    o = opts(f"--tls-cert={cert}", f"--tls-key={key}", "--tls-client-auth-policy=require",
             "--tls-required=tcp-https")
    assert o.tls_required == 1


def test_tls_missing_file_fails_build():
    with pytest.raises(OptionsError) as ei:
        opts("--tls-cert=/nonexistent/c.pem", "--tls-key=/nonexistent/k.pem")
    assert str(ei.value) == ("failed to instantiate nsqd - failed to build TLS config - "
                             "open /nonexistent/c.pem: no such file or directory")


def test_validate_with_custom_tls_builder():
    o = opts("--tls-required", validate=False)
    sentinel = object()
    assert validate_nsqd_options(o, build_tls_config=lambda _o: sentinel) is sentinel
    with pytest.raises(OptionsError) as ei:
        validate_nsqd_options(o, build_tls_config=lambda _o: None)
    assert ei.value.reason == "cannot require TLS client connections without TLS key and cert"

    def boom(_o):
        raise ValueError("tls: failed to find any PEM data in certificate input")

    with pytest.raises(OptionsError) as ei:
        validate_nsqd_options(o, build_tls_config=boom)
    assert str(ei.value) == ("failed to instantiate nsqd - failed to build TLS config - "
                             "tls: failed to find any PEM data in certificate input")


def test_percentiles_validated_from_config(cfg):
    with pytest.raises(OptionsError) as ei:
        opts(f"--config={cfg('e2e_processing_latency_percentiles = [0.5, 2.0]')}")
    assert ei.value.reason == "invalid E2E processing latency percentile: 2"


def test_options_error_emit_logs_fatal():
    s = io.StringIO()
    OptionsError("failed to instantiate nsqd - x", "x").emit(Logger("[nsqd] ", stream=s))
    assert s.getvalue().endswith(" FATAL: failed to instantiate nsqd - x\n")


# -- /config encodings ------------------------------------------------------------

def test_config_value_encodings():
    o = opts("--lookupd-tcp-address=127.0.0.1:4160", "--log-level=warn",
             "--e2e-processing-latency-percentile=1.0,0.99")
    assert config_value_json(o, "max_msg_size") == ("json", b"1048576")
    assert config_value_json(o, "msg_timeout") == ("json", b"60000000000")
    assert config_value_json(o, "deflate") == ("json", b"true")
    assert config_value_json(o, "statsd_exclude_ephemeral") == ("json", b"false")
    assert config_value_json(o, "nsqlookupd_tcp_addresses") == ("json", b'["127.0.0.1:4160"]')
    assert config_value_json(o, "auth_http_addresses") == ("json", b"[]")
    assert config_value_json(o, "e2e_processing_latency_percentiles") == ("json", b"[1,0.99]")
    assert config_value_json(o, "log_level") == ("json", b"3")
    assert config_value_json(o, "tls_required") == ("json", b"0")
    assert config_value_json(o, "tls_min_version") == ("json", b"769")
    assert config_value_json(o, "id") == ("json", str(o.id).encode())
    assert config_value_json(o, "tcp_address") == ("text", b"0.0.0.0:4150")
    assert config_value_json(o, "data_path") == ("text", b"")


def test_config_value_reflects_runtime_mutation():
    o = opts()
    o.statsd_prefix = "nsq.vm_4151."
    o.broadcast_tcp_port = 4150
    assert config_value_json(o, "statsd_prefix") == ("text", b"nsq.vm_4151.")
    assert config_value_json(o, "broadcast_tcp_port") == ("json", b"4150")


@pytest.mark.parametrize("level,num", [("debug", 1), ("info", 2), ("warn", 3), ("error", 4),
                                       ("fatal", 5)])
def test_config_log_level_numbers(level, num):
    o = opts(f"--log-level={level}")
    assert config_value_json(o, "log_level") == ("json", str(num).encode())


def test_config_value_unknown_key():
    with pytest.raises(KeyError):
        config_value_json(opts(), "nope")
    with pytest.raises(KeyError):
        config_value_json(opts(), "queue_scan_interval")  # internal, not an option


def test_options_dataclass_defaults_usable_directly():
    o = Options()
    assert o.msg_timeout == 60 * S and o.nsqlookupd_tcp_addresses == []
    o.nsqlookupd_tcp_addresses.append("x")
    assert Options().nsqlookupd_tcp_addresses == []
