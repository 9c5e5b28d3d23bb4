"""Directory leases: a client that made a directory answers lookups of names it did not add itself.

A mount creating many files in a directory pays a meta round trip for the kernel's LOOKUP of every
new name, only to hear "missing". When a client makes a directory (Mkdirs with a callback address),
meta grants it a lease on the new, empty directory's entries (key DLEA + directory). While the lease
lasts, no other client adds a name to that directory: an operation of another client that would
(create, mkdir, symlink, link, rename into it), or would remove the directory or change its mode,
first recalls the lease through the holder's callback (`Client.RecallDirLease`) and deletes it,
then runs. The holder, which tracks the names it adds,
answers every other name as missing without meta until its lease ends or is recalled (CephFS grants
directory caps for the same reason). A holder that cannot be reached is waited out: the lease
expires `ttl` after its grant. A refused connection means the holder's process is gone (its mount
with it), and the lease is dropped at once.
"""
from __future__ import annotations

import asyncio
import logging
import time

from threefs.common.errors import Code, FSError, make_error
from threefs.common.periodic import PeriodicWorker
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.kv.sweep import sweep_prefix
from threefs.net.rpc import RpcClient
from threefs.proto import meta_pb2 as mp

log = logging.getLogger(__name__)

RECALL_METHOD = "Client.RecallDirLease"
RECALL_TIMEOUT = 2.0     # seconds a holder has to answer a recall before its lease is waited out
SKEW = 1.0               # seconds added to an expiry before another meta server counts it as passed
MAX_RECALLS = 8          # leases one operation may recall before it gives up (a holder re-granted in a loop)


class LeaseHeld(Exception):
    """Raised inside a transaction: another client holds a lease on `dir_id`; recall it, then retry."""

    def __init__(self, dir_id: int, lease: mp.DirLease) -> None:
        super().__init__(f"directory {dir_id:#x} is leased to another client")
        self.dir_id = dir_id
        self.lease = lease


def _expired(lease: mp.DirLease, now_ns: int) -> bool:
    return now_ns > lease.expires_ns + int(SKEW * 1e9)


def grant(txn: Transaction, dir_id: int, base: mp.ReqBase, callback: str, ttl: float) -> float:
    """Lease the entries of `dir_id` (a directory this transaction creates) to the caller; the seconds it
    lasts (0 when leases are off or the caller has no client id)."""
    if ttl <= 0 or not callback or len(base.client_id) != 16:
        return 0.0
    lease = mp.DirLease(client_id=base.client_id, callback=callback, expires_ns=time.time_ns() + int(ttl * 1e9))
    txn.set(keys.dir_lease_key(dir_id), lease.SerializeToString())
    return ttl


async def check_lease(txn: Transaction, dir_id: int, base: mp.ReqBase) -> None:
    """Before the caller adds a name to `dir_id`, removes it or changes its mode or owner (what its holder
    creates on): raise LeaseHeld if another client holds a live lease on it.

    Read with a conflict, so a lease granted concurrently (the directory is new then) aborts one of the two.
    An expired lease is deleted here."""
    raw = await txn.get(keys.dir_lease_key(dir_id))
    if raw is None:
        return
    lease = mp.DirLease.FromString(raw)
    if lease.client_id == base.client_id and base.client_id:
        return
    if _expired(lease, time.time_ns()):
        txn.clear(keys.dir_lease_key(dir_id))
        return
    raise LeaseHeld(dir_id, lease)


def forget(txn: Transaction, dir_id: int) -> None:
    """The directory is removed: its lease (if any) goes with it."""
    txn.clear(keys.dir_lease_key(dir_id))


async def recall(kv: KVEngine, rpc: RpcClient, held: LeaseHeld) -> None:
    """Make the holder give the lease back (or wait until it has expired), then delete it."""
    lease = held.lease
    reached = False
    try:
        await rpc.call(lease.callback, RECALL_METHOD, mp.RecallDirLeaseReq(dir=held.dir_id, client_id=lease.client_id),
                       mp.RecallDirLeaseRsp, timeout=RECALL_TIMEOUT)
        reached = True
    except FSError as e:
        if isinstance(e.__cause__, ConnectionRefusedError):
            reached = True          # nothing listens there: the holder's process (and its mount) is gone
        else:
            log.warning("recall of the lease on directory %#x from %s failed (%s): waiting for it to expire",
                        held.dir_id, lease.callback, e)
    if not reached:
        wait = (lease.expires_ns - time.time_ns()) / 1e9 + SKEW
        if wait > 0:
            await asyncio.sleep(wait)

    async def drop(txn: Transaction) -> None:
        raw = await txn.get(keys.dir_lease_key(held.dir_id))
        if raw is not None and mp.DirLease.FromString(raw) == lease:
            txn.clear(keys.dir_lease_key(held.dir_id))

    await run_txn(kv, drop)


async def with_recalls(kv: KVEngine, rpc: RpcClient, run):
    """Run `run()` (a whole transaction), recalling each lease it runs into, then running it again."""
    for _ in range(MAX_RECALLS):
        try:
            return await run()
        except LeaseHeld as e:
            await recall(kv, rpc, e)
    raise make_error(Code.BUSY, f"directory leases were granted again {MAX_RECALLS} times while this operation ran")


class LeaseExpirer(PeriodicWorker):
    """Deletes expired directory leases, a page at a time (a lease nobody contested ends here)."""

    name = "directory lease expiry"

    def __init__(self, kv: KVEngine, *, interval: float) -> None:
        self.kv = kv
        super().__init__(interval)

    async def run_once(self) -> int:
        """One sweep; returns how many leases were deleted."""
        now = time.time_ns()
        return await sweep_prefix(self.kv, keys.DIR_LEASE, lambda v: _expired(mp.DirLease.FromString(v), now))
