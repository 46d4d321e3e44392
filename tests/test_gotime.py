"""Go time.ParseDuration / Duration.String() / RFC 3339 compatibility."""
import time

import pytest

from nsqpy.gotime import (HOUR, MICROSECOND, MILLISECOND, MINUTE, SECOND, format_duration,
                          format_go_time_rfc3339, parse_duration)

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("-0", 0), ("+0", 0),
    ("5s", 5 * SECOND), ("30s", 30 * SECOND), ("1478s", 1478 * SECOND),
    ("-5s", -5 * SECOND), ("+5s", 5 * SECOND), ("-0s", 0),
    ("5.0s", 5 * SECOND), ("5.6s", 5600 * MILLISECOND), ("5.s", 5 * SECOND),
    (".5s", 500 * MILLISECOND), ("1.004s", 1004 * MILLISECOND), ("100.00100s", 100001 * MILLISECOND),
    ("10ns", 10), ("11us", 11 * MICROSECOND), ("12\u00b5s", 12 * MICROSECOND),
    ("12\u03bcs", 12 * MICROSECOND), ("13ms", 13 * MILLISECOND), ("15m", 15 * MINUTE),
    ("16h", 16 * HOUR), ("3h30m", 3 * HOUR + 30 * MINUTE),
    ("10.5s4m", 4 * MINUTE + 10500 * MILLISECOND), ("-2m3.4s", -(2 * MINUTE + 3400 * MILLISECOND)),
    ("1h2m3s4ms5us6ns", HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6),
    ("39h9m14.425s", 39 * HOUR + 9 * MINUTE + 14425 * MILLISECOND),
    ("52763797000ns", 52763797000),
    ("0.3333333333333333333h", 20 * MINUTE),
    ("9007199254740993ns", 9007199254740993),
    ("9223372036854775807ns", INT64_MAX),
    ("9223372036854775.807us", INT64_MAX),
    ("9223372036s854ms775us807ns", INT64_MAX),
    ("9223372036854ms775807ns", INT64_MAX),
    ("-9223372036854775808ns", INT64_MIN),
    ("-9223372036854775.808us", INT64_MIN),
    ("0.100000000000000000000h", 6 * MINUTE),
    ("0.830103483285477580700h", 49 * MINUTE + 48 * SECOND + 372539827),
])
def test_parse_duration_accepts_go_syntax(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text,msg", [
    ("", 'time: invalid duration ""'),
    ("abc", 'time: invalid duration "abc"'),
    ("-", 'time: invalid duration "-"'),
    ("s", 'time: invalid duration "s"'),
    (".", 'time: invalid duration "."'),
    ("-.", 'time: invalid duration "-."'),
    (".s", 'time: invalid duration ".s"'),
    ("+.s", 'time: invalid duration "+.s"'),
    ("3", 'time: missing unit in duration "3"'),
    ("10", 'time: missing unit in duration "10"'),
    ("1s2", 'time: missing unit in duration "1s2"'),
    ("1d", 'time: unknown unit "d" in duration "1d"'),
    ("1 s", 'time: unknown unit " s" in duration "1 s"'),
    ("\x85\x85", 'time: invalid duration "\\xc2\\x85\\xc2\\x85"'),
    ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
    ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
    ("9223372036854ms775808ns", 'time: invalid duration "9223372036854ms775808ns"'),
    ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
])
def test_parse_duration_errors_use_go_messages(text, msg):
    with pytest.raises(ValueError) as ei:
        parse_duration(text)
    assert str(ei.value) == msg


def test_parse_duration_quotes_non_ascii_unit_bytes():
    with pytest.raises(ValueError) as ei:
        parse_duration("1é")
    assert str(ei.value) == 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (1, "1ns"), (1100, "1.1\u00b5s"), (2200 * MICROSECOND, "2.2ms"),
    (3300 * MILLISECOND, "3.3s"), (250 * MILLISECOND, "250ms"), (25 * MILLISECOND, "25ms"),
    (2 * SECOND, "2s"), (MINUTE, "1m0s"), (HOUR, "1h0m0s"), (15 * MINUTE, "15m0s"),
    (4 * MINUTE + 5 * SECOND, "4m5s"), (4 * MINUTE + 5001 * MILLISECOND, "4m5.001s"),
    (5 * HOUR + 6 * MINUTE + 7001 * MILLISECOND, "5h6m7.001s"),
    (8 * MINUTE + 1, "8m0.000000001s"), (112562562775, "1m52.562562775s"),
    (INT64_MAX, "2562047h47m16.854775807s"), (INT64_MIN, "-2562047h47m16.854775808s"),
    (-1100, "-1.1\u00b5s"), (-2 * SECOND, "-2s"),
])
def test_format_duration_matches_go_string(ns, text):
    assert format_duration(ns) == text


@pytest.mark.parametrize("ns", [0, 1, 999, 1000, 1500, 999999, 10**6, 123456789, 10**9,
                                61 * SECOND + 5, 3 * HOUR + 7, INT64_MAX, -5 * MINUTE])
def test_format_then_parse_roundtrips(ns):
    assert parse_duration(format_duration(ns)) == ns


@pytest.fixture
def tz(monkeypatch):
    def set_tz(name):
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield set_tz
    monkeypatch.undo()
    time.tzset()


def test_rfc3339_utc_uses_z(tz):
    tz("UTC")
    assert format_go_time_rfc3339(1795555556) == "2026-11-24T21:25:56Z"


def test_rfc3339_other_zone_uses_offset(tz):
    tz("XYZ-1")
    assert format_go_time_rfc3339(1795555556) == "2026-11-24T22:25:56+01:00"
    tz("ABC+5:30")
    assert format_go_time_rfc3339(1795555556) == "2026-11-24T15:55:56-05:30"
