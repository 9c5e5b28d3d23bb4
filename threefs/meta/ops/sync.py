"""sync/close: update a file's length (hint or precise query) and end write sessions.

The precise length is queried from storage before the transaction (no I/O inside it); the
transaction then applies it with the VersionedLength rules: a shorter precise length bumps the
truncate version, and hints from an older truncate epoch are ignored.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta.schema import FILE, load_inode, now_ns, store_inode
from threefs.proto import meta_pb2 as mp


def apply_length(inode: mp.Inode, *, precise: int | None, hint: mp.VersionedLength | None, truncated: bool) -> bool:
    """Update inode.length; returns True if it changed."""
    old = inode.length
    if precise is not None:
        if precise < inode.length or truncated:
            inode.truncate_ver += 1
        inode.length = precise
    elif hint is not None and hint.truncate_ver == inode.truncate_ver and hint.length > inode.length:
        inode.length = hint.length
    if inode.length != old:
        inode.mtime_ns = inode.ctime_ns = now_ns()
        return True
    return False


async def sync(txn: Transaction, req: mp.SyncReq, precise: int | None) -> mp.SyncRsp:
    inode = await load_inode(txn, req.inode)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"inode {req.inode:#x} does not exist")
    if inode.type != FILE:
        return mp.SyncRsp(inode=inode)
    if req.update_length and apply_length(inode, precise=precise,
                                           hint=req.length_hint if req.HasField("length_hint") else None,
                                           truncated=req.truncated):
        store_inode(txn, inode)
    return mp.SyncRsp(inode=inode)


async def close(txn: Transaction, req: mp.CloseReq, precise: int | None) -> mp.CloseRsp:
    inode = await load_inode(txn, req.inode)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"inode {req.inode:#x} does not exist")
    if req.session_id:
        txn.clear(keys.session_key(req.inode, req.session_id))
    if req.update_length and inode.type == FILE and apply_length(
            inode, precise=precise, hint=req.length_hint if req.HasField("length_hint") else None, truncated=False):
        store_inode(txn, inode)
    return mp.CloseRsp(inode=inode)
