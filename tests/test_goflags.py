"""Go ``flag`` package compatibility (flags.md §0) and Go value helpers."""
import math
import sys

import pytest

from nsqpy.goflags import (KEEP, FlagExit, FlagSet, GoNumError, format_go_float, go_fmt_s,
                           go_fmt_v, go_json_float, go_json_string, go_quote, parse_go_bool,
                           parse_go_float, parse_go_int)
from nsqpy.gotime import MILLISECOND, SECOND


def make_fs():
    fs = FlagSet("prog")
    fs.string("name", "dflt", "a string")
    fs.string("empty", "", "a string without default")
    fs.int("count", 5, "an int")
    fs.int("zero-int", 0, "an int defaulting to zero")
    fs.bool("verbose", False, "a bool")
    fs.bool("on", True, "a bool defaulting to true")
    fs.duration("timeout", 60 * SECOND, "a duration")
    fs.float("ratio", 1.0, "a float")
    fs.str_list("addr", "repeatable (may be given multiple times)", key="addresses")
    fs.float_list("pct", "percentiles", key="percentiles")
    return fs


def parse(argv, fs=None):
    return (fs or make_fs()).parse(argv)


# -- dash forms and values ------------------------------------------------

def test_single_and_double_dash_equivalent():
    v1, _, _ = parse(["-name", "x"])
    v2, _, _ = parse(["--name", "x"])
    assert v1["name"] == v2["name"] == "x"


def test_equals_and_space_values():
    v, _, _ = parse(["-name=a", "--count", "7", "--timeout=2s", "-ratio", "0.5"])
    assert (v["name"], v["count"], v["timeout"], v["ratio"]) == ("a", 7, 2 * SECOND, 0.5)


def test_equals_value_may_contain_equals_and_be_empty():
    v, _, _ = parse(["-name=a=b"])
    assert v["name"] == "a=b"
    v, _, _ = parse(["--name="])
    assert v["name"] == ""


def test_space_value_may_start_with_dash():
    v, _, _ = parse(["-name", "-weird", "-count", "-3"])
    assert v["name"] == "-weird" and v["count"] == -3


def test_last_occurrence_wins_for_scalars():
    v, _, _ = parse(["-count=1", "-count=2"])
    assert v["count"] == 2


def test_defaults_when_not_given():
    v, explicit, pos = parse([])
    assert v == {"name": "dflt", "empty": "", "count": 5, "zero_int": 0, "verbose": False,
                 "on": True, "timeout": 60 * SECOND, "ratio": 1.0, "addresses": [],
                 "percentiles": []}
    assert explicit == set() and pos == []


# -- bools ------------------------------------------------------------------

def test_bare_bool_is_true():
    v, _, _ = parse(["-verbose"])
    assert v["verbose"] is True


@pytest.mark.parametrize("text,val", [
    ("true", True), ("false", False), ("1", True), ("0", False), ("t", True), ("f", False),
    ("T", True), ("F", False), ("TRUE", True), ("FALSE", False), ("True", True), ("False", False),
])
def test_bool_equals_forms(text, val):
    v, _, _ = parse([f"--on={text}"])
    assert v["on"] is val


def test_bool_space_false_becomes_positional():
    v, explicit, pos = parse(["-on", "false", "-count=3"])
    assert v["on"] is True
    assert pos == ["false", "-count=3"]
    assert v["count"] == 5


def test_bad_bool_value():
    with pytest.raises(FlagExit) as ei:
        parse(["-on=yes"])
    assert ei.value.code == 2
    assert ei.value.message.startswith(
        'invalid boolean value "yes" for -on: parse error\nUsage of prog:\n')


# -- stopping ---------------------------------------------------------------

def test_stop_at_first_non_flag():
    v, _, pos = parse(["-count=2", "file1", "-count=3"])
    assert v["count"] == 2 and pos == ["file1", "-count=3"]


def test_double_dash_terminates_and_is_consumed():
    v, _, pos = parse(["-count=2", "--", "-count=3", "x"])
    assert v["count"] == 2 and pos == ["-count=3", "x"]


def test_single_dash_is_positional():
    _, _, pos = parse(["-", "-count=3"])
    assert pos == ["-", "-count=3"]


# -- lists ------------------------------------------------------------------

def test_repeatable_string_list_accumulates_in_order():
    v, explicit, _ = parse(["--addr=a:1", "-addr", "b:2", "--addr", "a:1"])
    assert v["addresses"] == ["a:1", "b:2", "a:1"]
    assert "addresses" in explicit


