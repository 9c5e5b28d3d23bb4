"""Behavioural suite for KV engines: each test runs against MemoryKV and RocksKV."""
from __future__ import annotations

import asyncio
import gc
import random

import pytest

from threefs.common.errors import Code, FSError
from threefs.kv.engine import KVEngine, Transaction, TransactionConflict, run_txn

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def put(engine: KVEngine, **kv: bytes | None) -> None:
    """Commit one transaction setting (or clearing, for None) the given str keys."""
    txn = engine.transaction()
    for k, v in kv.items():
        if v is None:
            txn.clear(k.encode())
        else:
            txn.set(k.encode(), v)
    await txn.commit()


async def read(engine: KVEngine, key: bytes) -> bytes | None:
    txn = engine.transaction()
    try:
        return await txn.get(key)
    finally:
        txn.cancel()


async def scan(engine: KVEngine, begin: bytes = b"", end: bytes = b"\xff") -> list[tuple[bytes, bytes]]:
    txn = engine.transaction()
    try:
        return await txn.get_range(begin, end)
    finally:
        txn.cancel()


async def test_get_set_clear(engine: KVEngine) -> None:
    assert await read(engine, b"a") is None
    await put(engine, a=b"1", b=b"2")
    assert await read(engine, b"a") == b"1"
    await put(engine, a=b"3")
    assert await read(engine, b"a") == b"3"
    await put(engine, a=None)
    assert await read(engine, b"a") is None
    assert await read(engine, b"b") == b"2"
    await put(engine, a=b"again")
    assert await scan(engine) == [(b"a", b"again"), (b"b", b"2")]


async def test_binary_keys_and_empty_values(engine: KVEngine) -> None:
    txn = engine.transaction()
    txn.set(b"\x00\xff\x00", b"")
    txn.set(b"\xfe", b"\x00")
    await txn.commit()
    assert await read(engine, b"\x00\xff\x00") == b""
    assert await scan(engine, b"", b"\xff") == [(b"\x00\xff\x00", b""), (b"\xfe", b"\x00")]


async def test_read_your_writes(engine: KVEngine) -> None:
    await put(engine, a=b"old", b=b"old")
    txn = engine.transaction()
    txn.set(b"a", b"new")
    txn.clear(b"b")
    txn.set(b"c", b"fresh")
    assert await txn.get(b"a") == b"new"
    assert await txn.snapshot_get(b"a") == b"new"
    assert await txn.get(b"b") is None
    assert await txn.get(b"c") == b"fresh"
    assert await txn.get_range(b"a", b"z") == [(b"a", b"new"), (b"c", b"fresh")]
    assert await read(engine, b"a") == b"old"  # not visible to others before commit
    await txn.commit()
    assert await scan(engine) == [(b"a", b"new"), (b"c", b"fresh")]


async def test_clear_range(engine: KVEngine) -> None:
    await put(engine, a=b"1", b=b"2", ba=b"3", c=b"4", d=b"5")
    txn = engine.transaction()
    txn.clear_range(b"b", b"d")
    assert await txn.get(b"ba") is None
    txn.set(b"bb", b"kept")  # a set after clear_range survives
    assert await txn.get_range(b"", b"\xff") == [(b"a", b"1"), (b"bb", b"kept"), (b"d", b"5")]
    await txn.commit()
    assert await scan(engine) == [(b"a", b"1"), (b"bb", b"kept"), (b"d", b"5")]
    txn = engine.transaction()
    txn.set(b"x", b"gone")
    txn.clear_range(b"w", b"y")  # a clear_range after set removes it
    txn.clear_range(b"c", b"c")  # empty range: no effect
    assert await txn.get(b"x") is None
    await txn.commit()
    assert await read(engine, b"x") is None
    assert await read(engine, b"d") == b"5"


async def test_get_range_merges_buffer_forward_reverse_limit(engine: KVEngine) -> None:
    await put(engine, a=b"A", c=b"C", e=b"E", g=b"G", i=b"I")
    txn = engine.transaction()
    txn.set(b"b", b"b")  # insert
    txn.clear(b"c")  # delete stored
    txn.set(b"e", b"e2")  # overwrite stored
    txn.clear_range(b"f", b"h")  # hides g
    txn.set(b"j", b"j")  # after the last stored key
    full = [(b"a", b"A"), (b"b", b"b"), (b"e", b"e2"), (b"i", b"I"), (b"j", b"j")]
    assert await txn.get_range(b"a", b"z") == full
    assert await txn.get_range(b"a", b"z", reverse=True) == full[::-1]
    for limit in range(1, 7):
        assert await txn.get_range(b"a", b"z", limit=limit) == full[:limit]
        assert await txn.get_range(b"a", b"z", limit=limit, reverse=True) == full[::-1][:limit]
    assert await txn.get_range(b"b", b"i") == full[1:3]
    assert await txn.get_range(b"b", b"i", reverse=True) == full[1:3][::-1]
    assert await txn.get_range(b"e", b"e") == []
    assert await txn.get_range(b"z", b"a") == []
    with pytest.raises(ValueError):
        await txn.get_range(b"a", b"z", limit=-1)
    txn.cancel()


