"""stat: the inode a path names (read-only, snapshot reads)."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve_existing
from threefs.meta.schema import load_inode
from threefs.proto import meta_pb2 as mp


async def stat(ctx: MetaContext, txn: Transaction, req: mp.StatReq) -> mp.StatRsp:
    _, inode_id = await resolve_existing(txn, req.base.user, req.path, follow_last=req.follow_last)
    inode = await load_inode(txn, inode_id, snapshot=True)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    return mp.StatRsp(inode=inode)
