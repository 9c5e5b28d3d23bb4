from threefs.proto import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InodeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE: _ClassVar[InodeType]
    DIRECTORY: _ClassVar[InodeType]
    SYMLINK: _ClassVar[InodeType]
FILE: InodeType
DIRECTORY: InodeType
SYMLINK: InodeType

class VersionedLength(_message.Message):
    __slots__ = ("length", "truncate_ver")
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_VER_FIELD_NUMBER: _ClassVar[int]
    length: int
    truncate_ver: int
    def __init__(self, length: _Optional[int] = ..., truncate_ver: _Optional[int] = ...) -> None: ...

class Inode(_message.Message):
    __slots__ = ("id", "type", "uid", "gid", "perm", "iflags", "nlink", "atime_ns", "mtime_ns", "ctime_ns", "length", "truncate_ver", "layout", "file_flags", "parent", "name", "target")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    PERM_FIELD_NUMBER: _ClassVar[int]
    IFLAGS_FIELD_NUMBER: _ClassVar[int]
    NLINK_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    CTIME_NS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_VER_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    FILE_FLAGS_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    id: int
    type: InodeType
    uid: int
    gid: int
    perm: int
    iflags: int
    nlink: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    length: int
    truncate_ver: int
    layout: _common_pb2.Layout
    file_flags: int
    parent: int
    name: str
    target: str
    def __init__(self, id: _Optional[int] = ..., type: _Optional[_Union[InodeType, str]] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., perm: _Optional[int] = ..., iflags: _Optional[int] = ..., nlink: _Optional[int] = ..., atime_ns: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., ctime_ns: _Optional[int] = ..., length: _Optional[int] = ..., truncate_ver: _Optional[int] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., file_flags: _Optional[int] = ..., parent: _Optional[int] = ..., name: _Optional[str] = ..., target: _Optional[str] = ...) -> None: ...

class Acl(_message.Message):
    __slots__ = ("uid", "gid", "perm", "iflags")
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    PERM_FIELD_NUMBER: _ClassVar[int]
    IFLAGS_FIELD_NUMBER: _ClassVar[int]
    uid: int
    gid: int
    perm: int
    iflags: int
    def __init__(self, uid: _Optional[int] = ..., gid: _Optional[int] = ..., perm: _Optional[int] = ..., iflags: _Optional[int] = ...) -> None: ...

class DirEntry(_message.Message):
    __slots__ = ("parent", "name", "id", "type", "dir_acl", "uuid")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DIR_ACL_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    parent: int
    name: str
    id: int
    type: InodeType
    dir_acl: Acl
    uuid: bytes
    def __init__(self, parent: _Optional[int] = ..., name: _Optional[str] = ..., id: _Optional[int] = ..., type: _Optional[_Union[InodeType, str]] = ..., dir_acl: _Optional[_Union[Acl, _Mapping]] = ..., uuid: _Optional[bytes] = ...) -> None: ...

class ReqBase(_message.Message):
    __slots__ = ("user", "client_id", "request_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    user: _common_pb2.UserInfo
    client_id: bytes
    request_id: bytes
    def __init__(self, user: _Optional[_Union[_common_pb2.UserInfo, _Mapping]] = ..., client_id: _Optional[bytes] = ..., request_id: _Optional[bytes] = ...) -> None: ...

class PathAt(_message.Message):
    __slots__ = ("parent", "path")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    parent: int
    path: str
    def __init__(self, parent: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class StatReq(_message.Message):
    __slots__ = ("base", "path", "follow_last")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    follow_last: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ...) -> None: ...

class StatRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class BatchStatReq(_message.Message):
    __slots__ = ("base", "inodes")
    BASE_FIELD_NUMBER: _ClassVar[int]
    INODES_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    inodes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., inodes: _Optional[_Iterable[int]] = ...) -> None: ...

class BatchStatRsp(_message.Message):
    __slots__ = ("inodes", "found")
    INODES_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    inodes: _containers.RepeatedCompositeFieldContainer[Inode]
    found: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, inodes: _Optional[_Iterable[_Union[Inode, _Mapping]]] = ..., found: _Optional[_Iterable[bool]] = ...) -> None: ...

