"""mgmtd high availability: several MgmtdServers (real gRPC) sharing one KV engine; one primary holds the
lease, standbys redirect, a standby takes over when the primary dies, a deposed primary cannot write."""
from __future__ import annotations

import asyncio

import pytest

from threefs.common.errors import Code, FSError
from threefs.kv.memory import MemoryKV
from threefs.mgmtd import lease as lease_mod
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.lease import LeaseConfig, decide
from threefs.mgmtd.service import MgmtdConfig, MgmtdServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb

FAST = MgmtdConfig(heartbeat_fail_ms=60_000, check_interval=0.05, bootstrap_ms=60_000, lease_ms=800,
                   lease_extend_interval=0.05, lease_suspicious_ms=200)
CFG = LeaseConfig(lease_ms=1000, extend_interval=0.1, suspicious_ms=300)


def me(node_id: int) -> cpb.NodeInfo:
    return cpb.NodeInfo(node_id=node_id, type=cpb.MGMTD, address=f"h:{node_id}")


@pytest.mark.parametrize("case", ["none", "expired-other", "mine", "mine-old-incarnation", "held-by-other",
                                  "newer-release"])
def test_lease_decision_table(case):
    now = 1_000_000
    other = mpb.MgmtdLease(lease_start_ms=now - 500, lease_end_ms=now + 500, epoch=4, incarnation=b"x",
                           release_version="0.1.0")
    other.primary.CopyFrom(me(2))
    mine = mpb.MgmtdLease(lease_start_ms=now - 500, lease_end_ms=now + 500, epoch=4, incarnation=b"me",
                          release_version="0.1.0")
    mine.primary.CopyFrom(me(1))
    lease = {"none": None, "expired-other": other, "mine": mine, "mine-old-incarnation": mine,
             "held-by-other": other, "newer-release": other}[case]
    if case in ("expired-other", "newer-release"):
        lease.lease_end_ms = now - 1
    if case == "newer-release":
        lease.release_version = "9.0.0"
    inc = b"new" if case == "mine-old-incarnation" else b"me"
    new = decide(lease, me(1), inc, now, CFG)
    if case in ("held-by-other", "newer-release"):
        assert new is None
        return
    assert new.primary.node_id == 1 and new.lease_end_ms == now + CFG.lease_ms and new.incarnation == inc
    if case == "mine":
        assert new.epoch == 4 and new.lease_start_ms == mine.lease_start_ms        # extended
    else:
        assert new.epoch == (1 if case == "none" else 5) and new.lease_start_ms == now   # taken over
    assert lease_mod.acts_as_primary(new, 1, inc, now, CFG)
    assert not lease_mod.acts_as_primary(new, 1, inc, now + CFG.lease_ms - CFG.suspicious_ms, CFG)
    assert not lease_mod.acts_as_primary(new, 2, inc, now, CFG)


async def _until(pred, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _chains(m: MgmtdClient) -> None:
    c = cpb.ChainInfo(chain_id=1)
    c.targets.extend(cpb.ChainTarget(target_id=t) for t in (101, 201))
    await m.set_chains([c])


async def test_one_primary_standbys_redirect_and_failover_keeps_state():
    kv = MemoryKV()
    servers = [MgmtdServer(kv, node_id=i, config=FAST) for i in (1, 2, 3)]
    addrs = [await s.start() for s in servers]
    clients: list[MgmtdClient] = []
    try:
        assert [s.is_primary for s in servers] == [True, False, False]
        # a standby names the primary and refuses everything else
        standby = MgmtdClient(addrs[1])
        clients.append(standby)
        assert (await standby.primary()).address == addrs[0]
        with pytest.raises(FSError) as ei:
            await standby.refresh(force=True)
        assert ei.value.code == Code.NOT_PRIMARY
        # a client that knows all three follows the primary wherever it starts
        m = MgmtdClient([addrs[2], addrs[1], addrs[0]])
        clients.append(m)
        await _chains(m)
        r1 = await m.refresh(force=True)
        assert r1.chains[1].chain_version == 1
        assert m.address == addrs[0]

        await servers[0].stop()                         # the primary dies (its lease is left to expire)
        await _until(lambda: servers[1].is_primary or servers[2].is_primary, what="a standby to take over")
        new = 1 if servers[1].is_primary else 2
        assert not servers[3 - new].is_primary, "exactly one primary"
        r2 = None
        for _ in range(50):                             # the client rotates to the new primary
            try:
                r2 = await m.refresh(force=True)
                break
            except FSError as e:
                assert e.code in (Code.UNAVAILABLE, Code.NOT_PRIMARY)
                await asyncio.sleep(0.05)
        assert r2 is not None and m.address == addrs[new]
        assert r2.version > r1.version, "a new primary publishes higher routing versions"
        assert r2.chains[1].chain_version == 1 and [t.target_id for t in r2.chains[1].targets] == [101, 201]
        assert r2.info.bootstrapping, "the new primary waits for targets to report before changing chains"
        assert (await standby.primary()).address == addrs[new]
    finally:
        for c in clients:
            await c.close()
        for s in servers[1:]:
            await s.stop()


async def test_deposed_primary_is_fenced_and_steps_down():
    kv = MemoryKV()
    a = MgmtdServer(kv, node_id=1, config=FAST)
    await a.start()
    m = MgmtdClient(a.address)
    try:
        await _chains(m)
        a._lease_task.cancel()                          # A freezes: no more lease extensions...
        stolen = mpb.MgmtdLease(lease_start_ms=lease_mod.now_ms(), lease_end_ms=lease_mod.now_ms() + 60_000,
                                epoch=a.lease.epoch + 1, incarnation=b"other")
        stolen.primary.CopyFrom(me(2))

        async def steal(txn):
            txn.set(lease_mod.LEASE_KEY, stolen.SerializeToString())

        from threefs.kv.engine import run_txn
        await run_txn(kv, steal)                        # ...and mgmtd 2 took the lease meanwhile
        a.lease.lease_end_ms = lease_mod.now_ms() + 60_000   # A still believes its old lease
        with pytest.raises(FSError) as ei:
            await m.update_chain(1, 301, mpb.CHAIN_ADD)
        assert ei.value.code == Code.NOT_PRIMARY
        assert not a.is_primary, "a fenced write makes the primary step down"
        c = MgmtdServer(kv, node_id=3, config=FAST)
        await c.start()                                 # a third mgmtd respects the valid lease of mgmtd 2
        try:
            assert not c.is_primary
        finally:
            await c.stop()
    finally:
        await m.close()
        await a.stop()


async def test_restarted_primary_takes_its_lease_over_with_a_new_epoch():
    kv = MemoryKV()
    a = MgmtdServer(kv, node_id=1, config=MgmtdConfig(lease_ms=60_000, lease_extend_interval=10,
                                                      lease_suspicious_ms=1000, bootstrap_ms=60_000))
    await a.start()
    m = MgmtdClient(a.address)
    await _chains(m)
    r1 = await m.refresh(force=True)
    await m.close()
    epoch = a.lease.epoch
    await a.stop()                                      # crash: the lease is still valid for a minute
    a2 = MgmtdServer(kv, node_id=1, config=a.config)
    await a2.start()
    try:
        assert a2.is_primary, "the same node id takes its own lease over at once"
        assert a2.lease.epoch == epoch + 1
        m2 = MgmtdClient(a2.address)
        r2 = await m2.refresh(force=True)
        await m2.close()
        assert r2.version > r1.version
        assert r2.chains[1].chain_version == r1.chains[1].chain_version
    finally:
        await a2.stop()
