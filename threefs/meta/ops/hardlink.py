"""hardLink: a second directory entry for a file or symlink (nlink+1); never for directories (EPERM).

Read conflicts: the new entry's parent inode and key, and the linked inode (its nlink is
read-modify-written, so a racing unlink or link serializes).
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl, dir_leases
from threefs.meta.ops.common import live_parent, must_exist
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve, resolve_existing
from threefs.meta.schema import DIRECTORY, MAX_LINKS, dirent_for, load_dirent, load_inode, now_ns, store_dirent, \
    store_inode, touch_dir
from threefs.proto import meta_pb2 as mp


async def hardlink(ctx: MetaContext, txn: Transaction, req: mp.HardLinkReq) -> mp.HardLinkRsp:
    user = req.base.user
    src, inode_id = await resolve_existing(txn, user, req.old_path, follow_last=req.follow_last)
    if src.name == "" or (src.entry is not None and src.entry.type == DIRECTORY):
        raise make_error(Code.NOT_PERMITTED, f"{req.old_path.path!r} is a directory: no hard links to directories")
    dst = await resolve(txn, user, req.new_path, follow_last=False)
    if dst.name == "":
        raise make_error(Code.EXISTS, f"{req.new_path.path!r} exists")
    entry = await load_dirent(txn, dst.parent, dst.name)
    if entry is not None:
        if entry.uuid and entry.uuid == req.base.request_id and entry.id == inode_id:
            return mp.HardLinkRsp(inode=await load_inode(txn, inode_id) or mp.Inode(id=inode_id))
        raise make_error(Code.EXISTS, f"{req.new_path.path!r} exists")
    if dst.trailing_slash:
        raise make_error(Code.NOT_FOUND, f"{req.new_path.path!r}: a link name cannot end with a slash")
    inode = await must_exist(txn, inode_id, repr(req.old_path.path))
    if inode.nlink == 0:
        raise make_error(Code.NOT_FOUND, f"{req.old_path.path!r} was removed")
    parent = await live_parent(txn, dst.parent, f"link {req.new_path.path!r}")
    await dir_leases.check_lease(txn, dst.parent, req.base)
    acl.check(user, parent, acl.W | acl.X, f"link into directory {dst.parent:#x}")
    acl.check_mutable(parent, f"link into directory {dst.parent:#x}")
    acl.check_mutable(inode, f"link {req.old_path.path!r}")
    if inode.nlink >= MAX_LINKS:
        raise make_error(Code.TOO_MANY_LINKS, f"{req.old_path.path!r} already has {inode.nlink} links")
    inode.nlink += 1
    inode.ctime_ns = now_ns()
    store_inode(txn, inode)
    store_dirent(txn, dirent_for(dst.parent, dst.name, inode, req.base.request_id))
    touch_dir(txn, dst.parent, inode.ctime_ns)
    return mp.HardLinkRsp(inode=inode)
