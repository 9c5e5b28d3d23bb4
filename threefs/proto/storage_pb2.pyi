from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChunkState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMIT: _ClassVar[ChunkState]
    DIRTY: _ClassVar[ChunkState]
    CLEAN: _ClassVar[ChunkState]

class UpdateType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WRITE: _ClassVar[UpdateType]
    REMOVE: _ClassVar[UpdateType]
    TRUNCATE: _ClassVar[UpdateType]
    EXTEND: _ClassVar[UpdateType]
COMMIT: ChunkState
DIRTY: ChunkState
CLEAN: ChunkState
WRITE: UpdateType
REMOVE: UpdateType
TRUNCATE: UpdateType
EXTEND: UpdateType

class ChunkMeta(_message.Message):
    __slots__ = ("chunk_id", "commit_ver", "update_ver", "chain_ver", "state", "size", "checksum", "pending_size", "pending_checksum", "removing", "block_crcs", "pending_block_crcs", "target_id", "last_request_id", "last_client_id")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    COMMIT_VER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_VER_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    PENDING_SIZE_FIELD_NUMBER: _ClassVar[int]
    PENDING_CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    REMOVING_FIELD_NUMBER: _ClassVar[int]
    BLOCK_CRCS_FIELD_NUMBER: _ClassVar[int]
    PENDING_BLOCK_CRCS_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    chunk_id: bytes
    commit_ver: int
    update_ver: int
    chain_ver: int
    state: ChunkState
    size: int
    checksum: int
    pending_size: int
    pending_checksum: int
    removing: bool
    block_crcs: bytes
    pending_block_crcs: bytes
    target_id: int
    last_request_id: int
    last_client_id: bytes
    def __init__(self, chunk_id: _Optional[bytes] = ..., commit_ver: _Optional[int] = ..., update_ver: _Optional[int] = ..., chain_ver: _Optional[int] = ..., state: _Optional[_Union[ChunkState, str]] = ..., size: _Optional[int] = ..., checksum: _Optional[int] = ..., pending_size: _Optional[int] = ..., pending_checksum: _Optional[int] = ..., removing: _Optional[bool] = ..., block_crcs: _Optional[bytes] = ..., pending_block_crcs: _Optional[bytes] = ..., target_id: _Optional[int] = ..., last_request_id: _Optional[int] = ..., last_client_id: _Optional[bytes] = ...) -> None: ...

class UpdateTag(_message.Message):
    __slots__ = ("client_id", "request_id", "channel_id", "seqnum")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    SEQNUM_FIELD_NUMBER: _ClassVar[int]
    client_id: bytes
    request_id: int
    channel_id: int
    seqnum: int
    def __init__(self, client_id: _Optional[bytes] = ..., request_id: _Optional[int] = ..., channel_id: _Optional[int] = ..., seqnum: _Optional[int] = ...) -> None: ...

class UpdateIO(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "chunk_id", "offset", "length", "chunk_size", "type", "update_ver", "checksum", "is_syncing", "commit_chain_ver", "create_only")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_VER_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    IS_SYNCING_FIELD_NUMBER: _ClassVar[int]
    COMMIT_CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    CREATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    chunk_id: bytes
    offset: int
    length: int
    chunk_size: int
    type: UpdateType
    update_ver: int
    checksum: int
    is_syncing: bool
    commit_chain_ver: int
    create_only: bool
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., chunk_id: _Optional[bytes] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., chunk_size: _Optional[int] = ..., type: _Optional[_Union[UpdateType, str]] = ..., update_ver: _Optional[int] = ..., checksum: _Optional[int] = ..., is_syncing: _Optional[bool] = ..., commit_chain_ver: _Optional[int] = ..., create_only: _Optional[bool] = ...) -> None: ...

class WriteReq(_message.Message):
    __slots__ = ("io", "tag", "from_client", "retry")
    IO_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    FROM_CLIENT_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    io: UpdateIO
    tag: UpdateTag
    from_client: bool
    retry: int
    def __init__(self, io: _Optional[_Union[UpdateIO, _Mapping]] = ..., tag: _Optional[_Union[UpdateTag, _Mapping]] = ..., from_client: _Optional[bool] = ..., retry: _Optional[int] = ...) -> None: ...

class WriteRsp(_message.Message):
    __slots__ = ("length", "commit_ver", "update_ver", "checksum", "commit_chain_ver")
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_VER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_VER_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    COMMIT_CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    length: int
    commit_ver: int
    update_ver: int
    checksum: int
    commit_chain_ver: int
    def __init__(self, length: _Optional[int] = ..., commit_ver: _Optional[int] = ..., update_ver: _Optional[int] = ..., checksum: _Optional[int] = ..., commit_chain_ver: _Optional[int] = ...) -> None: ...

class ReadIO(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "chunk_id", "offset", "length", "relaxed")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    RELAXED_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    chunk_id: bytes
    offset: int
    length: int
    relaxed: bool
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., chunk_id: _Optional[bytes] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., relaxed: _Optional[bool] = ...) -> None: ...

class BatchReadReq(_message.Message):
    __slots__ = ("ios",)
    IOS_FIELD_NUMBER: _ClassVar[int]
    ios: _containers.RepeatedCompositeFieldContainer[ReadIO]
    def __init__(self, ios: _Optional[_Iterable[_Union[ReadIO, _Mapping]]] = ...) -> None: ...

class ReadResult(_message.Message):
    __slots__ = ("status", "length", "commit_ver", "chunk_size", "checksum")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    COMMIT_VER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    status: int
    length: int
    commit_ver: int
    chunk_size: int
    checksum: int
    def __init__(self, status: _Optional[int] = ..., length: _Optional[int] = ..., commit_ver: _Optional[int] = ..., chunk_size: _Optional[int] = ..., checksum: _Optional[int] = ...) -> None: ...

