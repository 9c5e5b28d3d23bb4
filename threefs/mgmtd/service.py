"""The Mgmtd gRPC servicer: heartbeats, routing info and admin edits over ClusterState."""
from __future__ import annotations

import asyncio
import logging
import os
import socket

import grpc

from threefs.kv.engine import KVEngine
from threefs.mgmtd.state import ClusterState
from threefs.net.grpc_util import OPTIONS, servicer_method
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb
from threefs.proto import mgmtd_pb2_grpc

log = logging.getLogger(__name__)


class MgmtdService(mgmtd_pb2_grpc.MgmtdServicer):
    """Single-primary cluster manager (HA with leases comes with the failure-handling work)."""

    def __init__(self, state: ClusterState, node_id: int, address: str) -> None:
        self.state = state
        self.node_id = node_id
        self.address = address
        self._lock = asyncio.Lock()   # serializes state changes

    @servicer_method
    async def GetPrimaryMgmtd(self, request, context):
        return mpb.GetPrimaryMgmtdRsp(primary=cpb.NodeInfo(
            node_id=self.node_id, type=cpb.MGMTD, address=self.address, status=cpb.PRIMARY_MGMTD,
            hostname=socket.gethostname(), pid=os.getpid()))

    @servicer_method
    async def Heartbeat(self, request, context):
        async with self._lock:
            await self.state.heartbeat(request)
        return mpb.HeartbeatRsp(routing_version=self.state.version)

    @servicer_method
    async def GetRoutingInfo(self, request, context):
        if request.known_version == self.state.version:
            return mpb.GetRoutingInfoRsp(changed=False)
        return mpb.GetRoutingInfoRsp(changed=True, info=self.state.routing_info())

    @servicer_method
    async def SetChains(self, request, context):
        async with self._lock:
            await self.state.set_chains(list(request.chains))
        return mpb.SetChainsRsp(routing_version=self.state.version)

    @servicer_method
    async def SetChainTable(self, request, context):
        async with self._lock:
            version = await self.state.set_chain_table(request.table)
        return mpb.SetChainTableRsp(version=version, routing_version=self.state.version)

    @servicer_method
    async def RegisterNode(self, request, context):
        async with self._lock:
            await self.state.register_node(request.node_id, request.type)
        return mpb.RegisterNodeRsp()

    @servicer_method
    async def UnregisterNode(self, request, context):
        async with self._lock:
            await self.state.unregister_node(request.node_id)
        return mpb.UnregisterNodeRsp()


class MgmtdServer:
    """Runs the gRPC server plus the periodic heartbeat check."""

    def __init__(self, kv: KVEngine, *, node_id: int = 1, host: str = "127.0.0.1", port: int = 0,
                 heartbeat_fail_ms: int = 60_000, check_interval: float = 1.0) -> None:
        self.kv = kv
        self.node_id = node_id
        self.host, self.port = host, port
        self.state = ClusterState(kv, heartbeat_fail_ms=heartbeat_fail_ms)
        self.check_interval = check_interval
        self.server: grpc.aio.Server | None = None
        self._checker: asyncio.Task | None = None

    async def start(self) -> str:
        await self.state.load()
        self.server = grpc.aio.server(options=OPTIONS)
        port = self.server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise OSError(f"mgmtd cannot listen on {self.host}:{self.port}")
        self.address = f"{self.host}:{port}"
        self.service = MgmtdService(self.state, self.node_id, self.address)
        mgmtd_pb2_grpc.add_MgmtdServicer_to_server(self.service, self.server)
        await self.server.start()
        self._checker = asyncio.create_task(self._check_loop())
        log.info("mgmtd %d serving on %s", self.node_id, self.address)
        return self.address

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            async with self.service._lock:
                self.state.check_heartbeats()

    async def stop(self) -> None:
        if self._checker:
            self._checker.cancel()
        if self.server:
            await self.server.stop(grace=0.5)
