"""WebHDFS `RemoteException` bodies, built from the one error table in `threefs.common.errors`."""
from __future__ import annotations

import json

from aiohttp import web

from threefs.common.errors import Code, FSError, mapping

# Java packages of the exception names the table uses (clients read `javaClassName`).
_PACKAGES = {
    "FileNotFoundException": "java.io",
    "IOException": "java.io",
    "IllegalArgumentException": "java.lang",
    "UnsupportedOperationException": "java.lang",
    "SecurityException": "java.lang",
    "HadoopIllegalArgumentException": "org.apache.hadoop",
    "AccessControlException": "org.apache.hadoop.security",
    "FileAlreadyExistsException": "org.apache.hadoop.fs",
    "ParentNotDirectoryException": "org.apache.hadoop.fs",
    "PathIsNotEmptyDirectoryException": "org.apache.hadoop.fs",
    "DSQuotaExceededException": "org.apache.hadoop.hdfs.protocol",
    "RetriableException": "org.apache.hadoop.ipc",
}


class WebHdfsError(Exception):
    """A request failure carrying a threefs status code (mapped through the one table) and a message."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bad_arg(message: str) -> WebHdfsError:
    """IllegalArgumentException (400): a missing or malformed query parameter."""
    return WebHdfsError(Code.INVALID_ARGUMENT, message)


def java_class(name: str) -> str:
    """Fully qualified Java class name of a Hadoop exception name."""
    return f"{_PACKAGES.get(name, 'java.io')}.{name}"


def remote_exception(code: int, message: str) -> web.Response:
    """The RemoteException JSON response for `code`, with the table's exception name and HTTP status."""
    row = mapping(code)
    name = row.hdfs_exception or "IOException"
    body = {"RemoteException": {"exception": name, "javaClassName": java_class(name), "message": message}}
    return web.Response(status=row.hdfs_status, text=json.dumps(body), content_type="application/json")


def from_exception(e: BaseException) -> web.Response:
    """Map a gateway or threefs failure to its RemoteException response."""
    if isinstance(e, WebHdfsError):
        return remote_exception(e.code, e.message)
    if isinstance(e, FSError):
        text = e.strerror or e.code.name.lower()
        if e.filename:
            text = f"{text}: {e.filename}"
        return remote_exception(e.code, text)
    return remote_exception(Code.INTERNAL, f"{type(e).__name__}: {e}")
