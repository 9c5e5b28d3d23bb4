"""batchStat / batchStatByPath: many inodes in one read-only request (by id, or by path with a
status code per path so one missing file does not fail the batch).
"""
from __future__ import annotations

from threefs.common.errors import Code, FSError, make_error
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve_existing
from threefs.meta.schema import load_inode
from threefs.proto import meta_pb2 as mp

MAX_BATCH = 4096


def _check_size(n: int) -> None:
    if n > MAX_BATCH:
        raise make_error(Code.INVALID_ARGUMENT, f"at most {MAX_BATCH} items per batch, got {n}")


async def batch_stat(ctx: MetaContext, txn: Transaction, req: mp.BatchStatReq) -> mp.BatchStatRsp:
    """Inodes by id (also unlinked ones still waiting for GC, as 3FS allow_stat_deleted_inodes)."""
    _check_size(len(req.inodes))
    rsp = mp.BatchStatRsp()
    for inode_id in req.inodes:
        inode = await load_inode(txn, inode_id, snapshot=True)
        rsp.found.append(inode is not None)
        rsp.inodes.append(inode or mp.Inode())
    return rsp


async def batch_stat_by_path(ctx: MetaContext, txn: Transaction, req: mp.BatchStatByPathReq) -> mp.BatchStatByPathRsp:
    _check_size(len(req.paths))
    rsp = mp.BatchStatByPathRsp()
    for path in req.paths:
        try:
            _, inode_id = await resolve_existing(txn, req.base.user, path, follow_last=req.follow_last)
            inode = await load_inode(txn, inode_id, snapshot=True)
            if inode is None:
                raise make_error(Code.NOT_FOUND, f"{path.path!r} vanished")
            rsp.inodes.append(inode)
            rsp.codes.append(0)
        except FSError as e:
            if e.code == Code.TXN_CONFLICT:
                raise
            rsp.inodes.append(mp.Inode())
            rsp.codes.append(int(e.code))
    return rsp
