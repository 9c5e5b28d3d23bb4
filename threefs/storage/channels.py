"""Exactly-once updates (3FS §4.5): client update channels and the per-target cache of their results.

A client owns a pool of channels; an update (write, truncate, remove) holds one channel until it is done,
and each use of a channel gets the next sequence number. Every retry of the update, at any layer, carries
the same (client id, channel id, seqnum). A target remembers, per (client, chain, channel), the last
seqnum it executed and its outcome:

* seqnum lower than the cached one: a stale retry of an update the client already gave up on
  -> DUPLICATE_UPDATE;
* the same seqnum: still running -> wait for that execution and return its result; done and succeeded
  -> return the cached result without executing again; done and failed -> execute again;
* a higher seqnum (or a new channel): execute and cache.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from threefs.common.errors import Code, FSError, make_error

T = TypeVar("T")


@dataclass
class _Entry:
    seqnum: int
    version: int                       # extra identity (update version of a forwarded update; 0 = any)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    result: Any = None
    error: BaseException | None = None
    at: float = field(default_factory=time.monotonic)


class ChannelCache:
    """The results of the last update per channel key, bounded in size and age."""

    def __init__(self, max_entries: int = 200_000, ttl: float = 600.0) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self.stats = {"executed": 0, "replayed": 0, "waited": 0, "duplicates": 0}

    def __len__(self) -> int:
        return len(self._entries)

    async def run(self, key: Hashable, seqnum: int, fn: Callable[[], Awaitable[T]], *, version: int = 0) -> T:
        """Execute `fn` at most once per (key, seqnum[, version]) with a successful outcome."""
        if seqnum == 0:                 # untagged (internal) updates are not deduplicated
            return await fn()
        entry = self._entries.get(key)
        if entry is not None and seqnum < entry.seqnum:
            self.stats["duplicates"] += 1
            raise make_error(Code.DUPLICATE_UPDATE, f"update {seqnum} on channel {key} is older than {entry.seqnum}")
        if entry is not None and seqnum == entry.seqnum and version == entry.version:
            if not entry.done.is_set():
                self.stats["waited"] += 1
                await entry.done.wait()
                if entry.error is not None:
                    raise entry.error
                return entry.result
            if entry.error is None:
                self.stats["replayed"] += 1
                return entry.result
        entry = _Entry(seqnum, version)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._evict()
        self.stats["executed"] += 1
        try:
            entry.result = await fn()
            return entry.result
        except BaseException as e:
            entry.error = e if isinstance(e, FSError) else make_error(Code.INTERNAL, f"update failed: {e!r}")
            raise
        finally:
            entry.done.set()

    def _evict(self) -> None:
        now = time.monotonic()
        while self._entries:
            key, oldest = next(iter(self._entries.items()))
            if len(self._entries) <= self.max_entries and now - oldest.at < self.ttl:
                break
            if not oldest.done.is_set():
                break
            del self._entries[key]


class ChannelPool:
    """A client's update channels: ids 1..n, each with its own increasing sequence number."""

    def __init__(self, channels: int = 1024) -> None:
        self.channels = channels
        self._free = list(range(channels, 0, -1))
        self._seq: dict[int, int] = {}
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> tuple[int, int]:
        """Take a free channel (waiting if all are in use); returns (channel id, seqnum)."""
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: bool(self._free))
            cid = self._free.pop()
        seq = self._seq.get(cid, 0) + 1
        self._seq[cid] = seq
        return cid, seq

    async def release(self, channel_id: int) -> None:
        cond = self._condition()
        async with cond:
            self._free.append(channel_id)
            cond.notify()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[tuple[int, int]]:
        """`async with pool.hold() as (channel, seqnum)`: one update's channel for all its retries."""
        cid, seq = await self.acquire()
        try:
            yield cid, seq
        finally:
            await self.release(cid)

    @property
    def in_use(self) -> int:
        return self.channels - len(self._free)
