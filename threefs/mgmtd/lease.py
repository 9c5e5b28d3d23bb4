"""mgmtd primary election: one lease row in the KV engine (3FS §3.1), extended or taken over in a txn.

Every mgmtd runs `extend_lease` periodically: with no lease or an expired one it takes the lease (a new
epoch), its own lease it extends, anyone else's it leaves alone. A process acts as primary only while
`now + suspicious_ms < lease_end`, and every write transaction of the primary re-reads the lease
(`validate_lease`) so a deposed primary cannot write (fencing). A restarted process with the same node
id is a new *incarnation*: it takes its old lease over at once, with a new epoch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from threefs import __version__
from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb

LEASE_KEY = keys.single_key("MgmtdLease")


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class LeaseConfig:
    """Lease timing (3FS defaults: 60 s lease, extended every 10 s, distrusted 20 s before it ends)."""

    lease_ms: int = 60_000
    extend_interval: float = 10.0
    suspicious_ms: int = 20_000
    release_version: str = __version__


def _release_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        out.append(int(digits) if digits else 0)
    return tuple(out)


def decide(lease: mpb.MgmtdLease | None, me: cpb.NodeInfo, incarnation: bytes, now: int,
           cfg: LeaseConfig) -> mpb.MgmtdLease | None:
    """The lease to write after one extend attempt by `me`, or None to leave the current one alone."""
    mine = lease is not None and lease.primary.node_id == me.node_id
    expired = lease is None or lease.lease_end_ms < now
    if not mine and not expired:
        return None
    if (lease is not None and not mine and lease.release_version
            and _release_tuple(lease.release_version) > _release_tuple(cfg.release_version)):
        return None      # a newer release is not displaced by an older binary
    new = mpb.MgmtdLease(release_version=cfg.release_version, incarnation=incarnation)
    new.primary.CopyFrom(me)
    new.primary.status = cpb.PRIMARY_MGMTD
    new.lease_end_ms = now + cfg.lease_ms
    if mine and not expired and lease.incarnation == incarnation:
        new.lease_start_ms = lease.lease_start_ms      # extend
        new.epoch = lease.epoch
    else:
        new.lease_start_ms = now                        # take over (also from an earlier incarnation)
        new.epoch = (lease.epoch if lease is not None else 0) + 1
    return new


def acts_as_primary(lease: mpb.MgmtdLease | None, node_id: int, incarnation: bytes, now: int,
                    cfg: LeaseConfig) -> bool:
    """True while `lease` is ours and not within `suspicious_ms` of its end."""
    return (lease is not None and lease.primary.node_id == node_id and lease.incarnation == incarnation
            and now + cfg.suspicious_ms < lease.lease_end_ms)


async def read_lease(txn: Transaction, *, snapshot: bool = False) -> mpb.MgmtdLease | None:
    raw = await (txn.snapshot_get(LEASE_KEY) if snapshot else txn.get(LEASE_KEY))
    return None if raw is None else mpb.MgmtdLease.FromString(raw)


async def extend_lease(kv: KVEngine, me: cpb.NodeInfo, incarnation: bytes, cfg: LeaseConfig) -> mpb.MgmtdLease | None:
    """One extend/take-over attempt in a transaction; returns the lease as it is afterwards."""

    async def fn(txn: Transaction) -> mpb.MgmtdLease | None:
        lease = await read_lease(txn)
        new = decide(lease, me, incarnation, now_ms(), cfg)
        if new is None:
            return lease
        txn.set(LEASE_KEY, new.SerializeToString())
        return new

    return await run_txn(kv, fn)


async def current_lease(kv: KVEngine) -> mpb.MgmtdLease | None:
    return await run_txn(kv, lambda txn: read_lease(txn, snapshot=True))


async def validate_lease(txn: Transaction, node_id: int, incarnation: bytes) -> None:
    """Fencing inside a write transaction: NOT_PRIMARY unless the lease is still ours and unexpired."""
    lease = await read_lease(txn)
    if lease is None or lease.primary.node_id != node_id or lease.incarnation != incarnation:
        holder = lease.primary.node_id if lease is not None else "nobody"
        raise make_error(Code.NOT_PRIMARY, f"mgmtd {node_id} lost the primary lease (held by {holder})")
    if lease.lease_end_ms < now_ms():
        raise make_error(Code.NOT_PRIMARY, f"mgmtd {node_id}'s primary lease expired")
