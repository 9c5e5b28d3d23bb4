"""The Mgmtd gRPC servicer and server: lease-based primary election, heartbeats, the chain state machine.

Every mgmtd process serves gRPC; only the one holding the lease (threefs.mgmtd.lease) is primary and
keeps a ClusterState. Standbys answer GetPrimaryMgmtd from the lease row and NOT_PRIMARY to everything
else, so clients (MgmtdClient) rotate to the primary. The primary's check loop marks silent nodes failed
and runs the chain state machine (threefs.mgmtd.chain_state) every `check_interval`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from dataclasses import dataclass

import grpc

from threefs.common.errors import Code, FSError, make_error
from threefs.kv.engine import KVEngine, Transaction
from threefs.mgmtd import lease as lease_mod
from threefs.mgmtd.lease import LeaseConfig
from threefs.mgmtd.state import ClusterState
from threefs.net.grpc_util import OPTIONS, servicer_method
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb
from threefs.proto import mgmtd_pb2_grpc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MgmtdConfig:
    """Timing of failure detection, chain updates, bootstrapping and the lease (3FS production defaults)."""

    heartbeat_fail_ms: int = 60_000
    check_interval: float = 1.0
    bootstrap_ms: int = 120_000
    lease_ms: int = 60_000
    lease_extend_interval: float = 10.0
    lease_suspicious_ms: int = 20_000

    def lease(self) -> LeaseConfig:
        return LeaseConfig(lease_ms=self.lease_ms, extend_interval=self.lease_extend_interval,
                           suspicious_ms=self.lease_suspicious_ms)


class MgmtdService(mgmtd_pb2_grpc.MgmtdServicer):
    """gRPC handlers; every state-reading or -changing call needs this process to be primary."""

    def __init__(self, server: MgmtdServer) -> None:
        self.server = server

    @servicer_method
    async def GetPrimaryMgmtd(self, request, context):
        lease = await lease_mod.current_lease(self.server.kv)
        if lease is None or lease.lease_end_ms < lease_mod.now_ms():
            raise make_error(Code.NOT_PRIMARY, "no mgmtd holds the primary lease right now")
        primary = cpb.NodeInfo()
        primary.CopyFrom(lease.primary)
        primary.status = cpb.PRIMARY_MGMTD
        return mpb.GetPrimaryMgmtdRsp(primary=primary)

    @servicer_method
    async def Heartbeat(self, request, context):
        async with self.server.locked() as state:
            await state.heartbeat(request)
            return mpb.HeartbeatRsp(routing_version=state.version, bootstrapping=state.bootstrapping())

    @servicer_method
    async def GetRoutingInfo(self, request, context):
        state = self.server.primary_state()
        if request.known_version == state.version:
            return mpb.GetRoutingInfoRsp(changed=False)
        return mpb.GetRoutingInfoRsp(changed=True, info=state.routing_info())

    @servicer_method
    async def SetChains(self, request, context):
        async with self.server.locked() as state:
            await state.set_chains(list(request.chains))
            return mpb.SetChainsRsp(routing_version=state.version)

    @servicer_method
    async def SetChainTable(self, request, context):
        async with self.server.locked() as state:
            version = await state.set_chain_table(request.table)
            return mpb.SetChainTableRsp(version=version, routing_version=state.version)

    @servicer_method
    async def RegisterNode(self, request, context):
        async with self.server.locked() as state:
            await state.register_node(request.node_id, request.type)
        return mpb.RegisterNodeRsp()

    @servicer_method
    async def UnregisterNode(self, request, context):
        async with self.server.locked() as state:
            await state.unregister_node(request.node_id)
        return mpb.UnregisterNodeRsp()

    @servicer_method
    async def UpdateChain(self, request, context):
        async with self.server.locked() as state:
            chain = await state.update_chain(request.chain_id, request.target_id, request.mode)
            return mpb.UpdateChainRsp(chain=chain, routing_version=state.version)

    @servicer_method
    async def RotateLastSrv(self, request, context):
        async with self.server.locked() as state:
            chain = await state.rotate_lastsrv(request.chain_id)
            return mpb.RotateLastSrvRsp(chain=chain, routing_version=state.version)


class _Locked:
    """`async with server.locked() as state`: the primary's state under the state lock."""

    def __init__(self, server: MgmtdServer) -> None:
        self.server = server

    async def __aenter__(self) -> ClusterState:
        await self.server._lock.acquire()
        try:
            return self.server.primary_state()
        except BaseException:
            self.server._lock.release()
            raise

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self.server._lock.release()
        if isinstance(exc, FSError) and exc.code == Code.NOT_PRIMARY:
            self.server._step_down(str(exc))


