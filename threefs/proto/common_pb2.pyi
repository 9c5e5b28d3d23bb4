from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_UNKNOWN: _ClassVar[NodeType]
    MGMTD: _ClassVar[NodeType]
    META: _ClassVar[NodeType]
    STORAGE: _ClassVar[NodeType]
    CLIENT: _ClassVar[NodeType]

class NodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATUS_UNKNOWN: _ClassVar[NodeStatus]
    PRIMARY_MGMTD: _ClassVar[NodeStatus]
    HEARTBEAT_CONNECTED: _ClassVar[NodeStatus]
    HEARTBEAT_CONNECTING: _ClassVar[NodeStatus]
    HEARTBEAT_FAILED: _ClassVar[NodeStatus]
    DISABLED: _ClassVar[NodeStatus]

class PublicTargetState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUBLIC_INVALID: _ClassVar[PublicTargetState]
    SERVING: _ClassVar[PublicTargetState]
    LASTSRV: _ClassVar[PublicTargetState]
    SYNCING: _ClassVar[PublicTargetState]
    WAITING: _ClassVar[PublicTargetState]
    OFFLINE: _ClassVar[PublicTargetState]

class LocalTargetState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOCAL_INVALID: _ClassVar[LocalTargetState]
    UPTODATE: _ClassVar[LocalTargetState]
    ONLINE: _ClassVar[LocalTargetState]
    LOCAL_OFFLINE: _ClassVar[LocalTargetState]
NODE_UNKNOWN: NodeType
MGMTD: NodeType
META: NodeType
STORAGE: NodeType
CLIENT: NodeType
NODE_STATUS_UNKNOWN: NodeStatus
PRIMARY_MGMTD: NodeStatus
HEARTBEAT_CONNECTED: NodeStatus
HEARTBEAT_CONNECTING: NodeStatus
HEARTBEAT_FAILED: NodeStatus
DISABLED: NodeStatus
PUBLIC_INVALID: PublicTargetState
SERVING: PublicTargetState
LASTSRV: PublicTargetState
SYNCING: PublicTargetState
WAITING: PublicTargetState
OFFLINE: PublicTargetState
LOCAL_INVALID: LocalTargetState
UPTODATE: LocalTargetState
ONLINE: LocalTargetState
LOCAL_OFFLINE: LocalTargetState

class UserInfo(_message.Message):
    __slots__ = ("uid", "gid", "groups", "token")
    UID_FIELD_NUMBER: _ClassVar[int]
    GID_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    uid: int
    gid: int
    groups: _containers.RepeatedScalarFieldContainer[int]
    token: str
    def __init__(self, uid: _Optional[int] = ..., gid: _Optional[int] = ..., groups: _Optional[_Iterable[int]] = ..., token: _Optional[str] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "type", "address", "status", "hostname", "pid", "last_heartbeat_ms", "tags", "metrics_address")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    METRICS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    type: NodeType
    address: str
    status: NodeStatus
    hostname: str
    pid: int
    last_heartbeat_ms: int
    tags: _containers.ScalarMap[str, str]
    metrics_address: str
    def __init__(self, node_id: _Optional[int] = ..., type: _Optional[_Union[NodeType, str]] = ..., address: _Optional[str] = ..., status: _Optional[_Union[NodeStatus, str]] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ..., last_heartbeat_ms: _Optional[int] = ..., tags: _Optional[_Mapping[str, str]] = ..., metrics_address: _Optional[str] = ...) -> None: ...

class ChainTarget(_message.Message):
    __slots__ = ("target_id", "public_state")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_STATE_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    public_state: PublicTargetState
    def __init__(self, target_id: _Optional[int] = ..., public_state: _Optional[_Union[PublicTargetState, str]] = ...) -> None: ...

