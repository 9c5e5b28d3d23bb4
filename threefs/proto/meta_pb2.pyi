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
    __slots__ = ("id", "type", "uid", "gid", "perm", "iflags", "nlink", "atime_ns", "mtime_ns", "ctime_ns", "length", "truncate_ver", "layout", "file_flags", "parent", "name", "target", "inline", "fresh")
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
    INLINE_FIELD_NUMBER: _ClassVar[int]
    FRESH_FIELD_NUMBER: _ClassVar[int]
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
    inline: bool
    fresh: bool
    def __init__(self, id: _Optional[int] = ..., type: _Optional[_Union[InodeType, str]] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., perm: _Optional[int] = ..., iflags: _Optional[int] = ..., nlink: _Optional[int] = ..., atime_ns: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., ctime_ns: _Optional[int] = ..., length: _Optional[int] = ..., truncate_ver: _Optional[int] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., file_flags: _Optional[int] = ..., parent: _Optional[int] = ..., name: _Optional[str] = ..., target: _Optional[str] = ..., inline: _Optional[bool] = ..., fresh: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("parent", "name", "id", "type", "dir_acl", "uuid", "gc_info")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DIR_ACL_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    GC_INFO_FIELD_NUMBER: _ClassVar[int]
    parent: int
    name: str
    id: int
    type: InodeType
    dir_acl: Acl
    uuid: bytes
    gc_info: GcInfo
    def __init__(self, parent: _Optional[int] = ..., name: _Optional[str] = ..., id: _Optional[int] = ..., type: _Optional[_Union[InodeType, str]] = ..., dir_acl: _Optional[_Union[Acl, _Mapping]] = ..., uuid: _Optional[bytes] = ..., gc_info: _Optional[_Union[GcInfo, _Mapping]] = ...) -> None: ...

class GcInfo(_message.Message):
    __slots__ = ("uid", "gid", "orig_path", "removed_ms")
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    ORIG_PATH_FIELD_NUMBER: _ClassVar[int]
    REMOVED_MS_FIELD_NUMBER: _ClassVar[int]
    uid: int
    gid: int
    orig_path: str
    removed_ms: int
    def __init__(self, uid: _Optional[int] = ..., gid: _Optional[int] = ..., orig_path: _Optional[str] = ..., removed_ms: _Optional[int] = ...) -> None: ...

class FileSession(_message.Message):
    __slots__ = ("inode", "client_id", "session_id", "created_ms")
    INODE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    inode: int
    client_id: bytes
    session_id: bytes
    created_ms: int
    def __init__(self, inode: _Optional[int] = ..., client_id: _Optional[bytes] = ..., session_id: _Optional[bytes] = ..., created_ms: _Optional[int] = ...) -> None: ...

class ClientLease(_message.Message):
    __slots__ = ("client_id", "hostname", "renewed_ms")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    RENEWED_MS_FIELD_NUMBER: _ClassVar[int]
    client_id: bytes
    hostname: str
    renewed_ms: int
    def __init__(self, client_id: _Optional[bytes] = ..., hostname: _Optional[str] = ..., renewed_ms: _Optional[int] = ...) -> None: ...

class IdemRecord(_message.Message):
    __slots__ = ("method", "timestamp_ms", "result")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    method: str
    timestamp_ms: int
    result: bytes
    def __init__(self, method: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., result: _Optional[bytes] = ...) -> None: ...

class ReqBase(_message.Message):
    __slots__ = ("user", "client_id", "request_id", "hostname")
    USER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    user: _common_pb2.UserInfo
    client_id: bytes
    request_id: bytes
    hostname: str
    def __init__(self, user: _Optional[_Union[_common_pb2.UserInfo, _Mapping]] = ..., client_id: _Optional[bytes] = ..., request_id: _Optional[bytes] = ..., hostname: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("base", "path", "flags", "perm", "layout", "session_id", "inode_id", "time_ns", "inline_data", "sync")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    PERM_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INODE_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_NS_FIELD_NUMBER: _ClassVar[int]
    INLINE_DATA_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    flags: int
    perm: int
    layout: _common_pb2.Layout
    session_id: bytes
    inode_id: int
    time_ns: int
    inline_data: bytes
    sync: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., flags: _Optional[int] = ..., perm: _Optional[int] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., session_id: _Optional[bytes] = ..., inode_id: _Optional[int] = ..., time_ns: _Optional[int] = ..., inline_data: _Optional[bytes] = ..., sync: _Optional[bool] = ...) -> None: ...

class AllocateInodesReq(_message.Message):
    __slots__ = ("base",)
    BASE_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ...) -> None: ...

