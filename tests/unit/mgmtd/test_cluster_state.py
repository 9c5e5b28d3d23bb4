"""ClusterState on a memory KV: failure detection, the chain update loop, persistence before publication,
bootstrapping after a restart, stale heartbeat reports, admin chain edits."""
from __future__ import annotations

import pytest

from threefs.common.errors import Code, FSError
from threefs.kv import keys
from threefs.kv.engine import run_txn
from threefs.kv.memory import MemoryKV
from threefs.mgmtd.state import ClusterState
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb

SER, LST, SYN, WAI, OFF = cpb.SERVING, cpb.LASTSRV, cpb.SYNCING, cpb.WAITING, cpb.OFFLINE
UP, ON, DOWN = cpb.UPTODATE, cpb.ONLINE, cpb.LOCAL_OFFLINE
NODES = {10: [101], 20: [201], 30: [301]}


def hb(node: int, state: int, chain_version: int = 1, targets: list[int] | None = None) -> mpb.HeartbeatReq:
    req = mpb.HeartbeatReq(node_id=node, type=cpb.STORAGE, address=f"127.0.0.1:{node}")
    for t in targets if targets is not None else NODES[node]:
        req.targets.append(mpb.LocalTargetReport(target_id=t, local_state=state, chain_version=chain_version))
    return req


async def persisted_chain(kv, chain_id: int) -> cpb.ChainInfo:
    raw = await run_txn(kv, lambda txn: txn.get(keys.chain_info_key(chain_id)))
    return cpb.ChainInfo.FromString(raw)


async def new_state(kv, **kw) -> ClusterState:
    s = ClusterState(kv, heartbeat_fail_ms=kw.pop("fail_ms", 200), bootstrap_ms=kw.pop("bootstrap_ms", 60_000))
    await s.load(kw.pop("epoch", 1))
    return s


async def cluster_with_chain(kv) -> ClusterState:
    s = await new_state(kv)
    for node in NODES:
        await s.heartbeat(hb(node, ON, 0))
    c = cpb.ChainInfo(chain_id=1)
    c.targets.extend(cpb.ChainTarget(target_id=t) for t in (101, 201, 301))
    await s.set_chains([c])
    for node in NODES:
        await s.heartbeat(hb(node, UP, 1))
    return s


def order(c: cpb.ChainInfo) -> list[tuple[int, int]]:
    return [(t.target_id, t.public_state) for t in c.targets]


async def test_failed_node_is_detected_and_chain_is_persisted_before_published():
    kv = MemoryKV()
    s = await cluster_with_chain(kv)
    assert await s.update_chains() == []                         # all up to date: nothing changes
    before = s.version
    s.nodes[20].last_heartbeat_ms -= 10_000                      # node 20 went silent
    assert s.check_heartbeats()
    assert s.nodes[20].status == cpb.HEARTBEAT_FAILED
    assert s.targets[201].local_state == DOWN
    changed = await s.update_chains()
    assert [c.chain_id for c in changed] == [1]
    assert order(s.chains[1]) == [(101, SER), (301, SER), (201, OFF)]
    assert s.chains[1].chain_version == 2
    assert s.version > before
    assert order(await persisted_chain(kv, 1)) == order(s.chains[1])     # in the KV engine too
    info = s.routing_info()
    assert {t.target_id: t.public_state for t in info.targets}[201] == OFF


async def test_stale_report_is_ignored():
    kv = MemoryKV()
    s = await cluster_with_chain(kv)
    s.nodes[20].last_heartbeat_ms -= 10_000
    s.check_heartbeats()
    await s.update_chains()                                       # chain 1 is now at version 2
    await s.heartbeat(hb(20, UP, chain_version=1))               # a node that has not seen v2 yet
    assert s.nodes[20].status == cpb.HEARTBEAT_CONNECTED
    assert s.targets[201].local_state == DOWN, "a report against an old chain version must not count"
    await s.heartbeat(hb(20, ON, chain_version=2))
    assert s.targets[201].local_state == ON
    await s.update_chains()
    assert order(s.chains[1]) == [(101, SER), (301, SER), (201, SYN)]


