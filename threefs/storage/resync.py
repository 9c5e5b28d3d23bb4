"""Resync (3FS §4.8): the serving predecessor of a SYNCING target brings it up to date.

The predecessor (the chain's tail) asks the syncing successor for the metadata of all its chunks
(SyncStart), compares them with its own by the rule table (`resync_action`), sends removes first and
then full-chunk writes through the normal update path (each under the chunk lock, so client writes to
the same chunk are ordered with it; meanwhile client writes reaching the tail are forwarded to the
syncing target as full-chunk replacements), and finally SyncDone makes the successor UPTODATE.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from typing import TYPE_CHECKING

from threefs.common.errors import Code, FSError, make_error
from threefs.proto import common_pb2 as cpb
from threefs.proto import storage_pb2 as spb

if TYPE_CHECKING:
    from threefs.storage.service import StorageService, Target

log = logging.getLogger(__name__)


class Action(enum.Enum):
    """What the resync does with one chunk id."""

    SKIP = "skip"
    REMOVE = "remove"       # remove the successor's copy
    WRITE = "write"         # full-chunk write of the local committed content
    FATAL = "fatal"         # replicas disagree in a way the protocol excludes: rewritten from the local copy


def _committed(m: spb.ChunkMeta) -> bool:
    return m.commit_ver == m.update_ver and m.state == spb.COMMIT


def resync_action(local: spb.ChunkMeta | None, remote: spb.ChunkMeta | None, chain_ver: int,
                  *, heavy: bool = False) -> Action:
    """The §4.8 rule table, first matching row wins (`chain_ver` = the chain's current version)."""
    if local is None and remote is None:
        return Action.SKIP
    if local is None:
        return Action.REMOVE                                     # only remote
    if remote is None:
        return Action.WRITE                                      # only local
    if local.removing:
        return Action.SKIP                                       # local being removed: the removal forwards
    if local.chain_ver > remote.chain_ver:
        return Action.WRITE
    if not _committed(remote):
        return Action.WRITE                                      # remote holds an uncommitted version
    if local.chain_ver < remote.chain_ver:
        return Action.FATAL if _committed(local) else Action.SKIP     # else: an in-flight write
    if local.update_ver != remote.commit_ver:
        return Action.FATAL if _committed(local) and local.chain_ver != chain_ver else Action.SKIP
    if heavy:
        return Action.WRITE
    if local.checksum != remote.checksum or local.size != remote.size:
        return Action.FATAL if local.chain_ver != chain_ver else Action.SKIP
    return Action.SKIP                                           # identical


class Resyncer:
    """The node's resync loop: at most one job per chain, chains picked in random order."""

    def __init__(self, service: StorageService, *, interval: float = 0.5, retry_gap: float = 1.0,
                 concurrency: int = 16, rpc_timeout: float = 10.0, rate: float = 0.0) -> None:
        self.service = service
        self.rate = rate                  # bytes/s of chunk data sent by all jobs together (0: no cap)
        self._next_send = 0.0
        self.interval = interval
        self.retry_gap = retry_gap
        self.concurrency = concurrency
        self.rpc_timeout = rpc_timeout
        self.jobs: dict[int, asyncio.Task] = {}
        self._last_attempt: dict[int, float] = {}
        self.stats = {"jobs": 0, "done": 0, "failed": 0, "removed": 0, "written": 0, "fatal": 0, "skipped": 0}

    def candidates(self) -> list[tuple[Target, int, int]]:
        """(local target, chain id, syncing successor) for chains this node must resync now."""
        routing = self.service.mgmtd.routing
        out = []
        for t in self.service.targets.values():
            info = routing.targets.get(t.target_id)
            if info is None or not info.chain_id or info.chain_id not in routing.chains:
                continue
            if t.local_state != cpb.UPTODATE or routing.public_state(info.chain_id, t.target_id) != cpb.SERVING:
                continue
            succ = routing.successor(info.chain_id, t.target_id)
            if succ is not None and routing.public_state(info.chain_id, succ) == cpb.SYNCING:
                out.append((t, info.chain_id, succ))
        random.shuffle(out)
        return out

    def poke(self) -> None:
        """Start the jobs that are due (called periodically and on routing changes)."""
        now = time.monotonic()
        for t, chain_id, succ in self.candidates():
            job = self.jobs.get(chain_id)
            if job is not None and not job.done():
                continue
            if now - self._last_attempt.get(chain_id, -1e9) < self.retry_gap:
                continue
            self._last_attempt[chain_id] = now
            self.jobs[chain_id] = asyncio.create_task(self._job(t, chain_id, succ))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.poke()
            except Exception:
                log.exception("resync loop")

    async def stop(self) -> None:
        jobs = [j for j in self.jobs.values() if not j.done()]
        for j in jobs:
            j.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    async def _job(self, target: Target, chain_id: int, succ: int) -> None:
        self.stats["jobs"] += 1
        try:
            await self.sync_chain(target, chain_id, succ)
            self.stats["done"] += 1
        except FSError as e:
            self.stats["failed"] += 1
            log.warning("resync of chain %d into target %d failed (will retry): %s", chain_id, succ, e)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.stats["failed"] += 1
            log.exception("resync of chain %d into target %d", chain_id, succ)

    async def _pace(self, nbytes: int) -> None:
        """Keep the node's resync traffic under `rate` (recovery must not starve client I/O)."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        start = max(now, self._next_send)
        self._next_send = start + nbytes / self.rate
        if start > now:
            await asyncio.sleep(start - now)

    def _check(self, chain_id: int, chain_ver: int, succ: int) -> None:
        routing = self.service.mgmtd.routing
        chain = routing.chains.get(chain_id)
        if chain is None or chain.chain_version != chain_ver or routing.public_state(chain_id, succ) != cpb.SYNCING:
            raise make_error(Code.ROUTING_VERSION_MISMATCH, f"chain {chain_id} changed during its resync")

    async def sync_chain(self, target: Target, chain_id: int, succ: int) -> dict[str, int]:
        """One full resync of `succ` from `target`; returns counts of removes, writes and skips."""
        svc = self.service
        routing = svc.mgmtd.routing
        chain_ver = routing.chain(chain_id).chain_version
        started = time.monotonic()
        log.info("resync of chain %d v%d: target %d -> syncing target %d", chain_id, chain_ver,
                 target.target_id, succ)
        rsp, _ = await svc.rpc.call(routing.target_address(succ), "Storage.SyncStart",
                                    spb.SyncStartReq(chain_id=chain_id, chain_ver=chain_ver, target_id=succ),
                                    spb.SyncStartRsp, timeout=self.rpc_timeout)
        remote = {bytes(m.chunk_id): m for m in rsp.metas}
        local = {bytes(m.chunk_id): m for m in await svc._io(target.engine.metas)}
        self._check(chain_id, chain_ver, succ)
        removes: list[bytes] = []
        writes: list[bytes] = []
        counts = {"remove": 0, "write": 0, "skip": 0, "fatal": 0}
        for cid in sorted(set(remote) | set(local)):
            action = resync_action(local.get(cid), remote.get(cid), chain_ver)
            if action == Action.REMOVE:
                removes.append(cid)
            elif action in (Action.WRITE, Action.FATAL):
                if action == Action.FATAL:
                    counts["fatal"] += 1
                    log.error("resync of chain %d: chunk %s diverged on target %d (local %s / remote %s); "
                              "rewriting it from target %d", chain_id, cid.hex(), succ, local.get(cid),
                              remote.get(cid), target.target_id)
                writes.append(cid)
            else:
                counts["skip"] += 1
        sem = asyncio.Semaphore(self.concurrency)

        async def one(cid: bytes) -> None:
            async with sem:
                await self._pace(local[cid].size if cid in local else 0)
                self._check(chain_id, chain_ver, succ)
                await svc.sync_one(target, chain_id, chain_ver, succ, cid)

        for batch in (removes, writes):
            errors = [r for r in await asyncio.gather(*(one(c) for c in batch), return_exceptions=True)
                      if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
        counts["remove"], counts["write"] = len(removes), len(writes)
        self._check(chain_id, chain_ver, succ)
        await svc.rpc.call(svc.mgmtd.routing.target_address(succ), "Storage.SyncDone",
                           spb.SyncDoneReq(chain_id=chain_id, chain_ver=chain_ver, target_id=succ),
                           spb.SyncDoneRsp, timeout=self.rpc_timeout)
        for k, v in (("removed", counts["remove"]), ("written", counts["write"]), ("fatal", counts["fatal"]),
                     ("skipped", counts["skip"])):
            self.stats[k] += v
        log.info("resync of chain %d into target %d done in %.2fs: %d removed, %d written, %d skipped, %d diverged",
                 chain_id, succ, time.monotonic() - started, counts["remove"], counts["write"], counts["skip"],
                 counts["fatal"])
        return counts
