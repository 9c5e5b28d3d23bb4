from threefs.proto import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpdateChainMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAIN_ADD: _ClassVar[UpdateChainMode]
    CHAIN_REMOVE: _ClassVar[UpdateChainMode]
CHAIN_ADD: UpdateChainMode
CHAIN_REMOVE: UpdateChainMode

class LocalTargetReport(_message.Message):
    __slots__ = ("target_id", "local_state", "disk_index", "used_size", "chain_version")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    LOCAL_STATE_FIELD_NUMBER: _ClassVar[int]
    DISK_INDEX_FIELD_NUMBER: _ClassVar[int]
    USED_SIZE_FIELD_NUMBER: _ClassVar[int]
    CHAIN_VERSION_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    local_state: _common_pb2.LocalTargetState
    disk_index: int
    used_size: int
    chain_version: int
    def __init__(self, target_id: _Optional[int] = ..., local_state: _Optional[_Union[_common_pb2.LocalTargetState, str]] = ..., disk_index: _Optional[int] = ..., used_size: _Optional[int] = ..., chain_version: _Optional[int] = ...) -> None: ...

class HeartbeatReq(_message.Message):
    __slots__ = ("node_id", "type", "address", "hostname", "pid", "hb_version", "timestamp_ms", "targets", "metrics_address")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HB_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    METRICS_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    type: _common_pb2.NodeType
    address: str
    hostname: str
    pid: int
    hb_version: int
    timestamp_ms: int
    targets: _containers.RepeatedCompositeFieldContainer[LocalTargetReport]
    metrics_address: str
    def __init__(self, node_id: _Optional[int] = ..., type: _Optional[_Union[_common_pb2.NodeType, str]] = ..., address: _Optional[str] = ..., hostname: _Optional[str] = ..., pid: _Optional[int] = ..., hb_version: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., targets: _Optional[_Iterable[_Union[LocalTargetReport, _Mapping]]] = ..., metrics_address: _Optional[str] = ...) -> None: ...

class HeartbeatRsp(_message.Message):
    __slots__ = ("routing_version", "bootstrapping")
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAPPING_FIELD_NUMBER: _ClassVar[int]
    routing_version: int
    bootstrapping: bool
    def __init__(self, routing_version: _Optional[int] = ..., bootstrapping: _Optional[bool] = ...) -> None: ...

class GetRoutingInfoReq(_message.Message):
    __slots__ = ("known_version",)
    KNOWN_VERSION_FIELD_NUMBER: _ClassVar[int]
    known_version: int
    def __init__(self, known_version: _Optional[int] = ...) -> None: ...

class GetRoutingInfoRsp(_message.Message):
    __slots__ = ("changed", "info")
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    changed: bool
    info: _common_pb2.RoutingInfo
    def __init__(self, changed: _Optional[bool] = ..., info: _Optional[_Union[_common_pb2.RoutingInfo, _Mapping]] = ...) -> None: ...

class GetPrimaryMgmtdReq(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPrimaryMgmtdRsp(_message.Message):
    __slots__ = ("primary",)
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    primary: _common_pb2.NodeInfo
    def __init__(self, primary: _Optional[_Union[_common_pb2.NodeInfo, _Mapping]] = ...) -> None: ...

class SetChainsReq(_message.Message):
    __slots__ = ("chains", "token")
    CHAINS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    chains: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChainInfo]
    token: str
    def __init__(self, chains: _Optional[_Iterable[_Union[_common_pb2.ChainInfo, _Mapping]]] = ..., token: _Optional[str] = ...) -> None: ...

class SetChainsRsp(_message.Message):
    __slots__ = ("routing_version",)
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    routing_version: int
    def __init__(self, routing_version: _Optional[int] = ...) -> None: ...

class SetChainTableReq(_message.Message):
    __slots__ = ("table", "token")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    table: _common_pb2.ChainTable
    token: str
    def __init__(self, table: _Optional[_Union[_common_pb2.ChainTable, _Mapping]] = ..., token: _Optional[str] = ...) -> None: ...

class SetChainTableRsp(_message.Message):
    __slots__ = ("version", "routing_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    routing_version: int
    def __init__(self, version: _Optional[int] = ..., routing_version: _Optional[int] = ...) -> None: ...

class RegisterNodeReq(_message.Message):
    __slots__ = ("node_id", "type", "token")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    type: _common_pb2.NodeType
    token: str
    def __init__(self, node_id: _Optional[int] = ..., type: _Optional[_Union[_common_pb2.NodeType, str]] = ..., token: _Optional[str] = ...) -> None: ...

class RegisterNodeRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnregisterNodeReq(_message.Message):
    __slots__ = ("node_id", "token")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    token: str
    def __init__(self, node_id: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class UnregisterNodeRsp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MgmtdLease(_message.Message):
    __slots__ = ("primary", "lease_start_ms", "lease_end_ms", "release_version", "epoch", "incarnation")
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    LEASE_START_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_END_MS_FIELD_NUMBER: _ClassVar[int]
    RELEASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    primary: _common_pb2.NodeInfo
    lease_start_ms: int
    lease_end_ms: int
    release_version: str
    epoch: int
    incarnation: bytes
    def __init__(self, primary: _Optional[_Union[_common_pb2.NodeInfo, _Mapping]] = ..., lease_start_ms: _Optional[int] = ..., lease_end_ms: _Optional[int] = ..., release_version: _Optional[str] = ..., epoch: _Optional[int] = ..., incarnation: _Optional[bytes] = ...) -> None: ...

class UpdateChainReq(_message.Message):
    __slots__ = ("chain_id", "target_id", "mode", "token")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    target_id: int
    mode: UpdateChainMode
    token: str
    def __init__(self, chain_id: _Optional[int] = ..., target_id: _Optional[int] = ..., mode: _Optional[_Union[UpdateChainMode, str]] = ..., token: _Optional[str] = ...) -> None: ...

class UpdateChainRsp(_message.Message):
    __slots__ = ("chain", "routing_version")
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    chain: _common_pb2.ChainInfo
    routing_version: int
    def __init__(self, chain: _Optional[_Union[_common_pb2.ChainInfo, _Mapping]] = ..., routing_version: _Optional[int] = ...) -> None: ...

class RotateLastSrvReq(_message.Message):
    __slots__ = ("chain_id", "token")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    token: str
    def __init__(self, chain_id: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class RotateLastSrvRsp(_message.Message):
    __slots__ = ("chain", "routing_version")
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    ROUTING_VERSION_FIELD_NUMBER: _ClassVar[int]
    chain: _common_pb2.ChainInfo
    routing_version: int
    def __init__(self, chain: _Optional[_Union[_common_pb2.ChainInfo, _Mapping]] = ..., routing_version: _Optional[int] = ...) -> None: ...
