"""Snappy framing / raw deflate stream codecs (tcp-protocol.md §6.1.4)."""
import os
import random
import struct
import zlib

import cramjam
import pytest

from nsqpy.protocol.compression import (SNAPPY_STREAM_IDENTIFIER, CompressionError,
                                        DeflateDecoder, DeflateEncoder, SnappyDecoder,
                                        SnappyEncoder)

OK_FRAME = b"\x00\x00\x00\x06\x00\x00\x00\x00OK"
SNAPPY_OK = bytes.fromhex("ff060000734e61507059" "010e0000" "26982bcf" "0000000600000000" "4f4b")
DEFLATE_OK_GO = bytes.fromhex("6260606063606060f0f706000000ffff000000ffff")


# -- an independent CRC-32C (Castagnoli, reflected 0x82f63b78) for checking chunks ----------
def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def chunk(ctype: int, payload: bytes) -> bytes:
    n = len(payload)
    return bytes([ctype, n & 0xFF, (n >> 8) & 0xFF, n >> 16]) + payload


def data_chunk(raw: bytes, compressed: bool) -> bytes:
    crc = struct.pack("<I", masked_crc(raw))
    if compressed:
        return chunk(0x00, crc + bytes(cramjam.snappy.compress_raw(raw)))
    return chunk(0x01, crc + raw)


def parse_chunks(stream: bytes):
    """[(type, payload)] of a framed stream; asserts it is well-formed."""
    out, pos = [], 0
    while pos < len(stream):
        assert len(stream) - pos >= 4
        t = stream[pos]
        n = int.from_bytes(stream[pos + 1:pos + 4], "little")
        assert len(stream) - pos - 4 >= n
        out.append((t, stream[pos + 4:pos + 4 + n]))
        pos += 4 + n
    return out


def test_crc32c_reference():
    assert crc32c(b"123456789") == 0xE3069283


# -- snappy: exact bytes ------------------------------------------------------------------------
def test_snappy_ok_frame_matches_nsqd_bytes():
    assert SnappyEncoder().encode(OK_FRAME) == SNAPPY_OK


def test_snappy_decodes_nsqd_bytes():
    assert SnappyDecoder().decode(SNAPPY_OK) == OK_FRAME


def test_snappy_stream_identifier_only_once():
    e = SnappyEncoder()
    first = e.encode(OK_FRAME)
    second = e.encode(OK_FRAME)
    assert first.startswith(SNAPPY_STREAM_IDENTIFIER)
    assert second == first[len(SNAPPY_STREAM_IDENTIFIER):]
    assert e.encode(b"") == b""
    assert SnappyDecoder().decode(first + second) == OK_FRAME * 2


def test_snappy_empty_before_first_chunk():
    e = SnappyEncoder()
    assert e.encode(b"") == b""
    assert e.encode(OK_FRAME) == SNAPPY_OK


