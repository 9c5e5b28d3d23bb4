"""WriteBuffer: a contiguous dirty range kept as the writers' buffers, cut at any byte without copies."""
from __future__ import annotations

import os

import pytest

from threefs.common.buffers import byte_views, slice_views
from threefs.fuse.write_buffer import SMALL_PIECE, TAIL_MAX, WriteBuffer


def joined(parts) -> bytes:
    return b"".join(bytes(p) for p in parts)


def test_large_writes_are_kept_by_reference_and_small_ones_share_a_tail() -> None:
    b = WriteBuffer()
    big = os.urandom(SMALL_PIECE)
    b.add(100, big)
    small = [os.urandom(1000) for _ in range(5)]
    for s in small:
        b.add(b.end, s)
    assert b.off == 100 and len(b) == len(big) + 5000 and b.end == 100 + len(b)
    assert b.parts[0] is big                       # no copy of a large write
    assert len(b.parts) == 2                       # the five small ones were copied into one tail
    parts, off = b.take()
    assert off == 100 and joined(parts) == big + b"".join(small)
    assert not b and b.parts == []


def test_take_cuts_inside_a_piece_and_the_rest_stays_in_order() -> None:
    b = WriteBuffer()
    data = [os.urandom(n) for n in (3000, SMALL_PIECE * 2, 70_000, 10)]
    for x in data:
        b.add(b.end, x)
    whole = b"".join(data)
    first, off = b.take(SMALL_PIECE + 3000)        # ends in the middle of the second piece
    assert off == 0 and joined(first) == whole[:SMALL_PIECE + 3000]
    assert b.off == SMALL_PIECE + 3000
    b.add(b.end, b"z" * 5)                         # the cut tail is a view now: a new tail starts
    rest, off = b.take()
    assert off == SMALL_PIECE + 3000 and joined(rest) == whole[SMALL_PIECE + 3000:] + b"z" * 5


def test_the_tail_is_not_resized_while_a_taken_view_of_it_lives() -> None:
    b = WriteBuffer()
    for _ in range(10):
        b.add(b.end, b"a" * 100)
    head, _ = b.take(500)                          # a view into the tail bytearray
    b.add(b.end, b"b" * 100)                       # must not resize the exported bytearray
    assert joined(head) == b"a" * 500
    rest, off = b.take()
    assert off == 500 and joined(rest) == b"a" * 500 + b"b" * 100


def test_a_tail_stops_growing_at_its_limit() -> None:
    b = WriteBuffer()
    piece = b"x" * (SMALL_PIECE - 1)
    for _ in range(TAIL_MAX // len(piece) + 2):
        b.add(b.end, piece)
    assert all(len(p) <= TAIL_MAX for p in b.parts) and len(b.parts) >= 2


def test_copy_into_places_bytes_at_their_offsets_and_gaps_are_refused() -> None:
    b = WriteBuffer()
    b.add(4, b"abcd")
    b.add(8, b"ef")
    dest = bytearray(12)
    b.copy_into(dest)
    assert dest == b"\0\0\0\0abcdef\0\0"
    with pytest.raises(ValueError):
        b.add(20, b"gap")


def test_slice_views_covers_any_range_of_pieces() -> None:
    pieces = [os.urandom(n) for n in (5, 0, 17, 1, 40)]
    parts = byte_views(pieces)
    whole = b"".join(pieces)
    for start in range(len(whole)):
        for n in (1, 3, 18, len(whole) - start):
            if start + n <= len(whole):
                assert joined(slice_views(parts, start, n)) == whole[start:start + n]
    assert byte_views(None) == [] and len(byte_views([b"", b"x"])) == 1
