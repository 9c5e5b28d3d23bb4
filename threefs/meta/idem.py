"""Idempotency records (IDEM): the result of a remove/rename, stored in the mutation's own transaction.

A client that retries a request after a lost reply sends the same (client id, request id); the
retry finds the record and returns the first result instead of applying the mutation twice.
Records expire after `idem_ttl` (30 minutes, as in 3FS) and are swept in the background.
"""
from __future__ import annotations

import logging
from typing import TypeVar

from google.protobuf.message import Message

from threefs.common.errors import Code, make_error
from threefs.common.periodic import PeriodicWorker
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction
from threefs.kv.sweep import sweep_prefix
from threefs.meta.schema import now_ms
from threefs.proto import meta_pb2 as mp

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)


def _key(base: mp.ReqBase) -> bytes | None:
    """The record's key, or None when the request carries no ids (then it is not deduplicated)."""
    if not base.client_id and not base.request_id:
        return None
    if len(base.client_id) != 16 or len(base.request_id) != 16:
        raise make_error(Code.INVALID_ARGUMENT, "client id and request id must be 16 bytes each")
    return keys.idem_key(base.client_id, base.request_id)


async def lookup(txn: Transaction, base: mp.ReqBase, method: str, rsp_type: type[M]) -> M | None:
    """The stored result of this very request, if an earlier attempt committed."""
    key = _key(base)
    if key is None:
        return None
    raw = await txn.get(key)
    if raw is None:
        return None
    rec = mp.IdemRecord.FromString(raw)
    if rec.method != method:
        raise make_error(Code.INVALID_ARGUMENT, f"request id reused: first used for {rec.method}, now {method}")
    return rsp_type.FromString(rec.result)


def store(txn: Transaction, base: mp.ReqBase, method: str, rsp: Message) -> None:
    """Record `rsp` as the result of this request (same transaction as the mutation)."""
    key = _key(base)
    if key is not None:
        rec = mp.IdemRecord(method=method, timestamp_ms=now_ms(), result=rsp.SerializeToString())
        txn.set(key, rec.SerializeToString())


class IdemExpirer(PeriodicWorker):
    """Deletes IDEM records older than the TTL, a page at a time."""

    name = "IDEM expiry"

    def __init__(self, kv: KVEngine, *, ttl: float, interval: float) -> None:
        self.kv = kv
        self.ttl_ms = int(ttl * 1000)
        super().__init__(interval)

    async def run_once(self) -> int:
        """One sweep; returns how many records were deleted."""
        cutoff = now_ms() - self.ttl_ms
        return await sweep_prefix(self.kv, keys.IDEMPOTENCY, lambda v: mp.IdemRecord.FromString(v).timestamp_ms < cutoff)