def test_string_list_does_not_split_commas():
    v, _, _ = parse(["--addr=a,b"])
    assert v["addresses"] == ["a,b"]


def test_float_list_comma_separated_and_repeatable():
    v, _, _ = parse(["--pct=0.5,0.99", "--pct", "1.0"])
    assert v["percentiles"] == [0.5, 0.99, 1.0]


def test_float_list_bad_number_is_log_fatal_exit_1():
    with pytest.raises(FlagExit) as ei:
        parse(["--pct=0.5,abc"])
    assert ei.value.code == 1
    assert ei.value.message.endswith(" Could not parse: abc\n")


def test_list_defaults_not_shared_between_parses():
    fs = make_fs()
    fs.parse(["--addr=x"])
    v, _, _ = fs.parse([])
    assert v["addresses"] == []


# -- errors -----------------------------------------------------------------

def test_unknown_flag_message_usage_exit_2():
    fs = make_fs()
    with pytest.raises(FlagExit) as ei:
        fs.parse(["--nope=1"])
    assert ei.value.code == 2
    assert ei.value.stream == "stderr"
    assert ei.value.message == "flag provided but not defined: -nope\n" + fs.usage()


@pytest.mark.parametrize("argv,msg", [
    (["-count=abc"], 'invalid value "abc" for flag -count: parse error'),
    (["-count", "99999999999999999999"],
     'invalid value "99999999999999999999" for flag -count: value out of range'),
    (["-timeout=10"], 'invalid value "10" for flag -timeout: parse error'),
    (["-timeout", "1x"], 'invalid value "1x" for flag -timeout: parse error'),
    (["-ratio=zz"], 'invalid value "zz" for flag -ratio: parse error'),
    (["-ratio=1e999"], 'invalid value "1e999" for flag -ratio: value out of range'),
])
def test_bad_value_message_and_exit_2(argv, msg):
    fs = make_fs()
    with pytest.raises(FlagExit) as ei:
        fs.parse(argv)
    assert ei.value.code == 2
    assert ei.value.message == msg + "\n" + fs.usage()


def test_missing_argument():
    with pytest.raises(FlagExit) as ei:
        parse(["-name"])
    assert ei.value.code == 2
    assert ei.value.message.startswith("flag needs an argument: -name\n")


@pytest.mark.parametrize("arg", ["---x", "-=x", "--=1"])
def test_bad_flag_syntax(arg):
    with pytest.raises(FlagExit) as ei:
        parse([arg])
    assert ei.value.code == 2
    assert ei.value.message.startswith(f"bad flag syntax: {arg}\n")


def test_bad_value_quoted_like_go():
    with pytest.raises(FlagExit) as ei:
        parse(["-count=a\tb\"c"])
    assert ei.value.message.startswith('invalid value "a\\tb\\"c" for flag -count: parse error')


# -- help -------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["-h", "-help", "--help", "--h", "-help=1"])
def test_help_prints_usage_exit_0(arg):
    fs = make_fs()
    with pytest.raises(FlagExit) as ei:
        fs.parse(["-count=1", arg, "-nope"])
    assert ei.value.code == 0
    assert ei.value.stream == "stderr"
    assert ei.value.message == fs.usage()


def test_usage_format_like_go():
    expected = (
        "Usage of prog:\n"
        "  -addr value\n"
        "    \trepeatable (may be given multiple times)\n"
        "  -count int\n"
        "    \tan int (default 5)\n"
        "  -empty string\n"
        "    \ta string without default\n"
        "  -name string\n"
        "    \ta string (default \"dflt\")\n"
        "  -on\n"
        "    \ta bool defaulting to true (default true)\n"
        "  -pct value\n"
        "    \tpercentiles\n"
        "  -ratio float\n"
        "    \ta float (default 1)\n"
        "  -timeout duration\n"
        "    \ta duration (default 1m0s)\n"
        "  -verbose\n"
        "    \ta bool\n"
        "  -zero-int int\n"
        "    \tan int defaulting to zero\n"
    )
    assert make_fs().usage() == expected


def test_usage_one_letter_bool_same_line_and_backquoted_name():
    fs = FlagSet("t")
    fs.bool("v", False, "verbose")
    fs.string("o", "", "write to `file`\nsecond line")
    assert fs.usage() == ("Usage of t:\n"
                          "  -o file\n"
                          "    \twrite to file\n"
                          "    \tsecond line\n"
                          "  -v\tverbose\n")