class BatchReadRsp(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ReadResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ReadResult, _Mapping]]] = ...) -> None: ...

class QueryLastChunkReq(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "begin", "end")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    BEGIN_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    begin: bytes
    end: bytes
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., begin: _Optional[bytes] = ..., end: _Optional[bytes] = ...) -> None: ...

class QueryLastChunkRsp(_message.Message):
    __slots__ = ("found", "last_chunk_id", "last_chunk_len", "total_num")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    LAST_CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_CHUNK_LEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_NUM_FIELD_NUMBER: _ClassVar[int]
    found: bool
    last_chunk_id: bytes
    last_chunk_len: int
    total_num: int
    def __init__(self, found: _Optional[bool] = ..., last_chunk_id: _Optional[bytes] = ..., last_chunk_len: _Optional[int] = ..., total_num: _Optional[int] = ...) -> None: ...

class RemoveChunksReq(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "begin", "end", "max_num", "tag")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    BEGIN_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    MAX_NUM_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    begin: bytes
    end: bytes
    max_num: int
    tag: UpdateTag
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., begin: _Optional[bytes] = ..., end: _Optional[bytes] = ..., max_num: _Optional[int] = ..., tag: _Optional[_Union[UpdateTag, _Mapping]] = ...) -> None: ...

class RemoveChunksRsp(_message.Message):
    __slots__ = ("removed", "more")
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    removed: int
    more: bool
    def __init__(self, removed: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class TruncateChunkReq(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "chunk_id", "length", "chunk_size", "only_extend", "tag")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    ONLY_EXTEND_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    chunk_id: bytes
    length: int
    chunk_size: int
    only_extend: bool
    tag: UpdateTag
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., chunk_id: _Optional[bytes] = ..., length: _Optional[int] = ..., chunk_size: _Optional[int] = ..., only_extend: _Optional[bool] = ..., tag: _Optional[_Union[UpdateTag, _Mapping]] = ...) -> None: ...

class TruncateChunkRsp(_message.Message):
    __slots__ = ("length",)
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    length: int
    def __init__(self, length: _Optional[int] = ...) -> None: ...

class SyncChainReq(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "from_client")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    FROM_CLIENT_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    from_client: bool
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., from_client: _Optional[bool] = ...) -> None: ...

class SyncChainRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueryChunkReq(_message.Message):
    __slots__ = ("target_id", "chunk_id")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    chunk_id: bytes
    def __init__(self, target_id: _Optional[int] = ..., chunk_id: _Optional[bytes] = ...) -> None: ...

class QueryChunkRsp(_message.Message):
    __slots__ = ("found", "meta")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    found: bool
    meta: ChunkMeta
    def __init__(self, found: _Optional[bool] = ..., meta: _Optional[_Union[ChunkMeta, _Mapping]] = ...) -> None: ...

class SyncStartReq(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "target_id")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    target_id: int
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., target_id: _Optional[int] = ...) -> None: ...

class SyncStartRsp(_message.Message):
    __slots__ = ("metas",)
    METAS_FIELD_NUMBER: _ClassVar[int]
    metas: _containers.RepeatedCompositeFieldContainer[ChunkMeta]
    def __init__(self, metas: _Optional[_Iterable[_Union[ChunkMeta, _Mapping]]] = ...) -> None: ...

class SyncDoneReq(_message.Message):
    __slots__ = ("chain_id", "chain_ver", "target_id")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VER_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_ver: int
    target_id: int
    def __init__(self, chain_id: _Optional[int] = ..., chain_ver: _Optional[int] = ..., target_id: _Optional[int] = ...) -> None: ...

class SyncDoneRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class OfflineTargetReq(_message.Message):
    __slots__ = ("target_id",)
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    def __init__(self, target_id: _Optional[int] = ...) -> None: ...

class OfflineTargetRsp(_message.Message):
    __slots__ = ("local_state",)
    LOCAL_STATE_FIELD_NUMBER: _ClassVar[int]
    local_state: int
    def __init__(self, local_state: _Optional[int] = ...) -> None: ...

class DropMappingsReq(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DropMappingsRsp(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: int
    def __init__(self, released: _Optional[int] = ...) -> None: ...

class GetAllChunkMetaReq(_message.Message):
    __slots__ = ("target_id",)
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    def __init__(self, target_id: _Optional[int] = ...) -> None: ...

class GetAllChunkMetaRsp(_message.Message):
    __slots__ = ("metas",)
    METAS_FIELD_NUMBER: _ClassVar[int]
    metas: _containers.RepeatedCompositeFieldContainer[ChunkMeta]
    def __init__(self, metas: _Optional[_Iterable[_Union[ChunkMeta, _Mapping]]] = ...) -> None: ...

class SpaceInfoReq(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TargetSpace(_message.Message):
    __slots__ = ("target_id", "capacity", "used", "free", "chunks")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    capacity: int
    used: int
    free: int
    chunks: int
    def __init__(self, target_id: _Optional[int] = ..., capacity: _Optional[int] = ..., used: _Optional[int] = ..., free: _Optional[int] = ..., chunks: _Optional[int] = ...) -> None: ...

class SpaceInfoRsp(_message.Message):
    __slots__ = ("targets",)
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    targets: _containers.RepeatedCompositeFieldContainer[TargetSpace]
    def __init__(self, targets: _Optional[_Iterable[_Union[TargetSpace, _Mapping]]] = ...) -> None: ...
