"""Go-format logging, as nsq's ``internal/lg`` on top of Go's ``log`` package.

A line is ``<prefix><YYYY/MM/DD HH:MM:SS.micro> <LEVEL>: <text>\\n`` in local
time, e.g. ``[nsqd] 2026/11/24 21:25:56.352242 INFO: TCP: listening on [::]:4150``.
"""
from __future__ import annotations

import sys
import time as _time
from typing import Any, TextIO

DEBUG = 1
INFO = 2
WARN = 3
ERROR = 4
FATAL = 5

LEVEL_LABELS = {DEBUG: "DEBUG", INFO: "INFO", WARN: "WARNING", ERROR: "ERROR", FATAL: "FATAL"}
"""Level number -> the text printed in a log line (and Go's LogLevel.String())."""

LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARN: "warn", ERROR: "error", FATAL: "fatal"}
"""Level number -> canonical lowercase name (the form accepted by --log-level)."""

_GO_LEVELS = {"debug": DEBUG, "info": INFO, "warn": WARN, "error": ERROR, "fatal": FATAL}
_LENIENT_LEVELS = dict(_GO_LEVELS, warning=WARN)


def parse_log_level(name: str) -> int:
    """Go's ``lg.ParseLogLevel``: case-insensitive debug/info/warn/error/fatal.

    Strict like Go (``warning`` is rejected); raises ``ValueError`` with Go's
    message ``invalid log level '<s>' (debug, info, warn, error, fatal)``.
    """
    lvl = _GO_LEVELS.get(name.lower()) if isinstance(name, str) else None
    if lvl is None:
        raise ValueError(f"invalid log level '{name}' (debug, info, warn, error, fatal)")
    return lvl


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        if level not in LEVEL_LABELS:
            raise ValueError(f"invalid log level {level}")
        return level
    lvl = _LENIENT_LEVELS.get(level.lower())
    if lvl is None:
        raise ValueError(f"invalid log level '{level}' (debug, info, warn, error, fatal)")
    return lvl


class _Clock:
    """Formats ``YYYY/MM/DD HH:MM:SS`` once per second (local time); the cache is
    one tuple so concurrent threads never see a mismatched second/text pair."""

    __slots__ = ("cache",)

    def __init__(self) -> None:
        self.cache: tuple[int, str] = (-1, "")

    def stamp(self, with_micro: bool = True) -> str:
        t = _time.time()
        sec = int(t)
        cached_sec, text = self.cache
        if sec != cached_sec:
            text = _time.strftime("%Y/%m/%d %H:%M:%S", _time.localtime(sec))
            self.cache = (sec, text)
        if with_micro:
            return "%s.%06d" % (text, int((t - sec) * 1_000_000))
        return text


_clock = _Clock()


def format_std_log(msg: str) -> str:
    """A line as Go's default ``log`` package prints it (``log.Printf``/``log.Fatalf``
    with LstdFlags): ``2026/11/24 21:25:56 <msg>\\n``."""
    if not msg.endswith("\n"):
        msg += "\n"
    return f"{_clock.stamp(False)} {msg}"


def _noop(msg: str, *args: Any) -> None:
    return None


class Logger:
    """Leveled Go-format logger writing one flushed line per call.

    ``debug``/``info``/``warning``/``error``/``fatal`` accept an optional
    printf-style argument tuple (``log.info("ID: %d", 617)``), formatted only
    when the line is emitted. Methods for suppressed levels are swapped for a
    no-op, so a disabled ``logger.debug(...)`` costs one call.
    ``fatal`` only logs; exiting is the caller's business (as in nsqd).
    """

    def __init__(self, prefix: str, level: int | str = "info", stream: TextIO | None = None):
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self._level = INFO
        self.set_level(level)

    # -- level handling -------------------------------------------------
    def set_level(self, level: int | str) -> None:
        """Set the threshold: debug/info/warn/warning/error/fatal (any case) or 1..5.
        Raises ``ValueError`` for anything else."""
        self._level = _level_number(level)
        lvl = self._level
        self.debug = self._debug if lvl <= DEBUG else _noop  # type: ignore[method-assign]
        self.info = self._info if lvl <= INFO else _noop  # type: ignore[method-assign]
        self.warning = self._warning if lvl <= WARN else _noop  # type: ignore[method-assign]
        self.warn = self.warning  # type: ignore[method-assign]
        self.error = self._error if lvl <= ERROR else _noop  # type: ignore[method-assign]
        self.fatal = self._fatal  # type: ignore[method-assign]

    @property
    def level_number(self) -> int:
        """1=debug 2=info 3=warn 4=error 5=fatal (the ``/config/log_level`` value)."""
        return self._level

    @property
    def level_name(self) -> str:
        """Canonical lowercase name of the current level (``warn`` for 3)."""
        return LEVEL_NAMES[self._level]

    def enabled(self, level: int | str) -> bool:
        """Whether a line at ``level`` would be written."""
        return _level_number(level) >= self._level

    @property
    def debug_enabled(self) -> bool:
        return self._level <= DEBUG

    # -- output ---------------------------------------------------------
    def _emit(self, label: str, msg: str, args: tuple) -> None:
        if args:
            msg = msg % args
        if msg.endswith("\n"):
            line = f"{self.prefix}{_clock.stamp()} {label}: {msg}"
        else:
            line = f"{self.prefix}{_clock.stamp()} {label}: {msg}\n"
        stream = self.stream
        try:
            stream.write(line)
            stream.flush()
        except (OSError, ValueError):
            # closed/broken stderr must never take the daemon down
            pass

    def log(self, level: int | str, msg: str, *args: Any) -> None:
        lvl = _level_number(level)
        if lvl >= self._level:
            self._emit(LEVEL_LABELS[lvl], msg, args)

    def _debug(self, msg: str, *args: Any) -> None:
        self._emit("DEBUG", msg, args)

    def _info(self, msg: str, *args: Any) -> None:
        self._emit("INFO", msg, args)

    def _warning(self, msg: str, *args: Any) -> None:
        self._emit("WARNING", msg, args)

    def _error(self, msg: str, *args: Any) -> None:
        self._emit("ERROR", msg, args)

    def _fatal(self, msg: str, *args: Any) -> None:
        self._emit("FATAL", msg, args)

    # placeholders for type checkers; replaced per instance by set_level()
    def debug(self, msg: str, *args: Any) -> None: ...  # noqa: E704
    def info(self, msg: str, *args: Any) -> None: ...  # noqa: E704
    def warning(self, msg: str, *args: Any) -> None: ...  # noqa: E704
    def warn(self, msg: str, *args: Any) -> None: ...  # noqa: E704
    def error(self, msg: str, *args: Any) -> None: ...  # noqa: E704
    def fatal(self, msg: str, *args: Any) -> None: ...  # noqa: E704