def test_flag_exit_exit_prints_and_exits(capsys):
    with pytest.raises(SystemExit) as se:
        FlagExit(0, "nsqd v1.3.0\n", stream="stdout").exit()
    assert se.value.code == 0
    assert capsys.readouterr().out == "nsqd v1.3.0\n"
    with pytest.raises(SystemExit) as se:
        FlagExit(2, "bad\n").exit()
    assert se.value.code == 2
    assert capsys.readouterr().err == "bad\n"


# -- explicit-set tracking ---------------------------------------------------

def test_explicitly_set_tracks_given_flags_even_at_default_value():
    v, explicit, _ = parse(["-count=5", "--verbose=false", "--addr", "x"])
    assert explicit == {"count", "verbose", "addresses"}


def test_keys_default_to_underscored_names():
    fs = make_fs()
    assert fs.lookup("zero-int").key == "zero_int"
    assert fs.lookup("addr").key == "addresses"
    assert fs.by_key("addresses").name == "addr"


# -- integers (strconv.ParseInt base 0) --------------------------------------

@pytest.mark.parametrize("text,val", [
    ("0", 0), ("42", 42), ("-42", -42), ("+7", 7), ("0x1F", 31), ("0X1f", 31), ("0o17", 15),
    ("017", 15), ("0b101", 5), ("1_000", 1000), ("0x_1F", 31),
    ("9223372036854775807", (1 << 63) - 1), ("-9223372036854775808", -(1 << 63)),
])
def test_int_flag_accepts_go_base0_forms(text, val):
    v, _, _ = parse([f"-count={text}"])
    assert v["count"] == val


@pytest.mark.parametrize("text", ["", "08", "1__0", "_1", "1_", "0x", "1.5", "abc", "--1", "- 1"])
def test_int_flag_rejects_malformed(text):
    with pytest.raises(FlagExit) as ei:
        parse([f"-count={text}"])
    assert "parse error" in ei.value.message.splitlines()[0]


def test_parse_go_int_errors_are_strconv_messages():
    with pytest.raises(GoNumError) as ei:
        parse_go_int("abc", 10)
    assert str(ei.value) == 'strconv.ParseInt: parsing "abc": invalid syntax'
    with pytest.raises(GoNumError) as ei:
        parse_go_int("9223372036854775808", 10)
    assert str(ei.value) == 'strconv.ParseInt: parsing "9223372036854775808": value out of range'
    with pytest.raises(GoNumError):
        parse_go_int("0x10", 10)  # prefixes only with base 0


def test_parse_go_bool():
    assert parse_go_bool("T") is True and parse_go_bool("False") is False
    with pytest.raises(GoNumError) as ei:
        parse_go_bool("yes")
    assert str(ei.value) == 'strconv.ParseBool: parsing "yes": invalid syntax'


@pytest.mark.parametrize("text,val", [
    ("1", 1.0), ("-0.5", -0.5), (".5", 0.5), ("1.", 1.0), ("1e3", 1000.0), ("1E-2", 0.01),
    ("0x1p-2", 0.25), ("0x1.8p1", 3.0), ("1_000.5", 1000.5), ("inf", math.inf),
    ("-Infinity", -math.inf), ("+INF", math.inf),
])
def test_parse_go_float_forms(text, val):
    assert parse_go_float(text) == val


@pytest.mark.parametrize("text", ["", " 1", "1 ", "abc", "0x1", "1e", "1e+", "1..2", "_1",
                                  "infinit", "+nan", "1_", "0x"])
def test_parse_go_float_rejects(text):
    with pytest.raises(GoNumError) as ei:
        parse_go_float(text)
    assert not ei.value.is_range


def test_parse_go_float_nan_and_range():
    assert math.isnan(parse_go_float("NaN"))
    with pytest.raises(GoNumError) as ei:
        parse_go_float("1e400")
    assert ei.value.is_range


# -- custom kinds -----------------------------------------------------------

def level_fs():
    fs = FlagSet("c")

    def parse_level(s):
        if s.lower() not in ("debug", "info"):
            raise ValueError(f"invalid log level '{s}'")
        return s.lower()

    def parse_req(s):
        s = s.lower()
        if s == "tcp-https":
            return 1
        return 2 if parse_go_bool(s) else 0

    def parse_keep(s):
        return KEEP if s == "" else int(s)

    fs.custom("level", "info", "log level", parse=parse_level, to_str=str.upper,
              zero_str="invalid")
    fs.custom("req", 0, "tls required", parse=parse_req, to_str=str, zero_str="0", is_bool=True)
    fs.custom("ver", 769, "min version", parse=parse_keep, to_str=str, zero_str="0")
    return fs


