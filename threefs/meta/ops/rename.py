"""rename: move an entry, replacing a compatible destination (POSIX rules), with loop detection.

RENAME_EXCHANGE swaps the two entries (both must exist; a directory may not trade places with
one of its own descendants). Read conflicts: both parent inodes, both entry keys, the moved and
replaced inodes, and, when a directory changes parent, every ancestor of the destination up to
the root, so a concurrent move that would create a cycle aborts one of the two transactions.
Replaced destinations: a file loses a link (GC at zero), an empty directory is deleted, a symlink
is deleted. The result is stored in an IDEM record for retries.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl, dir_leases, idem
from threefs.meta.gc_queue import drop_link
from threefs.meta.ops.common import live_parent, must_exist
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import MAX_DEPTH, resolve
from threefs.meta.schema import DIRECTORY, GC_ROOT_ID, ROOT_ID, delete_dirent, delete_inode, dir_is_empty, \
    load_dirent, load_inode, now_ms, now_ns, store_dirent, store_inode, touch_dir
from threefs.proto import meta_pb2 as mp

METHOD = "Rename"
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


async def check_not_ancestor(txn: Transaction, moving: int, dst_parent: int) -> None:
    """EINVAL if `moving` is `dst_parent` or one of its ancestors; ENOENT if the destination was removed."""
    cur = dst_parent
    for _ in range(MAX_DEPTH):
        if cur == moving:
            raise make_error(Code.INVALID_ARGUMENT, "cannot move a directory into its own subtree")
        if cur == ROOT_ID:
            return
        if cur == GC_ROOT_ID:
            raise make_error(Code.NOT_FOUND, "destination directory was removed")
        inode = await load_inode(txn, cur, dir_times=False)
        if inode is None or inode.nlink == 0:
            raise make_error(Code.NOT_FOUND, "destination directory was removed")
        cur = inode.parent
    raise make_error(Code.INTERNAL, f"directory {dst_parent:#x} is more than {MAX_DEPTH} levels deep or in a cycle")


async def rename(ctx: MetaContext, txn: Transaction, req: mp.RenameReq) -> mp.RenameRsp:
    prior = await idem.lookup(txn, req.base, METHOD, mp.RenameRsp)
    if prior is not None:
        return prior
    user = req.base.user
    if req.flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or req.flags == RENAME_NOREPLACE | RENAME_EXCHANGE:
        raise make_error(Code.INVALID_ARGUMENT, f"invalid rename flags {req.flags:#x}")
    src = await resolve(txn, user, req.src, follow_last=False, follow_trailing=False)
    dst = await resolve(txn, user, req.dst, follow_last=False, follow_trailing=False)
    if src.dot_last or dst.dot_last:
        raise make_error(Code.INVALID_ARGUMENT, "cannot rename a path ending in '.'")
    if src.name == "":
        raise make_error(Code.IN_USE if src.parent == ROOT_ID else Code.INVALID_ARGUMENT,
                         f"cannot rename {req.src.path!r}")
    s = await load_dirent(txn, src.parent, src.name)
    if s is None:
        raise make_error(Code.NOT_FOUND, f"{req.src.path!r} does not exist")
    if dst.name == "":
        raise make_error(Code.IN_USE if dst.parent == ROOT_ID else Code.INVALID_ARGUMENT,
                         f"cannot rename onto {req.dst.path!r}")
    if s.type != DIRECTORY and (src.trailing_slash or dst.trailing_slash):
        raise make_error(Code.NOT_DIRECTORY, f"{req.src.path!r} is not a directory")
    src_parent = await live_parent(txn, src.parent, f"rename {req.src.path!r}")
    dst_parent = src_parent if dst.parent == src.parent else await live_parent(txn, dst.parent,
                                                                                f"rename to {req.dst.path!r}")
    await dir_leases.check_lease(txn, dst.parent, req.base)
    d = await load_dirent(txn, dst.parent, dst.name)
    acl.check(user, src_parent, acl.W | acl.X, f"rename from directory {src.parent:#x}")
    acl.check(user, dst_parent, acl.W | acl.X, f"rename into directory {dst.parent:#x}")
    inode = await must_exist(txn, s.id, repr(req.src.path))
    acl.check_sticky(user, src_parent, inode.uid, f"rename {req.src.path!r}")
    if req.flags & RENAME_EXCHANGE and d is None:
        raise make_error(Code.NOT_FOUND, f"{req.dst.path!r} does not exist (RENAME_EXCHANGE)")
    if d is not None and d.id == s.id:
        return mp.RenameRsp(inode=inode)     # the same entry, or two links of one file: a POSIX no-op
    if req.flags & RENAME_EXCHANGE:
        return await _exchange(txn, req, src, dst, s, d, src_parent, dst_parent, inode)
    acl.check_mutable(src_parent, f"rename from directory {src.parent:#x}")
    acl.check_mutable(dst_parent, f"rename into directory {dst.parent:#x}")
    acl.check_mutable(inode, f"rename {req.src.path!r}")
    if s.type == DIRECTORY and src.parent != dst.parent:
        await check_not_ancestor(txn, s.id, dst.parent)
        acl.check(user, inode, acl.W, f"move directory {req.src.path!r} (updates its '..')")
    if d is not None:
        if req.flags & RENAME_NOREPLACE:
            raise make_error(Code.EXISTS, f"{req.dst.path!r} exists")
        if s.type == DIRECTORY and d.type != DIRECTORY:
            raise make_error(Code.NOT_DIRECTORY, f"{req.dst.path!r} is not a directory")
        if s.type != DIRECTORY and d.type == DIRECTORY:
            raise make_error(Code.IS_DIRECTORY, f"{req.dst.path!r} is a directory")
        victim = await must_exist(txn, d.id, repr(req.dst.path))
        acl.check_sticky(user, dst_parent, victim.uid, f"replace {req.dst.path!r}")
        acl.check_mutable(victim, f"replace {req.dst.path!r}")
        if d.type == DIRECTORY:
            if not await dir_is_empty(txn, d.id):
                raise make_error(Code.NOT_EMPTY, f"{req.dst.path!r} is not empty")
            delete_inode(txn, d.id)
        else:
            drop_link(txn, victim, mp.GcInfo(uid=user.uid, gid=user.gid, orig_path=req.dst.path, removed_ms=now_ms()))
    elif dst.trailing_slash and s.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY, f"{req.dst.path!r} is not a directory")
    delete_dirent(txn, src.parent, src.name)
    moved = mp.DirEntry()
    moved.CopyFrom(s)
    moved.parent, moved.name, moved.uuid = dst.parent, dst.name, req.base.request_id
    store_dirent(txn, moved)
    inode.ctime_ns = now_ns()
    touch_dir(txn, src.parent, inode.ctime_ns)
    touch_dir(txn, dst.parent, inode.ctime_ns)
    if inode.type == DIRECTORY:
        inode.parent, inode.name = dst.parent, dst.name
    store_inode(txn, inode)
    rsp = mp.RenameRsp(inode=inode)
    idem.store(txn, req.base, METHOD, rsp)
    return rsp


async def _exchange(txn: Transaction, req: mp.RenameReq, src, dst, s: mp.DirEntry, d: mp.DirEntry,
                    src_parent: mp.Inode, dst_parent: mp.Inode, inode: mp.Inode) -> mp.RenameRsp:
    """RENAME_EXCHANGE: the two entries trade places atomically (either may be a directory)."""
    user = req.base.user
    other = await must_exist(txn, d.id, repr(req.dst.path))
    acl.check_sticky(user, dst_parent, other.uid, f"exchange {req.dst.path!r}")
    for path, entry, trailing in ((req.src.path, s, src.trailing_slash), (req.dst.path, d, dst.trailing_slash)):
        if trailing and entry.type != DIRECTORY:
            raise make_error(Code.NOT_DIRECTORY, f"{path!r} is not a directory")
    for what, node in ((f"rename from directory {src.parent:#x}", src_parent),
                       (f"rename into directory {dst.parent:#x}", dst_parent),
                       (f"exchange {req.src.path!r}", inode), (f"exchange {req.dst.path!r}", other)):
        acl.check_mutable(node, what)
    if src.parent != dst.parent:
        for entry, node, path, new_parent in ((s, inode, req.src.path, dst.parent), (d, other, req.dst.path, src.parent)):
            if entry.type == DIRECTORY:
                await check_not_ancestor(txn, entry.id, new_parent)
                acl.check(user, node, acl.W, f"move directory {path!r} (updates its '..')")
    now = now_ns()
    for entry, parent, name in ((s, dst.parent, dst.name), (d, src.parent, src.name)):
        moved = mp.DirEntry()
        moved.CopyFrom(entry)
        moved.parent, moved.name, moved.uuid = parent, name, req.base.request_id
        store_dirent(txn, moved)
    for node, parent, name in ((inode, dst.parent, dst.name), (other, src.parent, src.name)):
        node.ctime_ns = now
        if node.type == DIRECTORY:
            node.parent, node.name = parent, name
        store_inode(txn, node)
    touch_dir(txn, src.parent, now)
    touch_dir(txn, dst.parent, now)
    rsp = mp.RenameRsp(inode=inode, exchanged=other)
    idem.store(txn, req.base, METHOD, rsp)
    return rsp
