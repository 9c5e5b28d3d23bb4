"""Client of the meta service: picks a meta server from routing info and retries on failover."""
from __future__ import annotations

import asyncio
import os
import random
import socket

from threefs.common.errors import Code, FSError, make_error
from threefs.mgmtd.client import MgmtdClient
from threefs.net.rpc import RpcClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp

SERVICE = "Meta"
_FAILOVER = {Code.UNAVAILABLE, Code.TIMEOUT, Code.BUSY, Code.TXN_CONFLICT}
_HOSTNAME = socket.gethostname()


class MetaClient:
    """Sends meta RPCs with a stable request id per logical operation (so retries are idempotent)."""

    def __init__(self, mgmtd: MgmtdClient, rpc: RpcClient, user: cpb.UserInfo, *, client_id: bytes | None = None,
                 timeout: float = 10.0, retry_timeout: float = 30.0) -> None:
        self.mgmtd = mgmtd
        self.rpc = rpc
        self.user = user
        self.client_id = client_id or os.urandom(16)
        self.timeout = timeout
        self.retry_timeout = retry_timeout
        self._address: str | None = None
        self._picked_in: object = None      # the routing info _address was picked from

    def base(self, user: cpb.UserInfo | None = None) -> mp.ReqBase:
        """A request's base: this client, a fresh request id, and `user` (default: the client's own)."""
        return mp.ReqBase(user=user if user is not None else self.user, client_id=self.client_id,
                          request_id=os.urandom(16), hostname=_HOSTNAME)

    def address(self) -> str:
        """The meta server this client's calls go to now ("HOST:PORT")."""
        return self._pick()

    def _pick(self) -> str:
        routing = self.mgmtd.routing
        if self._address is not None and routing is self._picked_in:
            return self._address            # routing unchanged since the pick (it is replaced on change)
        self._picked_in = routing
        metas = [n for n in routing.nodes_of_type(cpb.META) if n.status == cpb.HEARTBEAT_CONNECTED]
        if not metas:
            raise make_error(Code.UNAVAILABLE, "no meta server is alive in routing info")
        if self._address not in {n.address for n in metas}:
            self._address = random.choice(metas).address
        return self._address

    async def call(self, method: str, req, rsp_type):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_timeout
        delay = 0.05
        while True:
            try:
                address = self._pick()
                rsp, _ = await self.rpc.call(address, f"{SERVICE}.{method}", req, rsp_type, timeout=self.timeout)
                return rsp
            except FSError as e:
                if e.code not in _FAILOVER or loop.time() + delay > deadline:
                    raise
                self._address = None
                try:
                    await self.mgmtd.refresh()
                except FSError:
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
