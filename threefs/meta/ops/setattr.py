"""setAttr: chmod, chown, utimes, chattr (immutable) and a directory's default layout (set-layout).

POSIX rules: only the owner (or root) may chmod, set explicit times or change a layout (EPERM);
setting times to "now" also works with write permission (EACCES otherwise); only root changes the
owner, the owner may change the group to one of its groups; a non-root chmod drops S_ISGID when
the caller is not in the file's group, and a non-root chown drops S_ISUID/S_ISGID of a file. A
writer that is not the owner may only clear S_ISUID/S_ISGID (what the kernel does on its write). A
directory's ACL is copied into its entry (path walks read it there), in the same transaction.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl, dir_leases
from threefs.meta.ops.common import checked_layout, has_layout, must_exist
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve_existing
from threefs.meta.schema import DIRECTORY, FILE, ROOT_ID, acl_of, clear_dir_times, load_dirent, now_ns, store_dirent, \
    store_inode
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp


def _chown(user: cpb.UserInfo, inode: mp.Inode, req: mp.SetAttrReq) -> None:
    uid = req.uid if req.HasField("uid") else inode.uid
    gid = req.gid if req.HasField("gid") else inode.gid
    if user.uid != 0:
        if uid != inode.uid or user.uid != inode.uid:
            raise make_error(Code.NOT_PERMITTED, "only root may change the owner of a file")
        if gid != inode.gid and not acl.in_group(user, gid):
            raise make_error(Code.NOT_PERMITTED, f"not a member of group {gid}")
        if inode.type == FILE:
            inode.perm &= ~(acl.S_ISUID | acl.S_ISGID)
    inode.uid, inode.gid = uid, gid


_PRIVS = acl.S_ISUID | acl.S_ISGID


def _drops_privs_only(inode: mp.Inode, perm: int) -> bool:
    """Whether `perm` is the file's mode with some of S_ISUID/S_ISGID cleared and nothing else changed."""
    return perm & ~_PRIVS == inode.perm & ~_PRIVS and perm & _PRIVS & ~inode.perm == 0


def _chmod(user: cpb.UserInfo, inode: mp.Inode, perm: int) -> None:
    perm &= 0o7777
    if (not acl.is_owner(user, inode) and inode.type == FILE and _drops_privs_only(inode, perm)
            and acl.allowed(user, inode.uid, inode.gid, inode.perm, acl.W)):
        # A write or truncate by a non-owner drops S_ISUID/S_ISGID: the kernel asks a FUSE file system
        # for that as a chmod by the writer (without handle_killpriv), which needs write permission only.
        inode.perm = perm
        return
    acl.check_owner(user, inode, "chmod")
    if user.uid != 0 and not acl.in_group(user, inode.gid):
        perm &= ~acl.S_ISGID
    inode.perm = perm


def _times(user: cpb.UserInfo, inode: mp.Inode, req: mp.SetAttrReq) -> None:
    explicit = req.HasField("atime_ns") or req.HasField("mtime_ns")
    if explicit:
        acl.check_owner(user, inode, "set explicit times")
    elif not acl.is_owner(user, inode):
        acl.check(user, inode, acl.W, "set times to now")
    now = now_ns()
    if req.atime_now or req.HasField("atime_ns"):
        inode.atime_ns = now if req.atime_now else req.atime_ns
    if req.mtime_now or req.HasField("mtime_ns"):
        inode.mtime_ns = now if req.mtime_now else req.mtime_ns


async def _layout(ctx: MetaContext, user: cpb.UserInfo, inode: mp.Inode, layout: cpb.Layout) -> None:
    if inode.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY,
                         "a layout is set on directories (files keep the one they were created with)")
    acl.check_owner(user, inode, "set the layout")
    new = checked_layout(layout)
    table = await ctx.mgmtd.chain_table(new.table_id, new.table_version)
    if new.WhichOneof("chains") is None and new.stripe_size > len(table.chain_ids):
        raise make_error(Code.INVALID_ARGUMENT,
                         f"stripe {new.stripe_size} exceeds the {len(table.chain_ids)} chains of table {new.table_id}")
    inode.layout.CopyFrom(new)


async def setattr_(ctx: MetaContext, txn: Transaction, req: mp.SetAttrReq) -> mp.SetAttrRsp:
    user = req.base.user
    _, inode_id = await resolve_existing(txn, user, req.path, follow_last=req.follow_last)
    inode = await must_exist(txn, inode_id, repr(req.path.path))
    before = acl_of(inode)
    if req.HasField("iflags"):
        if user.uid != 0:
            raise make_error(Code.NOT_PERMITTED, "only root may change inode flags")
        inode.iflags = req.iflags
    other = (req.HasField("perm") or req.HasField("uid") or req.HasField("gid") or req.HasField("atime_ns")
             or req.HasField("mtime_ns") or req.atime_now or req.mtime_now or has_layout(req))
    if other:
        acl.check_mutable(inode, f"change {req.path.path!r}")
        if inode.type == DIRECTORY:         # its holder creates in it on what it knows of its mode and owner
            await dir_leases.check_lease(txn, inode.id, req.base)
    if req.HasField("uid") or req.HasField("gid"):
        _chown(user, inode, req)
    if req.HasField("perm"):
        _chmod(user, inode, req.perm)
    if req.HasField("atime_ns") or req.HasField("mtime_ns") or req.atime_now or req.mtime_now:
        _times(user, inode, req)
        if inode.type == DIRECTORY and (req.mtime_now or req.HasField("mtime_ns")):
            clear_dir_times(txn, inode.id)      # the time set now replaces that of its entry changes
    if has_layout(req):
        await _layout(ctx, user, inode, req.layout)
    if not other and not req.HasField("iflags"):
        return mp.SetAttrRsp(inode=inode)
    inode.ctime_ns = now_ns()
    store_inode(txn, inode)
    if inode.type == DIRECTORY and inode.id != ROOT_ID and inode.nlink > 0 and acl_of(inode) != before:
        entry = await load_dirent(txn, inode.parent, inode.name)
        if entry is None or entry.id != inode.id:
            raise make_error(Code.INTERNAL, f"directory {inode.id:#x} has no entry {inode.name!r} in {inode.parent:#x}")
        entry.dir_acl.CopyFrom(acl_of(inode))
        store_dirent(txn, entry)
    return mp.SetAttrRsp(inode=inode)
