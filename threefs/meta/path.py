"""Path resolution with snapshot reads: walk dirents from a directory, follow symlinks, check X.

Path walks read only directory entries (which carry the directory's ACL), never directory inodes,
and add no read conflicts; each operation adds the conflict keys it depends on itself (3FS §2.4).
At most MAX_SYMLINK_HOPS symlinks are followed per resolution (ELOOP beyond, as Linux).
"""
from __future__ import annotations

from dataclasses import dataclass

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.schema import DIRECTORY, MAX_PATH, ROOT_ID, SYMLINK, check_name, load_dirent, load_inode
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp

MAX_SYMLINK_HOPS = 40
MAX_DEPTH = 4096


@dataclass
class Resolved:
    """Where a path leads: its parent directory, last name, and the entry if it exists."""

    parent: int                 # directory inode holding the last component
    parent_acl: mp.Acl
    name: str                   # last component ("" when the path names `parent` itself)
    entry: mp.DirEntry | None   # None when the last component does not exist
    trailing_slash: bool = False
    dot_last: bool = False      # the path ended in "." (rmdir/rename of "x/." is EINVAL)

    @property
    def exists(self) -> bool:
        return self.entry is not None or self.name == ""

    @property
    def inode_id(self) -> int | None:
        """The inode the path names, None if it does not exist."""
        if self.name == "":
            return self.parent
        return self.entry.id if self.entry is not None else None


async def _dir_acl(txn: Transaction, dir_id: int) -> mp.Acl:
    inode = await load_inode(txn, dir_id, snapshot=True, dir_times=False)
    if inode is None or inode.nlink == 0:
        raise make_error(Code.NOT_FOUND, f"directory {dir_id:#x} does not exist")
    if inode.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY, f"inode {dir_id:#x} is not a directory")
    return mp.Acl(uid=inode.uid, gid=inode.gid, perm=inode.perm, iflags=inode.iflags)


async def _parent_of(txn: Transaction, dir_id: int) -> tuple[int, mp.Acl]:
    if dir_id == ROOT_ID:
        return ROOT_ID, await _dir_acl(txn, ROOT_ID)
    inode = await load_inode(txn, dir_id, snapshot=True, dir_times=False)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"directory {dir_id:#x} was removed")
    return inode.parent, await _dir_acl(txn, inode.parent)


def split(text: str) -> tuple[list[str], bool]:
    """Components of a path (without '' and '.') and whether it ends with a slash."""
    if len(text.encode()) >= MAX_PATH:
        raise make_error(Code.NAME_TOO_LONG, f"path is {len(text.encode())} bytes (limit {MAX_PATH - 1})")
    parts = [p for p in text.split("/") if p and p != "."]
    return parts, text.endswith("/") or text.endswith("/.") or text == "."


async def resolve(txn: Transaction, user: cpb.UserInfo, path: mp.PathAt, *, follow_last: bool,
                  follow_trailing: bool = True, hops: int = 0) -> Resolved:
    """Resolve `path` relative to `path.parent`; raises NOT_FOUND/NOT_DIRECTORY/ELOOP/EACCES/ENAMETOOLONG.

    A trailing slash follows a last-component symlink unless `follow_trailing` is off (remove, rename).
    """
    text = path.path
    cur = ROOT_ID if text.startswith("/") else path.parent
    cur_acl = await _dir_acl(txn, cur)
    parts, trailing_slash = split(text)
    raw = [p for p in text.split("/") if p]
    dot_last = bool(raw) and raw[-1] == "."
    if not parts:
        return Resolved(cur, cur_acl, "", None, trailing_slash, dot_last)
    for i, name in enumerate(parts):
        last = i == len(parts) - 1
        acl.check(user, cur_acl, acl.X, f"search permission on directory {cur:#x}")
        if name == "..":
            cur, cur_acl = await _parent_of(txn, cur)
            if last:
                return Resolved(cur, cur_acl, "", None, trailing_slash)
            continue
        check_name(name)
        entry = await load_dirent(txn, cur, name, snapshot=True)
        if last and (entry is None or entry.type != SYMLINK or not (follow_last or trailing_slash and follow_trailing)):
            if trailing_slash and entry is not None and entry.type not in (DIRECTORY, SYMLINK):
                raise make_error(Code.NOT_DIRECTORY, f"{name!r} is not a directory")
            return Resolved(cur, cur_acl, name, entry, trailing_slash, dot_last)
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
            return await resolve(txn, user, mp.PathAt(parent=cur, path=target), follow_last=follow_last,
                                 follow_trailing=follow_trailing, hops=hops)
        if entry.type != DIRECTORY:
            raise make_error(Code.NOT_DIRECTORY, f"{name!r} is not a directory")
        cur, cur_acl = entry.id, entry.dir_acl
    raise AssertionError("unreachable")


async def resolve_existing(txn: Transaction, user: cpb.UserInfo, path: mp.PathAt, *,
                           follow_last: bool) -> tuple[Resolved, int]:
    """Resolve a path that must exist; returns it with the inode id it names."""
    r = await resolve(txn, user, path, follow_last=follow_last)
    if r.inode_id is None:
        raise make_error(Code.NOT_FOUND, f"{path.path!r} does not exist")
    return r, r.inode_id
