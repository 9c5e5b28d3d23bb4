"""gRPC helpers: channel/server options and FSError <-> gRPC status mapping (mgmtd's carrier)."""
from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from threefs.common.errors import Code, FSError, make_error
from threefs.common.metrics import timed

log = logging.getLogger(__name__)
MAX_MESSAGE = 256 << 20
OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
]
CODE_KEY = "threefs-code"
T = TypeVar("T")

_GRPC_STATUS = {
    Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Code.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Code.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Code.NOT_PERMITTED: grpc.StatusCode.PERMISSION_DENIED,
    Code.AUTH_FAILED: grpc.StatusCode.UNAUTHENTICATED,
    Code.BUSY: grpc.StatusCode.FAILED_PRECONDITION,
    Code.NOT_PRIMARY: grpc.StatusCode.UNAVAILABLE,
    Code.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def servicer_method(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Wrap an aio servicer method: FSError -> gRPC status with the threefs code attached."""

    name = f"Mgmtd.{fn.__name__}"

    @functools.wraps(fn)
    async def wrapper(self, request, context: grpc.aio.ServicerContext):
        with timed(name) as result:
            try:
                return await fn(self, request, context)
            except FSError as e:
                result["status"] = int(e.code)
                context.set_trailing_metadata(((CODE_KEY, str(int(e.code))),))
                await context.abort(_GRPC_STATUS.get(e.code, grpc.StatusCode.INTERNAL), e.strerror or str(e))
            except grpc.aio.AbortError:
                raise
            except Exception as e:  # noqa: BLE001 - report, never crash the server
                result["status"] = int(Code.INTERNAL)
                log.exception("%s failed", fn.__name__)
                context.set_trailing_metadata(((CODE_KEY, str(int(Code.INTERNAL))),))
                await context.abort(grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}")

    return wrapper


def to_fs_error(e: grpc.aio.AioRpcError, target: str) -> FSError:
    """Translate a failed gRPC call into the FSError the service meant."""
    for k, v in e.trailing_metadata() or ():
        if k == CODE_KEY:
            return make_error(int(v), e.details() or "")
    if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return make_error(Code.UNAVAILABLE, f"mgmtd at {target} is unreachable: {e.details()}")
    if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        return make_error(Code.TIMEOUT, f"mgmtd at {target} did not answer in time")
    return make_error(Code.INTERNAL, f"{e.code().name}: {e.details()}")
