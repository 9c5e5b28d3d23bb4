"""Status codes and the ONE table that maps them to errno, S3 errors and WebHDFS exceptions.

Services return a numeric `Code`; clients raise `FSError` subclasses that are also the builtin
exception types (`FileNotFoundError`, ...), so callers catch what they already know.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import IntEnum


class Code(IntEnum):
    """Status codes carried in RPC headers (0 = OK)."""

    OK = 0
    # namespace
    NOT_FOUND = 1
    EXISTS = 2
    NOT_DIRECTORY = 3
    IS_DIRECTORY = 4
    NOT_EMPTY = 5
    PERMISSION_DENIED = 6
    NAME_TOO_LONG = 7
    INVALID_ARGUMENT = 8
    TOO_MANY_SYMLINKS = 9
    TOO_MANY_LINKS = 10
    NOT_PERMITTED = 11
    CROSS_DEVICE = 12
    NO_SPACE = 13
    READ_ONLY = 14
    NOT_SUPPORTED = 15
    BAD_FILE = 16
    BUSY = 17
    AUTH_FAILED = 18
    IN_USE = 19               # EBUSY that no retry fixes (removing or renaming the root directory)
    NO_DATA = 20              # ENODATA: no such extended attribute
    OUT_OF_RANGE = 21         # ERANGE: attribute name or value too long for the buffer/limit
    # transport and service
    TIMEOUT = 30
    UNAVAILABLE = 31
    NOT_PRIMARY = 32
    INTERNAL = 33
    BAD_REQUEST = 34
    UNKNOWN_METHOD = 35
    TXN_CONFLICT = 36
    # storage / CRAQ
    ROUTING_VERSION_MISMATCH = 50
    CHUNK_NOT_COMMIT = 51
    CHUNK_NOT_FOUND = 52
    CHECKSUM_MISMATCH = 53
    TARGET_OFFLINE = 54
    NOT_HEAD = 55
    CHUNK_NOT_CLEAN = 56
    CHUNK_STALE_UPDATE = 57
    CHUNK_MISSING_UPDATE = 58
    DUPLICATE_UPDATE = 59
    TARGET_NOT_FOUND = 60
    NO_SERVING_REPLICA = 61
    IO_ERROR = 62


@dataclass(frozen=True)
class Mapping:
    """How one status code surfaces on each interface."""

    errno: int
    s3_code: str
    s3_status: int
    hdfs_exception: str
    hdfs_status: int
    retryable: bool = False


_FNF = ("NoSuchKey", 404, "FileNotFoundException", 404)
_ACCESS = ("AccessDenied", 403, "AccessControlException", 403)
_BADARG = ("InvalidArgument", 400, "IllegalArgumentException", 400)
_INTERNAL = ("InternalError", 500, "IOException", 500)
_UNAVAIL = ("ServiceUnavailable", 503, "RetriableException", 503)

TABLE: dict[Code, Mapping] = {
    Code.OK: Mapping(0, "", 200, "", 200),
    Code.NOT_FOUND: Mapping(errno.ENOENT, *_FNF),
    Code.EXISTS: Mapping(errno.EEXIST, "ObjectAlreadyExists", 409, "FileAlreadyExistsException", 403),
    Code.NOT_DIRECTORY: Mapping(errno.ENOTDIR, "InvalidArgument", 400, "ParentNotDirectoryException", 403),
    Code.IS_DIRECTORY: Mapping(errno.EISDIR, "InvalidArgument", 400, "FileNotFoundException", 404),
    Code.NOT_EMPTY: Mapping(errno.ENOTEMPTY, "BucketNotEmpty", 409, "PathIsNotEmptyDirectoryException", 403),
    Code.PERMISSION_DENIED: Mapping(errno.EACCES, *_ACCESS),
    Code.NAME_TOO_LONG: Mapping(errno.ENAMETOOLONG, "KeyTooLongError", 400, "IllegalArgumentException", 400),
    Code.INVALID_ARGUMENT: Mapping(errno.EINVAL, *_BADARG),
    Code.TOO_MANY_SYMLINKS: Mapping(errno.ELOOP, *_BADARG),
    Code.TOO_MANY_LINKS: Mapping(errno.EMLINK, *_BADARG),
    Code.NOT_PERMITTED: Mapping(errno.EPERM, *_ACCESS),
    Code.CROSS_DEVICE: Mapping(errno.EXDEV, *_BADARG),
    Code.NO_SPACE: Mapping(errno.ENOSPC, "InsufficientStorage", 507, "DSQuotaExceededException", 403),
    Code.READ_ONLY: Mapping(errno.EROFS, *_ACCESS),
    Code.NOT_SUPPORTED: Mapping(errno.EOPNOTSUPP, "NotImplemented", 501, "UnsupportedOperationException", 400),
    Code.BAD_FILE: Mapping(errno.EBADF, *_BADARG),
    Code.BUSY: Mapping(errno.EBUSY, "SlowDown", 503, "RetriableException", 503, True),
    Code.AUTH_FAILED: Mapping(errno.EACCES, "InvalidAccessKeyId", 403, "SecurityException", 401),
    Code.IN_USE: Mapping(errno.EBUSY, "InvalidRequest", 400, "IOException", 400),
    Code.NO_DATA: Mapping(errno.ENODATA, "NoSuchKey", 404, "IOException", 403),
    Code.OUT_OF_RANGE: Mapping(errno.ERANGE, "InvalidArgument", 400, "HadoopIllegalArgumentException", 400),
    Code.TIMEOUT: Mapping(errno.ETIMEDOUT, "RequestTimeout", 400, "IOException", 500, True),
    Code.UNAVAILABLE: Mapping(errno.EIO, *_UNAVAIL, True),
    Code.NOT_PRIMARY: Mapping(errno.EAGAIN, *_UNAVAIL, True),
    Code.INTERNAL: Mapping(errno.EIO, *_INTERNAL),
    Code.BAD_REQUEST: Mapping(errno.EINVAL, *_BADARG),
    Code.UNKNOWN_METHOD: Mapping(errno.ENOSYS, "NotImplemented", 501, "UnsupportedOperationException", 400),
    Code.TXN_CONFLICT: Mapping(errno.EAGAIN, *_UNAVAIL, True),
    Code.ROUTING_VERSION_MISMATCH: Mapping(errno.EAGAIN, *_UNAVAIL, True),
    Code.CHUNK_NOT_COMMIT: Mapping(errno.EAGAIN, *_UNAVAIL, True),
    Code.CHUNK_NOT_FOUND: Mapping(errno.ENOENT, *_FNF),
    Code.CHECKSUM_MISMATCH: Mapping(errno.EIO, *_INTERNAL),
    Code.TARGET_OFFLINE: Mapping(errno.EIO, *_UNAVAIL, True),
    Code.NOT_HEAD: Mapping(errno.EAGAIN, *_UNAVAIL, True),
    Code.CHUNK_NOT_CLEAN: Mapping(errno.EAGAIN, *_UNAVAIL, True),
    Code.CHUNK_STALE_UPDATE: Mapping(errno.EAGAIN, *_UNAVAIL, True),
    Code.CHUNK_MISSING_UPDATE: Mapping(errno.EIO, *_INTERNAL),
    Code.DUPLICATE_UPDATE: Mapping(errno.EALREADY, *_INTERNAL),
    Code.TARGET_NOT_FOUND: Mapping(errno.EIO, *_UNAVAIL, True),
    Code.NO_SERVING_REPLICA: Mapping(errno.EIO, *_UNAVAIL),
    Code.IO_ERROR: Mapping(errno.EIO, *_INTERNAL),
}

assert set(TABLE) == set(Code), "every status code needs a row"


def mapping(code: int) -> Mapping:
    """The row for `code` (unknown codes map like INTERNAL)."""
    try:
        return TABLE[Code(code)]
    except ValueError:
        return TABLE[Code.INTERNAL]


class FSError(OSError):
    """A threefs failure: an OSError with errno and the service's status code."""

    code: Code = Code.INTERNAL

    def __init__(self, code: int | Code = Code.INTERNAL, message: str = "", filename: str | None = None):
        try:
            c = Code(code)
        except ValueError:
            c = Code.INTERNAL
        self.code = c
        err = TABLE[c].errno
        text = message or c.name.lower().replace("_", " ")
        if filename is None:
            super().__init__(err, text)
        else:
            super().__init__(err, text, filename)

    @property
    def retryable(self) -> bool:
        return TABLE[self.code].retryable


