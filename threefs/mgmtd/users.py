"""The user table (3FS `USER`): users and their tokens in mgmtd's KV, served over gRPC as `Users`.

A token stands for a user {uid, gid, groups}; `root` users may act as any uid (the FUSE daemon
forwards its callers' ids), `admin` users may manage users. Managing users needs an admin token,
except while no admin exists (bootstrap: the first `user-add --admin`). Meta servers resolve
tokens with `Authenticate` and cache the answers.
"""
from __future__ import annotations

import hmac
import secrets
import time

import grpc

from threefs.common.errors import Code, FSError, make_error
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.net.grpc_util import OPTIONS, servicer_method, to_fs_error
from threefs.proto import users_pb2 as upb
from threefs.proto import users_pb2_grpc

MAX_NAME = 64


def new_token() -> str:
    return "tfs-" + secrets.token_urlsafe(24)


class UserStore:
    """Users in the KV engine, one key per uid (USER + BE u32 uid)."""

    def __init__(self, kv: KVEngine) -> None:
        self.kv = kv

    @staticmethod
    async def _all(txn: Transaction) -> list[upb.UserAttr]:
        rows = await txn.get_range(keys.USER, keys.prefix_end(keys.USER))
        return [upb.UserAttr.FromString(v) for _, v in rows]

    async def all(self) -> list[upb.UserAttr]:
        return await run_txn(self.kv, self._all)

    async def by_token(self, token: str) -> upb.UserAttr | None:
        if not token:
            return None
        for u in await self.all():
            if hmac.compare_digest(u.token, token):
                return u
        return None

    async def add(self, req: upb.AddUserReq) -> upb.UserAttr:
        name = req.name.strip()
        if not name or len(name) > MAX_NAME or any(c.isspace() for c in name):
            raise make_error(Code.INVALID_ARGUMENT,
                             f"user name {req.name!r} must be 1-{MAX_NAME} characters without spaces")
        user = upb.UserAttr(uid=req.uid, name=name, token=req.token or new_token(),
                            gid=req.gid if req.HasField("gid") else req.uid, groups=sorted(set(req.groups)),
                            root=req.root, admin=req.admin, created_ms=int(time.time() * 1000))

        async def fn(txn: Transaction) -> upb.UserAttr:
            users = await self._all(txn)
            if any(u.uid == user.uid for u in users):
                raise make_error(Code.EXISTS, f"user {user.uid} exists")
            if any(u.name == user.name for u in users):
                raise make_error(Code.EXISTS, f"user name {user.name!r} is taken")
            if any(u.token == user.token for u in users):
                raise make_error(Code.EXISTS, "that token belongs to another user")
            txn.set(keys.user_key(user.uid), user.SerializeToString())
            return user

        return await run_txn(self.kv, fn)

    async def set_token(self, uid: int, token: str) -> upb.UserAttr:
        token = token or new_token()

        async def fn(txn: Transaction) -> upb.UserAttr:
            users = await self._all(txn)
            user = next((u for u in users if u.uid == uid), None)
            if user is None:
                raise make_error(Code.NOT_FOUND, f"user {uid} does not exist")
            if any(u.token == token and u.uid != uid for u in users):
                raise make_error(Code.EXISTS, "that token belongs to another user")
            user.token = token
            txn.set(keys.user_key(uid), user.SerializeToString())
            return user

        return await run_txn(self.kv, fn)

    async def add_s3_key(self, uid: int, access_key: str = "", secret_key: str = "") -> upb.S3Key:
        """Store an S3 access key (generated when empty) that acts as user `uid`."""
        access_key = access_key or "AK" + secrets.token_hex(9).upper()
        secret_key = secret_key or secrets.token_urlsafe(30)
        if not (3 <= len(access_key) <= 128) or not access_key.isascii() or not access_key.isalnum():
            raise make_error(Code.INVALID_ARGUMENT, "an access key is 3-128 ASCII letters and digits")
        if len(secret_key) < 8 or not secret_key.isascii() or any(c.isspace() for c in secret_key):
            raise make_error(Code.INVALID_ARGUMENT, "a secret key is at least 8 printable ASCII characters")
        key = upb.S3Key(access_key=access_key, secret_key=secret_key, uid=uid, created_ms=int(time.time() * 1000))

        async def fn(txn: Transaction) -> upb.S3Key:
            if await txn.get(keys.user_key(uid)) is None:
                raise make_error(Code.NOT_FOUND, f"user {uid} does not exist")
            if await txn.get(keys.s3_key(access_key)) is not None:
                raise make_error(Code.EXISTS, f"access key {access_key} exists")
            txn.set(keys.s3_key(access_key), key.SerializeToString())
            return key

        return await run_txn(self.kv, fn)

    async def lookup_s3_key(self, access_key: str) -> tuple[upb.S3Key, upb.UserAttr] | None:
        """The key and the user it acts as (None when either is gone)."""
        async def fn(txn: Transaction) -> tuple[upb.S3Key, upb.UserAttr] | None:
            raw = await txn.get(keys.s3_key(access_key))
            if raw is None:
                return None
            key = upb.S3Key.FromString(raw)
            user = await txn.get(keys.user_key(key.uid))
            return None if user is None else (key, upb.UserAttr.FromString(user))

        return await run_txn(self.kv, fn)

    async def remove(self, uid: int) -> None:
        async def fn(txn: Transaction) -> None:
            if await txn.get(keys.user_key(uid)) is None:
                raise make_error(Code.NOT_FOUND, f"user {uid} does not exist")
            txn.clear(keys.user_key(uid))

        await run_txn(self.kv, fn)