class AllocateInodesRsp(_message.Message):
    __slots__ = ("first", "count", "inline_max")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    INLINE_MAX_FIELD_NUMBER: _ClassVar[int]
    first: int
    count: int
    inline_max: int
    def __init__(self, first: _Optional[int] = ..., count: _Optional[int] = ..., inline_max: _Optional[int] = ...) -> None: ...

class CreateRsp(_message.Message):
    __slots__ = ("inode", "need_truncate", "created", "inline_max", "inline_data")
    INODE_FIELD_NUMBER: _ClassVar[int]
    NEED_TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    INLINE_MAX_FIELD_NUMBER: _ClassVar[int]
    INLINE_DATA_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    need_truncate: bool
    created: bool
    inline_max: int
    inline_data: bytes
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ..., need_truncate: _Optional[bool] = ..., created: _Optional[bool] = ..., inline_max: _Optional[int] = ..., inline_data: _Optional[bytes] = ...) -> None: ...

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
    __slots__ = ("inode", "need_truncate", "inline_data")
    INODE_FIELD_NUMBER: _ClassVar[int]
    NEED_TRUNCATE_FIELD_NUMBER: _ClassVar[int]
    INLINE_DATA_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    need_truncate: bool
    inline_data: bytes
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ..., need_truncate: _Optional[bool] = ..., inline_data: _Optional[bytes] = ...) -> None: ...

class MkdirsReq(_message.Message):
    __slots__ = ("base", "path", "perm", "recursive", "layout", "lease_callback")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    PERM_FIELD_NUMBER: _ClassVar[int]
    RECURSIVE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    LEASE_CALLBACK_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    perm: int
    recursive: bool
    layout: _common_pb2.Layout
    lease_callback: str
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., perm: _Optional[int] = ..., recursive: _Optional[bool] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ..., lease_callback: _Optional[str] = ...) -> None: ...

class MkdirsRsp(_message.Message):
    __slots__ = ("inode", "lease_seconds")
    INODE_FIELD_NUMBER: _ClassVar[int]
    LEASE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    lease_seconds: float
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ..., lease_seconds: _Optional[float] = ...) -> None: ...

class DirLease(_message.Message):
    __slots__ = ("client_id", "callback", "expires_ns")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_NS_FIELD_NUMBER: _ClassVar[int]
    client_id: bytes
    callback: str
    expires_ns: int
    def __init__(self, client_id: _Optional[bytes] = ..., callback: _Optional[str] = ..., expires_ns: _Optional[int] = ...) -> None: ...

class RecallDirLeaseReq(_message.Message):
    __slots__ = ("dir", "client_id")
    DIR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    dir: int
    client_id: bytes
    def __init__(self, dir: _Optional[int] = ..., client_id: _Optional[bytes] = ...) -> None: ...

class RecallDirLeaseRsp(_message.Message):
    __slots__ = ("held",)
    HELD_FIELD_NUMBER: _ClassVar[int]
    held: bool
    def __init__(self, held: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("parent_mtime_ns",)
    PARENT_MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    parent_mtime_ns: int
    def __init__(self, parent_mtime_ns: _Optional[int] = ...) -> None: ...

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
    __slots__ = ("inode", "exchanged")
    INODE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGED_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    exchanged: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ..., exchanged: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class SyncReq(_message.Message):
    __slots__ = ("base", "inode", "update_length", "length_hint", "truncated", "modified", "inline_data", "clear_inline", "end_fresh", "session_id")
    BASE_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_HINT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_FIELD_NUMBER: _ClassVar[int]
    INLINE_DATA_FIELD_NUMBER: _ClassVar[int]
    CLEAR_INLINE_FIELD_NUMBER: _ClassVar[int]
    END_FRESH_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    inode: int
    update_length: bool
    length_hint: VersionedLength
    truncated: bool
    modified: bool
    inline_data: bytes
    clear_inline: bool
    end_fresh: bool
    session_id: bytes
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., inode: _Optional[int] = ..., update_length: _Optional[bool] = ..., length_hint: _Optional[_Union[VersionedLength, _Mapping]] = ..., truncated: _Optional[bool] = ..., modified: _Optional[bool] = ..., inline_data: _Optional[bytes] = ..., clear_inline: _Optional[bool] = ..., end_fresh: _Optional[bool] = ..., session_id: _Optional[bytes] = ...) -> None: ...

class SyncRsp(_message.Message):
    __slots__ = ("inode", "inline_accepted")
    INODE_FIELD_NUMBER: _ClassVar[int]
    INLINE_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    inline_accepted: bool
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ..., inline_accepted: _Optional[bool] = ...) -> None: ...

class CloseReq(_message.Message):
    __slots__ = ("base", "inode", "session_id", "update_length", "length_hint", "modified")
    BASE_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_HINT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    inode: int
    session_id: bytes
    update_length: bool
    length_hint: VersionedLength
    modified: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., inode: _Optional[int] = ..., session_id: _Optional[bytes] = ..., update_length: _Optional[bool] = ..., length_hint: _Optional[_Union[VersionedLength, _Mapping]] = ..., modified: _Optional[bool] = ...) -> None: ...

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