class ChainInfo(_message.Message):
    __slots__ = ("chain_id", "chain_version", "targets", "preferred_order")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_ORDER_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    chain_version: int
    targets: _containers.RepeatedCompositeFieldContainer[ChainTarget]
    preferred_order: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, chain_id: _Optional[int] = ..., chain_version: _Optional[int] = ..., targets: _Optional[_Iterable[_Union[ChainTarget, _Mapping]]] = ..., preferred_order: _Optional[_Iterable[int]] = ...) -> None: ...

class ChainTable(_message.Message):
    __slots__ = ("table_id", "version", "chain_ids", "desc")
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHAIN_IDS_FIELD_NUMBER: _ClassVar[int]
    DESC_FIELD_NUMBER: _ClassVar[int]
    table_id: int
    version: int
    chain_ids: _containers.RepeatedScalarFieldContainer[int]
    desc: str
    def __init__(self, table_id: _Optional[int] = ..., version: _Optional[int] = ..., chain_ids: _Optional[_Iterable[int]] = ..., desc: _Optional[str] = ...) -> None: ...

class TargetInfo(_message.Message):
    __slots__ = ("target_id", "public_state", "local_state", "chain_id", "node_id", "disk_index", "used_size")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_STATE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STATE_FIELD_NUMBER: _ClassVar[int]
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DISK_INDEX_FIELD_NUMBER: _ClassVar[int]
    USED_SIZE_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    public_state: PublicTargetState
    local_state: LocalTargetState
    chain_id: int
    node_id: int
    disk_index: int
    used_size: int
    def __init__(self, target_id: _Optional[int] = ..., public_state: _Optional[_Union[PublicTargetState, str]] = ..., local_state: _Optional[_Union[LocalTargetState, str]] = ..., chain_id: _Optional[int] = ..., node_id: _Optional[int] = ..., disk_index: _Optional[int] = ..., used_size: _Optional[int] = ...) -> None: ...

class RoutingInfo(_message.Message):
    __slots__ = ("version", "bootstrapping", "nodes", "chain_tables", "chains", "targets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAPPING_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    CHAIN_TABLES_FIELD_NUMBER: _ClassVar[int]
    CHAINS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    version: int
    bootstrapping: bool
    nodes: _containers.RepeatedCompositeFieldContainer[NodeInfo]
    chain_tables: _containers.RepeatedCompositeFieldContainer[ChainTable]
    chains: _containers.RepeatedCompositeFieldContainer[ChainInfo]
    targets: _containers.RepeatedCompositeFieldContainer[TargetInfo]
    def __init__(self, version: _Optional[int] = ..., bootstrapping: _Optional[bool] = ..., nodes: _Optional[_Iterable[_Union[NodeInfo, _Mapping]]] = ..., chain_tables: _Optional[_Iterable[_Union[ChainTable, _Mapping]]] = ..., chains: _Optional[_Iterable[_Union[ChainInfo, _Mapping]]] = ..., targets: _Optional[_Iterable[_Union[TargetInfo, _Mapping]]] = ...) -> None: ...

class ChainRange(_message.Message):
    __slots__ = ("base_index", "shuffle", "seed")
    BASE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SHUFFLE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    base_index: int
    shuffle: int
    seed: int
    def __init__(self, base_index: _Optional[int] = ..., shuffle: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class ChainList(_message.Message):
    __slots__ = ("chain_indexes",)
    CHAIN_INDEXES_FIELD_NUMBER: _ClassVar[int]
    chain_indexes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, chain_indexes: _Optional[_Iterable[int]] = ...) -> None: ...

class Layout(_message.Message):
    __slots__ = ("table_id", "table_version", "chunk_size", "stripe_size", "range", "list")
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    STRIPE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    table_id: int
    table_version: int
    chunk_size: int
    stripe_size: int
    range: ChainRange
    list: ChainList
    def __init__(self, table_id: _Optional[int] = ..., table_version: _Optional[int] = ..., chunk_size: _Optional[int] = ..., stripe_size: _Optional[int] = ..., range: _Optional[_Union[ChainRange, _Mapping]] = ..., list: _Optional[_Union[ChainList, _Mapping]] = ...) -> None: ...
