"""truncate: set a file's length by path. Checks run in one transaction, the chunks are cut outside
any transaction (service), and a second transaction records the length with a new truncate version.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.common import must_exist
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve_existing
from threefs.meta.schema import DIRECTORY, FILE, load_inode, now_ns, store_inode
from threefs.proto import meta_pb2 as mp

MAX_LENGTH = 1 << 62


async def check(ctx: MetaContext, txn: Transaction, req: mp.TruncateReq) -> mp.Inode:
    """The file to truncate, after permission checks (W on the file, not immutable)."""
    if req.length > MAX_LENGTH:
        raise make_error(Code.INVALID_ARGUMENT, f"length {req.length} is too large")
    _, inode_id = await resolve_existing(txn, req.base.user, req.path, follow_last=True)
    inode = await load_inode(txn, inode_id, snapshot=True)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    if inode.type == DIRECTORY:
        raise make_error(Code.IS_DIRECTORY, f"{req.path.path!r} is a directory")
    if inode.type != FILE:
        raise make_error(Code.INVALID_ARGUMENT, f"{req.path.path!r} is not a regular file")
    acl.check(req.base.user, inode, acl.W, f"truncate {req.path.path!r}")
    acl.check_mutable(inode, f"truncate {req.path.path!r}")
    return inode


async def apply(ctx: MetaContext, txn: Transaction, inode_id: int, length: int) -> mp.TruncateRsp:
    """Record the new length; the truncate version moves on so older length hints are ignored."""
    inode = await must_exist(txn, inode_id, f"inode {inode_id:#x}")
    inode.length = length
    inode.truncate_ver += 1
    inode.mtime_ns = inode.ctime_ns = now_ns()
    store_inode(txn, inode)
    return mp.TruncateRsp(inode=inode)