class MgmtdServer:
    """One mgmtd process: the gRPC server, the lease loop and (while primary) the check loop."""

    def __init__(self, kv: KVEngine, *, node_id: int = 1, host: str = "127.0.0.1", port: int = 0,
                 heartbeat_fail_ms: int | None = None, check_interval: float | None = None,
                 config: MgmtdConfig | None = None) -> None:
        cfg = config or MgmtdConfig()
        if heartbeat_fail_ms is not None:
            cfg = dataclasses.replace(cfg, heartbeat_fail_ms=heartbeat_fail_ms)
        if check_interval is not None:
            cfg = dataclasses.replace(cfg, check_interval=check_interval)
        self.config = cfg
        self.kv = kv
        self.node_id = node_id
        self.host, self.port = host, port
        self.incarnation = os.urandom(16)
        self.state: ClusterState | None = None
        self.lease: mpb.MgmtdLease | None = None
        self.server: grpc.aio.Server | None = None
        self._lock = asyncio.Lock()
        self._lease_task: asyncio.Task | None = None
        self._checker: asyncio.Task | None = None
        self.address = ""

    # ---- primary duty ---------------------------------------------------------------------
    @property
    def is_primary(self) -> bool:
        return self.state is not None

    def primary_state(self) -> ClusterState:
        """The cluster state if this process may act as primary now, else NOT_PRIMARY."""
        if self.state is None or not lease_mod.acts_as_primary(self.lease, self.node_id, self.incarnation,
                                                               lease_mod.now_ms(), self.config.lease()):
            holder = self.lease.primary.address if self.lease is not None and self.lease.primary.node_id != self.node_id else ""
            raise make_error(Code.NOT_PRIMARY, f"mgmtd {self.node_id} is not the primary"
                             + (f" (primary: {holder})" if holder else ""))
        return self.state

    def locked(self) -> _Locked:
        return _Locked(self)

    async def _guard(self, txn: Transaction) -> None:
        await lease_mod.validate_lease(txn, self.node_id, self.incarnation)

    async def _lease_tick(self) -> None:
        """Extend or take the lease; become primary or step down accordingly."""
        me = cpb.NodeInfo(node_id=self.node_id, type=cpb.MGMTD, address=self.address,
                          hostname=socket.gethostname(), pid=os.getpid())
        lease = await lease_mod.extend_lease(self.kv, me, self.incarnation, self.config.lease())
        self.lease = lease
        mine = lease_mod.acts_as_primary(lease, self.node_id, self.incarnation, lease_mod.now_ms(),
                                         self.config.lease())
        if mine and self.state is not None and self.state.epoch != lease.epoch:
            self._step_down(f"the lease moved to epoch {lease.epoch}")     # it had lapsed: reload
        if mine and self.state is None:
            async with self._lock:
                await self._become_primary(lease.epoch)
        elif not mine and self.state is not None and (
                lease is None or lease.primary.node_id != self.node_id or lease.incarnation != self.incarnation):
            self._step_down("another mgmtd holds the lease")

    async def _become_primary(self, epoch: int) -> None:
        state = ClusterState(self.kv, heartbeat_fail_ms=self.config.heartbeat_fail_ms,
                             bootstrap_ms=self.config.bootstrap_ms, guard=self._guard)
        await state.load(epoch)
        self.state = state
        self._checker = asyncio.create_task(self._check_loop())
        log.info("mgmtd %d is primary (epoch %d, routing version %d)", self.node_id, epoch, state.version)

    def _step_down(self, why: str) -> None:
        if self.state is None:
            return
        log.warning("mgmtd %d steps down: %s", self.node_id, why)
        self.state = None
        if self._checker is not None:
            self._checker.cancel()
            self._checker = None

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_extend_interval)
            try:
                await self._lease_tick()
            except FSError as e:
                log.warning("mgmtd %d: lease extension failed: %s", self.node_id, e)
            except Exception:
                log.exception("mgmtd %d: lease loop", self.node_id)

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_interval)
            try:
                async with self.locked() as state:
                    state.check_heartbeats()
                    await state.update_chains()
            except FSError as e:
                if e.code != Code.NOT_PRIMARY:
                    log.warning("mgmtd %d: chain update failed: %s", self.node_id, e)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mgmtd %d: check loop", self.node_id)

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> str:
        self.server = grpc.aio.server(options=OPTIONS)
        port = self.server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise OSError(f"mgmtd cannot listen on {self.host}:{self.port}")
        self.address = f"{self.host}:{port}"
        self.service = MgmtdService(self)
        mgmtd_pb2_grpc.add_MgmtdServicer_to_server(self.service, self.server)
        from threefs.mgmtd.users import add_users_service
        add_users_service(self.server, self.kv)
        await self.server.start()
        try:
            await self._lease_tick()
        except FSError as e:
            log.warning("mgmtd %d: first lease attempt failed: %s", self.node_id, e)
        self._lease_task = asyncio.create_task(self._lease_loop())
        log.info("mgmtd %d serving on %s (%s)", self.node_id, self.address,
                 "primary" if self.is_primary else "standby")
        return self.address

    async def stop(self) -> None:
        """Stop serving (the lease is left to expire, as after a crash)."""
        for task in (self._lease_task, self._checker):
            if task is not None:
                task.cancel()
        self._lease_task = self._checker = None
        self.state = None
        if self.server:
            await self.server.stop(grace=0.5)
