"""remove: unlink a file/symlink or remove a directory; the last link of a file goes to the GC queue.

A non-empty directory needs `recursive`; it is then moved into the GC tree as a whole (O(1) for the
caller) and collected in the background (3FS §2.9).
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve
from threefs.meta.schema import (AT_REMOVEDIR, DIRECTORY, FILE, GC_ROOT_ID, ROOT_ID, delete_dirent, delete_inode,
                                 dir_is_empty, load_dirent, load_inode, now_ns, store_dirent, store_inode)
from threefs.proto import meta_pb2 as mp


def gc_entry_name(inode: mp.Inode) -> str:
    kind = "d" if inode.type == DIRECTORY else "f"
    return f"{kind}-{now_ns() // 1000:020d}-{inode.id:016x}"


def queue_for_gc(txn: Transaction, inode: mp.Inode) -> None:
    """Park an unlinked inode under the GC root; the GC worker removes its chunks/children later."""
    store_dirent(txn, mp.DirEntry(parent=GC_ROOT_ID, name=gc_entry_name(inode), id=inode.id, type=inode.type))


async def drop_link(txn: Transaction, inode: mp.Inode, *, recursive_dir: bool = False) -> None:
    """Account for one removed directory entry of `inode` (nlink-1; GC or delete at zero)."""
    inode.nlink = max(0, inode.nlink - 1)
    inode.ctime_ns = now_ns()
    if inode.nlink > 0:
        store_inode(txn, inode)
    elif inode.type == FILE or recursive_dir:
        store_inode(txn, inode)
        queue_for_gc(txn, inode)
    else:
        delete_inode(txn, inode.id)


async def remove(ctx: MetaContext, txn: Transaction, req: mp.RemoveReq) -> mp.RemoveRsp:
    user = req.base.user
    rmdir = bool(req.at_flags & AT_REMOVEDIR)
    r = await resolve(txn, user, req.path, follow_last=False)
    if r.name == "":
        if r.parent == ROOT_ID:
            raise make_error(Code.BUSY, "cannot remove the root directory")
        raise make_error(Code.INVALID_ARGUMENT, f"cannot remove {req.path.path!r}")
    txn.add_read_conflict(keys.inode_key(r.parent))
    entry = await load_dirent(txn, r.parent, r.name)
    if entry is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} does not exist")
    if entry.type == DIRECTORY and not rmdir and not req.recursive:
        raise make_error(Code.IS_DIRECTORY, f"{req.path.path!r} is a directory")
    if entry.type != DIRECTORY and rmdir:
        raise make_error(Code.NOT_DIRECTORY, f"{req.path.path!r} is not a directory")
    acl.check(user, r.parent_acl, acl.W | acl.X, f"remove from directory {r.parent:#x}")
    inode = await load_inode(txn, entry.id)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    acl.check_sticky(user, r.parent_acl, inode.uid, f"remove {req.path.path!r}")
    recursive_dir = False
    if entry.type == DIRECTORY and not await dir_is_empty(txn, entry.id):
        if not req.recursive:
            raise make_error(Code.NOT_EMPTY, f"{req.path.path!r} is not empty")
        acl.check(user, inode, acl.R | acl.W | acl.X, f"recursive remove of {req.path.path!r}")
        recursive_dir = True
    delete_dirent(txn, r.parent, r.name)
    await drop_link(txn, inode, recursive_dir=recursive_dir)
    return mp.RemoveRsp()
