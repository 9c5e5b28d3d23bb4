"""rename: move an entry, replacing a compatible destination (POSIX rules), with loop detection.

Moving a directory walks the destination's ancestors with read conflicts, so a concurrent move
that would create a cycle aborts one of the two transactions.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.ops.remove import drop_link
from threefs.meta.path import resolve
from threefs.meta.schema import (DIRECTORY, GC_ROOT_ID, ROOT_ID, delete_dirent, delete_inode, dir_is_empty,
                                 load_dirent, load_inode, now_ns, store_dirent, store_inode)
from threefs.proto import meta_pb2 as mp

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


async def _check_not_ancestor(txn: Transaction, moving: int, dst_parent: int) -> None:
    cur = dst_parent
    for _ in range(4096):
        if cur == moving:
            raise make_error(Code.INVALID_ARGUMENT, "cannot move a directory into its own subtree")
        if cur in (ROOT_ID, GC_ROOT_ID):
            return
        inode = await load_inode(txn, cur)
        if inode is None or inode.nlink == 0:
            raise make_error(Code.NOT_FOUND, "destination directory was removed")
        cur = inode.parent
    raise make_error(Code.TOO_MANY_SYMLINKS, "directory tree too deep")


async def rename(ctx: MetaContext, txn: Transaction, req: mp.RenameReq) -> mp.RenameRsp:
    user = req.base.user
    if req.flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or req.flags == RENAME_NOREPLACE | RENAME_EXCHANGE:
        raise make_error(Code.INVALID_ARGUMENT, f"unsupported rename flags {req.flags:#x}")
    if req.flags & RENAME_EXCHANGE:
        raise make_error(Code.INVALID_ARGUMENT, "RENAME_EXCHANGE is not supported")
    src = await resolve(txn, user, req.src, follow_last=False)
    dst = await resolve(txn, user, req.dst, follow_last=False)
    if src.name == "" or dst.name == "":
        raise make_error(Code.BUSY if src.name == "" else Code.EXISTS, "cannot rename '.', '..' or the root")
    txn.add_read_conflict(keys.inode_key(src.parent))
    txn.add_read_conflict(keys.inode_key(dst.parent))
    s = await load_dirent(txn, src.parent, src.name)
    if s is None:
        raise make_error(Code.NOT_FOUND, f"{req.src.path!r} does not exist")
    d = await load_dirent(txn, dst.parent, dst.name)
    if d is not None and d.uuid and d.uuid == req.base.request_id and d.id == s.id:
        return mp.RenameRsp(inode=await load_inode(txn, s.id) or mp.Inode())
    acl.check(user, src.parent_acl, acl.W | acl.X, f"rename from directory {src.parent:#x}")
    acl.check(user, dst.parent_acl, acl.W | acl.X, f"rename into directory {dst.parent:#x}")
    inode = await load_inode(txn, s.id)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.src.path!r} vanished")
    acl.check_sticky(user, src.parent_acl, inode.uid, f"rename {req.src.path!r}")
    if d is not None and d.id == s.id:
        return mp.RenameRsp(inode=inode)     # same file (or hard links of it): POSIX no-op
    if s.type == DIRECTORY and src.parent != dst.parent:
        await _check_not_ancestor(txn, s.id, dst.parent)
    if d is not None:
        if req.flags & RENAME_NOREPLACE:
            raise make_error(Code.EXISTS, f"{req.dst.path!r} exists")
        victim = await load_inode(txn, d.id)
        if victim is None:
            raise make_error(Code.NOT_FOUND, f"{req.dst.path!r} vanished")
        acl.check_sticky(user, dst.parent_acl, victim.uid, f"replace {req.dst.path!r}")
        if s.type == DIRECTORY and d.type != DIRECTORY:
            raise make_error(Code.NOT_DIRECTORY, f"{req.dst.path!r} is not a directory")
        if s.type != DIRECTORY and d.type == DIRECTORY:
            raise make_error(Code.IS_DIRECTORY, f"{req.dst.path!r} is a directory")
        if d.type == DIRECTORY:
            if not await dir_is_empty(txn, d.id):
                raise make_error(Code.NOT_EMPTY, f"{req.dst.path!r} is not empty")
            delete_inode(txn, d.id)
        else:
            await drop_link(txn, victim)
    delete_dirent(txn, src.parent, src.name)
    moved = mp.DirEntry()
    moved.CopyFrom(s)
    moved.parent, moved.name, moved.uuid = dst.parent, dst.name, req.base.request_id
    store_dirent(txn, moved)
    inode.ctime_ns = now_ns()
    if inode.type == DIRECTORY:
        inode.parent, inode.name = dst.parent, dst.name
    store_inode(txn, inode)
    return mp.RenameRsp(inode=inode)
