"""Object storage helpers: key validation, metadata xattrs, pipelined block reads and writes."""
from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import os
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import crc32c as _crc32c

try:  # ISA-L's CRC32 (carry-less multiply) is 3-4x zlib's here; same polynomial and chaining
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - isal is a dependency of the s3 extra
    from zlib import crc32 as _crc32

from threefs.client.fs import AsyncClient, AsyncFile
from threefs.gateway.s3.errors import S3Error
from threefs.gateway.s3.listing import UPLOADS_DIR
from threefs.proto import meta_pb2 as mp

BLOCK = 4 << 20            # bytes per storage read/write
DEPTH = 4                  # blocks read ahead per stream
WRITE_BLOCK = 4 << 20      # bytes per storage write of a request body (4 chunks of the default layout)
WRITE_DEPTH = 4            # body blocks in flight per stream (their writes, and hashes running behind them)
MAX_BUFFERS = WRITE_DEPTH + 2   # write buffers per stream: WRITE_DEPTH in flight, one filling, one spare
INLINE_HASH = 256 << 10    # blocks up to this size are hashed on the event loop (no thread round trip)
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

    def __init__(self, want_md5: str | None, want_sha256: str | None, want: dict[str, str],
                 trailing: tuple[str, ...] | list[str] = ()) -> None:
        """`want`: x-amz-checksum-* values declared up front; `trailing`: algorithms whose values come in
        the body's trailer (x-amz-trailer), computed from the first byte on."""
        self.md5 = hashlib.md5()
        self.want_md5 = want_md5
        self.sha = hashlib.sha256() if want_sha256 else None
        self.want_sha256 = want_sha256
        self.want = dict(want)
        self.compute = frozenset(self.want) | frozenset(a for a in trailing if a in self.ALGS)
        self.crc32 = 0
        self.crc32c = 0
        self.sha1 = hashlib.sha1() if "sha1" in self.compute else None
        self.sha256x = hashlib.sha256() if "sha256" in self.compute else None
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._update_md5(data)
        self._update_rest(data)

    def lanes(self) -> list[Callable[[bytes | memoryview], None]]:
        """update() split in two halves that may run concurrently (each sees every piece, in order):
        MD5 (the slowest) and the rest (SHA-256, the x-amz-checksum-* algorithms)."""
        return [self._update_md5, self._update_rest]

    def _update_md5(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        self.md5.update(data)

    def _update_rest(self, data: bytes | memoryview) -> None:
        if self.sha is not None:
            self.sha.update(data)
        if "crc32" in self.compute:
            self.crc32 = _crc32(data, self.crc32)
        if "crc32c" in self.compute:
            self.crc32c = _crc32c.crc32c(data, self.crc32c)
        if self.sha1 is not None:
            self.sha1.update(data)
        if self.sha256x is not None:
            self.sha256x.update(data)

    def add_trailers(self, trailers: dict[str, str]) -> None:
        """Checksums from the body's trailer; one x-amz-trailer did not announce cannot have been computed
        while the body streamed, so it is refused rather than left unchecked."""
        for alg in self.ALGS:
            v = trailers.get(f"x-amz-checksum-{alg}")
            if v:
                if alg not in self.compute:
                    raise S3Error("InvalidRequest", f"the trailing x-amz-checksum-{alg} was not declared in "
                                                    "the x-amz-trailer header")
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
    """Copy a byte stream into WRITE_BLOCK-sized buffers and pwrite each as it fills, several in flight.

    `hasher` (one callable or a sequence of them: independent "lanes", e.g. Checksums.lanes()) sees
    every block, in order within a lane; lanes run concurrently with each other, with the writes and
    with receiving the next block, on worker threads (hashlib, zlib and isal release the GIL on large
    buffers). Buffers are recycled once their write and hashes are done, so a stream holds at most
    MAX_BUFFERS blocks whatever its length, and body bytes are copied once (into the block) and handed
    to pwrite and the hashers as memoryviews."""

    def __init__(self, f: AsyncFile, offset: int = 0,
                 hasher: Callable[[bytes], None] | Sequence[Callable[[bytes], None]] | None = None,
                 expect: int | None = None) -> None:
        self.f = f
        self.offset = offset
        self.lanes: list[Callable] = [] if hasher is None else \
            list(hasher) if isinstance(hasher, (list, tuple)) else [hasher]
        self.expect = expect            # declared length, when known: the last buffer is cut to size
        self.received = 0
        self.block: bytearray | None = None
        self.view: memoryview | None = None
        self.fill = 0
        self.free: list[bytearray] = []
        self.nbufs = 0
        self.pending: deque[tuple[bytearray, list[asyncio.Task]]] = deque()
        self.tails: list[asyncio.Task | None] = [None] * len(self.lanes)

    def _alloc_size(self) -> int:
        left = WRITE_BLOCK if self.expect is None else self.expect - self.received
        return left if 0 < left < WRITE_BLOCK else WRITE_BLOCK     # past the declared length: full blocks

    async def _take_buffer(self) -> None:
        want = self._alloc_size()
        if want < WRITE_BLOCK:              # the short last block (or a small object): a buffer of its size
            buf = bytearray(want)
        elif self.free:
            buf = self.free.pop()
        elif self.nbufs < MAX_BUFFERS:
            buf = bytearray(WRITE_BLOCK)
            self.nbufs += 1
        else:
            buf = await self._retire()
        self.block, self.view, self.fill = buf, memoryview(buf), 0

    async def _retire(self) -> bytearray:
        """Wait for the oldest block's write and hashes; its buffer is free again."""
        buf, tasks = self.pending[0]
        for t in tasks:
            await t                 # on failure the block stays pending: abort() cancels and reaps its tasks
        self.pending.popleft()
        return buf

    async def _hash(self, prev: asyncio.Task | None, fn: Callable, data: memoryview) -> None:
        if prev is not None:
            await prev
        await asyncio.get_running_loop().run_in_executor(_hash_pool(), fn, data)

    async def _flush(self) -> None:
        buf, n = self.block, self.fill
        assert buf is not None and self.view is not None
        data = self.view[:n]
        self.block = self.view = None
        tasks = [asyncio.create_task(self.f.pwrite(data, self.offset))]
        for i, fn in enumerate(self.lanes):
            prev = self.tails[i]
            if n <= INLINE_HASH and (prev is None or prev.done()):     # small: no thread round trip
                if prev is not None:
                    prev.result()
                fn(data)
                self.tails[i] = None
                continue
            t = asyncio.create_task(self._hash(prev, fn, data))
            self.tails[i] = t
            tasks.append(t)
        self.pending.append((buf, tasks))
        self.offset += n
        while len(self.pending) > WRITE_DEPTH:     # bound the writes in flight; keep finished buffers for reuse
            old = await self._retire()
            if len(old) == WRITE_BLOCK:
                self.free.append(old)

    async def write(self, data: bytes | memoryview) -> None:
        data = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
        pos, n = 0, len(data)
        while pos < n:
            if self.block is None:
                await self._take_buffer()
            assert self.block is not None and self.view is not None
            k = min(n - pos, len(self.block) - self.fill)
            self.view[self.fill:self.fill + k] = data[pos:pos + k]
            self.fill += k
            pos += k
            self.received += k
            if self.fill == len(self.block):
                await self._flush()

    async def finish(self) -> int:
        """Write what is buffered, wait for every write and hash; returns the end offset."""
        if self.block is not None and self.fill:
            await self._flush()
        self.block = self.view = None
        while self.pending:
            await self._retire()
        self.free.clear()
        return self.offset

    async def abort(self) -> None:
        tasks = [t for _, ts in self.pending for t in ts]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pending.clear()
        self.free.clear()
        self.block = self.view = None


_HASH_POOL: ThreadPoolExecutor | None = None


async def write_body(f: AsyncFile, w: BlockWriter, chunks: AsyncIterator[bytes]) -> int:
    """Feed `chunks` through `w` into `f` and close `f`; returns the end offset. On any failure the
    writes still in flight are abandoned and `f` is closed before the error propagates."""
    try:
        async for data in chunks:
            await w.write(data)
        end = await w.finish()
    except BaseException:
        await w.abort()
        await f.close()
        raise
    await f.close()
    return end


def _hash_pool() -> ThreadPoolExecutor:
    """Threads that hash request bodies, shared by all requests (more would only time-slice the cores)."""
    global _HASH_POOL
    if _HASH_POOL is None:
        _HASH_POOL = ThreadPoolExecutor(max(4, 2 * (os.cpu_count() or 1)), thread_name_prefix="s3-hash")
    return _HASH_POOL


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
