"""Client of mgmtd used by every service and client: routing info cache, heartbeats, admin calls."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from threefs.common.errors import Code, FSError, make_error
from threefs.mgmtd.routing import Routing
from threefs.net.grpc_util import OPTIONS, to_fs_error
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb
from threefs.proto import mgmtd_pb2_grpc

log = logging.getLogger(__name__)


class MgmtdClient:
    """Talks to mgmtd over gRPC; keeps the newest routing info and refreshes it on demand or by polling."""

    def __init__(self, addresses: str | list[str], *, timeout: float = 5.0) -> None:
        self.addresses = [a.strip() for a in (addresses.split(",") if isinstance(addresses, str) else addresses) if a.strip()]
        if not self.addresses:
            raise ValueError("no mgmtd address given (use --mgmtd HOST:PORT or THREEFS_MGMTD)")
        self.timeout = timeout
        self._current = 0
        self._channel: grpc.aio.Channel | None = None
        self._stub: mgmtd_pb2_grpc.MgmtdStub | None = None
        self.routing = Routing()
        self._refresh_lock = asyncio.Lock()
        self._poller: asyncio.Task | None = None
        self.listeners: list[Callable[[Routing], None]] = []
        self._changed: asyncio.Future[Routing] | None = None
        self._closing: set[asyncio.Task] = set()

    @property
    def address(self) -> str:
        return self.addresses[self._current]

    def _ensure(self) -> tuple[grpc.aio.Channel, mgmtd_pb2_grpc.MgmtdStub]:
        if self._stub is None or self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.address, options=OPTIONS)
            self._stub = mgmtd_pb2_grpc.MgmtdStub(self._channel)
        return self._channel, self._stub

    def _rotate(self, failed: grpc.aio.Channel) -> None:
        """Move to the next address after a call on `failed` failed (once per failed channel: concurrent
        callers must not close the fresh channel another caller already opened). The old channel is
        closed in the background; awaiting it here could wait on the other callers' RPCs."""
        if self._channel is not failed:
            return
        self._channel = self._stub = None
        self._current = (self._current + 1) % len(self.addresses)
        task = asyncio.get_running_loop().create_task(failed.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _call(self, name: str, req, timeout: float | None = None):
        """Call method `name`, trying each known mgmtd address once on connection failures."""
        last: FSError | None = None
        for _ in range(len(self.addresses) + 1):
            channel, stub = self._ensure()
            address = self.address
            try:
                return await getattr(stub, name)(req, timeout=timeout or self.timeout)
            except asyncio.CancelledError:
                # gRPC cancels the calls of a channel another caller closed after a failure; only a
                # cancellation of this task itself is passed on.
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or self._channel is channel:
                    raise
                last = make_error(Code.UNAVAILABLE, f"call to mgmtd at {address} cut short by a reconnect")
            except grpc.aio.AioRpcError as e:
                err = to_fs_error(e, address)
                if err.code not in (Code.UNAVAILABLE, Code.NOT_PRIMARY, Code.TIMEOUT):
                    raise err from None
                last = err
                self._rotate(channel)
        assert last is not None
        raise last

    # ---- routing info -------------------------------------------------------------------
    async def refresh(self, *, force: bool = False) -> Routing:
        """Fetch routing info if it changed (force: even if we think it is current)."""
        async with self._refresh_lock:
            known = 0 if force else self.routing.version
            rsp = await self._call("GetRoutingInfo", mpb.GetRoutingInfoReq(known_version=known))
            if rsp.changed and rsp.info.version >= self.routing.version:
                self._publish(Routing(rsp.info))
            return self.routing

    def _publish(self, routing: Routing) -> None:
        self.routing = routing
        for cb in self.listeners:
            try:
                cb(routing)
            except Exception:
                log.exception("routing listener failed")
        fut, self._changed = self._changed, None
        if fut is not None and not fut.done():
            fut.set_result(routing)

    def next_change(self) -> asyncio.Future[Routing]:
        """A future resolved with the next routing info this client adopts (shared by all waiters)."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    async def chain_table(self, table_id: int, version: int = 0) -> cpb.ChainTable:
        """Chain table `table_id` at `version` (0 = latest), fetching routing info once when it is not
        known here: a service that started while mgmtd was unreachable (or serves before its first
        fetch returned) answers UNAVAILABLE, which callers retry, not a false "no such table"."""
        try:
            return self.routing.table(table_id, version)
        except FSError:
            pass               # a table created or bumped since the last poll, or no routing info yet
        try:
            routing = await self.refresh()
        except FSError as e:
            if not self.routing.version:
                raise make_error(Code.UNAVAILABLE, f"no routing info from mgmtd yet: {e.strerror or e}") from None
            raise
        if not routing.version:
            raise make_error(Code.UNAVAILABLE, "no routing info from mgmtd yet")
        return routing.table(table_id, version)

    async def refresh_if_older(self, version: int) -> Routing:
        """Refresh unless we already have routing info newer than `version` (after a mismatch)."""
        if self.routing.version > version:
            return self.routing
        return await self.refresh()

    def start_polling(self, interval: float = 1.0) -> None:
        """Poll routing info in the background every `interval` seconds."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(interval))

    async def _poll(self, interval: float) -> None:
        while True:
            try:
                await self.refresh()
            except FSError as e:
                log.debug("routing refresh failed: %s", e)
            except Exception:
                log.exception("routing refresh failed")
            await asyncio.sleep(interval)

    # ---- calls ---------------------------------------------------------------------------
    async def heartbeat(self, req: mpb.HeartbeatReq, timeout: float | None = None) -> mpb.HeartbeatRsp:
        return await self._call("Heartbeat", req, timeout=timeout)

    async def primary(self) -> cpb.NodeInfo:
        return (await self._call("GetPrimaryMgmtd", mpb.GetPrimaryMgmtdReq())).primary

    async def set_chains(self, chains: list[cpb.ChainInfo]) -> int:
        return (await self._call("SetChains", mpb.SetChainsReq(chains=chains))).routing_version

    async def set_chain_table(self, table: cpb.ChainTable) -> int:
        return (await self._call("SetChainTable", mpb.SetChainTableReq(table=table))).version

    async def register_node(self, node_id: int, node_type: int) -> None:
        await self._call("RegisterNode", mpb.RegisterNodeReq(node_id=node_id, type=node_type))

    async def unregister_node(self, node_id: int) -> None:
        await self._call("UnregisterNode", mpb.UnregisterNodeReq(node_id=node_id))

    async def update_chain(self, chain_id: int, target_id: int, mode: int) -> cpb.ChainInfo:
        """Add (mpb.CHAIN_ADD) or remove (mpb.CHAIN_REMOVE) a target of a chain; returns the new chain."""
        rsp = await self._call("UpdateChain", mpb.UpdateChainReq(chain_id=chain_id, target_id=target_id, mode=mode))
        return rsp.chain

    async def rotate_lastsrv(self, chain_id: int) -> cpb.ChainInfo:
        """Promote the next target of a chain whose LASTSRV target is gone; returns the new chain."""
        return (await self._call("RotateLastSrv", mpb.RotateLastSrvReq(chain_id=chain_id))).chain

    async def wait_for(self, predicate: Callable[[Routing], bool], timeout: float, interval: float = 0.1) -> Routing:
        """Poll routing info until `predicate` holds (raise TIMEOUT otherwise)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                r = await self.refresh(force=True)
                if predicate(r):
                    return r
            except FSError as e:
                if e.code not in (Code.UNAVAILABLE, Code.TIMEOUT):
                    raise
            if loop.time() > deadline:
                raise make_error(Code.TIMEOUT, f"routing info did not reach the expected state within {timeout:.0f}s")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()
            self._poller = None
        if self._changed is not None and not self._changed.done():
            self._changed.cancel()
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
