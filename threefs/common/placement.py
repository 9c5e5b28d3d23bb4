"""Data placement computed by clients: chunk ids from (inode, index), chains from the layout.

chunk_id = 0x0000 | BE64(inode) | BE16(track) | BE32(index): 16 bytes, sorted by inode then index.
A file's chains are a deterministic shuffle of a range of chain-table indexes (DESIGN.md §3.5):
the shuffle is our own splitmix64 Fisher-Yates, identical on every platform and Python version.
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

from threefs.proto import common_pb2

_CHUNK = struct.Struct(">HQHI")
MAX_CHUNK_SIZE = 64 << 20
MIN_CHUNK_SIZE = 4 << 10
SHUFFLE_NONE = 0
SHUFFLE_SPLITMIX = 1
_MASK = (1 << 64) - 1


def chunk_id(inode: int, index: int, track: int = 0) -> bytes:
    """The 16-byte id of chunk `index` of `inode`."""
    return _CHUNK.pack(0, inode, track, index)


def parse_chunk_id(cid: bytes) -> tuple[int, int, int]:
    """(inode, track, index) of a chunk id."""
    _, inode, track, index = _CHUNK.unpack(cid)
    return inode, track, index


def chunk_range(inode: int) -> tuple[bytes, bytes]:
    """Half-open chunk-id range holding every chunk of `inode`."""
    return chunk_id(inode, 0, 0), chunk_id(inode, 0, 1)


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, z ^ (z >> 31)


def shuffled(values: Sequence[int], seed: int) -> list[int]:
    """Fisher-Yates shuffle driven by splitmix64(seed): deterministic everywhere."""
    out = list(values)
    state = seed & _MASK
    for i in range(len(out) - 1, 0, -1):
        state, r = _splitmix64(state)
        j = r % (i + 1)
        out[i], out[j] = out[j], out[i]
    return out


def chain_indexes(layout: common_pb2.Layout) -> list[int]:
    """The 1-based chain-table indexes a file stripes over, in stripe order."""
    kind = layout.WhichOneof("chains")
    if kind == "list":
        return list(layout.list.chain_indexes)
    if kind == "range":
        r = layout.range
        base = list(range(r.base_index, r.base_index + layout.stripe_size))
        return shuffled(base, r.seed) if r.shuffle == SHUFFLE_SPLITMIX else base
    raise ValueError("layout has no chains (directory default layout)")


def chain_of(layout: common_pb2.Layout, index: int, table_chains: Sequence[int],
             indexes: Sequence[int] | None = None) -> int:
    """Chain id holding chunk `index` of a file with `layout` (table_chains: the table's chain ids)."""
    idx = indexes if indexes is not None else chain_indexes(layout)
    ci = idx[index % len(idx)]
    return table_chains[(ci - 1) % len(table_chains)]


def validate_layout(layout: common_pb2.Layout, table_size: int | None = None) -> None:
    """Raise ValueError when a layout cannot be used (bad chunk size or stripe)."""
    cs = layout.chunk_size
    if cs < MIN_CHUNK_SIZE or cs > MAX_CHUNK_SIZE or cs & (cs - 1):
        raise ValueError(f"chunk size {cs} must be a power of two between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE}")
    if layout.stripe_size < 1:
        raise ValueError("stripe size must be at least 1")
    if table_size is not None and layout.stripe_size > table_size:
        raise ValueError(f"stripe size {layout.stripe_size} exceeds the {table_size} chains of table {layout.table_id}")


def allocate(default: common_pb2.Layout, counter: int, table_size: int, seed: int) -> common_pb2.Layout:
    """A file layout from a directory default: ChainRange starting at `counter` mod table size."""
    out = common_pb2.Layout()
    out.CopyFrom(default)
    stripe = min(default.stripe_size, table_size)
    out.stripe_size = stripe
    out.range.base_index = counter % table_size + 1
    out.range.shuffle = SHUFFLE_SPLITMIX
    out.range.seed = seed & _MASK
    return out
