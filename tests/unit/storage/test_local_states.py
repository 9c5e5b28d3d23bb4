"""StorageService's local target states driven by routing info, on real chunk engines: rejoin after a
restart, fencing when mgmtd gave up on a target, force-commit of pending versions by a returning LASTSRV
target, and sticky admin offline."""
from __future__ import annotations

import asyncio

from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import storage_pb2 as spb
from threefs.storage.chunk_engine import ChunkEngine
from threefs.storage.service import StorageService, Target

UP, ON, DOWN = cpb.UPTODATE, cpb.ONLINE, cpb.LOCAL_OFFLINE
SER, LST, SYN, WAI, OFF = cpb.SERVING, cpb.LASTSRV, cpb.SYNCING, cpb.WAITING, cpb.OFFLINE
CID = b"\0\0" + bytes(range(14))


class FakeMgmtd:
    """Just the routing view StorageService reads."""

    def __init__(self) -> None:
        self.routing = Routing()

    def set(self, version: int, state: int, *, other: int = SER) -> Routing:
        info = cpb.RoutingInfo(version=version)
        chain = cpb.ChainInfo(chain_id=1, chain_version=version)
        chain.targets.add(target_id=201, public_state=other)
        chain.targets.add(target_id=101, public_state=state)
        info.chains.append(chain)
        info.targets.add(target_id=101, chain_id=1, node_id=1, public_state=state)
        info.targets.add(target_id=201, chain_id=1, node_id=2, public_state=other)
        info.nodes.add(node_id=1, address="127.0.0.1:1")
        info.nodes.add(node_id=2, address="127.0.0.1:2")
        self.routing = Routing(info)
        return self.routing


async def _settle(svc: StorageService, t: Target, want: int) -> None:
    for _ in range(200):
        if t.local_state == want:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"local state {cpb.LocalTargetState.Name(t.local_state)}, want {cpb.LocalTargetState.Name(want)}")


async def test_restart_rejoin_fence_and_lastsrv_force_commit(tmp_path):
    eng = ChunkEngine(tmp_path / "t", 101)
    # a pending (uncommitted) version left by a write that never got its successor's answer
    eng.update(CID, update_ver=1, chain_ver=1, kind=spb.WRITE, data=b"a" * 100, chunk_size=4096)
    eng.commit(CID, 1, 1)
    eng.update(CID, update_ver=2, chain_ver=1, kind=spb.WRITE, data=b"b" * 100, chunk_size=4096)
    t = Target(101, tmp_path / "t", eng)
    m = FakeMgmtd()
    changes = []
    svc = StorageService(1, [t], m, RpcClient(), io_threads=1)   # type: ignore[arg-type]
    svc.on_local_change.append(lambda: changes.append(t.local_state))
    try:
        assert t.local_state == DOWN                             # a (re)started target starts OFFLINE
        svc.apply_routing(m.set(5, SER))
        assert t.local_state == DOWN, "it waits while mgmtd still lists it SERVING"
        svc.apply_routing(m.set(6, LST, other=OFF))              # mgmtd took it out; it was the last serving
        assert t.local_state == ON
        svc.apply_routing(m.set(7, SER, other=OFF))              # LASTSRV + ONLINE -> SERVING
        await _settle(svc, t, UP)
        meta = eng.get(CID)
        assert meta.commit_ver == meta.update_ver == 2, "the returning LASTSRV target force-commits"
        assert bytes(eng.read(CID, 0, 100)[0]) == b"b" * 100
        assert svc.stats["force_committed"] == 1
        # mgmtd gave up on it (false suspicion, hung node): it fences itself...
        svc.apply_routing(m.set(8, OFF))
        assert t.local_state == DOWN
        # ...and rejoins like a restarted target, but only once its own updates drained
        t.inflight = 1
        svc.apply_routing(m.set(9, OFF))
        assert t.local_state == DOWN
        t.inflight = 0
        svc.apply_routing(m.set(9, OFF))
        assert t.local_state == ON
        svc.apply_routing(m.set(10, SYN))
        assert t.local_state == ON, "a syncing target becomes UPTODATE only by SyncDone"
        svc.apply_routing(m.set(11, WAI))
        assert t.local_state == ON
        # an admin offline sticks until the process restarts
        svc.set_offline(t, "test", sticky=True)
        svc.apply_routing(m.set(12, OFF))
        assert t.local_state == DOWN
        assert changes and changes[-1] == DOWN
    finally:
        svc.pool.shutdown(wait=True)
        eng.close()
