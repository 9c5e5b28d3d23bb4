"""Who a WebHDFS request acts as: `user.name=` (simple auth) or a threefs token, mapped through mgmtd's users.

Names are looked up in mgmtd's user table (refreshed every `ttl` seconds and on a miss). A name the table
does not know maps to the configured default user, or is refused with SecurityException (401) when there
is none. A `delegation=` parameter carrying a user's threefs token authenticates that user; with
`require_token` every request must carry one. Group names are user names (a user's private group is its
gid) or decimal gids.
"""
from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from threefs.common.errors import Code
from threefs.gateway.hdfs.errors import WebHdfsError
from threefs.mgmtd.users import UsersClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import users_pb2 as upb


@dataclass(frozen=True)
class Identity:
    """A mapped caller: its WebHDFS name and the threefs user its requests carry."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]

    def user_info(self, token: str) -> cpb.UserInfo:
        """The UserInfo for meta requests (`token`: the gateway's own token, a root user's when meta authenticates)."""
        return cpb.UserInfo(uid=self.uid, gid=self.gid, groups=list(self.groups), token=token)


class UserMap:
    """Cached view of mgmtd's user table: name <-> uid, gid -> group name, token -> user."""

    def __init__(self, users: UsersClient, *, admin_token: str = "", default_user: str | None = None,
                 require_token: bool = False, ttl: float = 10.0) -> None:
        self.users = users
        self.admin_token = admin_token
        self.default_user = default_user
        self.require_token = require_token
        self.ttl = ttl
        self._rows: list[upb.UserAttr] = []
        self._loaded = 0.0

    async def _refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded < self.ttl:
            return
        try:
            self._rows = await self.users.list_users(admin_token=self.admin_token)
        except PermissionError as e:
            raise WebHdfsError(Code.AUTH_FAILED, f"the gateway cannot read mgmtd's user table "
                                                 f"(give it an admin token): {e.strerror}") from None
        self._loaded = time.monotonic()

    def _by_name(self, name: str) -> upb.UserAttr | None:
        return next((u for u in self._rows if u.name == name), None)

    async def lookup(self, name: str) -> upb.UserAttr | None:
        """The user named `name` (refreshing the table once on a miss)."""
        await self._refresh()
        row = self._by_name(name)
        if row is None and time.monotonic() - self._loaded > 0.5:
            await self._refresh(force=True)
            row = self._by_name(name)
        return row

    async def resolve(self, user_name: str | None, token: str | None) -> Identity:
        """The identity of a request from its `user.name` and `delegation` parameters."""
        if token:
            await self._refresh()
            row = next((u for u in self._rows if hmac.compare_digest(u.token, token)), None)
            if row is None:
                await self._refresh(force=True)
                row = next((u for u in self._rows if hmac.compare_digest(u.token, token)), None)
            if row is None:
                raise WebHdfsError(Code.AUTH_FAILED, "the delegation token is not a known threefs token")
            if user_name and user_name != row.name:
                raise WebHdfsError(Code.AUTH_FAILED, f"user.name={user_name} does not match the token's user")
            return _identity(row)
        if self.require_token:
            raise WebHdfsError(Code.AUTH_FAILED, "this gateway requires a threefs token (delegation=...)")
        if user_name:
            row = await self.lookup(user_name)
            if row is not None:
                return _identity(row)
        if self.default_user:
            row = await self.lookup(self.default_user)
            if row is not None:
                return _identity(row)
            raise WebHdfsError(Code.AUTH_FAILED, f"the default user {self.default_user!r} is not a threefs user")
        if not user_name:
            raise WebHdfsError(Code.AUTH_FAILED, "anonymous access is disabled: pass user.name=")
        raise WebHdfsError(Code.AUTH_FAILED, f"unknown user {user_name!r}: not in the threefs user table")

    def owner_name(self, uid: int) -> str:
        """The user name of `uid`, else the number."""
        row = next((u for u in self._rows if u.uid == uid), None)
        return row.name if row is not None else str(uid)

    def group_name(self, gid: int) -> str:
        """The name of group `gid`: the user whose private group it is, else the number."""
        row = next((u for u in self._rows if u.uid == gid and u.gid == gid), None)
        return row.name if row is not None else str(gid)

    async def uid_of(self, name: str) -> int:
        """uid of a user name (or a decimal uid); IllegalArgumentException when unknown."""
        if name.isdigit():
            return int(name)
        row = await self.lookup(name)
        if row is None:
            raise WebHdfsError(Code.INVALID_ARGUMENT, f"unknown user {name!r}")
        return row.uid

    async def gid_of(self, name: str) -> int:
        """gid of a group name (a user's private group, or a decimal gid)."""
        if name.isdigit():
            return int(name)
        row = await self.lookup(name)
        if row is None:
            raise WebHdfsError(Code.INVALID_ARGUMENT, f"unknown group {name!r}")
        return row.gid


def _identity(row: upb.UserAttr) -> Identity:
    return Identity(row.name, row.uid, row.gid, tuple(row.groups))