@pytest.mark.parametrize("seed", range(4))
async def test_reads_match_a_model(engine: KVEngine, seed: int) -> None:
    """Random writes, clears and range clears, read back through get and get_range, match a dict."""
    rng = random.Random(seed)
    alphabet = [bytes([c]) for c in b"abcdef"]
    keys = [x + y for x in alphabet for y in [b""] + alphabet]
    model: dict[bytes, bytes] = {}
    for round_ in range(6):
        txn = engine.transaction()
        local = dict(model)
        for _ in range(rng.randrange(1, 25)):
            op = rng.random()
            if op < 0.55:
                k, v = rng.choice(keys), b"%d-%d" % (round_, rng.randrange(100))
                txn.set(k, v)
                local[k] = v
            elif op < 0.8:
                k = rng.choice(keys)
                txn.clear(k)
                local.pop(k, None)
            else:
                b, e = sorted(rng.sample(keys, 2))
                txn.clear_range(b, e)
                local = {k: v for k, v in local.items() if not b <= k < e}
        for k in keys:
            assert await txn.get(k) == local.get(k)
        for _ in range(30):
            b, e = sorted([rng.choice(keys + [b"", b"z"]), rng.choice(keys + [b"", b"z"])])
            limit, reverse = rng.choice([0, 1, 2, 5]), rng.random() < 0.5
            want = sorted((k, v) for k, v in local.items() if b <= k < e)
            want = want[::-1] if reverse else want
            want = want[:limit] if limit else want
            got = await txn.get_range(b, e, limit=limit, reverse=reverse, snapshot=rng.random() < 0.5)
            assert got == want, (b, e, limit, reverse)
        await txn.commit()
        model = local
        assert await scan(engine, b"", b"z") == sorted(model.items())


async def test_snapshot_reads_do_not_conflict(engine: KVEngine) -> None:
    await put(engine, k=b"0")
    t1 = engine.transaction()
    assert await t1.snapshot_get(b"k") == b"0"
    assert await t1.get_range(b"a", b"z", snapshot=True) == [(b"k", b"0")]
    await put(engine, k=b"1", m=b"new")
    t1.set(b"other", b"x")
    await t1.commit()
    assert await read(engine, b"other") == b"x"


async def test_non_snapshot_read_conflicts(engine: KVEngine) -> None:
    await put(engine, k=b"0")
    t1 = engine.transaction()
    assert await t1.get(b"k") == b"0"
    await put(engine, k=b"1")
    t1.set(b"other", b"x")
    with pytest.raises(TransactionConflict) as info:
        await t1.commit()
    assert info.value.code == Code.TXN_CONFLICT and isinstance(info.value, FSError)
    assert await read(engine, b"other") is None


async def test_read_of_absent_key_conflicts_with_its_creation(engine: KVEngine) -> None:
    t1 = engine.transaction()
    assert await t1.get(b"new") is None
    await put(engine, new=b"1")
    t1.set(b"new", b"2")
    with pytest.raises(TransactionConflict):
        await t1.commit()
    assert await read(engine, b"new") == b"1"


async def test_read_version_is_consistent(engine: KVEngine) -> None:
    await put(engine, a=b"1", b=b"1")
    t1 = engine.transaction()
    await put(engine, a=b"2", c=b"2")
    await put(engine, b=None)
    assert await t1.snapshot_get(b"a") == b"1"
    assert await t1.get(b"b") == b"1"
    assert await t1.get_range(b"a", b"z") == [(b"a", b"1"), (b"b", b"1")]
    assert await t1.get_range(b"a", b"z", reverse=True, limit=1) == [(b"b", b"1")]
    t2 = engine.transaction()
    assert t2.read_version > t1.read_version
    assert await t2.get_range(b"a", b"z") == [(b"a", b"2"), (b"c", b"2")]
    t1.cancel()
    t2.cancel()