class LookupReq(_message.Message):
    __slots__ = ("base", "parent", "name")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PARENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    parent: int
    name: str
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., parent: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class LookupRsp(_message.Message):
    __slots__ = ("entry", "inode")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    entry: DirEntry
    inode: Inode
    def __init__(self, entry: _Optional[_Union[DirEntry, _Mapping]] = ..., inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class BatchStatByPathReq(_message.Message):
    __slots__ = ("base", "paths", "follow_last")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    paths: _containers.RepeatedCompositeFieldContainer[PathAt]
    follow_last: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., paths: _Optional[_Iterable[_Union[PathAt, _Mapping]]] = ..., follow_last: _Optional[bool] = ...) -> None: ...

class BatchStatByPathRsp(_message.Message):
    __slots__ = ("inodes", "codes")
    INODES_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    inodes: _containers.RepeatedCompositeFieldContainer[Inode]
    codes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, inodes: _Optional[_Iterable[_Union[Inode, _Mapping]]] = ..., codes: _Optional[_Iterable[int]] = ...) -> None: ...

class SymlinkReq(_message.Message):
    __slots__ = ("base", "path", "target")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    target: str
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., target: _Optional[str] = ...) -> None: ...

class SymlinkRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class HardLinkReq(_message.Message):
    __slots__ = ("base", "old_path", "new_path", "follow_last")
    BASE_FIELD_NUMBER: _ClassVar[int]
    OLD_PATH_FIELD_NUMBER: _ClassVar[int]
    NEW_PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    old_path: PathAt
    new_path: PathAt
    follow_last: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., old_path: _Optional[_Union[PathAt, _Mapping]] = ..., new_path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ...) -> None: ...

class HardLinkRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class SetAttrReq(_message.Message):
    __slots__ = ("base", "path", "follow_last", "perm", "uid", "gid", "atime_ns", "mtime_ns", "atime_now", "mtime_now", "iflags", "layout")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    PERM_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    ATIME_NS_FIELD_NUMBER: _ClassVar[int]
    MTIME_NS_FIELD_NUMBER: _ClassVar[int]
    ATIME_NOW_FIELD_NUMBER: _ClassVar[int]
    MTIME_NOW_FIELD_NUMBER: _ClassVar[int]
    IFLAGS_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    follow_last: bool
    perm: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    atime_now: bool
    mtime_now: bool
    iflags: int
    layout: _common_pb2.Layout
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ..., perm: _Optional[int] = ..., uid: _Optional[int] = ..., gid: _Optional[int] = ..., atime_ns: _Optional[int] = ..., mtime_ns: _Optional[int] = ..., atime_now: _Optional[bool] = ..., mtime_now: _Optional[bool] = ..., iflags: _Optional[int] = ..., layout: _Optional[_Union[_common_pb2.Layout, _Mapping]] = ...) -> None: ...

class SetAttrRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class TruncateReq(_message.Message):
    __slots__ = ("base", "path", "length")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    length: int
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., length: _Optional[int] = ...) -> None: ...

class TruncateRsp(_message.Message):
    __slots__ = ("inode",)
    INODE_FIELD_NUMBER: _ClassVar[int]
    inode: Inode
    def __init__(self, inode: _Optional[_Union[Inode, _Mapping]] = ...) -> None: ...

class GetRealPathReq(_message.Message):
    __slots__ = ("base", "path", "follow_last")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    follow_last: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ...) -> None: ...

class GetRealPathRsp(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class PruneSessionReq(_message.Message):
    __slots__ = ("base", "sessions", "all_of_client")
    BASE_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ALL_OF_CLIENT_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    sessions: _containers.RepeatedCompositeFieldContainer[FileSession]
    all_of_client: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., sessions: _Optional[_Iterable[_Union[FileSession, _Mapping]]] = ..., all_of_client: _Optional[bool] = ...) -> None: ...

class PruneSessionRsp(_message.Message):
    __slots__ = ("pruned",)
    PRUNED_FIELD_NUMBER: _ClassVar[int]
    pruned: int
    def __init__(self, pruned: _Optional[int] = ...) -> None: ...

class RenewClientReq(_message.Message):
    __slots__ = ("base",)
    BASE_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ...) -> None: ...

class RenewClientRsp(_message.Message):
    __slots__ = ("timeout_ms",)
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    timeout_ms: int
    def __init__(self, timeout_ms: _Optional[int] = ...) -> None: ...

