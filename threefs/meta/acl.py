"""POSIX permission checks on 3FS-style ACLs {uid, gid, perm}: owner, group (+supplementary), other."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.proto import common_pb2 as cpb

R, W, X = 4, 2, 1
S_ISVTX = 0o1000


def allowed(user: cpb.UserInfo, uid: int, gid: int, perm: int, want: int) -> bool:
    """Whether `user` has all of `want` (R|W|X bits) on an object; root bypasses except X on non-executables."""
    if user.uid == 0:
        return True
    if user.uid == uid:
        bits = (perm >> 6) & 7
    elif user.gid == gid or gid in user.groups:
        bits = (perm >> 3) & 7
    else:
        bits = perm & 7
    return bits & want == want


def check(user: cpb.UserInfo, acl, want: int, what: str) -> None:
    """Raise PERMISSION_DENIED unless `user` has `want` on `acl` (anything with uid/gid/perm)."""
    if not allowed(user, acl.uid, acl.gid, acl.perm, want):
        raise make_error(Code.PERMISSION_DENIED, f"permission denied: {what}")


def check_sticky(user: cpb.UserInfo, dir_acl, owner_uid: int, what: str) -> None:
    """In a sticky directory only the file's owner, the directory's owner or root may remove/rename."""
    if dir_acl.perm & S_ISVTX and user.uid not in (0, owner_uid, dir_acl.uid):
        raise make_error(Code.NOT_PERMITTED, f"sticky directory: {what}")
