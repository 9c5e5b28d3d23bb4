"""Directory leases, meta's side and the holder's, over a real loopback RPC (threefs.meta.dir_leases)."""
from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from threefs.fuse.dir_leases import DirLeases
from threefs.kv import keys
from threefs.kv.engine import run_txn
from threefs.kv.memory import MemoryKV
from threefs.meta import dir_leases
from threefs.net.rpc import RpcClient
from threefs.proto import meta_pb2 as mp

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
DIR = 0x1234


def base(client_id: bytes) -> mp.ReqBase:
    return mp.ReqBase(client_id=client_id, request_id=os.urandom(16))


async def lease_of(kv) -> mp.DirLease | None:
    async def get(txn):
        raw = await txn.get(keys.dir_lease_key(DIR))
        return None if raw is None else mp.DirLease.FromString(raw)
    return await run_txn(kv, get)


async def grant(kv, holder: bytes, callback: str, ttl: float) -> float:
    return await run_txn(kv, lambda txn: asyncio.sleep(0, dir_leases.grant(txn, DIR, base(holder), callback, ttl)))


async def adding(kv, rpc, who: bytes) -> None:
    await dir_leases.with_recalls(kv, rpc, lambda: run_txn(kv, lambda txn: dir_leases.check_lease(txn, DIR, base(who))))


async def test_the_holder_adds_freely_and_another_client_recalls_first() -> None:
    kv, rpc = MemoryKV(), RpcClient()
    holder = DirLeases(os.urandom(16))
    await holder.start("127.0.0.1:1")
    try:
        assert await grant(kv, holder.client_id, holder.callback, 10.0) == 10.0
        holder.granted(mp.Inode(id=DIR), 10.0, time.monotonic())
        assert holder.absent(DIR, "x")
        holder.adding(DIR, "mine")
        assert not holder.absent(DIR, "mine")          # a name it added is asked of meta
        await adding(kv, rpc, holder.client_id)        # its own additions keep the lease
        assert (await lease_of(kv)) is not None and DIR in holder.held
        t0 = time.monotonic()
        await adding(kv, rpc, os.urandom(16))          # another client: recalled, then deleted
        assert time.monotonic() - t0 < 2.0
        assert await lease_of(kv) is None and DIR not in holder.held and holder.recalled == 1
        assert not holder.absent(DIR, "x")
    finally:
        await holder.stop()
        await rpc.close()


async def test_no_lease_without_a_callback_a_client_id_or_a_ttl() -> None:
    kv = MemoryKV()
    assert await run_txn(kv, lambda txn: asyncio.sleep(0, dir_leases.grant(txn, DIR, base(os.urandom(16)), "", 10.0))) == 0
    assert await run_txn(kv, lambda txn: asyncio.sleep(0, dir_leases.grant(txn, DIR, base(b""), "h:1", 10.0))) == 0
    assert await grant(kv, os.urandom(16), "h:1", 0.0) == 0
    assert await lease_of(kv) is None


async def test_a_holder_that_is_gone_loses_its_lease_at_once() -> None:
    kv, rpc = MemoryKV(), RpcClient()
    with socket.socket() as s:                      # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    await grant(kv, os.urandom(16), dead, 60.0)
    t0 = time.monotonic()
    await adding(kv, rpc, os.urandom(16))
    assert time.monotonic() - t0 < 2.0 and await lease_of(kv) is None
    await rpc.close()


async def test_a_holder_that_does_not_answer_is_waited_out(monkeypatch) -> None:
    monkeypatch.setattr(dir_leases, "RECALL_TIMEOUT", 0.3)
    monkeypatch.setattr(dir_leases, "SKEW", 0.2)
    kv, rpc = MemoryKV(), RpcClient()
    silent = socket.socket()                        # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        await grant(kv, os.urandom(16), f"127.0.0.1:{silent.getsockname()[1]}", 1.5)
        t0 = time.monotonic()
        await adding(kv, rpc, os.urandom(16))
        took = time.monotonic() - t0
        assert 1.3 < took < 5.0, took              # until expiry + skew, not sooner
        assert await lease_of(kv) is None
    finally:
        silent.close()
        await rpc.close()


async def test_expired_leases_are_swept_and_live_ones_kept() -> None:
    kv = MemoryKV()
    expired = mp.DirLease(client_id=os.urandom(16), callback="h:1", expires_ns=time.time_ns() - int(5e9))
    live = mp.DirLease(client_id=os.urandom(16), callback="h:1", expires_ns=time.time_ns() + int(60e9))

    async def put(txn):
        txn.set(keys.dir_lease_key(1), expired.SerializeToString())
        txn.set(keys.dir_lease_key(2), live.SerializeToString())
    await run_txn(kv, put)
    assert await dir_leases.LeaseExpirer(kv, interval=1).run_once() == 1

    async def rows(txn):
        return [k for k, _ in await txn.get_range(keys.DIR_LEASE, keys.prefix_end(keys.DIR_LEASE))]
    assert await run_txn(kv, rows) == [keys.dir_lease_key(2)]


async def test_the_holder_stops_relying_on_a_lease_before_meta_lets_it_go() -> None:
    h = DirLeases(os.urandom(16))
    h.granted(mp.Inode(id=DIR), 0.4, time.monotonic())     # MARGIN is 0.5 s: already past its use
    assert not h.absent(DIR, "x") and DIR not in h.held