class UsersService(users_pb2_grpc.UsersServicer):
    """gRPC handlers of the Users service."""

    def __init__(self, store: UserStore) -> None:
        self.store = store

    async def _require_admin(self, token: str) -> None:
        users = await self.store.all()
        if not any(u.admin for u in users):
            return                          # bootstrap: anyone may create the first admin
        caller = next((u for u in users if token and hmac.compare_digest(u.token, token)), None)
        if caller is None:
            raise make_error(Code.AUTH_FAILED, "an admin token is required (pass --token or set THREEFS_TOKEN)")
        if not caller.admin:
            raise make_error(Code.PERMISSION_DENIED, f"user {caller.name!r} is not an admin")

    @servicer_method
    async def AddUser(self, request: upb.AddUserReq, context):
        await self._require_admin(request.admin_token)
        return upb.AddUserRsp(user=await self.store.add(request))

    @servicer_method
    async def ListUsers(self, request: upb.ListUsersReq, context):
        await self._require_admin(request.admin_token)
        return upb.ListUsersRsp(users=sorted(await self.store.all(), key=lambda u: u.uid))

    @servicer_method
    async def SetUserToken(self, request: upb.SetUserTokenReq, context):
        await self._require_admin(request.admin_token)
        return upb.SetUserTokenRsp(user=await self.store.set_token(request.uid, request.token))

    @servicer_method
    async def RemoveUser(self, request: upb.RemoveUserReq, context):
        await self._require_admin(request.admin_token)
        await self.store.remove(request.uid)
        return upb.RemoveUserRsp()

    @servicer_method
    async def Authenticate(self, request: upb.AuthenticateReq, context):
        user = await self.store.by_token(request.token)
        if user is None:
            raise make_error(Code.AUTH_FAILED, "unknown token")
        return upb.AuthenticateRsp(user=user)


    @servicer_method
    async def AddS3Key(self, request: upb.AddS3KeyReq, context):
        await self._require_admin(request.admin_token)
        return upb.AddS3KeyRsp(key=await self.store.add_s3_key(request.uid, request.access_key, request.secret_key))

    @servicer_method
    async def LookupS3Key(self, request: upb.LookupS3KeyReq, context):
        await self._require_admin(request.admin_token)
        found = await self.store.lookup_s3_key(request.access_key)
        if found is None:
            raise make_error(Code.NOT_FOUND, "unknown access key")
        return upb.LookupS3KeyRsp(key=found[0], user=found[1])


def add_users_service(server: grpc.aio.Server, kv: KVEngine) -> UsersService:
    """Register the Users service on mgmtd's gRPC server."""
    service = UsersService(UserStore(kv))
    users_pb2_grpc.add_UsersServicer_to_server(service, server)
    return service


class UsersClient:
    """Client of mgmtd's Users service (admin CLI, meta's token resolution)."""

    def __init__(self, addresses: str | list[str], *, timeout: float = 5.0) -> None:
        self.addresses = [a.strip() for a in (addresses.split(",") if isinstance(addresses, str) else addresses)
                          if a.strip()]
        if not self.addresses:
            raise ValueError("no mgmtd address given")
        self.timeout = timeout
        self._current = 0
        self._channel: grpc.aio.Channel | None = None
        self._stub: users_pb2_grpc.UsersStub | None = None

    async def _call(self, name: str, req):
        last: FSError | None = None
        for _ in range(len(self.addresses)):
            if self._stub is None:
                self._channel = grpc.aio.insecure_channel(self.addresses[self._current], options=OPTIONS)
                self._stub = users_pb2_grpc.UsersStub(self._channel)
            try:
                return await getattr(self._stub, name)(req, timeout=self.timeout)
            except grpc.aio.AioRpcError as e:
                err = to_fs_error(e, self.addresses[self._current])
                if err.code not in (Code.UNAVAILABLE, Code.NOT_PRIMARY, Code.TIMEOUT):
                    raise err from None
                last = err
                await self._rotate()
        assert last is not None
        raise last

    async def _rotate(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        self._channel = self._stub = None
        self._current = (self._current + 1) % len(self.addresses)

    async def add_user(self, uid: int, name: str, *, gid: int | None = None, groups: list[int] = (),
                       root: bool = False, admin: bool = False, token: str = "", admin_token: str = "") -> upb.UserAttr:
        req = upb.AddUserReq(admin_token=admin_token, uid=uid, name=name, groups=list(groups), root=root,
                             admin=admin, token=token)
        if gid is not None:
            req.gid = gid
        return (await self._call("AddUser", req)).user

    async def list_users(self, admin_token: str = "") -> list[upb.UserAttr]:
        return list((await self._call("ListUsers", upb.ListUsersReq(admin_token=admin_token))).users)

    async def set_token(self, uid: int, token: str = "", admin_token: str = "") -> upb.UserAttr:
        return (await self._call("SetUserToken", upb.SetUserTokenReq(admin_token=admin_token, uid=uid,
                                                                     token=token))).user

    async def remove_user(self, uid: int, admin_token: str = "") -> None:
        await self._call("RemoveUser", upb.RemoveUserReq(admin_token=admin_token, uid=uid))

    async def authenticate(self, token: str) -> upb.UserAttr:
        return (await self._call("Authenticate", upb.AuthenticateReq(token=token))).user

    async def add_s3_key(self, uid: int, access_key: str = "", secret_key: str = "",
                         admin_token: str = "") -> upb.S3Key:
        return (await self._call("AddS3Key", upb.AddS3KeyReq(admin_token=admin_token, uid=uid, access_key=access_key,
                                                             secret_key=secret_key))).key

    async def lookup_s3_key(self, access_key: str, admin_token: str = "") -> upb.LookupS3KeyRsp:
        return await self._call("LookupS3Key", upb.LookupS3KeyReq(admin_token=admin_token, access_key=access_key))

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
