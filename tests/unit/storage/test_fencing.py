"""call_fenced: an RPC to a replica that does not answer is abandoned as soon as its chain is
reconfigured in routing info, and left alone while unrelated chains change."""
from __future__ import annotations

import asyncio

import pytest

from threefs.common.errors import Code, FSError
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient, RpcServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import storage_pb2 as spb
from threefs.storage.fencing import call_fenced


def routing(version: int, chains: dict[int, int]) -> Routing:
    info = cpb.RoutingInfo(version=version)
    for cid, ver in chains.items():
        info.chains.add(chain_id=cid, chain_version=ver)
    return Routing(info)


async def test_hung_call_is_abandoned_only_when_its_chain_changes():
    release = asyncio.Event()

    async def hang(req, payload):
        await release.wait()                       # a SIGSTOPped replica: connected, never answering
        return spb.SpaceInfoRsp(), None

    server = RpcServer()
    server.register("Storage.SpaceInfo", spb.SpaceInfoReq, hang)
    address = await server.start()
    rpc = RpcClient()
    mgmtd = MgmtdClient("127.0.0.1:1")
    mgmtd._publish(routing(1, {1: 5, 2: 7}))
    try:
        call = asyncio.create_task(call_fenced(rpc, mgmtd, mgmtd.routing, {1}, address, "Storage.SpaceInfo",
                                               spb.SpaceInfoReq(), spb.SpaceInfoRsp, timeout=30))
        await asyncio.sleep(0.05)
        mgmtd._publish(routing(2, {1: 5, 2: 8}))   # another chain changed: keep waiting
        await asyncio.sleep(0.05)
        assert not call.done()
        mgmtd._publish(routing(3, {1: 6, 2: 8}))   # mgmtd reconfigured our chain: give up now
        with pytest.raises(FSError) as ei:
            await asyncio.wait_for(call, 2)
        assert ei.value.code == Code.ROUTING_VERSION_MISMATCH
        # a call that is answered returns normally
        release.set()
        rsp, _ = await call_fenced(rpc, mgmtd, mgmtd.routing, {1}, address, "Storage.SpaceInfo",
                                   spb.SpaceInfoReq(), spb.SpaceInfoRsp, timeout=5)
        assert isinstance(rsp, spb.SpaceInfoRsp)
    finally:
        release.set()
        await rpc.close()
        await mgmtd.close()
        await server.stop()


async def test_a_change_right_after_the_answer_cancels_nothing_later():
    """A routing change that lands in the same loop turn as the answer: the call returns its answer,
    and the caller's next await is not cancelled by the change's callback running afterwards."""
    class HeldRpc:
        answer: asyncio.Future | None = None

        async def call(self, *args, **kw):
            self.answer = asyncio.get_running_loop().create_future()
            return await self.answer

    rpc = HeldRpc()
    mgmtd = MgmtdClient("127.0.0.1:1")
    mgmtd._publish(routing(1, {1: 5}))

    async def caller():
        rsp, _ = await call_fenced(rpc, mgmtd, mgmtd.routing, {1}, "127.0.0.1:2", "Storage.SpaceInfo",
                                   spb.SpaceInfoReq(), spb.SpaceInfoRsp)
        await asyncio.sleep(0.05)                  # what the caller does next
        return rsp

    try:
        task = asyncio.create_task(caller())
        while rpc.answer is None:
            await asyncio.sleep(0)
        rpc.answer.set_result((spb.SpaceInfoRsp(), None))   # the task's wakeup is queued first...
        mgmtd._publish(routing(2, {1: 6}))                   # ...then the change's callback
        assert isinstance(await asyncio.wait_for(task, 2), spb.SpaceInfoRsp)
    finally:
        await mgmtd.close()
