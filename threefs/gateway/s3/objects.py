"""Object storage helpers: key validation, metadata xattrs, pipelined block reads and writes."""
from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import re
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import crc32c as _crc32c

from threefs.client.fs import AsyncClient, AsyncFile
from threefs.gateway.s3.errors import S3Error
from threefs.gateway.s3.listing import UPLOADS_DIR
from threefs.proto import meta_pb2 as mp

BLOCK = 4 << 20            # bytes per storage read/write
DEPTH = 4                  # blocks in flight per stream
META_XATTR = "user.s3.meta"
ACL_XATTR = "user.s3.acl"
MAX_KEY = 1024
MAX_USER_META = 2048
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")


def check_bucket_name(name: str) -> None:
    """S3 bucket naming rules (InvalidBucketName)."""
    if (not _BUCKET_RE.match(name) or ".." in name or _IP_RE.match(name) or name.startswith(("xn--", "sthree-"))
            or name.endswith(("-s3alias", "--ol-s3")) or ".-" in name or "-." in name):
        raise S3Error("InvalidBucketName", f"the bucket name {name!r} is not valid", resource=name)


def check_key(key: str, *, allow_dir: bool = True) -> None:
    """Keys map to paths: reject those that cannot map safely (empty segments, '.', '..', NUL, too long)."""
    if not key:
        raise S3Error("InvalidArgument", "the object key is empty")
    raw = key.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_KEY:
        raise S3Error("KeyTooLongError", f"keys are at most {MAX_KEY} bytes", resource=key)
    if "\x00" in key:
        raise S3Error("InvalidObjectName", "object keys cannot contain NUL", resource=key)
    body = key[:-1] if allow_dir and key.endswith("/") else key
    parts = body.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise S3Error("InvalidObjectName", f"the key {key!r} does not map to a path: empty, '.' and '..' "
                                           "segments are not allowed", resource=key)
    if parts[0] == UPLOADS_DIR:
        raise S3Error("InvalidObjectName", f"keys under {UPLOADS_DIR}/ are reserved", resource=key)
    if any(len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts):
        raise S3Error("KeyTooLongError", "each '/'-separated key segment is at most 255 bytes", resource=key)


@dataclass
class ObjectMeta:
    """What S3 keeps about an object beyond its bytes (stored as one JSON xattr)."""

    etag: str = ""
    size: int = -1
    mtime_ns: int = 0
    content_type: str = ""
    user: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    parts: int = 0
    part_at: int = -1       # a multipart part whose bytes sit in the upload's staging file at this offset

    def dumps(self) -> bytes:
        d = {"etag": self.etag, "size": self.size, "mtime": self.mtime_ns, "ct": self.content_type,
             "meta": self.user, "h": self.headers, "parts": self.parts}
        if self.part_at >= 0:
            d["at"] = self.part_at
        return json.dumps(d).encode()

    @classmethod
    def loads(cls, raw: bytes) -> ObjectMeta:
        d = json.loads(raw)
        return cls(d.get("etag", ""), d.get("size", -1), d.get("mtime", 0), d.get("ct", ""), d.get("meta", {}),
                   d.get("h", {}), d.get("parts", 0), d.get("at", -1))

    def etag_for(self, inode: mp.Inode) -> str:
        """The stored ETag while the file is as S3 wrote it; else one derived from inode, size and mtime."""
        if self.etag and self.size == inode.length and self.mtime_ns == inode.mtime_ns:
            return self.etag
        return hashlib.md5(f"{inode.id}:{inode.length}:{inode.mtime_ns}".encode()).hexdigest()


async def read_meta(c: AsyncClient, path: str) -> ObjectMeta:
    """The object's S3 metadata (empty for files written outside S3)."""
    try:
        return ObjectMeta.loads(await c.getxattr(path, META_XATTR))
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.EOPNOTSUPP):     # no S3 metadata: written outside S3
            return ObjectMeta()
        if isinstance(e, (FileNotFoundError, NotADirectoryError)):
            raise
        return ObjectMeta()
    except ValueError:
        return ObjectMeta()


