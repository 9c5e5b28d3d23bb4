"""allocate_inodes: a block of inode ids for one client's own creates (deferred creates under a lease).

The block comes from the same counter as meta's own blocks (InodeAllocator), so no id is handed out
twice; the block's owner is recorded, and a create naming an id checks that the caller owns its block.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.schema import InodeAllocator
from threefs.proto import meta_pb2 as mp


def block_owner_key(block: int) -> bytes:
    return keys.single_key(f"inode-block-{block}")


async def allocate_inodes(ctx: MetaContext, txn: Transaction, req: mp.AllocateInodesReq) -> mp.AllocateInodesRsp:
    if len(req.base.client_id) != 16:
        raise make_error(Code.INVALID_ARGUMENT, "allocating inode ids needs a 16-byte client id")
    block = await InodeAllocator.take_block(txn)
    txn.set(block_owner_key(block), req.base.client_id)
    return mp.AllocateInodesRsp(first=block << InodeAllocator.BLOCK_BITS, count=1 << InodeAllocator.BLOCK_BITS,
                                inline_max=ctx.config.inline_max)


async def check_owned(txn: Transaction, base: mp.ReqBase, inode_id: int) -> None:
    """A create naming its inode id: the id's block must be the caller's, and the id unused."""
    owner = await txn.snapshot_get(block_owner_key(inode_id >> InodeAllocator.BLOCK_BITS))
    if owner is None or owner != base.client_id:
        raise make_error(Code.INVALID_ARGUMENT, f"inode id {inode_id:#x} was not allocated to this client")
    if await txn.get(keys.inode_key(inode_id)) is not None:
        raise make_error(Code.EXISTS, f"inode id {inode_id:#x} is already in use")
