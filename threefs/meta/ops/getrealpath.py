"""getRealPath: the canonical absolute path of a path (symlinks and '..' resolved), from the
parent/name fields every directory inode keeps (3FS §2.2)."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import MAX_DEPTH, resolve_existing
from threefs.meta.schema import ROOT_ID, load_inode
from threefs.proto import meta_pb2 as mp


async def dir_path(txn: Transaction, dir_id: int) -> str:
    """Absolute path of a live directory, walking parent links up to the root."""
    names: list[str] = []
    cur = dir_id
    for _ in range(MAX_DEPTH):
        if cur == ROOT_ID:
            return "/" + "/".join(reversed(names))
        inode = await load_inode(txn, cur, snapshot=True)
        if inode is None or inode.nlink == 0:
            raise make_error(Code.NOT_FOUND, f"directory {dir_id:#x} was removed")
        names.append(inode.name)
        cur = inode.parent
    raise make_error(Code.INTERNAL, f"directory {dir_id:#x} is deeper than {MAX_DEPTH} levels or in a cycle")


async def getrealpath(ctx: MetaContext, txn: Transaction, req: mp.GetRealPathReq) -> mp.GetRealPathRsp:
    r, _ = await resolve_existing(txn, req.base.user, req.path, follow_last=req.follow_last)
    base = await dir_path(txn, r.parent)
    if r.name == "":
        return mp.GetRealPathRsp(path=base)
    return mp.GetRealPathRsp(path=base.rstrip("/") + "/" + r.name)
