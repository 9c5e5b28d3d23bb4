"""statFs: capacity, usage and free space summed over the storage targets (file systems shared by
several targets, as in the dev cluster, are counted once)."""
from __future__ import annotations

import asyncio

from threefs.meta.ops.context import MetaContext
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp


async def statfs(ctx: MetaContext, req: mp.StatFsReq) -> mp.StatFsRsp:
    routing = ctx.mgmtd.routing if ctx.mgmtd.routing.version else await ctx.mgmtd.refresh()   # none fetched yet
    nodes = routing.nodes_of_type(cpb.STORAGE)
    rsp = mp.StatFsRsp()
    infos = await asyncio.gather(*(ctx.storage.space_info(n.address) for n in nodes
                                   if n.status == cpb.HEARTBEAT_CONNECTED), return_exceptions=True)
    seen_fs: set[tuple[int, int]] = set()
    for info in infos:
        if isinstance(info, BaseException):
            continue
        for t in info.targets:
            key = (t.capacity, t.free // (1 << 30))
            if key in seen_fs:
                continue
            seen_fs.add(key)
            rsp.capacity += t.capacity
            rsp.free += t.free
            rsp.used += t.used
    return rsp
