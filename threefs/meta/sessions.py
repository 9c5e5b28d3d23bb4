"""Write sessions (INOS rows) and client leases (CLIS rows), and pruning of vanished clients' sessions.

A write open stores a session row and (blindly, so concurrent opens never conflict) refreshes its
client's lease in the same transaction; a client holding write sessions renews the lease every few
seconds (`RenewClient`). The pruner removes sessions whose client's lease is older than
`client_timeout` (3FS prunes against mgmtd's client sessions; leases in the meta KV need no extra
service and work the same with several meta servers on one engine).
"""
from __future__ import annotations

import logging

from threefs.common.errors import Code, make_error
from threefs.common.periodic import PeriodicWorker
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.meta.schema import now_ms
from threefs.proto import meta_pb2 as mp

log = logging.getLogger(__name__)
PAGE = 1024


def check_session_id(session_id: bytes) -> None:
    if len(session_id) != 16:
        raise make_error(Code.INVALID_ARGUMENT, f"a session id is 16 bytes, got {len(session_id)}")


def touch_lease(txn: Transaction, base: mp.ReqBase) -> None:
    """Record that `base.client_id` is alive now (a blind write: no read conflict)."""
    lease = mp.ClientLease(client_id=base.client_id, hostname=base.hostname, renewed_ms=now_ms())
    txn.set(keys.client_lease_key(base.client_id), lease.SerializeToString())


def add_session(txn: Transaction, base: mp.ReqBase, inode_id: int, session_id: bytes) -> None:
    """Store the session row of a write open, and refresh the client's lease."""
    check_session_id(session_id)
    if len(base.client_id) != 16:
        raise make_error(Code.INVALID_ARGUMENT, "a write open needs a 16-byte client id")
    row = mp.FileSession(inode=inode_id, client_id=base.client_id, session_id=session_id, created_ms=now_ms())
    txn.set(keys.session_key(inode_id, session_id), row.SerializeToString())
    touch_lease(txn, base)


def remove_session(txn: Transaction, inode_id: int, session_id: bytes) -> None:
    check_session_id(session_id)
    txn.clear(keys.session_key(inode_id, session_id))


async def has_sessions(txn: Transaction, inode_id: int, *, snapshot: bool = False) -> bool:
    """Whether any write session of `inode_id` exists (a non-snapshot read conflicts with new ones)."""
    prefix = keys.session_prefix(inode_id)
    return bool(await txn.get_range(prefix, keys.prefix_end(prefix), limit=1, snapshot=snapshot))


async def sessions_of(txn: Transaction, inode_id: int | None = None) -> list[mp.FileSession]:
    """Every session row (of one inode, or all), snapshot read."""
    prefix = keys.session_prefix(inode_id) if inode_id is not None else keys.INODE_SESSION
    return [mp.FileSession.FromString(v)
            for _, v in await txn.get_range(prefix, keys.prefix_end(prefix), snapshot=True)]


async def leases(txn: Transaction) -> dict[bytes, mp.ClientLease]:
    rows = await txn.get_range(keys.CLIENT_LEASE, keys.prefix_end(keys.CLIENT_LEASE), snapshot=True)
    out = {}
    for _, v in rows:
        lease = mp.ClientLease.FromString(v)
        out[lease.client_id] = lease
    return out


class SessionPruner(PeriodicWorker):
    """Periodically drops the write sessions of clients whose lease expired (and stale leases)."""

    name = "session pruning"

    def __init__(self, kv: KVEngine, *, client_timeout: float, interval: float) -> None:
        self.kv = kv
        self.timeout_ms = int(client_timeout * 1000)
        super().__init__(interval)
        self.pruned = 0

    def _stale(self, lease: mp.ClientLease | None, session: mp.FileSession, now: int) -> bool:
        if lease is not None:
            return lease.renewed_ms < now - self.timeout_ms
        return session.created_ms < now - self.timeout_ms

    async def run_once(self) -> int:
        """One scan; returns how many sessions were removed."""
        now = now_ms()
        current = await run_txn(self.kv, leases)
        removed = 0
        begin = keys.INODE_SESSION
        end = keys.prefix_end(keys.INODE_SESSION)
        while True:
            async def page(txn: Transaction, b=begin):
                return await txn.get_range(b, end, limit=PAGE, snapshot=True)

            rows = await run_txn(self.kv, page)
            for k, v in rows:
                s = mp.FileSession.FromString(v)
                if self._stale(current.get(s.client_id), s, now):
                    removed += await run_txn(self.kv, lambda txn, key=k, s=s: self._prune_one(txn, key, s))
            if len(rows) < PAGE:
                break
            begin = rows[-1][0] + b"\0"
        for client_id, lease in current.items():
            if lease.renewed_ms < now - 10 * self.timeout_ms:
                await run_txn(self.kv, lambda txn, c=client_id: self._drop_lease(txn, c, now))
        self.pruned += removed
        return removed

    async def _prune_one(self, txn: Transaction, key: bytes, s: mp.FileSession) -> int:
        raw = await txn.get(keys.client_lease_key(s.client_id))
        lease = mp.ClientLease.FromString(raw) if raw is not None else None
        if await txn.get(key) is None or not self._stale(lease, s, now_ms()):
            return 0
        log.info("pruning write session of inode %#x: client %s is gone", s.inode, s.client_id.hex())
        txn.clear(key)
        return 1

    async def _drop_lease(self, txn: Transaction, client_id: bytes, now: int) -> None:
        raw = await txn.get(keys.client_lease_key(client_id))
        if raw is not None and mp.ClientLease.FromString(raw).renewed_ms < now - 10 * self.timeout_ms:
            txn.clear(keys.client_lease_key(client_id))