def test_custom_kind_parse_and_error_text():
    fs = level_fs()
    v, _, _ = fs.parse(["-level=DEBUG"])
    assert v["level"] == "debug"
    with pytest.raises(FlagExit) as ei:
        fs.parse(["-level=loud"])
    assert ei.value.message.startswith(
        "invalid value \"loud\" for flag -level: invalid log level 'loud'\n")


def test_custom_bool_like_flag():
    fs = level_fs()
    assert fs.parse(["-req"])[0]["req"] == 2
    assert fs.parse(["-req=tcp-https"])[0]["req"] == 1
    assert fs.parse(["-req=false"])[0]["req"] == 0
    v, _, pos = fs.parse(["-req", "tcp-https"])
    assert v["req"] == 2 and pos == ["tcp-https"]
    with pytest.raises(FlagExit) as ei:
        fs.parse(["-req=maybe"])
    assert ei.value.message.startswith(
        'invalid boolean value "maybe" for -req: strconv.ParseBool: parsing "maybe": '
        'invalid syntax\n')


def test_custom_keep_leaves_value():
    fs = level_fs()
    assert fs.parse(["-ver=771", "-ver="])[0]["ver"] == 771


def test_custom_usage_shows_string_default():
    u = level_fs().usage()
    assert "  -level value\n    \tlog level (default INFO)\n" in u
    assert "  -req\n    \ttls required\n" in u
    assert "  -ver value\n    \tmin version (default 769)\n" in u


def test_duplicate_flag_definition_rejected():
    fs = FlagSet("d")
    fs.int("a", 1, "")
    with pytest.raises(ValueError):
        fs.int("a", 2, "")


# -- Go value formatting helpers ---------------------------------------------

@pytest.mark.parametrize("f,g", [
    (1.0, "1"), (0.5, "0.5"), (0.99, "0.99"), (100.0, "100"), (123456.0, "123456"),
    (1234567.0, "1.234567e+06"), (1e6, "1e+06"), (0.0001, "0.0001"), (0.00001, "1e-05"),
    (1e21, "1e+21"), (-2.5, "-2.5"), (0.0, "0"), (math.inf, "+Inf"), (math.nan, "NaN"),
])
def test_format_go_float_g(f, g):
    assert format_go_float(f) == g


@pytest.mark.parametrize("f,j", [
    (1.0, "1"), (0.99, "0.99"), (1e-7, "1e-7"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
    (0.000001, "0.000001"), (123.456, "123.456"), (-0.0, "-0"),
])
def test_go_json_float(f, j):
    assert go_json_float(f) == j


def test_go_json_string_html_escapes():
    assert go_json_string('a<b>&"\\\n') == '"a\\u003cb\\u003e\\u0026\\"\\\\\\n"'
    assert go_json_string("héllo") == '"héllo"'


def test_go_quote():
    assert go_quote("abc") == '"abc"'
    assert go_quote('a"b\\') == '"a\\"b\\\\"'
    assert go_quote("\n\t\x00\x7f") == '"\\n\\t\\x00\\x7f"'
    assert go_quote("héllo") == '"héllo"'
    assert go_quote("\u200b") == '"\\u200b"'
    assert go_quote(b"\xff".decode("utf-8", "surrogateescape")) == '"\\xff"'


def test_go_fmt_v_and_s():
    assert go_fmt_v(True) == "true"
    assert go_fmt_v(["a", 1, 0.5]) == "[a 1 0.5]"
    assert go_fmt_v(2.0) == "2"
    assert go_fmt_s(5) == "%!s(int64=5)"
    assert go_fmt_s(True) == "%!s(bool=true)"
    assert go_fmt_s(["a", 1]) == "[a %!s(int64=1)]"


def test_timeout_parses_to_nanoseconds():
    v, _, _ = parse(["-timeout=1m30s"])
    assert v["timeout"] == 90 * SECOND
    v, _, _ = parse(["-timeout=250ms"])
    assert v["timeout"] == 250 * MILLISECOND


def test_non_ascii_argv_survives():
    val = b"\xff".decode(sys.getfilesystemencoding(), "surrogateescape")
    v, _, _ = parse(["-name=" + val])
    assert v["name"] == val
    with pytest.raises(FlagExit) as ei:
        parse(["-count=" + val])
    assert ei.value.message.startswith('invalid value "\\xff" for flag -count: parse error')
