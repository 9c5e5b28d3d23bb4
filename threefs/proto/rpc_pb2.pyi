from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RpcHeader(_message.Message):
    __slots__ = ("request_id", "method", "is_response", "timeout_ms", "status", "message", "body")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    IS_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    method: str
    is_response: bool
    timeout_ms: int
    status: int
    message: str
    body: bytes
    def __init__(self, request_id: _Optional[int] = ..., method: _Optional[str] = ..., is_response: _Optional[bool] = ..., timeout_ms: _Optional[int] = ..., status: _Optional[int] = ..., message: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...
