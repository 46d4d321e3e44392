"""Python analogues of the Go runtime figures nsqd reports (``/stats`` ``memory`` object,
statsd ``mem.*``).

Go reads ``runtime.MemStats``; we fill the same nine fields with the closest things the
interpreter and the OS tell us, always as non-negative integers:

* ``heap_objects``: memory blocks currently allocated by the interpreter
  (``sys.getallocatedblocks()``).
* ``heap_in_use_bytes``: resident set size of the process.
* ``heap_idle_bytes``: bytes malloc holds free (glibc ``mallinfo2().fordblks``), else 0.
* ``heap_released_bytes``: bytes malloc could give back to the OS but keeps
  (``mallinfo2().keepcost``), else 0.
* ``gc_pause_usec_100/99/95``: percentiles of the last 256 garbage-collection pauses in
  microseconds (timed with ``gc.callbacks``; Go keeps the last 256 ``PauseNs`` too), using
  nsqd's ``percentile()`` on the sorted pauses.
* ``next_gc_bytes``: allocations left before the next generation-0 collection.
* ``gc_total_runs``: collections of all generations so far.
"""
from __future__ import annotations

import gc
import math
import os
import sys
import time

MEM_KEYS = ("heap_objects", "heap_idle_bytes", "heap_in_use_bytes", "heap_released_bytes",
            "gc_pause_usec_100", "gc_pause_usec_99", "gc_pause_usec_95", "next_gc_bytes",
            "gc_total_runs")

_PAUSE_RING = 256
_pauses = [0] * _PAUSE_RING          # ns, circular like runtime.MemStats.PauseNs
_num_pauses = 0
_gc_started = 0
_installed = False

try:
    _PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):  # pragma: no cover
    _PAGE_SIZE = 4096


def _gc_callback(phase, info) -> None:
    global _gc_started, _num_pauses
    if phase == "start":
        _gc_started = time.perf_counter_ns()
    elif _gc_started:
        _pauses[_num_pauses % _PAUSE_RING] = time.perf_counter_ns() - _gc_started
        _num_pauses += 1
        _gc_started = 0


def install() -> None:
    """Start timing GC pauses (idempotent; called when a listener or statsd starts)."""
    global _installed
    if not _installed:
        gc.callbacks.append(_gc_callback)
        _installed = True


def _mallinfo():
    try:
        import ctypes

        class _MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                "uordblks", "fordblks", "keepcost")]

        libc = ctypes.CDLL(None)
        fn = libc.mallinfo2
        fn.restype = _MallInfo2
        fn.argtypes = []
        return fn
    except (OSError, AttributeError, ImportError):
        return None


_mallinfo2 = None       # glibc's mallinfo2 through ctypes, loaded on the first stats call
_mallinfo_loaded = False


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        try:
            import resource
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return rss if sys.platform == "darwin" else rss * 1024
        except Exception:  # pragma: no cover
            return 0


def _percentile(perc: float, arr, length: int) -> int:
    """nsqd's percentile(): index floor(perc/100*len + 0.5), clamped."""
    if length == 0:
        return 0
    idx = int(math.floor((perc / 100.0) * length + 0.5))
    if idx >= length:
        idx = length - 1
    return arr[idx]


def get_mem_stats() -> dict:
    """The memory object, keys in Go's order."""
    idle = released = 0
    global _mallinfo2, _mallinfo_loaded
    if not _mallinfo_loaded:
        _mallinfo_loaded = True
        _mallinfo2 = _mallinfo() if sys.platform.startswith("linux") else None
    if _mallinfo2 is not None:
        try:
            mi = _mallinfo2()
            idle, released = int(mi.fordblks), int(mi.keepcost)
        except Exception:  # pragma: no cover
            pass
    n = min(_num_pauses, _PAUSE_RING)
    pauses = sorted(_pauses[:n])
    threshold0 = gc.get_threshold()[0]
    count0 = gc.get_count()[0]
    runs = 0
    for gen in gc.get_stats():
        runs += gen.get("collections", 0)
    return {
        "heap_objects": int(sys.getallocatedblocks()),
        "heap_idle_bytes": idle,
        "heap_in_use_bytes": _rss_bytes(),
        "heap_released_bytes": released,
        "gc_pause_usec_100": _percentile(100.0, pauses, n) // 1000,
        "gc_pause_usec_99": _percentile(99.0, pauses, n) // 1000,
        "gc_pause_usec_95": _percentile(95.0, pauses, n) // 1000,
        "next_gc_bytes": max(0, threshold0 - count0),
        "gc_total_runs": runs & 0xFFFFFFFF,
    }