async def test_restart_resumes_from_persisted_state_with_chains_frozen_until_reported():
    kv = MemoryKV()
    s = await cluster_with_chain(kv)
    s.nodes[20].last_heartbeat_ms -= 10_000
    s.check_heartbeats()
    await s.update_chains()
    old_version, old_chain = s.version, s.chains[1].chain_version

    s2 = await new_state(kv, epoch=2)                            # a new primary (or a restarted one)
    assert s2.chains[1].chain_version == old_chain
    assert order(s2.chains[1]) == order(s.chains[1])
    assert s2.version > old_version, "routing versions never go backwards across a restart"
    assert all(t.local_state == DOWN for t in s2.targets.values())
    assert s2.bootstrapping()
    assert await s2.update_chains() == [], "no chain is rewritten before its targets re-reported"
    await s2.heartbeat(hb(10, UP, old_chain))
    await s2.heartbeat(hb(30, UP, old_chain))
    assert await s2.update_chains() == []                        # 201 has not reported yet
    await s2.heartbeat(hb(20, DOWN, old_chain))
    assert not s2.bootstrapping()
    assert await s2.update_chains() == []                        # everything as before: no new version
    assert s2.chains[1].chain_version == old_chain


async def test_bootstrap_interval_ends_the_freeze_without_reports():
    kv = MemoryKV()
    await cluster_with_chain(kv)
    s2 = ClusterState(kv, heartbeat_fail_ms=200, bootstrap_ms=0)     # the interval is already over
    await s2.load(2)
    assert not s2.bootstrapping()
    changed = await s2.update_chains()                          # nobody reported: all down
    assert order(changed[0]) == [(101, LST), (201, OFF), (301, OFF)]


async def test_update_chain_add_and_remove():
    kv = MemoryKV()
    s = await cluster_with_chain(kv)
    with pytest.raises(FSError) as ei:
        await s.update_chain(1, 201, mpb.CHAIN_REMOVE)          # serving: must be offline first
    assert ei.value.code == Code.BUSY
    s.targets[201].local_state = DOWN
    await s.update_chains()
    c = await s.update_chain(1, 201, mpb.CHAIN_REMOVE)
    assert order(c) == [(101, SER), (301, SER)] and c.chain_version == 3
    assert s.targets[201].chain_id == 0
    c = await s.update_chain(1, 401, mpb.CHAIN_ADD)
    assert order(c) == [(101, SER), (301, SER), (401, OFF)] and c.chain_version == 4
    assert order(await persisted_chain(kv, 1)) == order(c)
    with pytest.raises(FSError) as ei:
        await s.update_chain(1, 401, mpb.CHAIN_ADD)
    assert ei.value.code == Code.EXISTS
    with pytest.raises(FSError) as ei:
        await s.update_chain(9, 401, mpb.CHAIN_ADD)
    assert ei.value.code == Code.NOT_FOUND
    # the added target syncs in once it reports ONLINE
    await s.heartbeat(hb(40, ON, 4, targets=[401]))
    await s.update_chains()
    assert order(s.chains[1]) == [(101, SER), (301, SER), (401, SYN)]


async def test_rotate_lastsrv_and_guard_fencing():
    kv = MemoryKV()
    s = await cluster_with_chain(kv)
    for n in s.nodes.values():
        n.last_heartbeat_ms -= 10_000
    s.check_heartbeats()
    await s.update_chains()
    assert order(s.chains[1]) == [(101, LST), (201, OFF), (301, OFF)]
    c = await s.rotate_lastsrv(1)
    assert order(c) == [(201, LST), (301, OFF), (101, OFF)]
    await s.heartbeat(hb(20, ON, c.chain_version))
    await s.update_chains()
    assert order(s.chains[1])[0] == (201, SER)

    async def deny(txn):
        raise FSError(Code.NOT_PRIMARY, "fenced")

    s.guard = deny
    version = s.chains[1].chain_version
    with pytest.raises(FSError) as ei:
        await s.update_chain(1, 501, mpb.CHAIN_ADD)
    assert ei.value.code == Code.NOT_PRIMARY
    s.targets[201].local_state = DOWN
    with pytest.raises(FSError) as ei:
        await s.update_chains()
    assert ei.value.code == Code.NOT_PRIMARY
    assert s.chains[1].chain_version == version, "nothing is published when the write is fenced"
    assert (await persisted_chain(kv, 1)).chain_version == version
