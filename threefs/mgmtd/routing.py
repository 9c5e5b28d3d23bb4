"""Read-only view of routing info: who serves which chain, where each target lives.

Built from the RoutingInfo message mgmtd publishes; used by storage (successors), meta and
clients (heads, serving replicas, chain tables) alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from crc32c import crc32c

from threefs.common.errors import Code, make_error
from threefs.proto import common_pb2 as cpb

SERVING = cpb.SERVING
SYNCING = cpb.SYNCING


def cache_replica_among(serving: list[int], chunk_id: bytes) -> int | None:
    """Routing.cache_replica for a chain whose serving targets (head first) the caller already has."""
    return serving[crc32c(chunk_id) % len(serving)] if serving else None


@dataclass
class Routing:
    """Indexes over one RoutingInfo version."""

    info: cpb.RoutingInfo = field(default_factory=cpb.RoutingInfo)

    def __post_init__(self) -> None:
        self.version = self.info.version
        self.nodes = {n.node_id: n for n in self.info.nodes}
        self.targets = {t.target_id: t for t in self.info.targets}
        self.chains = {c.chain_id: c for c in self.info.chains}
        self.tables: dict[int, dict[int, cpb.ChainTable]] = {}
        for t in self.info.chain_tables:
            self.tables.setdefault(t.table_id, {})[t.version] = t

    def chain(self, chain_id: int) -> cpb.ChainInfo:
        try:
            return self.chains[chain_id]
        except KeyError:
            raise make_error(Code.ROUTING_VERSION_MISMATCH, f"chain {chain_id} is not in routing info v{self.version}") from None

    def table(self, table_id: int, version: int = 0) -> cpb.ChainTable:
        """Chain table `table_id` at `version` (0 = latest)."""
        versions = self.tables.get(table_id)
        if not versions:
            raise make_error(Code.INVALID_ARGUMENT, f"chain table {table_id} does not exist")
        if version == 0:
            return versions[max(versions)]
        try:
            return versions[version]
        except KeyError:
            raise make_error(Code.INVALID_ARGUMENT, f"chain table {table_id} has no version {version}") from None

    def target_address(self, target_id: int) -> str:
        t = self.targets.get(target_id)
        node = self.nodes.get(t.node_id) if t else None
        if node is None or not node.address:
            raise make_error(Code.TARGET_NOT_FOUND, f"target {target_id} has no known node")
        return node.address

    def serving(self, chain_id: int) -> list[int]:
        """Target ids of the chain's SERVING replicas, head first."""
        return [t.target_id for t in self.chain(chain_id).targets if t.public_state == SERVING]

    def cache_replica(self, chain_id: int, chunk_id: bytes) -> int | None:
        """The serving replica that keeps a chunk in its page cache and serves its reads (None: no replica).

        One replica per chunk, spread over the chain by a hash of the chunk id: the others write large
        updates around their page cache, so a node's memory holds what it is asked to serve rather than
        three copies of everything, and writes skip the kernel's copy into fresh page-cache pages.
        """
        return cache_replica_among(self.serving(chain_id), chunk_id)

    def head(self, chain_id: int) -> int:
        s = self.serving(chain_id)
        if not s:
            raise make_error(Code.NO_SERVING_REPLICA, f"chain {chain_id} has no serving target")
        return s[0]

    def successor(self, chain_id: int, target_id: int) -> int | None:
        """The next SERVING or SYNCING target after `target_id` (None at the tail)."""
        targets = list(self.chain(chain_id).targets)
        ids = [t.target_id for t in targets]
        if target_id not in ids:
            return None
        for t in targets[ids.index(target_id) + 1:]:
            if t.public_state in (SERVING, SYNCING):
                return t.target_id
        return None

    def public_state(self, chain_id: int, target_id: int) -> int:
        for t in self.chain(chain_id).targets:
            if t.target_id == target_id:
                return t.public_state
        return cpb.PUBLIC_INVALID

    def nodes_of_type(self, node_type: int) -> list[cpb.NodeInfo]:
        return sorted((n for n in self.nodes.values() if n.type == node_type), key=lambda n: n.node_id)