class CreateReq(_message.Message):
    __slots__ = ("base", "path", "flags", "perm", "layout", "session_id")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PERM_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    flags: int
    perm: int
    layout: _common_pb2.Layout
    session_id: bytes
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., flags: _Optional[int] = ..., perm: _Optional[int] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., session_id: _Optional[bytes] = ...) -> None: ...

class CreateRsp(_message.Message):
    __slots__ = ("inode", "need_truncate", "created")
    INODE_FIELD_NUMBER: _ClassVar[int]
    NEED_TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    need_truncate: bool
    created: bool
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ..., need_truncate: _Optional[bool] = ..., created: _Optional[bool] = ...) -> None: ...

class OpenReq(_message.Message):
    __slots__ = ("base", "path", "flags", "session_id")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    flags: int
    session_id: bytes
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., flags: _Optional[int] = ..., session_id: _Optional[bytes] = ...) -> None: ...

class OpenRsp(_message.Message):
    __slots__ = ("inode", "need_truncate")
    INODE_FIELD_NUMBER: _ClassVar[int]
    NEED_TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    need_truncate: bool
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ..., need_truncate: _Optional[bool] = ...) -> None: ...

class MkdirsReq(_message.Message):
    __slots__ = ("base", "path", "perm", "recursive", "layout")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PERM_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    perm: int
    recursive: bool
    layout: _common_pb2.Layout
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., perm: _Optional[int] = ..., recursive: _Optional[bool] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ...) -> None: ...

class MkdirsRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class ListReq(_message.Message):
    __slots__ = ("base", "path", "prev", "limit", "with_inodes")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PREV_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    WITH_INODES_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    prev: str
    limit: int
    with_inodes: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., prev: _Optional[str] = ..., limit: _Optional[int] = ..., with_inodes: _Optional[bool] = ...) -> None: ...

class ListRsp(_message.Message):
    __slots__ = ("entries", "inodes", "more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    INODES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DirEntry]
    inodes: _containers.RepeatedCompositeFieldContainer[Inode]
    more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[DirEntry, _Mapping]]] = ..., inodes: _Optional[_Iterable[_Union[Inode, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class RemoveReq(_message.Message):
    __slots__ = ("base", "path", "recursive", "at_flags")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    AT_FLAGS_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    recursive: bool
    at_flags: int
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., recursive: _Optional[bool] = ..., at_flags: _Optional[int] = ...) -> None: ...

class RemoveRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RenameReq(_message.Message):
    __slots__ = ("base", "src", "dst", "flags")
    BASE_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    DST_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    src: PathAt
    dst: PathAt
    flags: int
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., src: _Optional[_Union[PathAt, _Mapping]] = ..., dst: _Optional[_Union[PathAt, _Mapping]] = ..., flags: _Optional[int] = ...) -> None: ...

class RenameRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class SyncReq(_message.Message):
    __slots__ = ("base", "inode", "update_length", "length_hint", "truncated")
    BASE_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_HINT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    inode: int
    update_length: bool
    length_hint: VersionedLength
    truncated: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., inode: _Optional[int] = ..., update_length: _Optional[bool] = ..., length_hint: _Optional[_Union[VersionedLength, _Mapping]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class SyncRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class CloseReq(_message.Message):
    __slots__ = ("base", "inode", "session_id", "update_length", "length_hint")
    BASE_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_HINT_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    inode: int
    session_id: bytes
    update_length: bool
    length_hint: VersionedLength
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., inode: _Optional[int] = ..., session_id: _Optional[bytes] = ..., update_length: _Optional[bool] = ..., length_hint: _Optional[_Union[VersionedLength, _Mapping]] = ...) -> None: ...

class CloseRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class StatFsReq(_message.Message):
    __slots__ = ("base",)
    BASE_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ...) -> None: ...

class StatFsRsp(_message.Message):
    __slots__ = ("capacity", "used", "free", "inodes")
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    INODES_FIELD_NUMBER: _ClassVar[int]
    capacity: int
    used: int
    free: int
    inodes: int
    def __init__(self, capacity: _Optional[int] = ..., used: _Optional[int] = ..., free: _Optional[int] = ..., inodes: _Optional[int] = ...) -> None: ...
