"""The FoundationDB-shaped transactional KV interface that meta and mgmtd store their state on.

A `Transaction` reads at one read version (a consistent snapshot), buffers its writes, and on
`commit` is checked against every transaction that committed after its read version: if any key
or range it read (non-snapshot) or declared was written since, it raises `TransactionConflict`
and the caller retries the whole operation (`run_txn`). Engines: `memory://` (tests) and
`rocksdb://path` (embedded, durable, group commit).
"""
from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TypeVar

from threefs.common.errors import Code, FSError

T = TypeVar("T")


class TransactionConflict(FSError):
    """A transaction's reads were invalidated by a concurrent commit; retry the whole operation."""

    def __init__(self, message: str = "transaction conflict") -> None:
        super().__init__(Code.TXN_CONFLICT, message)


class Transaction(ABC):
    """One optimistic transaction: consistent reads at `read_version`, buffered writes.

    `durable` (default True): commit returns once this transaction and every one committed before
    it survive a machine crash. False: once they survive a crash of this process (an engine may then
    skip the fsync; a later durable commit, or `KVEngine.sync`, makes them crash-proof too).
    """

    durable: bool = True

    @property
    @abstractmethod
    def read_version(self) -> int:
        """The version this transaction reads at."""

    @abstractmethod
    async def get(self, key: bytes) -> bytes | None:
        """Value of `key` (own writes included); adds the key to the read-conflict set."""

    @abstractmethod
    async def snapshot_get(self, key: bytes) -> bytes | None:
        """Value of `key` (own writes included) without conflict tracking."""

    @abstractmethod
    async def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with keys in [begin, end), ascending (descending if `reverse`); `limit` 0 = all.

        Non-snapshot reads add the range actually covered to the read-conflict set.
        """

    @abstractmethod
    def set(self, key: bytes, value: bytes) -> None:
        """Buffer a write of `key`."""

    @abstractmethod
    def clear(self, key: bytes) -> None:
        """Buffer a delete of `key`."""

    @abstractmethod
    def clear_range(self, begin: bytes, end: bytes) -> None:
        """Buffer a delete of every key in [begin, end)."""

    @abstractmethod
    def add_read_conflict(self, key: bytes) -> None:
        """Make the commit conflict if `key` was written since the read version."""

    @abstractmethod
    def add_read_conflict_range(self, begin: bytes, end: bytes) -> None:
        """Make the commit conflict if any key in [begin, end) was written since the read version."""

    @abstractmethod
    async def commit(self) -> None:
        """Apply the buffered writes atomically (durably), or raise `TransactionConflict`."""

    @abstractmethod
    def cancel(self) -> None:
        """Drop the transaction without committing (idempotent; a no-op after commit)."""


class KVEngine(ABC):
    """A store that hands out transactions."""

    @abstractmethod
    def transaction(self) -> Transaction:
        """Start a transaction reading at the latest committed version."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending commits and release the store."""

    async def sync(self) -> None:
        """Make every commit so far survive a machine crash (engines that sync every commit: nothing to do)."""


async def run_txn(
    engine: KVEngine,
    fn: Callable[[Transaction], Awaitable[T]],
    *,
    max_retries: int = 20,
    backoff: float = 0.005,
    max_backoff: float = 1.0,
    durable: bool = True,
) -> T:
    """Run `fn` in a fresh transaction and commit it, retrying the whole operation on conflict.

    Retries up to `max_retries` times with full-jitter exponential backoff, then re-raises.
    `durable=False`: the commit need only survive a crash of the process (Transaction.durable).
    """
    delay = backoff
    for attempt in range(max_retries + 1):
        txn = engine.transaction()
        txn.durable = durable
        try:
            result = await fn(txn)
            await txn.commit()
            return result
        except TransactionConflict:
            if attempt >= max_retries:
                raise
        finally:
            txn.cancel()
        await asyncio.sleep(random.uniform(0, delay))
        delay = min(delay * 2, max_backoff)
    raise AssertionError("unreachable")


def open_engine(url: str) -> KVEngine:
    """Open an engine from a URL: "memory://", "rocksdb:///abs/path" or "rocksdb://relative/path"."""
    if url == "memory://":
        from threefs.kv.memory import MemoryKV

        return MemoryKV()
    if url.startswith("rocksdb://"):
        path = url[len("rocksdb://"):]
        if not path:
            raise ValueError(f"kv url {url!r} names no path (use rocksdb:///abs/path)")
        from threefs.kv.rocksdb import RocksKV

        return RocksKV(path)
    raise ValueError(f"unsupported kv url {url!r} (expected memory:// or rocksdb://PATH)")