class Checksums:
    """Running MD5 / SHA-256 / x-amz-checksum-* of a body, checked against what the client declared."""

    ALGS = ("crc32", "crc32c", "sha1", "sha256")

    def __init__(self, want_md5: str | None, want_sha256: str | None, want: dict[str, str]) -> None:
        self.md5 = hashlib.md5()
        self.want_md5 = want_md5
        self.sha = hashlib.sha256() if want_sha256 else None
        self.want_sha256 = want_sha256
        self.want = dict(want)
        self.crc32 = 0
        self.crc32c = 0
        self.sha1 = hashlib.sha1() if "sha1" in self.want else None
        self.sha256x = hashlib.sha256() if "sha256" in self.want else None
        self.size = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self.md5.update(data)
        if self.sha is not None:
            self.sha.update(data)
        if "crc32" in self.want:
            self.crc32 = zlib.crc32(data, self.crc32)
        if "crc32c" in self.want:
            self.crc32c = _crc32c.crc32c(data, self.crc32c)
        if self.sha1 is not None:
            self.sha1.update(data)
        if self.sha256x is not None:
            self.sha256x.update(data)

    def add_trailers(self, trailers: dict[str, str]) -> None:
        for alg in self.ALGS:
            v = trailers.get(f"x-amz-checksum-{alg}")
            if v:
                self.want[alg] = v

    def verify(self) -> None:
        """Raise BadDigest / XAmzContentSHA256Mismatch when the body is not what was declared."""
        if self.want_md5 is not None and base64.b64encode(self.md5.digest()).decode() != self.want_md5:
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we received.")
        if self.sha is not None and self.sha.hexdigest() != self.want_sha256:
            raise S3Error("XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.")
        got = {"crc32": lambda: self.crc32.to_bytes(4, "big"), "crc32c": lambda: self.crc32c.to_bytes(4, "big"),
               "sha1": lambda: self.sha1.digest(), "sha256": lambda: self.sha256x.digest()}
        for alg, value in self.want.items():
            if base64.b64encode(got[alg]()).decode() != value:
                raise S3Error("BadDigest", f"the {alg.upper()} checksum you specified did not match what we "
                                           "received")


class BlockWriter:
    """Buffer a byte stream into BLOCK-sized pwrites, DEPTH of them in flight."""

    def __init__(self, f: AsyncFile, offset: int = 0, hasher: Callable[[bytes], None] | None = None) -> None:
        self.f = f
        self.offset = offset
        self.buf = bytearray()
        self.tasks: deque[asyncio.Task] = deque()
        self.hasher = hasher
        self._hashing: asyncio.Future | None = None

    async def _flush(self) -> None:
        data, self.buf = self.buf, bytearray()        # hand the buffer over: no copy
        if self.hasher is not None:         # hash off the event loop (hashlib drops the GIL), blocks in order
            if self._hashing is not None:
                await self._hashing
            self._hashing = asyncio.get_running_loop().run_in_executor(None, self.hasher, data)
        self.tasks.append(asyncio.create_task(self.f.pwrite(data, self.offset)))
        self.offset += len(data)
        while len(self.tasks) >= DEPTH:
            await self.tasks.popleft()

    async def write(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) >= BLOCK:
            await self._flush()

    async def finish(self) -> int:
        """Write what is buffered, wait for every write; returns the end offset."""
        if self.buf:
            await self._flush()
        while self.tasks:
            await self.tasks.popleft()
        if self._hashing is not None:
            await self._hashing
        return self.offset

    async def abort(self) -> None:
        for t in self.tasks:
            t.cancel()
        pending = [*self.tasks, *([self._hashing] if self._hashing is not None else [])]
        await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()


async def read_blocks(f: AsyncFile, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes [start, end) of `f` in BLOCK pieces, reading DEPTH blocks ahead."""
    tasks: deque[asyncio.Task] = deque()
    pos = start
    try:
        while pos < end or tasks:
            while pos < end and len(tasks) < DEPTH:
                n = min(BLOCK, end - pos)
                tasks.append(asyncio.create_task(f.pread(n, pos)))
                pos += n
            data = await tasks.popleft()
            if not data:
                raise S3Error("InternalError", "the object is shorter than its length")
            yield data
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def tmp_path(bucket: str) -> str:
    """A fresh temporary path in the bucket's hidden uploads directory."""
    return f"/{bucket}/{UPLOADS_DIR}/.tmp-{uuid.uuid4().hex}"


async def ensure_uploads_dir(c: AsyncClient, bucket: str) -> None:
    """Create the hidden per-bucket directory for temporaries and multipart uploads (sticky, world-writable)."""
    try:
        await c.mkdir(f"/{bucket}/{UPLOADS_DIR}", 0o1777, exist_ok=True)
    except PermissionError:
        pass        # a reader of someone else's bucket: writes then fail with AccessDenied where it matters
