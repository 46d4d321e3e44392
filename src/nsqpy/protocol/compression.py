"""Stream compression negotiated by IDENTIFY (tcp-protocol.md §6.1.4): sans-IO codecs.

Each connection direction gets one stateful object; ``encode`` is called once per output
flush and ``decode`` with whatever bytes the transport delivered (any split).

Snappy uses the *framing format* (stream identifier chunk ``ff 06 00 00 sNaPpY``, then
data chunks of at most 65536 uncompressed bytes, each with the masked CRC-32C of its
uncompressed data).  The chunking, block compression and CRC-32C all run inside
cramjam (Rust ``snap``): ``cramjam.snappy.compress`` produces exactly the bytes of Go's
``snappy.Writer`` framing rules (uncompressed chunk ``0x01`` when compression saves
less than 1/8, e.g. the upgrade ``OK``), and ``cramjam.snappy.decompress`` verifies the
CRCs.  cramjam exposes no CRC-32C function of its own, and a pure-Python CRC is two
orders of magnitude too slow for the data path, so the decoder here only splits the
input into complete chunks (so any read boundary works), applies the chunk-type rules
of Go's ``snappy.Reader`` and hands complete data chunks to cramjam in one call.

Deflate is raw DEFLATE (RFC 1951, zlib ``wbits=-15``) with a sync flush
(``00 00 ff ff``) at the end of every ``encode`` call.
"""
from __future__ import annotations

import zlib


__all__ = [
    "CompressionError", "SnappyEncoder", "SnappyDecoder", "DeflateEncoder", "DeflateDecoder",
    "SNAPPY_STREAM_IDENTIFIER", "SNAPPY_MAX_BLOCK_SIZE",
]

SNAPPY_STREAM_IDENTIFIER = b"\xff\x06\x00\x00sNaPpY"
SNAPPY_MAX_BLOCK_SIZE = 65536
# snappy MaxEncodedLen(65536) = 32 + n + n/6: the largest compressed block of one chunk
_MAX_ENCODED_BLOCK = 32 + SNAPPY_MAX_BLOCK_SIZE + SNAPPY_MAX_BLOCK_SIZE // 6
_CHECKSUM_SIZE = 4

_CHUNK_COMPRESSED = 0x00
_CHUNK_UNCOMPRESSED = 0x01
_CHUNK_STREAM_IDENTIFIER = 0xFF

# Go's golang/snappy error texts (nsqd logs "failed to read command - <err>")
ERR_SNAPPY_CORRUPT = "snappy: corrupt input"
ERR_SNAPPY_UNSUPPORTED = "snappy: unsupported input"

_snappy_compress = _snappy_decompress = None
_CramjamError = Exception


def _load_snappy() -> None:
    """Import cramjam on first use (it costs ~1.5 MiB of RSS in every nsqd otherwise)."""
    global _snappy_compress, _snappy_decompress, _CramjamError
    import cramjam
    _snappy_compress = cramjam.snappy.compress
    _snappy_decompress = cramjam.snappy.decompress
    _CramjamError = getattr(cramjam, "DecompressionError", Exception)