async def test_concurrent_conflicting_transactions_one_wins(engine: KVEngine) -> None:
    await put(engine, counter=b"0")
    txns = [engine.transaction() for _ in range(5)]
    for i, txn in enumerate(txns):
        assert await txn.get(b"counter") == b"0"
        txn.set(b"counter", b"%d" % (i + 1))
    results = await asyncio.gather(*(t.commit() for t in txns), return_exceptions=True)
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1
    assert all(isinstance(r, TransactionConflict) for r in results if r is not None)
    assert await read(engine, b"counter") == b"%d" % (winners[0] + 1)


async def test_run_txn_concurrent_increments_apply_exactly_once(engine: KVEngine) -> None:
    attempts = 0

    async def increment(txn: Transaction) -> int:
        nonlocal attempts
        attempts += 1
        n = int(await txn.get(b"counter") or b"0")
        await asyncio.sleep(0)  # let the other increments read the same value
        txn.set(b"counter", b"%d" % (n + 1))
        return n + 1

    results = await asyncio.wait_for(asyncio.gather(*(run_txn(engine, increment) for _ in range(50))), 30)
    assert sorted(results) == list(range(1, 51))
    assert await read(engine, b"counter") == b"50"
    assert attempts > 50  # there were conflicts, and they were retried


async def test_run_txn_gives_up_after_max_retries(engine: KVEngine) -> None:
    calls = 0

    async def always_conflicts(txn: Transaction) -> None:
        nonlocal calls
        calls += 1
        await txn.get(b"k")
        await put(engine, k=b"%d" % calls)
        txn.set(b"k", b"mine")

    with pytest.raises(TransactionConflict):
        await run_txn(engine, always_conflicts, max_retries=3, backoff=0.0001)
    assert calls == 4
    assert await read(engine, b"k") == b"4"


async def test_run_txn_propagates_other_errors_and_does_not_commit(engine: KVEngine) -> None:
    async def fails(txn: Transaction) -> None:
        txn.set(b"k", b"v")
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await run_txn(engine, fails)
    assert await read(engine, b"k") is None


async def test_range_read_conflicts_with_insert(engine: KVEngine) -> None:
    await put(engine, d1=b"x")
    t1 = engine.transaction()
    assert await t1.get_range(b"d", b"e") == [(b"d1", b"x")]
    await put(engine, d2=b"y")  # a phantom in the range t1 read
    t1.set(b"summary", b"1")
    with pytest.raises(TransactionConflict):
        await t1.commit()


async def test_snapshot_range_read_does_not_conflict(engine: KVEngine) -> None:
    await put(engine, d1=b"x")
    t1 = engine.transaction()
    assert await t1.get_range(b"d", b"e", snapshot=True) == [(b"d1", b"x")]
    await put(engine, d2=b"y")
    t1.set(b"summary", b"1")
    await t1.commit()


async def test_limited_range_read_conflicts_only_where_it_read(engine: KVEngine) -> None:
    await put(engine, b=b"1", d=b"1", f=b"1")
    t1 = engine.transaction()
    assert await t1.get_range(b"a", b"z", limit=1) == [(b"b", b"1")]
    t2 = engine.transaction()
    assert await t2.get_range(b"a", b"z", limit=1, reverse=True) == [(b"f", b"1")]
    await put(engine, c=b"new")  # beyond t1's covered [a, b], before t2's [f, z)
    t1.set(b"0t1", b"ok")
    t2.set(b"0t2", b"ok")
    await t1.commit()
    await t2.commit()
    t3 = engine.transaction()
    assert await t3.get_range(b"a", b"z", limit=2) == [(b"b", b"1"), (b"c", b"new")]
    await put(engine, bb=b"inside")
    t3.set(b"t3", b"no")
    with pytest.raises(TransactionConflict):
        await t3.commit()


async def test_range_read_conflicts_with_delete(engine: KVEngine) -> None:
    await put(engine, d1=b"x", d2=b"y")
    t1 = engine.transaction()
    assert len(await t1.get_range(b"d", b"e")) == 2
    await put(engine, d2=None)
    t1.set(b"summary", b"1")
    with pytest.raises(TransactionConflict):
        await t1.commit()


