"""The mount's side of directory leases (threefs.meta.dir_leases): lookups answered without meta.

A directory this mount makes comes with a lease on its entries: until the lease ends or meta recalls
it (another client is about to add a name there), a name this mount did not add to the directory is
not there, and the kernel's LOOKUP of it is answered without a meta round trip (a file-creating loop
saves one of its three meta calls per file). Names are recorded before the call that adds them is
sent, so a name whose call failed half way is looked up in meta, never answered as missing.
The recall service listens on the address this host uses to reach meta.
"""
from __future__ import annotations

import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from threefs.meta.dir_leases import RECALL_METHOD
from threefs.net.rpc import RpcServer
from threefs.proto import meta_pb2 as mp

log = logging.getLogger("threefs.fuse")

MARGIN = 0.5     # seconds before the lease's end at which the mount stops relying on it (clock rates differ)


@dataclass
class _Lease:
    until: float                                   # time.monotonic() after which it is not used
    dir: mp.Inode                                  # the directory as meta made it (mode, owner, layout)
    names: set[str] = field(default_factory=set)   # names this mount added (or tried to) under the lease


def local_address_towards(address: str) -> str:
    """The local IP this host uses to reach `address` ("HOST:PORT"); no packet is sent."""
    host, _, port = address.rpartition(":")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, int(port)))
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


class DirLeases:
    """Leases this mount holds, and the RPC service through which meta recalls them."""

    def __init__(self, client_id: bytes, on_recall: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.client_id = client_id
        self.on_recall = on_recall             # runs before a recall is answered (pending creates go to meta)
        self.held: dict[int, _Lease] = {}
        self.recalled = 0
        self._server: RpcServer | None = None
        self.callback = ""                     # "HOST:PORT" of the recall service; "" until started

    async def start(self, meta_address: str) -> None:
        server = RpcServer(local_address_towards(meta_address), 0)
        server.register(RECALL_METHOD, mp.RecallDirLeaseReq, self._recall)
        self.callback = await server.start()
        self._server = server

    async def stop(self) -> None:
        self.held.clear()
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _recall(self, req: mp.RecallDirLeaseReq, payload) -> tuple[mp.RecallDirLeaseRsp, None]:
        held = req.client_id == self.client_id and self.held.pop(req.dir, None) is not None
        self.recalled += held
        if held and self.on_recall is not None:
            await self.on_recall(req.dir)
        return mp.RecallDirLeaseRsp(held=held), None

    def granted(self, directory: mp.Inode, seconds: float, asked_at: float) -> None:
        """Meta leased `directory` for `seconds` in reply to a call sent at `asked_at` (monotonic)."""
        if seconds > 0:
            self.held[directory.id] = _Lease(asked_at + seconds - MARGIN, directory)

    def lease_for_create(self, dir_id: int, name: str, min_left: float) -> _Lease | None:
        """The lease under which a create of `name` may be answered here: held with `min_left` seconds
        to go, and the name not added by this mount."""
        lease = self.held.get(dir_id)
        if lease is None or name in lease.names or lease.until - time.monotonic() < min_left:
            return None
        return lease

    def absent(self, dir_id: int, name: str) -> bool:
        """Whether `name` is certainly not in `dir_id` (leased, and not added by this mount)."""
        lease = self.held.get(dir_id)
        if lease is None:
            return False
        if time.monotonic() >= lease.until:
            del self.held[dir_id]
            return False
        return name not in lease.names

    def adding(self, dir_id: int, name: str) -> None:
        """This mount is about to add `name` to `dir_id` (before the call is sent)."""
        lease = self.held.get(dir_id)
        if lease is not None:
            lease.names.add(name)
