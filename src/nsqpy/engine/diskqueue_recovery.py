"""DiskQueue corruption handling (spec storage.md §2.4), a mixin for
:class:`nsqpy.engine.diskqueue.DiskQueue`: a data file that cannot be read is renamed
``<file>.bad`` and the reader skips to the next file number; when the reader has caught
up with the writer, depth and positions are checked (go-diskqueue's
``checkTailCorruption``).  Runs under the queue's ``_lock`` (the ``*_locked`` methods)."""
from __future__ import annotations

import os


class _WriteFile:
    """A data file being (or recently) written: its fd (opened lazily), the file offset
    up to which data has been handed to the OS, and the records not yet written."""
    __slots__ = ("num", "fd", "flushed", "buf")

    def __init__(self, num: int, flushed: int):
        self.num = num
        self.fd = None
        self.flushed = flushed
        self.buf = bytearray()


class DiskQueueRecovery:
    """Read-error and tail-corruption recovery of a DiskQueue."""

    def _read_error(self, pos: int, err) -> None:
        self._log("ERROR", f"DISKQUEUE({self.name}) reading at {pos} of "
                           f"{self._file_name(self._rfn)} - {err}")
        with self._lock:
            self._handle_read_error_locked()
            self._persist_quick_locked()

    def _handle_read_error_locked(self) -> None:
        """Rename the current read file to .bad and skip to the next file number."""
        self._close_reader()
        if self._rfn == self._wfn:
            # can't read the current write file: skip it too; records not written yet
            # are intact and go to the start of the new write file
            w = self._w
            if w.fd is not None:
                try:
                    os.close(w.fd)
                except OSError:
                    pass
            self._wfn += 1
            self._w = _WriteFile(self._wfn, 0)
            self._w.buf = w.buf
            self._wpos = len(w.buf)
        bad = self._file_name(self._rfn)
        bad_renamed = bad + ".bad"
        self._log("WARNING", f"DISKQUEUE({self.name}) jump to next file and saving bad file as {bad_renamed}")
        try:
            os.rename(bad, bad_renamed)
        except OSError:
            self._log("ERROR", f"DISKQUEUE({self.name}) failed to rename bad diskqueue file "
                               f"{bad} to {bad_renamed}")
        self._ends.pop(self._rfn, None)
        self._rfn += 1
        self._rpos = 0
        self._need_sync = True
        self._meta_stale = True
        self._check_tail_locked()

    def _check_tail_locked(self) -> None:
        """When the reader has caught up with the writer, depth must be 0 and the
        positions equal; otherwise repair (go-diskqueue checkTailCorruption)."""
        if self._rfn < self._wfn or self._rpos < self._wpos:
            return
        depth = self._depth
        if depth != 0:
            if depth < 0:
                self._log("ERROR", f"DISKQUEUE({self.name}) negative depth at tail ({depth}), "
                                   f"metadata corruption, resetting 0...")
            else:
                self._log("ERROR", f"DISKQUEUE({self.name}) positive depth at tail ({depth}), "
                                   f"data loss, resetting 0...")
            self._depth = 0
            self._need_sync = True
        if self._rfn != self._wfn or self._rpos != self._wpos:
            if self._rfn > self._wfn:
                self._log("ERROR", f"DISKQUEUE({self.name}) readFileNum > writeFileNum "
                                   f"({self._rfn} > {self._wfn}), corruption, skipping to next "
                                   f"writeFileNum and resetting 0...")
            if self._rpos > self._wpos:
                self._log("ERROR", f"DISKQUEUE({self.name}) readPos > writePos "
                                   f"({self._rpos} > {self._wpos}), corruption, skipping to next "
                                   f"writeFileNum and resetting 0...")
            self._skip_to_next_rw_file_locked()
            self._need_sync = True
            self._meta_stale = True

    def _skip_to_next_rw_file_locked(self):
        """Delete data files readFileNum..writeFileNum, continue at writeFileNum+1.
        Returns the first removal error (or None)."""
        err = None
        self._close_reader()
        self._close_write_files_locked()
        for i in range(self._rfn, self._wfn + 1):
            try:
                os.remove(self._file_name(i))
            except FileNotFoundError:
                pass
            except OSError as e:
                self._log("ERROR", f"DISKQUEUE({self.name}) failed to remove data file - {e}")
                if err is None:
                    err = e
        self._wfn += 1
        self._wpos = 0
        self._rfn = self._wfn
        self._rpos = 0
        self._depth = 0
        self._w = _WriteFile(self._wfn, 0)
        self._ends.clear()
        self._werr = None
        self._unflushed = 0
        return err
