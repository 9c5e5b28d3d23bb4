"""What every meta operation gets: the KV engine, routing, storage, inode ids and configuration."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from threefs.common import placement
from threefs.common.errors import Code, make_error
from threefs.kv.engine import KVEngine
from threefs.meta.config import MetaConfig
from threefs.meta.schema import InodeAllocator
from threefs.mgmtd.client import MgmtdClient
from threefs.proto import common_pb2 as cpb
from threefs.storage.client import StorageClient


@dataclass
class MetaContext:
    """Shared state of one meta server, passed to each operation."""

    kv: KVEngine
    mgmtd: MgmtdClient
    storage: StorageClient
    node_id: int
    config: MetaConfig = field(default_factory=MetaConfig)
    allocator: InodeAllocator = field(init=False)
    _chain_counters: dict[tuple[int, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.allocator = InodeAllocator(self.kv)

    async def file_layout(self, default: cpb.Layout) -> cpb.Layout:
        """Pick the chains of a new file from its directory's default layout (3FS ChainAllocator)."""
        if default.WhichOneof("chains") is not None:
            out = cpb.Layout()
            out.CopyFrom(default)
            return out
        table = await self.mgmtd.chain_table(default.table_id, default.table_version)
        n = len(table.chain_ids)
        if n == 0:
            raise make_error(Code.INVALID_ARGUMENT, f"chain table {default.table_id} is empty")
        key = (default.table_id, default.stripe_size)
        counter = self._chain_counters.get(key)
        if counter is None:
            counter = random.randrange(n) // max(1, default.stripe_size) * default.stripe_size
        self._chain_counters[key] = counter + default.stripe_size
        layout = placement.allocate(default, counter, n, random.getrandbits(64))
        layout.table_version = table.version
        return layout
