"""The KV layer's parts: key layouts, RangeSet, and MemoryKV's history garbage collection."""
from __future__ import annotations

import random

import pytest

from threefs.kv import keys
from threefs.kv.memory import MemoryKV
from threefs.kv.ranges import RangeSet


def test_key_layouts() -> None:
    assert keys.inode_key(0x0102) == b"INOD\x02\x01\x00\x00\x00\x00\x00\x00"
    assert keys.dirent_key(1, "é") == b"DENT" + (1).to_bytes(8, "little") + "é".encode()
    assert keys.dirent_key(7, "a").startswith(keys.dirent_prefix(7))
    assert keys.session_key(5, b"s" * 16) == b"INOS" + (5).to_bytes(8, "little") + b"s" * 16
    assert keys.session_key(5, b"s" * 16).startswith(keys.session_prefix(5))
    assert keys.idem_key(b"c" * 16, b"r" * 16) == b"IDEM" + b"r" * 16 + b"c" * 16
    assert keys.node_key(1) == b"NODE\x00\x00\x00\x01"
    assert keys.chain_table_key(1, 2) == b"CHIT\x00\x00\x00\x01\x00\x00\x00\x02"
    assert keys.chain_info_key(0x01020304) == b"CHIF\x01\x02\x03\x04"
    assert keys.target_info_key(9) == b"TGIF" + (9).to_bytes(8, "big")
    assert keys.single_key("inode-alloc-3") == b"SINGinode-alloc-3"
    assert keys.user_key(1000) == b"USER" + (1000).to_bytes(4, "big")
    assert keys.meta_server_key(42) == b"META-00000042"
    assert keys.config_key("META", 2) < keys.config_key("META", 1)  # newest first
    assert all(len(p) == 4 for p in keys.PREFIXES) and len(set(keys.PREFIXES)) == len(keys.PREFIXES)
    assert {keys.INODE, keys.DIRENT, keys.XATTR, keys.USER, keys.NODE} <= set(keys.PREFIXES)
    with pytest.raises(ValueError):
        keys.session_key(1, b"short")
    with pytest.raises(OverflowError):
        keys.inode_key(-1)


def test_big_endian_ids_scan_in_order_and_prefix_end_bounds_a_prefix() -> None:
    ids = [0, 1, 255, 256, 65536, 2**32 - 1]
    assert sorted(keys.node_key(i) for i in ids) == [keys.node_key(i) for i in ids]
    p = keys.dirent_prefix(3)
    end = keys.prefix_end(p)
    assert p < keys.dirent_key(3, "\U0010ffff" * 3) < end
    assert not keys.dirent_key(4, "").startswith(p) and keys.dirent_key(4, "") >= end
    assert keys.prefix_end(b"a\xff\xff") == b"b"
    assert keys.prefix_end(keys.INODE) == b"INOE"
    with pytest.raises(ValueError):
        keys.prefix_end(b"\xff\xff")


def test_range_set_matches_a_model() -> None:
    rng = random.Random(7)
    universe = [bytes([c]) for c in range(ord("a"), ord("a") + 20)]
    for _ in range(50):
        rs, members = RangeSet(), set()
        for _ in range(rng.randrange(1, 8)):
            b, e = sorted(rng.sample(universe + [b"z"], 2))
            rs.add(b, e)
            members |= {k for k in universe if b <= k < e}
        intervals = list(rs)
        assert all(b < e for b, e in intervals)
        assert all(intervals[i][1] < intervals[i + 1][0] for i in range(len(intervals) - 1))
        assert {k for k in universe if rs.contains(k)} == members
        for _ in range(20):
            b, e = sorted(rng.sample(universe, 2))
            assert rs.overlaps(b, e) == any(b <= k < e for k in members)
    empty = RangeSet()
    empty.add(b"b", b"a")
    assert not empty and not empty.contains(b"a") and not empty.overlaps(b"a", b"z")


@pytest.mark.asyncio
async def test_memory_history_is_collected() -> None:
    engine = MemoryKV()
    for i in range(100):
        txn = engine.transaction()
        txn.set(b"hot", b"%d" % i)
        txn.set(b"tmp%d" % i, b"x")
        if i:
            txn.clear(b"tmp%d" % (i - 1))
        await txn.commit()
    txn = engine.transaction()
    txn.clear_range(b"tmp", b"tmq")
    await txn.commit()
    txn = engine.transaction()
    txn.set(b"other", b"y")
    await txn.commit()
    assert len(engine._history[b"hot"]) <= 2
    assert engine._keys == [b"hot", b"other"]
    assert engine.stats["commits"] == 102
