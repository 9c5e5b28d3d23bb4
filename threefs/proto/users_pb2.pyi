from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserAttr(_message.Message):
    __slots__ = ("uid", "name", "token", "gid", "groups", "root", "admin", "created_ms")
    UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    uid: int
    name: str
    token: str
    gid: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    root: bool
    admin: bool
    created_ms: int
    def __init__(self, uid: _Optional[int] = ..., name: _Optional[str] = ..., token: _Optional[str] = ..., gid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., root: _Optional[bool] = ..., admin: _Optional[bool] = ..., created_ms: _Optional[int] = ...) -> None: ...

class AddUserReq(_message.Message):
    __slots__ = ("admin_token", "uid", "name", "gid", "groups", "root", "admin", "token")
    ADMIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    admin_token: str
    uid: int
    name: str
    gid: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    root: bool
    admin: bool
    token: str
    def __init__(self, admin_token: _Optional[str] = ..., uid: _Optional[int] = ..., name: _Optional[str] = ..., gid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., root: _Optional[bool] = ..., admin: _Optional[bool] = ..., token: _Optional[str] = ...) -> None: ...

class AddUserRsp(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: UserAttr
    def __init__(self, user: _Optional[_Union[UserAttr, _Mapping]] = ...) -> None: ...

class ListUsersReq(_message.Message):
    __slots__ = ("admin_token",)
    ADMIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    admin_token: str
    def __init__(self, admin_token: _Optional[str] = ...) -> None: ...

class ListUsersRsp(_message.Message):
    __slots__ = ("users",)
    USERS_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[UserAttr]
    def __init__(self, users: _Optional[_Iterable[_Union[UserAttr, _Mapping]]] = ...) -> None: ...

class SetUserTokenReq(_message.Message):
    __slots__ = ("admin_token", "uid", "token")
    ADMIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    admin_token: str
    uid: int
    token: str
    def __init__(self, admin_token: _Optional[str] = ..., uid: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class SetUserTokenRsp(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: UserAttr
    def __init__(self, user: _Optional[_Union[UserAttr, _Mapping]] = ...) -> None: ...

class RemoveUserReq(_message.Message):
    __slots__ = ("admin_token", "uid")
    ADMIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    admin_token: str
    uid: int
    def __init__(self, admin_token: _Optional[str] = ..., uid: _Optional[int] = ...) -> None: ...

class RemoveUserRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuthenticateReq(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class AuthenticateRsp(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: UserAttr
    def __init__(self, user: _Optional[_Union[UserAttr, _Mapping]] = ...) -> None: ...

class S3Key(_message.Message):
    __slots__ = ("access_key", "secret_key", "uid", "created_ms")
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    access_key: str
    secret_key: str
    uid: int
    created_ms: int
    def __init__(self, access_key: _Optional[str] = ..., secret_key: _Optional[str] = ..., uid: _Optional[int] = ..., created_ms: _Optional[int] = ...) -> None: ...

class AddS3KeyReq(_message.Message):
    __slots__ = ("admin_token", "uid", "access_key", "secret_key")
    ADMIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    admin_token: str
    uid: int
    access_key: str
    secret_key: str
    def __init__(self, admin_token: _Optional[str] = ..., uid: _Optional[int] = ..., access_key: _Optional[str] = ..., secret_key: _Optional[str] = ...) -> None: ...

class AddS3KeyRsp(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: S3Key
    def __init__(self, key: _Optional[_Union[S3Key, _Mapping]] = ...) -> None: ...

class LookupS3KeyReq(_message.Message):
    __slots__ = ("admin_token", "access_key")
    ADMIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    admin_token: str
    access_key: str
    def __init__(self, admin_token: _Optional[str] = ..., access_key: _Optional[str] = ...) -> None: ...

class LookupS3KeyRsp(_message.Message):
    __slots__ = ("key", "user")
    KEY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    key: S3Key
    user: UserAttr
    def __init__(self, key: _Optional[_Union[S3Key, _Mapping]] = ..., user: _Optional[_Union[UserAttr, _Mapping]] = ...) -> None: ...
