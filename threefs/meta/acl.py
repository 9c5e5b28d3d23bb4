"""POSIX permission checks on 3FS-style ACLs {uid, gid, perm, iflags}: owner, group (+supplementary), other.

uid 0 bypasses mode bits (root); the immutable flag binds root too. No POSIX ACLs or xattrs (3FS §2.11).
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.meta.schema import FS_IMMUTABLE_FL
from threefs.proto import common_pb2 as cpb

R, W, X = 4, 2, 1
S_ISUID, S_ISGID, S_ISVTX = 0o4000, 0o2000, 0o1000


def in_group(user: cpb.UserInfo, gid: int) -> bool:
    return user.gid == gid or gid in user.groups


def allowed(user: cpb.UserInfo, uid: int, gid: int, perm: int, want: int) -> bool:
    """Whether `user` has all of `want` (R|W|X bits) on an object with this owner and mode."""
    if user.uid == 0:
        return True
    if user.uid == uid:
        bits = (perm >> 6) & 7
    elif in_group(user, gid):
        bits = (perm >> 3) & 7
    else:
        bits = perm & 7
    return bits & want == want


def check(user: cpb.UserInfo, acl, want: int, what: str) -> None:
    """Raise PERMISSION_DENIED (EACCES) unless `user` has `want` on `acl` (anything with uid/gid/perm)."""
    if not allowed(user, acl.uid, acl.gid, acl.perm, want):
        raise make_error(Code.PERMISSION_DENIED, f"permission denied: {what}")


def is_owner(user: cpb.UserInfo, acl) -> bool:
    """Owner or root: who may chmod, set times explicitly or change a directory's layout."""
    return user.uid == 0 or user.uid == acl.uid


def check_owner(user: cpb.UserInfo, acl, what: str) -> None:
    if not is_owner(user, acl):
        raise make_error(Code.NOT_PERMITTED, f"operation not permitted: {what} (not the owner)")


def check_sticky(user: cpb.UserInfo, dir_acl, owner_uid: int, what: str) -> None:
    """In a sticky directory only the file's owner, the directory's owner or root may remove/rename."""
    if dir_acl.perm & S_ISVTX and user.uid not in (0, owner_uid, dir_acl.uid):
        raise make_error(Code.NOT_PERMITTED, f"sticky directory: {what}")


def check_mutable(acl, what: str) -> None:
    """Immutable inodes cannot be removed, renamed, linked, opened for write or changed (even by root)."""
    if acl.iflags & FS_IMMUTABLE_FL:
        raise make_error(Code.NOT_PERMITTED, f"{what}: inode is immutable")
