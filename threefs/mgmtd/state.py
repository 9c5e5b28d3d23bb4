"""mgmtd's cluster state: nodes, chain tables, chains, targets; persisted in the KV engine.

Every change that others must see is written to the KV engine first (in a transaction that also
re-validates the primary's lease), then applied in memory, then published by bumping the routing-info
version (3FS §3.3). Routing versions are `(epoch << 32) + n`: each new primary (or restarted one) has a
higher epoch, so versions never go backwards for clients across a failover or restart.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.mgmtd.chain_state import generate_new_chain, rotate_lastsrv
from threefs.mgmtd.routing import Routing
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb

log = logging.getLogger(__name__)
Guard = Callable[[Transaction], Awaitable[None]]


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _no_guard(txn: Transaction) -> None:
    return None


class ClusterState:
    """In-memory cluster state of the primary, backed by the KV engine."""

    def __init__(self, kv: KVEngine, *, heartbeat_fail_ms: int = 60_000, bootstrap_ms: int = 120_000,
                 guard: Guard | None = None) -> None:
        self.kv = kv
        self.heartbeat_fail_ms = heartbeat_fail_ms
        self.bootstrap_ms = bootstrap_ms
        self.guard = guard or _no_guard
        self.nodes: dict[int, cpb.NodeInfo] = {}
        self.tables: dict[tuple[int, int], cpb.ChainTable] = {}
        self.chains: dict[int, cpb.ChainInfo] = {}
        self.targets: dict[int, cpb.TargetInfo] = {}
        self.epoch = 0
        self._counter = 0
        self.version = 0
        self._cache: tuple[int, cpb.RoutingInfo] | None = None
        self.newborn: dict[int, int] = {}          # chain id -> ms since which it waits for reports
        self.reported_ms: dict[int, int] = {}      # target id -> last accepted local-state report

    # ---- loading and persistence -------------------------------------------------------
    async def load(self, epoch: int = 1) -> None:
        """Load persisted state as a new primary of `epoch`: all targets locally OFFLINE, chains frozen
        until their targets re-reported (or the bootstrap interval passed)."""

        async def read(txn: Transaction):
            def scan(prefix: bytes):
                return txn.get_range(prefix, keys.prefix_end(prefix))

            return (await scan(keys.NODE), await scan(keys.CHAIN_TABLE), await scan(keys.CHAIN_INFO),
                    await scan(keys.TARGET_INFO))

        nodes, tables, chains, targets = await run_txn(self.kv, read)
        now = _now_ms()
        for _, v in nodes:
            n = cpb.NodeInfo.FromString(v)
            if n.status != cpb.DISABLED:
                # Presumed alive for one fail interval: clients keep reaching meta servers across a
                # failover; a node that does not heartbeat by then is marked failed as usual.
                n.status = cpb.HEARTBEAT_CONNECTED
                n.last_heartbeat_ms = now
            self.nodes[n.node_id] = n
        for _, v in tables:
            t = cpb.ChainTable.FromString(v)
            self.tables[(t.table_id, t.version)] = t
        for _, v in chains:
            c = cpb.ChainInfo.FromString(v)
            self.chains[c.chain_id] = c
        for _, v in targets:
            t = cpb.TargetInfo.FromString(v)
            t.local_state = cpb.LOCAL_OFFLINE
            self.targets[t.target_id] = t
        self._sync_target_chain_fields()
        self.epoch = epoch
        self._counter = 0
        self.newborn = {c: now for c in self.chains}
        self.reported_ms = {}
        self._bump_memory_only()

    async def _persist(self, write: Callable[[Transaction], None]) -> None:
        """Run `write(txn)` in one transaction that re-validates the lease, then bump the version."""

        async def fn(txn: Transaction) -> None:
            await self.guard(txn)
            write(txn)

        await run_txn(self.kv, fn)
        self._bump_memory_only()

    def _bump_memory_only(self) -> None:
        self._counter += 1
        self.version = (self.epoch << 32) + self._counter
        self._cache = None

    def _sync_target_chain_fields(self) -> None:
        member = {ct.target_id: (c.chain_id, ct.public_state) for c in self.chains.values() for ct in c.targets}
        for tid, t in self.targets.items():
            if tid not in member:
                t.chain_id = 0
                t.public_state = cpb.PUBLIC_INVALID
        for tid, (chain_id, state) in member.items():
            t = self.targets.setdefault(tid, cpb.TargetInfo(target_id=tid, local_state=cpb.LOCAL_OFFLINE))
            t.chain_id = chain_id
            t.public_state = state

    # ---- routing info ---------------------------------------------------------------------
    def bootstrapping(self, now: int | None = None) -> bool:
        now = _now_ms() if now is None else now
        return any(self._is_newborn(c, now) for c in list(self.newborn))

    def routing_info(self) -> cpb.RoutingInfo:
        if self._cache is None or self._cache[0] != self.version:
            info = cpb.RoutingInfo(version=self.version, bootstrapping=self.bootstrapping())
            info.nodes.extend(sorted(self.nodes.values(), key=lambda n: n.node_id))
            info.chain_tables.extend(self.tables[k] for k in sorted(self.tables))
            info.chains.extend(self.chains[k] for k in sorted(self.chains))
            info.targets.extend(self.targets[k] for k in sorted(self.targets))
            self._cache = (self.version, info)
        return self._cache[1]

    def routing(self) -> Routing:
        return Routing(self.routing_info())

    # ---- heartbeats -------------------------------------------------------------------------
    async def heartbeat(self, req: mpb.HeartbeatReq) -> None:
        """Record a heartbeat: node liveness, target locations (persisted) and local states (memory).

        A target report made with a chain version older than the chain's is stale and its local state
        is ignored (3FS heartbeat_ignore_stale_targets): the node has not seen the newest chain yet.
        """
        if req.node_id == 0:
            raise make_error(Code.INVALID_ARGUMENT, "heartbeat from node id 0")
        if req.type == cpb.MGMTD:
            raise make_error(Code.INVALID_ARGUMENT, "mgmtd nodes do not heartbeat")
        ids = [rep.target_id for rep in req.targets]
        if len(set(ids)) != len(ids):
            raise make_error(Code.INVALID_ARGUMENT, f"node {req.node_id} reports a target twice")
        if any(rep.local_state == cpb.LOCAL_INVALID for rep in req.targets):
            raise make_error(Code.INVALID_ARGUMENT, f"node {req.node_id} reports an invalid local state")
        old = self.nodes.get(req.node_id)
        if old is not None and old.type != req.type:
            raise make_error(Code.INVALID_ARGUMENT,
                             f"node {req.node_id} is registered as {cpb.NodeType.Name(old.type)}, not {cpb.NodeType.Name(req.type)}")
        if old is not None and old.status == cpb.DISABLED:
            raise make_error(Code.NOT_PERMITTED, f"node {req.node_id} is disabled")
        now = _now_ms()
        node = cpb.NodeInfo(node_id=req.node_id, type=req.type, address=req.address, hostname=req.hostname,
                            pid=req.pid, status=cpb.HEARTBEAT_CONNECTED, last_heartbeat_ms=now,
                            metrics_address=req.metrics_address)
        persisted_changed = old is None or (old.address, old.hostname, old.metrics_address) != (
            node.address, node.hostname, node.metrics_address)
        visible_changed = persisted_changed or old.status != node.status or old.pid != node.pid
        new_targets = []
        for rep in req.targets:
            t = self.targets.get(rep.target_id)
            if t is None or t.node_id != req.node_id or t.disk_index != rep.disk_index:
                persisted_changed = True
                new_targets.append(rep)
            elif t.local_state != rep.local_state and not self._stale(rep):
                visible_changed = True
        if persisted_changed:
            def write(txn: Transaction) -> None:
                txn.set(keys.node_key(node.node_id), node.SerializeToString())
                for rep in new_targets:
                    ti = cpb.TargetInfo(target_id=rep.target_id, node_id=req.node_id, disk_index=rep.disk_index)
                    txn.set(keys.target_info_key(rep.target_id), ti.SerializeToString())

            await self._persist(write)
        self.nodes[node.node_id] = node
        for rep in req.targets:
            t = self.targets.setdefault(rep.target_id, cpb.TargetInfo(target_id=rep.target_id,
                                                                      local_state=cpb.LOCAL_OFFLINE))
            t.node_id = req.node_id
            t.disk_index = rep.disk_index
            t.used_size = rep.used_size
            if not self._stale(rep):
                t.local_state = rep.local_state
                self.reported_ms[rep.target_id] = now
        if visible_changed and not persisted_changed:
            self._bump_memory_only()

    def _stale(self, rep: mpb.LocalTargetReport) -> bool:
        t = self.targets.get(rep.target_id)
        chain = self.chains.get(t.chain_id) if t is not None and t.chain_id else None
        return chain is not None and rep.chain_version < chain.chain_version

    def check_heartbeats(self) -> bool:
        """Mark nodes silent for longer than the fail interval as failed (their targets locally
        OFFLINE); True if anything changed."""
        now = _now_ms()
        changed = False
        for n in self.nodes.values():
            if n.status == cpb.HEARTBEAT_CONNECTED and now - n.last_heartbeat_ms > self.heartbeat_fail_ms:
                log.warning("node %d missed heartbeats for %d ms: marking it failed", n.node_id,
                            now - n.last_heartbeat_ms)
                n.status = cpb.HEARTBEAT_FAILED
                changed = True
                for t in self.targets.values():
                    if t.node_id == n.node_id and t.local_state != cpb.LOCAL_OFFLINE:
                        t.local_state = cpb.LOCAL_OFFLINE
        if changed:
            self._bump_memory_only()
        return changed

    # ---- the chain state machine --------------------------------------------------------------
    def _is_newborn(self, chain_id: int, now: int) -> bool:
        """A chain is frozen after a (re)start or creation until every target of it re-reported since
        then, or the bootstrap interval passed (3FS new_chain_bootstrap_interval)."""
        since = self.newborn.get(chain_id)
        if since is None:
            return False
        chain = self.chains.get(chain_id)
        if chain is None or now >= since + self.bootstrap_ms or all(
                self.reported_ms.get(t.target_id, 0) >= since for t in chain.targets):
            del self.newborn[chain_id]
            return False
        return True

    async def update_chains(self) -> list[cpb.ChainInfo]:
        """Run `generate_new_chain` over every chain that is not newborn; persist changes, then publish."""
        now = _now_ms()
        changed: list[cpb.ChainInfo] = []
        for chain_id in sorted(self.chains):
            if self._is_newborn(chain_id, now):
                continue
            chain = self.chains[chain_id]
            local = {t.target_id: self.targets[t.target_id].local_state
                     for t in chain.targets if t.target_id in self.targets}
            new = generate_new_chain(chain, local)
            if new.chain_version != chain.chain_version:
                changed.append(new)
        if changed:
            await self._save_chains(changed)
            for c in changed:
                log.info("chain %d -> v%d: %s", c.chain_id, c.chain_version,
                         " ".join(f"{t.target_id}:{cpb.PublicTargetState.Name(t.public_state)}" for t in c.targets))
        return changed

    async def _save_chains(self, chains: list[cpb.ChainInfo]) -> None:
        def write(txn: Transaction) -> None:
            for c in chains:
                txn.set(keys.chain_info_key(c.chain_id), c.SerializeToString())

        await self._persist(write)
        for c in chains:
            self.chains[c.chain_id] = c
        self._sync_target_chain_fields()

    # ---- admin: chains and tables --------------------------------------------------------------
    async def set_chains(self, chains: list[cpb.ChainInfo]) -> None:
        owner: dict[int, int] = {t.target_id: c.chain_id for c in self.chains.values() for t in c.targets}
        new: list[cpb.ChainInfo] = []
        for c in chains:
            ids = [t.target_id for t in c.targets]
            if c.chain_id == 0:
                raise make_error(Code.INVALID_ARGUMENT, "chain id 0 is reserved")
            if not ids or len(set(ids)) != len(ids):
                raise make_error(Code.INVALID_ARGUMENT, f"chain {c.chain_id}: targets must be non-empty and distinct")
            existing = self.chains.get(c.chain_id)
            if existing is not None:
                if sorted(t.target_id for t in existing.targets) != sorted(ids):
                    raise make_error(Code.EXISTS, f"chain {c.chain_id} already exists with other targets (use update-chain)")
                continue
            for tid in ids:
                if tid in owner and owner[tid] != c.chain_id:
                    raise make_error(Code.EXISTS, f"target {tid} already belongs to chain {owner[tid]}")
                owner[tid] = c.chain_id
            info = cpb.ChainInfo(chain_id=c.chain_id, chain_version=1)
            info.targets.extend(cpb.ChainTarget(target_id=t, public_state=cpb.SERVING) for t in ids)
            info.preferred_order.extend(c.preferred_order)
            new.append(info)
        if not new:
            return
        await self._save_chains(new)
        now = _now_ms()
        for c in new:
            self.newborn[c.chain_id] = now

    async def update_chain(self, chain_id: int, target_id: int, mode: int) -> cpb.ChainInfo:
        """Admin `update-chain`: append a target as OFFLINE (it then syncs in), or drop an OFFLINE one."""
        chain = self.chains.get(chain_id)
        if chain is None:
            raise make_error(Code.NOT_FOUND, f"chain {chain_id} does not exist")
        ids = [t.target_id for t in chain.targets]
        new = cpb.ChainInfo()
        new.CopyFrom(chain)
        if mode == mpb.CHAIN_ADD:
            if target_id in ids:
                raise make_error(Code.EXISTS, f"target {target_id} is already in chain {chain_id}")
            for c in self.chains.values():
                if any(t.target_id == target_id for t in c.targets):
                    raise make_error(Code.EXISTS, f"target {target_id} already belongs to chain {c.chain_id}")
            new.targets.append(cpb.ChainTarget(target_id=target_id, public_state=cpb.OFFLINE))
        elif mode == mpb.CHAIN_REMOVE:
            if target_id not in ids:
                raise make_error(Code.NOT_FOUND, f"target {target_id} is not in chain {chain_id}")
            state = chain.targets[ids.index(target_id)].public_state
            if state != cpb.OFFLINE:
                raise make_error(Code.BUSY, f"target {target_id} is {cpb.PublicTargetState.Name(state)}; "
                                            "only OFFLINE targets can be removed (offline-target first)")
            if len(ids) == 1:
                raise make_error(Code.INVALID_ARGUMENT, f"target {target_id} is the last one of chain {chain_id}")
            del new.targets[ids.index(target_id)]
        else:
            raise make_error(Code.INVALID_ARGUMENT, f"unknown update-chain mode {mode}")
        new.chain_version = chain.chain_version + 1
        await self._save_chains([new])
        return new

    async def rotate_lastsrv(self, chain_id: int) -> cpb.ChainInfo:
        """Admin `rotate-lastsrv`: give up waiting for the LASTSRV target; promote the next one."""
        chain = self.chains.get(chain_id)
        if chain is None:
            raise make_error(Code.NOT_FOUND, f"chain {chain_id} does not exist")
        new = rotate_lastsrv(chain)
        await self._save_chains([new])
        return new

    async def set_chain_table(self, table: cpb.ChainTable) -> int:
        if table.table_id == 0:
            raise make_error(Code.INVALID_ARGUMENT, "chain table id 0 is reserved")
        if not table.chain_ids:
            raise make_error(Code.INVALID_ARGUMENT, "a chain table needs at least one chain")
        missing = [c for c in table.chain_ids if c not in self.chains]
        if missing:
            raise make_error(Code.INVALID_ARGUMENT, f"chain table {table.table_id} names unknown chains {missing}")
        if len(set(table.chain_ids)) != len(table.chain_ids):
            raise make_error(Code.INVALID_ARGUMENT, "a chain table lists each chain once")
        versions = [v for (tid, v) in self.tables if tid == table.table_id]
        if versions:
            latest = self.tables[(table.table_id, max(versions))]
            if list(latest.chain_ids) == list(table.chain_ids):
                return latest.version
        new = cpb.ChainTable(table_id=table.table_id, version=max(versions, default=0) + 1,
                             chain_ids=table.chain_ids, desc=table.desc)
        await self._persist(lambda txn: txn.set(keys.chain_table_key(new.table_id, new.version), new.SerializeToString()))
        self.tables[(new.table_id, new.version)] = new
        return new.version

    async def register_node(self, node_id: int, node_type: int) -> None:
        if node_id in self.nodes:
            raise make_error(Code.EXISTS, f"node {node_id} is already registered")
        node = cpb.NodeInfo(node_id=node_id, type=node_type, status=cpb.HEARTBEAT_CONNECTING)
        await self._persist(lambda txn: txn.set(keys.node_key(node_id), node.SerializeToString()))
        self.nodes[node_id] = node

    async def unregister_node(self, node_id: int) -> None:
        node = self.nodes.get(node_id)
        if node is None:
            raise make_error(Code.NOT_FOUND, f"node {node_id} is not registered")
        if node.status == cpb.HEARTBEAT_CONNECTED:
            raise make_error(Code.BUSY, f"node {node_id} is alive; stop it first")
        if any(t.node_id == node_id and t.chain_id for t in self.targets.values()):
            raise make_error(Code.BUSY, f"node {node_id} still holds targets of chains")
        await self._persist(lambda txn: txn.clear(keys.node_key(node_id)))
        del self.nodes[node_id]
