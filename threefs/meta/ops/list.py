"""list: one page of a directory's entries (range read after `prev`), optionally with inodes.

Names need R on the directory; inodes (stat of each child) need X as well.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve_existing
from threefs.meta.schema import DIRECTORY, list_dirents, load_inode
from threefs.proto import meta_pb2 as mp

DEFAULT_LIMIT = 128
MAX_LIMIT = 4096


async def list_(ctx: MetaContext, txn: Transaction, req: mp.ListReq) -> mp.ListRsp:
    _, dir_id = await resolve_existing(txn, req.base.user, req.path, follow_last=True)
    d = await load_inode(txn, dir_id, snapshot=True)
    if d is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    if d.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY, f"{req.path.path!r} is not a directory")
    if req.limit < 0:
        raise make_error(Code.INVALID_ARGUMENT, f"negative list limit {req.limit}")
    acl.check(req.base.user, d, acl.R | (acl.X if req.with_inodes else 0), f"list {req.path.path!r}")
    limit = min(req.limit or DEFAULT_LIMIT, MAX_LIMIT)
    entries = await list_dirents(txn, dir_id, req.prev, limit + 1)
    rsp = mp.ListRsp(more=len(entries) > limit)
    for e in entries[:limit]:
        rsp.entries.append(e)
        if req.with_inodes:
            rsp.inodes.append(await load_inode(txn, e.id, snapshot=True) or mp.Inode(id=e.id))
    return rsp