class CompressionError(Exception):
    """Undecodable compressed input (fatal for the connection).  ``str(e)`` is the Go
    error text (``snappy: corrupt input``, ``flate: corrupt input ...``); ``detail``
    says what exactly was wrong."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message


class SnappyEncoder:
    """Snappy framing-format writer.  The stream identifier chunk precedes the first
    chunk; every non-empty ``encode`` returns one or more complete chunks."""

    __slots__ = ("_started",)

    def __init__(self) -> None:
        if _snappy_compress is None:
            _load_snappy()
        self._started = False

    def encode(self, data) -> bytes:
        if not data:
            return b""
        # cramjam frames the whole input as a fresh stream: identifier + chunks.
        out = _snappy_compress(data)
        if self._started:
            return bytes(memoryview(out)[len(SNAPPY_STREAM_IDENTIFIER):])
        self._started = True
        return bytes(out)


class SnappyDecoder:
    """Incremental snappy framing-format reader with golang/snappy's rules: the
    stream must start with the identifier chunk (which may repeat later), chunk types
    0x80-0xfe are skipped, 0x02-0x7f are rejected, a chunk may decode to at most
    65536 bytes and its CRC-32C must match.  Errors are sticky."""

    __slots__ = ("_buf", "_seen_identifier", "_skip", "_error")

    def __init__(self) -> None:
        if _snappy_compress is None:
            _load_snappy()
        self._buf = bytearray()
        self._seen_identifier = False
        self._skip = 0          # bytes of a skippable chunk still to discard
        self._error: CompressionError | None = None

    def _fail(self, message: str, detail: str) -> CompressionError:
        self._error = CompressionError(message, detail)
        self._buf = bytearray()
        return self._error

    def decode(self, data) -> bytes:
        if self._error is not None:
            raise self._error
        if self._skip:
            n = min(self._skip, len(data))
            self._skip -= n
            data = data[n:]
        if self._buf:
            self._buf += data
            src = self._buf
        else:
            src = data
        end = len(src)
        pos = 0
        parts = []              # complete data chunks, in order
        run_start = -1          # start of the current run of adjacent data chunks
        while end - pos >= 4:
            ctype = src[pos]
            clen = src[pos + 1] | (src[pos + 2] << 8) | (src[pos + 3] << 16)
            if ctype == _CHUNK_STREAM_IDENTIFIER:
                if clen != len(SNAPPY_STREAM_IDENTIFIER) - 4:
                    raise self._fail(ERR_SNAPPY_CORRUPT, f"stream identifier length {clen}")
                if end - pos < 4 + clen:
                    break
                if bytes(src[pos + 4:pos + 10]) != b"sNaPpY":
                    raise self._fail(ERR_SNAPPY_CORRUPT, "bad stream identifier")
                self._seen_identifier = True
                if run_start >= 0:
                    parts.append(src[run_start:pos])
                    run_start = -1
                pos += 4 + clen
                continue
            if not self._seen_identifier:
                raise self._fail(ERR_SNAPPY_CORRUPT,
                                 f"missing stream identifier (chunk type 0x{ctype:02x})")
            if ctype == _CHUNK_COMPRESSED or ctype == _CHUNK_UNCOMPRESSED:
                if clen < _CHECKSUM_SIZE:
                    raise self._fail(ERR_SNAPPY_CORRUPT, f"chunk length {clen} too short")
                limit = _MAX_ENCODED_BLOCK if ctype == _CHUNK_COMPRESSED else SNAPPY_MAX_BLOCK_SIZE
                if clen > limit + _CHECKSUM_SIZE:
                    raise self._fail(ERR_SNAPPY_CORRUPT, f"chunk length {clen} too long")
                if end - pos < 4 + clen:
                    break
                if run_start < 0:
                    run_start = pos
                pos += 4 + clen
                continue
            if ctype < 0x80:
                raise self._fail(ERR_SNAPPY_UNSUPPORTED,
                                 f"reserved unskippable chunk type 0x{ctype:02x}")
            # 0x80-0xfd reserved skippable, 0xfe padding
            if run_start >= 0:
                parts.append(src[run_start:pos])
                run_start = -1
            if end - pos >= 4 + clen:
                pos += 4 + clen
            else:
                self._skip = 4 + clen - (end - pos)
                pos = end
                break
        if run_start >= 0:
            parts.append(src[run_start:pos])
        if parts:
            stream = SNAPPY_STREAM_IDENTIFIER + b"".join(parts)
        # keep the incomplete tail for the next call
        if pos >= end:
            self._buf = bytearray()
        elif src is self._buf:
            del src[:pos]
        else:
            self._buf = bytearray(src[pos:])
        if not parts:
            return b""
        try:
            return bytes(_snappy_decompress(stream))
        except _CramjamError as e:
            raise self._fail(ERR_SNAPPY_CORRUPT, str(e)) from None
        except Exception as e:          # any other codec failure is corrupt input too
            raise self._fail(ERR_SNAPPY_CORRUPT, repr(e)) from None


class DeflateEncoder:
    """Raw DEFLATE writer; each ``encode`` ends with a sync flush so the peer can
    inflate everything written so far.  ``level`` as Go's compress/flate: 0-9,
    -1 default, -2 Huffman only."""

    __slots__ = ("level", "_c")

    def __init__(self, level: int = 6) -> None:
        if level == -2:
            self._c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15,
                                       9, zlib.Z_HUFFMAN_ONLY)
        elif -1 <= level <= 9:
            self._c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
        else:
            raise ValueError(f"flate: invalid compression level {level}: want value in range [-2, 9]")
        self.level = level

    def encode(self, data) -> bytes:
        c = self._c
        if data:
            return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        return c.flush(zlib.Z_SYNC_FLUSH)


class DeflateDecoder:
    """Incremental raw-DEFLATE reader.  Data after a final block (the stream ended)
    and corrupt input raise :class:`CompressionError`; errors are sticky."""

    __slots__ = ("_d", "_error")

    def __init__(self) -> None:
        self._d = zlib.decompressobj(-15)
        self._error: CompressionError | None = None

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def pending(self) -> bool:
        """Input is left over because the last call hit its ``max_output``."""
        return bool(self._d.unconsumed_tail)

    def decode(self, data, max_output: int = 0) -> bytes:
        """Inflate ``data``; with ``max_output`` at most that many bytes come back and the
        rest waits for ``decode(b"", max_output)`` (see :attr:`pending`): a small input
        cannot force a huge allocation."""
        if self._error is not None:
            raise self._error
        d = self._d
        if d.eof:
            if data:
                self._error = CompressionError("flate: corrupt input", "data after the final block")
                raise self._error
            return b""
        if d.unconsumed_tail:
            data = d.unconsumed_tail + data
        try:
            out = d.decompress(data, max_output)
        except zlib.error as e:
            self._error = CompressionError("flate: corrupt input", str(e))
            raise self._error from None
        if d.eof and d.unused_data:
            self._error = CompressionError("flate: corrupt input", "data after the final block")
            raise self._error
        return out
