"""Checks and steps shared by the mutating operations."""
from __future__ import annotations

from threefs.common import placement
from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.schema import DIRECTORY, load_inode
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp


async def live_parent(txn: Transaction, parent_id: int, what: str) -> mp.Inode:
    """The directory a mutation changes, read WITH a conflict: a concurrent rmdir/rename aborts us
    (its ACL, layout and link count; not its times, which take one more read)."""
    parent = await load_inode(txn, parent_id, dir_times=False)
    if parent is None or parent.nlink == 0:
        raise make_error(Code.NOT_FOUND, f"{what}: the directory was removed")
    if parent.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY, f"{what}: parent is not a directory")
    return parent


async def must_exist(txn: Transaction, inode_id: int, what: str) -> mp.Inode:
    """An inode a mutation changes (read with a conflict); NOT_FOUND if gone or unlinked."""
    inode = await load_inode(txn, inode_id)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{what} vanished")
    return inode


async def new_inode_id(ctx: MetaContext, txn: Transaction) -> int:
    """A fresh inode id; the transaction also checks nobody stored that inode (3FS inodeId_check_unique)."""
    inode_id = await ctx.allocator.allocate()
    if await txn.get(keys.inode_key(inode_id)) is not None:
        raise make_error(Code.INTERNAL, f"inode id {inode_id:#x} is already in use: allocator counter is behind")
    return inode_id


def checked_layout(layout: cpb.Layout) -> cpb.Layout:
    """A layout from a request, validated (EINVAL for a bad chunk size or stripe)."""
    try:
        placement.validate_layout(layout)
    except ValueError as e:
        raise make_error(Code.INVALID_ARGUMENT, str(e)) from None
    out = cpb.Layout()
    out.CopyFrom(layout)
    return out


def has_layout(req) -> bool:
    return req.HasField("layout") and bool(req.layout.chunk_size or req.layout.stripe_size or req.layout.table_id)