class ListSessionsReq(_message.Message):
    __slots__ = ("base", "inode", "all")
    BASE_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    inode: int
    all: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., inode: _Optional[int] = ..., all: _Optional[bool] = ...) -> None: ...

class ListSessionsRsp(_message.Message):
    __slots__ = ("sessions", "clients")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[FileSession]
    clients: _containers.RepeatedCompositeFieldContainer[ClientLease]
    def __init__(self, sessions: _Optional[_Iterable[_Union[FileSession, _Mapping]]] = ..., clients: _Optional[_Iterable[_Union[ClientLease, _Mapping]]] = ...) -> None: ...

class GcListReq(_message.Message):
    __slots__ = ("base", "limit")
    BASE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    limit: int
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class GcListRsp(_message.Message):
    __slots__ = ("entries", "inodes", "more")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    INODES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DirEntry]
    inodes: _containers.RepeatedCompositeFieldContainer[Inode]
    more: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[DirEntry, _Mapping]]] = ..., inodes: _Optional[_Iterable[_Union[Inode, _Mapping]]] = ..., more: _Optional[bool] = ...) -> None: ...

class GcRunReq(_message.Message):
    __slots__ = ("base",)
    BASE_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ...) -> None: ...

class GcRunRsp(_message.Message):
    __slots__ = ("collected", "pending")
    COLLECTED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    collected: int
    pending: int
    def __init__(self, collected: _Optional[int] = ..., pending: _Optional[int] = ...) -> None: ...

class FsckReq(_message.Message):
    __slots__ = ("base",)
    BASE_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ...) -> None: ...

class FsckRsp(_message.Message):
    __slots__ = ("inodes", "dirents", "directories", "files", "symlinks", "gc_pending", "sessions", "errors")
    INODES_FIELD_NUMBER: _ClassVar[int]
    DIRENTS_FIELD_NUMBER: _ClassVar[int]
    DIRECTORIES_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    SYMLINKS_FIELD_NUMBER: _ClassVar[int]
    GC_PENDING_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    inodes: int
    dirents: int
    directories: int
    files: int
    symlinks: int
    gc_pending: int
    sessions: int
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, inodes: _Optional[int] = ..., dirents: _Optional[int] = ..., directories: _Optional[int] = ..., files: _Optional[int] = ..., symlinks: _Optional[int] = ..., gc_pending: _Optional[int] = ..., sessions: _Optional[int] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class OrphanedChunk(_message.Message):
    __slots__ = ("target_id", "chain_id", "chunk_id", "inode", "size")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    INODE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    chain_id: int
    chunk_id: bytes
    inode: int
    size: int
    def __init__(self, target_id: _Optional[int] = ..., chain_id: _Optional[int] = ..., chunk_id: _Optional[bytes] = ..., inode: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class FindOrphanedChunksReq(_message.Message):
    __slots__ = ("base",)
    BASE_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ...) -> None: ...

class FindOrphanedChunksRsp(_message.Message):
    __slots__ = ("chunks", "scanned_chunks", "scanned_targets", "unreachable_targets")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    SCANNED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    SCANNED_TARGETS_FIELD_NUMBER: _ClassVar[int]
    UNREACHABLE_TARGETS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[OrphanedChunk]
    scanned_chunks: int
    scanned_targets: int
    unreachable_targets: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, chunks: _Optional[_Iterable[_Union[OrphanedChunk, _Mapping]]] = ..., scanned_chunks: _Optional[int] = ..., scanned_targets: _Optional[int] = ..., unreachable_targets: _Optional[_Iterable[int]] = ...) -> None: ...

class SetXattrReq(_message.Message):
    __slots__ = ("base", "path", "follow_last", "name", "value", "flags")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    follow_last: bool
    name: str
    value: bytes
    flags: int
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ..., name: _Optional[str] = ..., value: _Optional[bytes] = ..., flags: _Optional[int] = ...) -> None: ...

class SetXattrRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetXattrReq(_message.Message):
    __slots__ = ("base", "path", "follow_last", "name")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    follow_last: bool
    name: str
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ..., name: _Optional[str] = ...) -> None: ...

class GetXattrRsp(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    def __init__(self, value: _Optional[bytes] = ...) -> None: ...

class ListXattrReq(_message.Message):
    __slots__ = ("base", "path", "follow_last")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    follow_last: bool
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ...) -> None: ...

class ListXattrRsp(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class RemoveXattrReq(_message.Message):
    __slots__ = ("base", "path", "follow_last", "name")
    BASE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_LAST_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    base: ReqBase
    path: PathAt
    follow_last: bool
    name: str
    def __init__(self, base: _Optional[_Union[ReqBase, _Mapping]] = ..., path: _Optional[_Union[PathAt, _Mapping]] = ..., follow_last: _Optional[bool] = ..., name: _Optional[str] = ...) -> None: ...

class RemoveXattrRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
