"""Exactly-once update channels: the per-target result cache and the client's channel pool."""
from __future__ import annotations

import asyncio

import pytest

from threefs.common.errors import Code, FSError, make_error
from threefs.storage.channels import ChannelCache, ChannelPool


async def test_same_seqnum_returns_cached_result_without_executing_again():
    cache = ChannelCache()
    calls = []

    async def op(v):
        calls.append(v)
        return v

    assert await cache.run(("c", 1, 7), 1, lambda: op("first")) == "first"
    assert await cache.run(("c", 1, 7), 1, lambda: op("retry")) == "first"        # a lost-reply retry
    assert calls == ["first"]
    assert await cache.run(("c", 1, 7), 2, lambda: op("next")) == "next"         # the channel's next update
    with pytest.raises(FSError) as ei:
        await cache.run(("c", 1, 7), 1, lambda: op("stale"))                     # an old retry arriving late
    assert ei.value.code == Code.DUPLICATE_UPDATE
    assert calls == ["first", "next"]
    assert await cache.run(("c", 2, 7), 1, lambda: op("other chain")) == "other chain"
    assert cache.stats["replayed"] == 1 and cache.stats["duplicates"] == 1


async def test_failed_attempt_is_executed_again():
    cache = ChannelCache()
    attempts = []

    async def op():
        attempts.append(1)
        if len(attempts) == 1:
            raise make_error(Code.UNAVAILABLE, "successor gone")
        return "ok"

    with pytest.raises(FSError):
        await cache.run("k", 5, op)
    assert await cache.run("k", 5, op) == "ok"
    assert await cache.run("k", 5, op) == "ok"
    assert len(attempts) == 2


async def test_retry_while_running_waits_for_the_running_execution():
    cache = ChannelCache()
    gate = asyncio.Event()
    calls = []

    async def slow():
        calls.append(1)
        await gate.wait()
        return "done"

    first = asyncio.create_task(cache.run("k", 1, slow))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.run("k", 1, slow))
    await asyncio.sleep(0.01)
    assert not second.done()
    gate.set()
    assert await first == "done" and await second == "done"
    assert calls == [1]


async def test_other_update_version_under_same_seqnum_executes():
    cache = ChannelCache()
    assert await cache.run("k", 1, lambda: asyncio.sleep(0, "v3"), version=3) == "v3"
    assert await cache.run("k", 1, lambda: asyncio.sleep(0, "again"), version=3) == "v3"
    assert await cache.run("k", 1, lambda: asyncio.sleep(0, "v4"), version=4) == "v4"


async def test_untagged_updates_are_not_cached_and_cache_is_bounded():
    cache = ChannelCache(max_entries=3)
    assert await cache.run("k", 0, lambda: asyncio.sleep(0, 1)) == 1
    assert len(cache) == 0
    for i in range(10):
        await cache.run(("k", i), 1, lambda i=i: asyncio.sleep(0, i))
    assert len(cache) == 3


async def test_channel_pool_holds_channels_and_increments_seqnums():
    pool = ChannelPool(channels=2)
    async with pool.hold() as (a, sa), pool.hold() as (b, sb):
        assert a != b and sa == sb == 1 and pool.in_use == 2
        waiter = asyncio.create_task(pool.acquire())
        await asyncio.sleep(0.01)
        assert not waiter.done(), "a third update waits for a free channel"
    cid, seq = await waiter
    assert seq == 2, "a reused channel continues its sequence"
    await pool.release(cid)
    seqs = {}
    for _ in range(4):
        async with pool.hold() as (c, s):
            assert s > seqs.get(c, 0)
            seqs[c] = s
