"""Who is asking: the caller of a meta request, resolved from its token when authentication is on.

With authentication off (the dev-cluster default, as 3FS's `authenticate=false`) the uid/gid/groups
in the request are trusted and uid 0 is the administrator. With it on, the token is looked up in
mgmtd's user table (answers cached for `ttl` seconds): an unknown or missing token is refused with
AUTH_FAILED; a `root` user's requests keep the uid/gid they carry (a FUSE daemon acting for its
callers), anyone else's are rewritten to the token's user.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from threefs.common.errors import Code, FSError, make_error
from threefs.mgmtd.users import UsersClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import users_pb2 as upb


@dataclass(frozen=True)
class Caller:
    """The effective user of a request and whether it may run admin requests."""

    user: cpb.UserInfo
    admin: bool


class Authenticator:
    """Resolves request users; caches token lookups."""

    def __init__(self, users: UsersClient | None, *, enabled: bool, ttl: float = 30.0) -> None:
        if enabled and users is None:
            raise ValueError("authentication needs a users client")
        self.users = users
        self.enabled = enabled
        self.ttl = ttl
        self._cache: dict[str, tuple[float, upb.UserAttr]] = {}

    async def _lookup(self, token: str) -> upb.UserAttr:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            user = await self.users.authenticate(token)
        except FSError as e:
            if e.code in (Code.AUTH_FAILED, Code.NOT_FOUND):
                self._cache.pop(token, None)
                raise make_error(Code.AUTH_FAILED, "authentication failed: unknown token") from None
            raise
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token] = (now + self.ttl, user)
        return user

    def drop_cache(self) -> None:
        self._cache.clear()

    async def caller(self, user: cpb.UserInfo) -> Caller:
        """The effective caller of a request carrying `user`."""
        if not self.enabled:
            return Caller(user, admin=user.uid == 0)
        if not user.token:
            raise make_error(Code.AUTH_FAILED, "authentication is required: the request carries no token")
        attr = await self._lookup(user.token)
        if attr.root:
            return Caller(user, admin=attr.admin)
        effective = cpb.UserInfo(uid=attr.uid, gid=attr.gid, groups=attr.groups, token=user.token)
        return Caller(effective, admin=attr.admin)