# -- snappy: chunk structure --------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 100, 65535, 65536, 65537, 200_000, 1_100_000])
@pytest.mark.parametrize("kind", ["text", "random"])
def test_snappy_chunks_are_valid(size, kind):
    rnd = random.Random(size)
    if kind == "random":
        data = rnd.randbytes(size)
    else:
        data = (b"the quick brown fox %d " % size * (size // 20 + 1))[:size]
    stream = SnappyEncoder().encode(data)
    chunks = parse_chunks(stream)
    assert chunks[0] == (0xFF, b"sNaPpY")
    rebuilt = b""
    for t, payload in chunks[1:]:
        assert t in (0x00, 0x01)
        crc = struct.unpack("<I", payload[:4])[0]
        if t == 0x00:
            raw = bytes(cramjam.snappy.decompress_raw(payload[4:]))
            # compressed only when it saves at least 1/8
            assert len(payload) - 4 < len(raw) - len(raw) // 8
        else:
            raw = payload[4:]
        assert 0 < len(raw) <= 65536
        if len(raw) <= 70000 and (size < 300_000):
            assert crc == masked_crc(raw)
        rebuilt += raw
    assert rebuilt == data
    assert len(chunks) - 1 == (size + 65535) // 65536
    if kind == "random":
        assert all(t == 0x01 for t, _ in chunks[1:])
    else:
        assert all(t == 0x00 for t, _ in chunks[1:] if len(_) > 100)


# -- snappy: round trips and arbitrary splits ----------------------------------------------------
def test_snappy_round_trip_split_at_every_byte():
    e = SnappyEncoder()
    msgs = [OK_FRAME, b"x" * 300, os.urandom(50), b"PUB t\n\x00\x00\x00\x05hello" * 20]
    stream = b"".join(e.encode(m) for m in msgs)
    want = b"".join(msgs)
    for cut in range(len(stream) + 1):
        d = SnappyDecoder()
        assert d.decode(stream[:cut]) + d.decode(stream[cut:]) == want
    # byte by byte
    d = SnappyDecoder()
    assert b"".join(d.decode(stream[i:i + 1]) for i in range(len(stream))) == want


def test_snappy_incremental_returns_whole_chunks():
    stream = SnappyEncoder().encode(OK_FRAME)
    d = SnappyDecoder()
    assert d.decode(stream[:-1]) == b""
    assert d.decode(stream[-1:]) == OK_FRAME


@pytest.mark.parametrize("piece", [1, 7, 1000, 65536, 100_000])
def test_snappy_large_payload_round_trip(piece):
    rnd = random.Random(piece)
    data = rnd.randbytes(600_000) + b"abc" * 400_000 + rnd.randbytes(70_000)
    e = SnappyEncoder()
    stream = e.encode(data[:1000]) + e.encode(data[1000:])
    d = SnappyDecoder()
    if piece == 1:
        stream_parts = [stream[i:i + 1] for i in range(0, 300_000)] + [stream[300_000:]]
    else:
        stream_parts = [stream[i:i + piece] for i in range(0, len(stream), piece)]
    out = b"".join(d.decode(p) for p in stream_parts)
    assert out == data


def test_snappy_large_compressed_message_many_flushes():
    """A multi-megabyte PUB body through the codec pair, written in 16 KiB flushes and
    read in odd-sized segments (upstream nsq#1039 / pynsq#207 class of failures)."""
    body = (b"0123456789abcdef" * 4096 + os.urandom(4096)) * 80   # ~5.5 MB
    cmd = b"PUB big\n" + struct.pack(">i", len(body)) + body
    e = SnappyEncoder()
    wire = b"".join(e.encode(cmd[i:i + 16384]) for i in range(0, len(cmd), 16384))
    d = SnappyDecoder()
    out = bytearray()
    i, rnd = 0, random.Random(5)
    while i < len(wire):
        n = rnd.randint(1, 70_000)
        out += d.decode(wire[i:i + n])
        i += n
    assert bytes(out) == cmd


# -- snappy: interoperability with the python-snappy style framing of cramjam -------------------
def test_snappy_interop_cramjam_framing():
    rnd = random.Random(3)
    data = rnd.randbytes(100_000) + b"z" * 200_000
    # ours -> cramjam
    e = SnappyEncoder()
    ours = e.encode(data[:5]) + e.encode(data[5:150_000]) + e.encode(data[150_000:])
    assert bytes(cramjam.snappy.decompress(ours)) == data
    # cramjam one-shot -> ours
    assert SnappyDecoder().decode(bytes(cramjam.snappy.compress(data))) == data
    # cramjam streaming Compressor -> ours
    c = cramjam.snappy.Compressor()
    c.compress(data[:70_000])
    c.compress(data[70_000:])
    streamed = bytes(c.finish())
    d = SnappyDecoder()
    out = b"".join(d.decode(streamed[i:i + 4096]) for i in range(0, len(streamed), 4096))
    assert out == data


def test_snappy_decoder_accepts_hand_built_chunks():
    raw1, raw2, raw3 = b"hello " * 50, b"\x00\x01\x02", os.urandom(65536)
    stream = (SNAPPY_STREAM_IDENTIFIER
              + data_chunk(raw1, compressed=True)
              + chunk(0xFE, b"\x00" * 17)                 # padding
              + data_chunk(raw2, compressed=False)
              + chunk(0x80, b"skip me")                   # reserved skippable
              + SNAPPY_STREAM_IDENTIFIER                  # identifier may repeat
              + chunk(0xFD, b"")                          # empty skippable
              + data_chunk(raw3, compressed=False)        # max-size uncompressed chunk
              + data_chunk(raw2, compressed=True))
    want = raw1 + raw2 + raw3 + raw2
    assert SnappyDecoder().decode(stream) == want
    for cut in list(range(0, 40)) + list(range(len(stream) - 40, len(stream))):
        d = SnappyDecoder()
        assert d.decode(stream[:cut]) + d.decode(stream[cut:]) == want


def test_snappy_large_skippable_chunk_across_reads():
    skippable = chunk(0x99, os.urandom(200_000))
    stream = SNAPPY_STREAM_IDENTIFIER + skippable + data_chunk(b"after", False)
    d = SnappyDecoder()
    out = b"".join(d.decode(stream[i:i + 3000]) for i in range(0, len(stream), 3000))
    assert out == b"after"


# -- snappy: corrupt input -----------------------------------------------------------------------
def _decode_all(stream, step=None):
    d = SnappyDecoder()
    if step is None:
        return d.decode(stream)
    return b"".join(d.decode(stream[i:i + step]) for i in range(0, len(stream), step))


@pytest.mark.parametrize("step", [None, 1, 5])
@pytest.mark.parametrize("stream,message", [
    # no stream identifier first
    (data_chunk(b"abc", False), "snappy: corrupt input"),
    # bad identifier body / length
    (b"\xff\x06\x00\x00sNaPpZ", "snappy: corrupt input"),
    (b"\xff\x07\x00\x00sNaPpYY", "snappy: corrupt input"),
    # reserved unskippable chunk types
    (SNAPPY_STREAM_IDENTIFIER + chunk(0x02, b"abcd"), "snappy: unsupported input"),
    (SNAPPY_STREAM_IDENTIFIER + chunk(0x7F, b""), "snappy: unsupported input"),
    # bad CRC (uncompressed and compressed)
    (SNAPPY_STREAM_IDENTIFIER + chunk(0x01, b"\x00\x00\x00\x00abc"), "snappy: corrupt input"),
    (SNAPPY_STREAM_IDENTIFIER + chunk(0x00, b"\x00\x00\x00\x00"
                                      + bytes(cramjam.snappy.compress_raw(b"a" * 100))),
     "snappy: corrupt input"),
    # chunk shorter than its checksum
    (SNAPPY_STREAM_IDENTIFIER + chunk(0x01, b"ab"), "snappy: corrupt input"),
    # undecodable block
    (SNAPPY_STREAM_IDENTIFIER + chunk(0x00, b"\x00\x00\x00\x00\xff\xff\xff\xff\x0f"),
     "snappy: corrupt input"),
    # too long chunks
    (SNAPPY_STREAM_IDENTIFIER + b"\x01\x05\x00\x01", "snappy: corrupt input"),
    (SNAPPY_STREAM_IDENTIFIER + b"\x00\xff\xff\xff", "snappy: corrupt input"),
])
def test_snappy_corrupt(stream, message, step):
    with pytest.raises(CompressionError) as ei:
        _decode_all(stream, step)
    assert ei.value.message == message
    assert str(ei.value).startswith(message)


def test_snappy_decoded_chunk_over_64k_rejected():
    raw = b"q" * 70_000
    stream = SNAPPY_STREAM_IDENTIFIER + data_chunk(raw, compressed=True)
    with pytest.raises(CompressionError):
        SnappyDecoder().decode(stream)


def test_snappy_error_is_sticky():
    d = SnappyDecoder()
    with pytest.raises(CompressionError):
        d.decode(b"\x01\x00\x00\x00")
    with pytest.raises(CompressionError):
        d.decode(SNAPPY_OK)


def test_snappy_flipped_bits_never_crash():
    rnd = random.Random(11)
    good = SnappyEncoder().encode(b"some message body " * 500 + os.urandom(300))
    for _ in range(300):
        bad = bytearray(good)
        bad[rnd.randrange(len(bad))] ^= 1 << rnd.randrange(8)
        try:
            SnappyDecoder().decode(bytes(bad))
        except CompressionError:
            pass


# -- deflate ---------------------------------------------------------------------------------------
def test_deflate_decodes_nsqd_bytes():
    assert DeflateDecoder().decode(DEFLATE_OK_GO) == OK_FRAME


def test_deflate_ok_frame_inflates_like_go():
    ours = DeflateEncoder(6).encode(OK_FRAME)
    assert ours.endswith(b"\x00\x00\xff\xff")
    assert zlib.decompressobj(-15).decompress(ours) == OK_FRAME
    d = zlib.decompressobj(-15)
    assert d.decompress(DEFLATE_OK_GO) == OK_FRAME


@pytest.mark.parametrize("level", [-2, -1, 0, 1, 6, 9])
def test_deflate_round_trip_each_flush_complete(level):
    e, d = DeflateEncoder(level), DeflateDecoder()
    rnd = random.Random(level)
    for i in range(30):
        msg = rnd.randbytes(rnd.randint(0, 3000)) + b"abc" * i
        # every flush can be inflated completely on its own arrival (sync flush)
        assert d.decode(e.encode(msg)) == msg


def test_deflate_invalid_level():
    with pytest.raises(ValueError):
        DeflateEncoder(10)
    with pytest.raises(ValueError):
        DeflateEncoder(-3)


def test_deflate_split_at_every_byte():
    e = DeflateEncoder(6)
    msgs = [OK_FRAME, b"x" * 300, os.urandom(50)]
    stream = b"".join(e.encode(m) for m in msgs)
    want = b"".join(msgs)
    for cut in range(len(stream) + 1):
        d = DeflateDecoder()
        assert d.decode(stream[:cut]) + d.decode(stream[cut:]) == want


def test_deflate_large_payload():
    body = os.urandom(1_500_000) + b"y" * 3_000_000
    e = DeflateEncoder(1)
    wire = b"".join(e.encode(body[i:i + 16384]) for i in range(0, len(body), 16384))
    d = DeflateDecoder()
    out = b"".join(d.decode(wire[i:i + 65536]) for i in range(0, len(wire), 65536))
    assert out == body


def test_deflate_interop_with_zlib_client():
    # a pynsq-style client: compressobj(level, DEFLATED, -15) + Z_SYNC_FLUSH per command
    c = zlib.compressobj(3, zlib.DEFLATED, -15)
    wire = c.compress(b"NOP\n") + c.flush(zlib.Z_SYNC_FLUSH)
    assert DeflateDecoder().decode(wire) == b"NOP\n"


def test_deflate_corrupt():
    d = DeflateDecoder()
    with pytest.raises(CompressionError) as ei:
        d.decode(b"\xff\xff\xff\xff")
    assert ei.value.message == "flate: corrupt input"
    with pytest.raises(CompressionError):      # sticky
        d.decode(DEFLATE_OK_GO)


def test_deflate_data_after_final_block():
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    wire = c.compress(b"abc") + c.flush(zlib.Z_FINISH)
    d = DeflateDecoder()
    assert d.decode(wire) == b"abc"
    assert d.eof
    with pytest.raises(CompressionError):
        d.decode(b"more")
    d2 = DeflateDecoder()
    with pytest.raises(CompressionError):
        d2.decode(wire + b"\x00")