async def test_clear_range_conflicts_with_point_and_range_readers(engine: KVEngine) -> None:
    await put(engine, d1=b"x", d2=b"y")
    t1, t2, t3 = engine.transaction(), engine.transaction(), engine.transaction()
    assert await t1.get(b"d1") == b"x"
    assert len(await t2.get_range(b"d15", b"e")) == 1
    assert await t3.get(b"zz") is None
    t = engine.transaction()
    t.clear_range(b"d", b"e")
    await t.commit()
    for txn in (t1, t2, t3):
        txn.set(b"w", b"1")
    with pytest.raises(TransactionConflict):
        await t1.commit()
    with pytest.raises(TransactionConflict):
        await t2.commit()
    await t3.commit()  # read outside the cleared range


async def test_non_conflicting_concurrent_transactions_both_commit(engine: KVEngine) -> None:
    await put(engine, a=b"0", b=b"0")
    t1, t2 = engine.transaction(), engine.transaction()
    assert await t1.get(b"a") == b"0"
    assert await t2.get(b"b") == b"0"
    assert await t1.get_range(b"a", b"b") == [(b"a", b"0")]
    t1.set(b"a", b"1")
    t2.set(b"b", b"2")
    await asyncio.gather(t1.commit(), t2.commit())
    assert await scan(engine) == [(b"a", b"1"), (b"b", b"2")]


async def test_blind_writes_do_not_conflict(engine: KVEngine) -> None:
    t1, t2 = engine.transaction(), engine.transaction()
    t1.set(b"k", b"first")
    t2.set(b"k", b"second")
    await t1.commit()
    await t2.commit()
    assert await read(engine, b"k") == b"second"


async def test_read_your_own_write_does_not_add_conflict(engine: KVEngine) -> None:
    t1 = engine.transaction()
    t1.set(b"k", b"mine")
    assert await t1.get(b"k") == b"mine"
    await put(engine, k=b"theirs")
    await t1.commit()
    assert await read(engine, b"k") == b"mine"


async def test_declared_read_conflicts(engine: KVEngine) -> None:
    t1, t2, t3 = engine.transaction(), engine.transaction(), engine.transaction()
    t1.add_read_conflict(b"k")
    t2.add_read_conflict_range(b"j", b"l")
    t3.add_read_conflict_range(b"l", b"m")
    await put(engine, k=b"1")
    for txn in (t1, t2, t3):
        txn.set(b"w", b"1")
    with pytest.raises(TransactionConflict):
        await t1.commit()
    with pytest.raises(TransactionConflict):
        await t2.commit()
    await t3.commit()


async def test_read_only_commit_and_cancel(engine: KVEngine) -> None:
    await put(engine, k=b"0")
    t1 = engine.transaction()
    assert await t1.get(b"k") == b"0"
    await put(engine, k=b"1")
    await t1.commit()  # read-only: nothing to check
    t2 = engine.transaction()
    t2.set(b"k", b"cancelled")
    t2.cancel()
    t2.cancel()
    with pytest.raises(RuntimeError):
        await t2.get(b"k")
    with pytest.raises(RuntimeError):
        t2.set(b"k", b"v")
    with pytest.raises(RuntimeError):
        await t1.commit()
    assert await read(engine, b"k") == b"1"


async def test_transaction_too_old(make_engine) -> None:
    engine = make_engine(max_log=8)
    try:
        old = engine.transaction()
        assert await old.get(b"k0") is None
        for i in range(20):
            await put(engine, **{f"k{i + 1}": b"v"})
        old.set(b"x", b"1")
        with pytest.raises(TransactionConflict, match="too old"):
            await old.commit()
        fresh = engine.transaction()
        assert await fresh.get(b"k20") == b"v"
        fresh.set(b"x", b"1")
        await fresh.commit()
    finally:
        await engine.close()


async def test_conflict_log_is_pruned_and_dropped_transactions_do_not_leak(engine: KVEngine) -> None:
    tracker = engine.tracker  # type: ignore[attr-defined]
    dropped = engine.transaction()
    await dropped.get(b"k")
    del dropped
    gc.collect()
    for i in range(50):
        await put(engine, k=b"%d" % i, **{f"n{i}": b"v"})
    assert not tracker._live
    assert len(tracker._log) <= 3 and len(tracker._last_write) <= 3


async def test_closed_engine_refuses_transactions(engine: KVEngine) -> None:
    await put(engine, k=b"1")
    late = engine.transaction()
    late.set(b"k", b"late")
    await engine.close()
    with pytest.raises(FSError) as info:
        engine.transaction()
    assert info.value.code == Code.UNAVAILABLE
    with pytest.raises(FSError):
        await late.commit()
    await engine.close()  # idempotent
