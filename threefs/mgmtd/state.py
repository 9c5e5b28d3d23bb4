"""mgmtd's cluster state: nodes, chain tables, chains, targets; persisted in the KV engine.

Every change that others must see is written to the KV engine first, then applied in memory,
then published by bumping the routing-info version (3FS §3.3).
"""
from __future__ import annotations

import time

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.mgmtd.routing import Routing
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb

_VERSION_KEY = keys.single_key("RoutingInfoVersion")


def _now_ms() -> int:
    return int(time.time() * 1000)


class ClusterState:
    """In-memory cluster state backed by the KV engine."""

    def __init__(self, kv: KVEngine, *, heartbeat_fail_ms: int = 60_000) -> None:
        self.kv = kv
        self.heartbeat_fail_ms = heartbeat_fail_ms
        self.nodes: dict[int, cpb.NodeInfo] = {}
        self.tables: dict[tuple[int, int], cpb.ChainTable] = {}
        self.chains: dict[int, cpb.ChainInfo] = {}
        self.targets: dict[int, cpb.TargetInfo] = {}
        self.version = 0
        self._cache: tuple[int, cpb.RoutingInfo] | None = None

    # ---- loading and persistence -------------------------------------------------------
    async def load(self) -> None:
        """Load persisted state and bump the routing version (a new primary publishes anew)."""

        async def read(txn: Transaction):
            def scan(prefix: bytes):
                return txn.get_range(prefix, keys.prefix_end(prefix))

            return (await scan(keys.NODE), await scan(keys.CHAIN_TABLE), await scan(keys.CHAIN_INFO),
                    await scan(keys.TARGET_INFO), await txn.get(_VERSION_KEY))

        nodes, tables, chains, targets, version = await run_txn(self.kv, read)
        for _, v in nodes:
            n = cpb.NodeInfo.FromString(v)
            n.status = cpb.HEARTBEAT_CONNECTING
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
        self.version = int(version or b"0")
        await self._persist(lambda txn: None)

    async def _persist(self, write) -> None:
        """Run `write(txn)` and the version bump in one transaction, then bump in memory."""
        new_version = self.version + 1

        async def fn(txn: Transaction) -> None:
            write(txn)
            txn.set(_VERSION_KEY, str(new_version).encode())

        await run_txn(self.kv, fn)
        self.version = new_version
        self._cache = None

    def _bump_memory_only(self) -> None:
        self.version += 1
        self._cache = None

    def _sync_target_chain_fields(self) -> None:
        for c in self.chains.values():
            for ct in c.targets:
                t = self.targets.setdefault(ct.target_id, cpb.TargetInfo(target_id=ct.target_id, local_state=cpb.LOCAL_OFFLINE))
                t.chain_id = c.chain_id
                t.public_state = ct.public_state

    # ---- routing info ---------------------------------------------------------------------
    def routing_info(self) -> cpb.RoutingInfo:
        if self._cache is None or self._cache[0] != self.version:
            info = cpb.RoutingInfo(version=self.version)
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
        if req.node_id == 0:
            raise make_error(Code.INVALID_ARGUMENT, "heartbeat from node id 0")
        if req.type == cpb.MGMTD:
            raise make_error(Code.INVALID_ARGUMENT, "mgmtd nodes do not heartbeat")
        old = self.nodes.get(req.node_id)
        if old is not None and old.type != req.type:
            raise make_error(Code.INVALID_ARGUMENT,
                             f"node {req.node_id} is registered as {cpb.NodeType.Name(old.type)}, not {cpb.NodeType.Name(req.type)}")
        if old is not None and old.status == cpb.DISABLED:
            raise make_error(Code.NOT_PERMITTED, f"node {req.node_id} is disabled")
        node = cpb.NodeInfo(node_id=req.node_id, type=req.type, address=req.address, hostname=req.hostname,
                            pid=req.pid, status=cpb.HEARTBEAT_CONNECTED, last_heartbeat_ms=_now_ms(),
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
            elif t.local_state != rep.local_state:
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
            t = self.targets.setdefault(rep.target_id, cpb.TargetInfo(target_id=rep.target_id))
            t.node_id = req.node_id
            t.disk_index = rep.disk_index
            t.local_state = rep.local_state
            t.used_size = rep.used_size
        if visible_changed and not persisted_changed:
            self._bump_memory_only()

    def check_heartbeats(self) -> bool:
        """Mark nodes silent for longer than the fail interval as failed; True if anything changed."""
        now = _now_ms()
        changed = False
        for n in self.nodes.values():
            if n.status == cpb.HEARTBEAT_CONNECTED and now - n.last_heartbeat_ms > self.heartbeat_fail_ms:
                n.status = cpb.HEARTBEAT_FAILED
                changed = True
                for t in self.targets.values():
                    if t.node_id == n.node_id and t.local_state != cpb.LOCAL_OFFLINE:
                        t.local_state = cpb.LOCAL_OFFLINE
        if changed:
            self._bump_memory_only()
        return changed

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
                if [t.target_id for t in existing.targets] != ids:
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

        def write(txn: Transaction) -> None:
            for c in new:
                txn.set(keys.chain_info_key(c.chain_id), c.SerializeToString())

        await self._persist(write)
        for c in new:
            self.chains[c.chain_id] = c
        self._sync_target_chain_fields()

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
