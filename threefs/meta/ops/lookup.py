"""lookup: one name in a directory given by inode id (what a FUSE lookup asks): entry and inode."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.schema import DIRECTORY, check_name, load_dirent, load_inode
from threefs.proto import meta_pb2 as mp


async def lookup(ctx: MetaContext, txn: Transaction, req: mp.LookupReq) -> mp.LookupRsp:
    check_name(req.name)
    parent = await load_inode(txn, req.parent, snapshot=True)
    if parent is None or parent.nlink == 0:
        raise make_error(Code.NOT_FOUND, f"directory {req.parent:#x} does not exist")
    if parent.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY, f"inode {req.parent:#x} is not a directory")
    acl.check(req.base.user, parent, acl.X, f"search permission on directory {req.parent:#x}")
    entry = await load_dirent(txn, req.parent, req.name, snapshot=True)
    if entry is None:
        raise make_error(Code.NOT_FOUND, f"{req.name!r} does not exist in directory {req.parent:#x}")
    inode = await load_inode(txn, entry.id, snapshot=True)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.name!r} vanished")
    return mp.LookupRsp(entry=entry, inode=inode)