def _subclass(name: str, builtin: type[OSError]) -> type[FSError]:
    return type(name, (FSError, builtin), {"__doc__": f"FSError that is also {builtin.__name__}."})


FSFileNotFoundError = _subclass("FSFileNotFoundError", FileNotFoundError)
FSFileExistsError = _subclass("FSFileExistsError", FileExistsError)
FSNotADirectoryError = _subclass("FSNotADirectoryError", NotADirectoryError)
FSIsADirectoryError = _subclass("FSIsADirectoryError", IsADirectoryError)
FSPermissionError = _subclass("FSPermissionError", PermissionError)
FSTimeoutError = _subclass("FSTimeoutError", TimeoutError)
FSConnectionError = _subclass("FSConnectionError", ConnectionError)

_CLASS_BY_CODE: dict[Code, type[FSError]] = {
    Code.NOT_FOUND: FSFileNotFoundError,
    Code.CHUNK_NOT_FOUND: FSFileNotFoundError,
    Code.EXISTS: FSFileExistsError,
    Code.NOT_DIRECTORY: FSNotADirectoryError,
    Code.IS_DIRECTORY: FSIsADirectoryError,
    Code.PERMISSION_DENIED: FSPermissionError,
    Code.NOT_PERMITTED: FSPermissionError,
    Code.AUTH_FAILED: FSPermissionError,
    Code.READ_ONLY: FSPermissionError,
    Code.TIMEOUT: FSTimeoutError,
    Code.UNAVAILABLE: FSConnectionError,
}


def make_error(code: int | Code, message: str = "", filename: str | None = None) -> FSError:
    """Build the most specific FSError subclass for `code`."""
    try:
        c = Code(code)
    except ValueError:
        c = Code.INTERNAL
    return _CLASS_BY_CODE.get(c, FSError)(c, message, filename)
