"""remove: unlink a file/symlink or remove a directory; the last link of a file goes to the GC queue.

A non-empty directory needs `recursive`: it is then moved into the GC queue as a whole (O(1) for
the caller) and its tree is collected in the background (3FS §2.9). Read conflicts: the parent
inode, the entry's key, the inode (nlink) and, for rmdir, the directory's children range. The
result is stored in an IDEM record, so a retried request returns it instead of ENOENT.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl, dir_leases, idem
from threefs.meta.gc_queue import drop_link
from threefs.meta.ops.common import live_parent, must_exist
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve
from threefs.meta.schema import AT_REMOVEDIR, DIRECTORY, ROOT_ID, delete_dirent, delete_inode, dir_is_empty, \
    list_dirents, load_dirent, now_ms, now_ns, touch_dir
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp

METHOD = "Remove"
TREE_CHECK_LIMIT = 1024     # entries of a tree checked for permission before a recursive remove (3FS)


async def check_tree_permission(txn: Transaction, user: cpb.UserInfo, top: mp.Inode, what: str) -> None:
    """A recursive remove needs rwx on the directory and on its subdirectories (first 1024 entries)."""
    acl.check(user, top, acl.R | acl.W | acl.X, f"recursive remove of {what}")
    if user.uid == 0:
        return
    queue, seen = [top.id], 0
    while queue and seen < TREE_CHECK_LIMIT:
        for e in await list_dirents(txn, queue.pop(), "", TREE_CHECK_LIMIT - seen):
            seen += 1
            if e.type == DIRECTORY:
                acl.check(user, e.dir_acl, acl.R | acl.W | acl.X, f"recursive remove of {what}/…/{e.name}")
                acl.check_mutable(e.dir_acl, f"recursive remove of {what}/…/{e.name}")
                queue.append(e.id)


async def remove(ctx: MetaContext, txn: Transaction, req: mp.RemoveReq) -> mp.RemoveRsp:
    prior = await idem.lookup(txn, req.base, METHOD, mp.RemoveRsp)
    if prior is not None:
        return prior
    user = req.base.user
    if req.at_flags & ~AT_REMOVEDIR:
        raise make_error(Code.INVALID_ARGUMENT, f"unsupported at_flags {req.at_flags:#x}")
    rmdir = bool(req.at_flags & AT_REMOVEDIR)
    r = await resolve(txn, user, req.path, follow_last=False, follow_trailing=False)
    if r.dot_last:
        raise make_error(Code.INVALID_ARGUMENT, f"cannot remove {req.path.path!r} (ends in '.')")
    if r.name == "":
        if r.parent == ROOT_ID:
            raise make_error(Code.IN_USE, "cannot remove the root directory")
        raise make_error(Code.INVALID_ARGUMENT, f"cannot remove {req.path.path!r} ('.' or '..')")
    entry = await load_dirent(txn, r.parent, r.name)
    if entry is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} does not exist")
    if entry.type == DIRECTORY and not rmdir and not req.recursive:
        raise make_error(Code.IS_DIRECTORY, f"{req.path.path!r} is a directory")
    if entry.type != DIRECTORY and (rmdir or r.trailing_slash):
        raise make_error(Code.NOT_DIRECTORY, f"{req.path.path!r} is not a directory")
    parent = await live_parent(txn, r.parent, f"remove {req.path.path!r}")
    acl.check(user, parent, acl.W | acl.X, f"remove from directory {r.parent:#x}")
    inode = await must_exist(txn, entry.id, repr(req.path.path))
    acl.check_sticky(user, parent, inode.uid, f"remove {req.path.path!r}")
    acl.check_mutable(parent, f"remove from directory {r.parent:#x}")
    acl.check_mutable(inode, f"remove {req.path.path!r}")
    info = mp.GcInfo(uid=user.uid, gid=user.gid, orig_path=req.path.path, removed_ms=now_ms())
    delete_dirent(txn, r.parent, r.name)
    now = now_ns()
    touch_dir(txn, r.parent, now)
    if entry.type == DIRECTORY:
        await dir_leases.check_lease(txn, inode.id, req.base)   # its holder may still send creates there
    if entry.type == DIRECTORY and await dir_is_empty(txn, inode.id):
        delete_inode(txn, inode.id)
        dir_leases.forget(txn, inode.id)
    elif entry.type == DIRECTORY:
        if not req.recursive:
            raise make_error(Code.NOT_EMPTY, f"{req.path.path!r} is not empty")
        await check_tree_permission(txn, user, inode, req.path.path)
        drop_link(txn, inode, info)
    else:
        drop_link(txn, inode, info)
    rsp = mp.RemoveRsp(parent_mtime_ns=now)
    idem.store(txn, req.base, METHOD, rsp)
    return rsp
