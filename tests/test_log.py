"""Go-format logger (flags.md §5)."""
import io
import re
import time

import pytest

from nsqpy.log import Logger, format_std_log, parse_log_level

LINE_RE = re.compile(r"^\[nsqd\] (\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6}) "
                     r"(DEBUG|INFO|WARNING|ERROR|FATAL): (.*)\n$")


class FlushCounter(io.StringIO):
    def __init__(self):
        super().__init__()
        self.flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


def lines(stream):
    return stream.getvalue().splitlines(keepends=True)


def test_line_format_prefix_timestamp_level_text():
    s = io.StringIO()
    Logger("[nsqd] ", stream=s).info("TCP: listening on [::]:4150")
    m = LINE_RE.match(s.getvalue())
    assert m, s.getvalue()
    assert m.group(8) == "INFO"
    assert m.group(9) == "TCP: listening on [::]:4150"


def test_timestamp_is_local_time_now():
    s = io.StringIO()
    before = time.time()
    Logger("", stream=s).info("x")
    stamp = s.getvalue().split(" INFO:")[0]
    t = time.mktime(time.strptime(stamp.split(".")[0], "%Y/%m/%d %H:%M:%S"))
    assert before - 1 <= t <= time.time() + 1


def test_each_level_label():
    s = io.StringIO()
    log = Logger("p ", level="debug", stream=s)
    log.debug("a")
    log.info("b")
    log.warning("c")
    log.error("d")
    log.fatal("e")
    labels = [ln.split(" ")[3] for ln in lines(s)]
    assert labels == ["DEBUG:", "INFO:", "WARNING:", "ERROR:", "FATAL:"]


def test_below_level_suppressed():
    s = io.StringIO()
    log = Logger("[nsqd] ", level="warn", stream=s)
    log.debug("no")
    log.info("no")
    log.warning("yes1")
    log.error("yes2")
    log.fatal("yes3")
    log.log("info", "no")
    log.log("error", "yes4")
    assert [ln.rsplit(": ", 1)[1] for ln in lines(s)] == ["yes1\n", "yes2\n", "yes3\n", "yes4\n"]


def test_default_level_is_info():
    s = io.StringIO()
    log = Logger("x ", stream=s)
    log.debug("hidden")
    log.info("shown")
    assert s.getvalue().endswith("INFO: shown\n")
    assert "hidden" not in s.getvalue()
    assert log.level_number == 2


def test_prefix_is_verbatim():
    s = io.StringIO()
    Logger("[custom-prefix]", stream=s).info("m")
    assert s.getvalue().startswith("[custom-prefix]2")


def test_set_level_names_case_insensitive_and_numbers():
    log = Logger("", stream=io.StringIO())
    for name, num in [("DEBUG", 1), ("Info", 2), ("warn", 3), ("WARNING", 3), ("error", 4),
                      ("FaTaL", 5)]:
        log.set_level(name)
        assert log.level_number == num


def test_set_level_rejects_unknown():
    log = Logger("", stream=io.StringIO())
    with pytest.raises(ValueError):
        log.set_level("verbose")
    with pytest.raises(ValueError):
        Logger("", level="loud", stream=io.StringIO())


def test_set_level_changes_output_at_runtime():
    s = io.StringIO()
    log = Logger("", level="info", stream=s)
    log.debug("a")
    log.set_level("debug")
    log.debug("b")
    log.set_level("error")
    log.info("c")
    assert [ln.rsplit(": ", 1)[1] for ln in lines(s)] == ["b\n"]


def test_each_line_flushed():
    s = FlushCounter()
    log = Logger("", stream=s)
    log.info("one")
    log.error("two")
    assert s.flushes == 2


def test_printf_args_formatted_lazily():
    s = io.StringIO()
    log = Logger("", stream=s)
    log.info("ID: %d", 617)
    log.info("100% literal without args")

    class Boom:
        def __str__(self):
            raise AssertionError("formatted a suppressed line")

    log.debug("never %s", Boom())
    assert lines(s)[0].endswith("INFO: ID: 617\n")
    assert lines(s)[1].endswith("INFO: 100% literal without args\n")


def test_trailing_newline_not_doubled():
    s = io.StringIO()
    Logger("", stream=s).info("already\n")
    assert s.getvalue().endswith("INFO: already\n") and not s.getvalue().endswith("\n\n")


def test_suppressed_call_is_cheap():
    log = Logger("", level="info", stream=io.StringIO())
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        log.debug("x %s", 1)
    assert (time.perf_counter() - t0) / n < 2e-6


def test_parse_log_level_strict_like_go():
    assert [parse_log_level(x) for x in ("debug", "INFO", "Warn", "error", "fatal")] == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError) as ei:
        parse_log_level("warning")
    assert str(ei.value) == "invalid log level 'warning' (debug, info, warn, error, fatal)"


def test_level_name_canonical():
    log = Logger("", level="WARNING", stream=io.StringIO())
    assert log.level_name == "warn"


def test_format_std_log_is_go_log_default():
    line = format_std_log("Could not parse: x")
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} Could not parse: x\n", line)
