"""Path resolution with snapshot reads: walk dirents from a directory, follow symlinks, check X.

Path walks read only directory entries (which carry the directory's ACL), never directory inodes,
and add no read conflicts; each operation adds the conflict keys it depends on itself (3FS §2.4).
"""
from __future__ import annotations

from dataclasses import dataclass

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.schema import DIRECTORY, ROOT_ID, SYMLINK, check_name, load_dirent, load_inode
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp

MAX_SYMLINK_HOPS = 40


@dataclass
class Resolved:
    """Where a path leads: its parent directory, last name, and the entry if it exists."""

    parent: int                 # directory inode holding the last component
    parent_acl: mp.Acl
    name: str                   # last component ("" when the path names `parent` itself)
    entry: mp.DirEntry | None   # None when the last component does not exist

    @property
    def exists(self) -> bool:
        return self.entry is not None or self.name == ""


def _root_acl() -> mp.Acl:
    return mp.Acl(uid=0, gid=0, perm=0o755)


async def _dir_acl(txn: Transaction, dir_id: int) -> mp.Acl:
    inode = await load_inode(txn, dir_id, snapshot=True)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"directory {dir_id:#x} does not exist")
    if inode.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY, f"inode {dir_id:#x} is not a directory")
    return mp.Acl(uid=inode.uid, gid=inode.gid, perm=inode.perm, iflags=inode.iflags)


async def _parent_of(txn: Transaction, dir_id: int) -> tuple[int, mp.Acl]:
    if dir_id == ROOT_ID:
        return ROOT_ID, await _dir_acl(txn, ROOT_ID)
    inode = await load_inode(txn, dir_id, snapshot=True)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"directory {dir_id:#x} was removed")
    return inode.parent, await _dir_acl(txn, inode.parent)


async def resolve(txn: Transaction, user: cpb.UserInfo, path: mp.PathAt, *, follow_last: bool,
                  hops: int = 0) -> Resolved:
    """Resolve `path` relative to `path.parent`; raises NOT_FOUND/NOT_DIRECTORY/ELOOP/EACCES."""
    text = path.path
    cur = ROOT_ID if text.startswith("/") else path.parent
    cur_acl = await _dir_acl(txn, cur)
    parts = [p for p in text.split("/") if p and p != "."]
    trailing_slash = text.endswith("/") and bool(parts)
    if not parts:
        return Resolved(cur, cur_acl, "", None)
    for i, name in enumerate(parts):
        last = i == len(parts) - 1
        acl.check(user, cur_acl, acl.X, f"search permission on directory {cur:#x}")
        if name == "..":
            cur, cur_acl = await _parent_of(txn, cur)
            if last:
                return Resolved(cur, cur_acl, "", None)
            continue
        check_name(name)
        entry = await load_dirent(txn, cur, name, snapshot=True)
        if last and (entry is None or entry.type != SYMLINK or not (follow_last or trailing_slash)):
            if trailing_slash and entry is not None and entry.type != DIRECTORY:
                raise make_error(Code.NOT_DIRECTORY, f"{name!r} is not a directory")
            return Resolved(cur, cur_acl, name, entry)
        if entry is None:
            raise make_error(Code.NOT_FOUND, f"{name!r} does not exist")
        if entry.type == SYMLINK:
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise make_error(Code.TOO_MANY_SYMLINKS, "too many levels of symbolic links")
            link = await load_inode(txn, entry.id, snapshot=True)
            if link is None:
                raise make_error(Code.NOT_FOUND, f"symlink {name!r} vanished")
            rest = "/".join(parts[i + 1:])
            target = link.target + ("/" + rest if rest else "") + ("/" if trailing_slash else "")
            return await resolve(txn, user, mp.PathAt(parent=cur, path=target), follow_last=follow_last, hops=hops)
        if entry.type != DIRECTORY:
            raise make_error(Code.NOT_DIRECTORY, f"{name!r} is not a directory")
        cur, cur_acl = entry.id, entry.dir_acl
    raise AssertionError("unreachable")


async def resolve_existing(txn: Transaction, user: cpb.UserInfo, path: mp.PathAt, *, follow_last: bool) -> tuple[Resolved, int]:
    """Resolve a path that must exist; returns it with the inode id it names."""
    r = await resolve(txn, user, path, follow_last=follow_last)
    if r.name == "":
        return r, r.parent
    if r.entry is None:
        raise make_error(Code.NOT_FOUND, f"{path.path!r} does not exist")
    return r, r.entry.id
