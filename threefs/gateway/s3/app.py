"""The S3 endpoint: an aiohttp server that maps S3 requests onto the threefs namespace.

Buckets are top-level directories and keys are paths below them. Each request is authenticated
(SigV4) and then runs as the threefs user its access key maps to, so POSIX permissions apply.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import email.utils
import hashlib
import json
import logging
import os
import stat as st
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote
from xml.sax.saxutils import escape

from aiohttp import web
from prometheus_client import Counter, Histogram

from threefs.client.fs import AsyncClient
from threefs.common.errors import Code, FSError
from threefs.gateway import sweep
from threefs.gateway.s3 import sigv4
from threefs.gateway.s3.errors import S3Error, from_fs_error
from threefs.gateway.s3.listing import UPLOADS_DIR, Lister, Marker
from threefs.gateway.s3.objects import (
    ACL_XATTR,
    MAX_USER_META,
    META_XATTR,
    STORED_HEADERS,
    BlockWriter,
    Checksums,
    ObjectMeta,
    check_bucket_name,
    check_key,
    ensure_uploads_dir,
    read_blocks,
    read_meta,
    tmp_path,
    write_body,
)
from threefs.mgmtd.users import UsersClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp
from threefs.proto import users_pb2 as upb

log = logging.getLogger("threefs.s3")
NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_SINGLE_PUT = 5 << 30
MAX_XML_BODY = 2 << 20
RENAME_NOREPLACE = 1
ANONYMOUS_UID = 65534
KEY_CACHE_TTL = 5.0
READ_BUFSIZE = 1 << 20       # request body bytes aiohttp buffers before it stops reading the socket

S3_REQUESTS = Counter("threefs_s3_requests", "S3 requests, by operation and HTTP status", ["op", "status"])
S3_LATENCY = Histogram("threefs_s3_latency_seconds", "S3 request latency, by operation", ["op"],
                       buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
S3_BYTES = Counter("threefs_s3_bytes", "S3 object payload bytes, by operation and direction", ["op", "direction"])

# Subresources and headers of S3 features this endpoint does not implement: answered NotImplemented.
UNSUPPORTED_SUBRESOURCES = frozenset((
    "lifecycle", "policy", "policyStatus", "cors", "tagging", "website", "logging", "notification", "replication",
    "encryption", "object-lock", "retention", "legal-hold", "requestPayment", "accelerate", "analytics", "metrics",
    "inventory", "intelligent-tiering", "ownershipControls", "publicAccessBlock", "versions", "versionId",
    "torrent", "restore", "select", "attributes"))
UNSUPPORTED_HEADERS = ("x-amz-server-side-encryption", "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date",
                       "x-amz-object-lock-legal-hold", "x-amz-tagging", "x-amz-website-redirect-location",
                       "x-amz-grant-read", "x-amz-grant-write", "x-amz-grant-read-acp", "x-amz-grant-write-acp",
                       "x-amz-grant-full-control", "x-amz-server-side-encryption-customer-algorithm",
                       "x-amz-bucket-object-lock-enabled")


def iso(ns: int) -> str:
    """Nanoseconds since the epoch as S3's XML timestamp."""
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def http_date(ns: int) -> str:
    return email.utils.formatdate(ns / 1e9, usegmt=True)


def _parse_http_date(text: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def xml_doc(root: str, body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{body}</{root}>'.encode()


def x(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def parse_xml(data: bytes) -> ET.Element:
    """Parse a request body, dropping namespaces (MalformedXML on error)."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed") from None
    for el in root.iter():
        if "}" in el.tag:
            el.tag = el.tag.split("}", 1)[1]
    return root


@dataclass
class Ctx:
    """One request: who is asking, through which client, and what they addressed."""

    request: web.Request
    bucket: str
    key: str
    query: dict[str, str]
    user: upb.UserAttr | None
    client: AsyncClient
    signed: sigv4.SignedRequest | None
    signing_key: bytes | None
    op: str = ""

    @property
    def bpath(self) -> str:
        return "/" + self.bucket

    @property
    def opath(self) -> str:
        return f"/{self.bucket}/{self.key}"

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.request.headers.get(name, default)


class S3Gateway:
    """The S3 server: authentication, routing, per-user clients and the operations."""

    def __init__(self, mgmtd: str, *, token: str = "", region: str = "us-east-1",
                 min_part_size: int = 5 << 20, domains: tuple[str, ...] = (),
                 sweep_interval: float = sweep.SWEEP_INTERVAL, stale_after: float = sweep.STALE_AFTER) -> None:
        self.mgmtd = mgmtd
        self.token = token
        self.region = region
        self.min_part_size = min_part_size
        self.domains = tuple(d.lower().strip(".") for d in domains if d.strip("."))
        self.users = UsersClient(mgmtd)
        self.system = AsyncClient(mgmtd, user=cpb.UserInfo(uid=0, gid=0, token=token))
        self._clients: dict[int, AsyncClient] = {}
        self._keys: dict[str, tuple[float, upb.S3Key, upb.UserAttr]] = {}
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        from threefs.gateway.s3 import multipart
        self.mp = multipart.Multipart(self)
        self.stale_after = stale_after
        self.sweeper = sweep.Sweeper(self.sweep_temporaries, sweep_interval)

    # ---- lifecycle ---------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen; returns "host:port"."""
        await self.system.connect()
        app = web.Application(client_max_size=MAX_XML_BODY)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, read_bufsize=READ_BUFSIZE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]                 # type: ignore[union-attr]
        self.sweeper.start()
        return f"{host}:{sock.getsockname()[1]}"

    async def sweep_temporaries(self) -> int:
        """Remove the stale upload temporaries (threefs.gateway.sweep) of every bucket: PUT bodies in its
        uploads directory and part bodies in each multipart upload's directory."""
        c, n = self.system, 0
        for bucket in await c.listdir("/"):
            updir = f"/{bucket}/{UPLOADS_DIR}"
            for name in await sweep.listdir_or_empty(c, updir):
                if name.startswith(".tmp-"):
                    n += await sweep.remove_if_stale(c, f"{updir}/{name}", self.stale_after)
                    continue
                for part in await sweep.listdir_or_empty(c, f"{updir}/{name}"):
                    if part.startswith(".tmp-"):
                        n += await sweep.remove_if_stale(c, f"{updir}/{name}/{part}", self.stale_after)
        return n

    async def stop(self) -> None:
        await self.sweeper.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        for c in list(self._clients.values()):
            await c.close()
        self._clients.clear()
        await self.system.close()
        await self.users.close()

    async def client_for(self, user: upb.UserAttr) -> AsyncClient:
        """A connected client acting as `user` (one per uid, shared by its requests)."""
        c = self._clients.get(user.uid)
        if c is not None:
            return c
        async with self._lock:
            c = self._clients.get(user.uid)
            if c is None:
                c = AsyncClient(self.mgmtd, user=cpb.UserInfo(uid=user.uid, gid=user.gid, groups=list(user.groups),
                                                              token=user.token))
                await c.connect()
                self._clients[user.uid] = c
        return c

    async def lookup_key(self, access_key: str) -> tuple[upb.S3Key, upb.UserAttr]:
        """Access key -> (key, user), cached for a few seconds."""
        now = time.monotonic()
        hit = self._keys.get(access_key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        try:
            rsp = await self.users.lookup_s3_key(access_key, admin_token=self.token)
        except FileNotFoundError:
            raise S3Error("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        except PermissionError as e:
            log.error("mgmtd refused the access-key lookup (does the gateway run with an admin token?): %s", e)
            raise S3Error("InternalError", "the gateway cannot resolve access keys") from None
        self._keys[access_key] = (now + KEY_CACHE_TTL, rsp.key, rsp.user)
        return rsp.key, rsp.user

    # ---- request entry -----------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Authenticate, route, run; every failure becomes an S3 XML error."""
        start = time.perf_counter()
        request_id = uuid.uuid4().hex[:16].upper()
        op = "Unknown"
        status = 500
        try:
            ctx = await self._context(request)
            op, fn = self._route(ctx)
            ctx.op = op
            resp = await fn(ctx)
            status = resp.status
            resp.headers["x-amz-request-id"] = request_id
            return resp
        except S3Error as e:
            status = e.status
            return self._error(e, request, request_id)
        except FSError as e:
            err = from_fs_error(e, request.path)
            status = err.status
            return self._error(err, request, request_id)
        except (ConnectionResetError, asyncio.CancelledError):
            status = 499
            raise
        except Exception as e:
            log.exception("internal error on %s %s", request.method, request.path)
            err = S3Error("InternalError", f"{type(e).__name__}: {e}")
            return self._error(err, request, request_id)
        finally:
            S3_REQUESTS.labels(op, str(status)).inc()
            S3_LATENCY.labels(op).observe(time.perf_counter() - start)

    @staticmethod
    def _error(e: S3Error, request: web.Request, request_id: str) -> web.Response:
        if not e.resource:
            e.resource = request.path
        headers = {"x-amz-request-id": request_id}
        if e.status == 304 or request.method == "HEAD":
            return web.Response(status=e.status, headers=headers)
        return web.Response(status=e.status, body=e.xml(request_id), content_type="application/xml", headers=headers)

    async def _context(self, request: web.Request) -> Ctx:
        raw_path = request.rel_url.raw_path
        raw_query = request.rel_url.raw_query_string
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        bucket, key = self.address(request.host, unquote(raw_path))
        headers: dict[str, list[str]] = {}
        for k, v in request.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        signed = sigv4.parse_request(request.method, headers, query)
        if signed is None:
            anon = upb.UserAttr(uid=ANONYMOUS_UID, gid=ANONYMOUS_UID, name="anonymous")
            return Ctx(request, bucket, key, query, None, await self.client_for(anon), None, None)
        skey, user = await self.lookup_key(signed.credential.access_key)
        signing_key = sigv4.verify(signed, skey.secret_key, request.method, raw_path, raw_query, headers,
                                   sigv4.presign_now())
        return Ctx(request, bucket, key, query, user, await self.client_for(user), signed, signing_key)

    def address(self, host: str, path: str) -> tuple[str, str]:
        """(bucket, key) of a request: virtual-hosted style when the Host is BUCKET.<a configured domain>
        (the whole path is then the key), else path style (/BUCKET/KEY)."""
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.lower().rstrip(".")
        for domain in self.domains:
            if name.endswith("." + domain):
                return name[:-len(domain) - 1], path.removeprefix("/")
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    def _route(self, ctx: Ctx) -> tuple[str, Callable[[Ctx], Awaitable[web.StreamResponse]]]:
        m, q = ctx.request.method, ctx.query
        if not ctx.bucket:
            if m == "GET":
                return "ListBuckets", self.list_buckets
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
        unsupported = UNSUPPORTED_SUBRESOURCES.intersection(q)
        if unsupported:
            name = min(unsupported)
            raise S3Error("NotImplemented", f"the {name!r} subresource is not implemented")
        if not ctx.key:
            if "acl" in q:
                return {"GET": ("GetBucketAcl", self.get_bucket_acl),
                        "PUT": ("PutBucketAcl", self.put_bucket_acl)}.get(m, self._not_allowed)
            if "versioning" in q:
                if m == "GET":
                    return "GetBucketVersioning", self.get_bucket_versioning
                raise S3Error("NotImplemented", "versioning is not implemented")
            if m == "GET" and "location" in q:
                return "GetBucketLocation", self.get_bucket_location
            if m == "GET" and "uploads" in q:
                return "ListMultipartUploads", self.mp.list_uploads
            if m == "GET":
                return ("ListObjectsV2", self.list_objects_v2) if q.get("list-type") == "2" else \
                    ("ListObjects", self.list_objects_v1)
            if m == "POST" and "delete" in q:
                return "DeleteObjects", self.delete_objects
            return {"PUT": ("CreateBucket", self.create_bucket), "HEAD": ("HeadBucket", self.head_bucket),
                    "DELETE": ("DeleteBucket", self.delete_bucket)}.get(m, self._not_allowed)
        if "acl" in q:
            raise S3Error("NotImplemented", "object ACLs are not implemented")
        if "uploadId" in q:
            if m == "PUT":
                if "partNumber" not in q:
                    raise S3Error("InvalidArgument", "UploadPart needs partNumber")
                return ("UploadPartCopy", self.mp.upload_part_copy) if ctx.header("x-amz-copy-source") else \
                    ("UploadPart", self.mp.upload_part)
            return {"GET": ("ListParts", self.mp.list_parts), "POST": ("CompleteMultipartUpload", self.mp.complete),
                    "DELETE": ("AbortMultipartUpload", self.mp.abort)}.get(m, self._not_allowed)
        if m == "POST" and "uploads" in q:
            return "CreateMultipartUpload", self.mp.initiate
        if "partNumber" in q:
            raise S3Error("NotImplemented", "partNumber outside a multipart upload is not implemented")
        if m == "PUT":
            return ("CopyObject", self.copy_object) if ctx.header("x-amz-copy-source") else \
                ("PutObject", self.put_object)
        return {"GET": ("GetObject", self.get_object), "HEAD": ("HeadObject", self.head_object),
                "DELETE": ("DeleteObject", self.delete_object)}.get(m, self._not_allowed)

    @property
    def _not_allowed(self) -> tuple[str, Callable[[Ctx], Awaitable[web.StreamResponse]]]:
        async def fail(ctx: Ctx) -> web.StreamResponse:
            raise S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.")
        return "MethodNotAllowed", fail

    # ---- access helpers ----------------------------------------------------------------
    async def require_bucket(self, ctx: Ctx) -> None:
        """NoSuchBucket unless the bucket directory exists; anonymous callers need a public-read bucket."""
        check_bucket_name_soft(ctx.bucket)
        try:
            s = await self.system.stat(ctx.bpath)
        except (FileNotFoundError, NotADirectoryError):
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", resource=ctx.bucket) from None
        if not st.S_ISDIR(s.st_mode):
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", resource=ctx.bucket)
        if ctx.user is None:
            if ctx.request.method not in ("GET", "HEAD") or ctx.op not in (
                    "GetObject", "HeadObject", "HeadBucket", "ListObjects", "ListObjectsV2", "GetBucketLocation"):
                raise S3Error("AccessDenied", "Anonymous access is refused", resource=ctx.request.path)
            if await self.bucket_acl(ctx.bucket) != "public-read":
                raise S3Error("AccessDenied", "Anonymous access is refused", resource=ctx.request.path)

    async def require_writable(self, ctx: Ctx) -> None:
        """AccessDenied unless the caller may create entries in the bucket directory."""
        try:
            ok = await ctx.client.access(ctx.bpath, os.W_OK | os.X_OK)
        except (FileNotFoundError, NotADirectoryError):
            raise S3Error("NoSuchBucket", "The specified bucket does not exist", resource=ctx.bucket) from None
        if not ok:
            raise S3Error("AccessDenied", "Access Denied", resource=ctx.request.path)

    async def bucket_acl(self, bucket: str) -> str:
        try:
            return (await self.system.getxattr("/" + bucket, ACL_XATTR)).decode()
        except OSError:
            return "private"

    def reject_unsupported_headers(self, ctx: Ctx) -> None:
        for h in UNSUPPORTED_HEADERS:
            if h in ctx.request.headers:
                raise S3Error("NotImplemented", f"the {h} header is not implemented")
        sc = ctx.header("x-amz-storage-class")
        if sc and sc != "STANDARD":
            raise S3Error("InvalidStorageClass", "only the STANDARD storage class is supported")
        acl = ctx.header("x-amz-acl")
        if acl and acl not in ("private", "bucket-owner-full-control"):
            raise S3Error("NotImplemented", f"object ACL {acl!r} is not implemented")

    def request_meta(self, ctx: Ctx) -> ObjectMeta:
        """Content-Type, x-amz-meta-* and stored headers of a write request."""
        meta = ObjectMeta(content_type=ctx.header("Content-Type") or "binary/octet-stream")
        size = 0
        for k, v in ctx.request.headers.items():
            lk = k.lower()
            if lk.startswith("x-amz-meta-"):
                meta.user[lk[len("x-amz-meta-"):]] = v
                size += len(lk) - len("x-amz-meta-") + len(v)
            elif lk in STORED_HEADERS:
                if lk == "content-encoding":        # aws-chunked describes the transfer, not the object
                    v = ",".join(t.strip() for t in v.split(",") if t.strip() and t.strip() != "aws-chunked")
                    if not v:
                        continue
                meta.headers[lk] = v
        if size > MAX_USER_META:
            raise S3Error("MetadataTooLarge", f"user metadata is limited to {MAX_USER_META} bytes")
        return meta

    # ---- bodies ------------------------------------------------------------------------
    def checksums(self, ctx: Ctx) -> Checksums:
        """What the request body must hash to (Content-MD5, x-amz-content-sha256, x-amz-checksum-*)."""
        md5 = ctx.header("Content-MD5")
        if md5 is not None:
            try:
                if len(base64.b64decode(md5, validate=True)) != 16:
                    raise ValueError
            except (ValueError, binascii.Error):
                raise S3Error("InvalidDigest", "The Content-MD5 you specified is not valid.") from None
        sha = ctx.signed.payload_hash if ctx.signed is not None else None
        sha = sha if sha and len(sha) == 64 else None
        want = {alg: ctx.header(f"x-amz-checksum-{alg}") for alg in Checksums.ALGS}
        trailing = [t.strip().lower().removeprefix("x-amz-checksum-")
                    for t in (ctx.header("x-amz-trailer") or "").split(",") if t.strip()]
        return Checksums(md5, sha, {k: v for k, v in want.items() if v}, trailing)

    def body(self, ctx: Ctx, sums: Checksums, hash_inline: bool = True) -> AsyncIterator[bytes]:
        """The request body as decoded chunks (aws-chunked decoded and verified), hashed into `sums` unless
        the consumer hashes them itself (`hash_inline=False`)."""
        content = ctx.request.content
        chunked = ctx.signed is not None and ctx.signed.payload_hash.startswith("STREAMING-") or \
            "aws-chunked" in (ctx.header("Content-Encoding") or "")

        async def plain() -> AsyncIterator[bytes]:
            while True:
                data, end_of_http_chunk = await content.readchunk()     # buffered pieces as received: no join
                if not data:
                    if end_of_http_chunk and not content.at_eof():    # the end of a Transfer-Encoding chunk
                        continue
                    break
                if hash_inline:
                    sums.update(data)
                yield data

        async def decoded() -> AsyncIterator[bytes]:
            req = ctx.signed or sigv4.SignedRequest(sigv4.Credential("", "", "", "s3"), [], "", dt.datetime.now(),
                                                    "", sigv4.STREAMING_UNSIGNED_TRAILER, False)

            async def exact(n: int) -> bytes:
                try:
                    return await content.readexactly(n)
                except asyncio.IncompleteReadError:
                    raise S3Error("IncompleteBody", "the body ended inside a chunk") from None

            dec = sigv4.ChunkedDecoder(content.readline, exact, ctx.signing_key, req)
            async for data in dec.chunks():
                if hash_inline:
                    sums.update(data)
                yield data
            sums.add_trailers(dec.trailers)

        return decoded() if chunked else plain()

    def declared_length(self, ctx: Ctx) -> int | None:
        text = ctx.header("x-amz-decoded-content-length") or ctx.header("Content-Length")
        if text is None:
            return None
        try:
            n = int(text)
        except ValueError:
            raise S3Error("InvalidArgument", "Content-Length is not a number") from None
        if n < 0:
            raise S3Error("InvalidArgument", "negative Content-Length")
        return n

    async def read_small_body(self, ctx: Ctx) -> bytes:
        """A whole XML request body (bounded), with its digests checked."""
        sums = self.checksums(ctx)
        data = bytearray()
        async for chunk in self.body(ctx, sums):
            data += chunk
            if len(data) > MAX_XML_BODY:
                raise S3Error("MaxMessageLengthExceeded", "the request body is too large")
        sums.verify()
        return bytes(data)

    async def write_stream(self, c: AsyncClient, path: str, chunks: AsyncIterator[bytes], ctx: Ctx | None = None,
                           hasher: Callable[[bytes], None] | Sequence[Callable[[bytes], None]] | None = None,
                           expect: int | None = None) -> tuple[int, mp.Inode]:
        """Create `path` (fresh) and stream `chunks` into it; returns (size, inode after close).

        With `ctx`, a missing bucket is NoSuchBucket and a missing uploads directory is created."""
        try:
            f = await c.open_flags(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm=0o644)
        except FileNotFoundError:
            if ctx is None:
                raise
            await self.require_bucket(ctx)
            await ensure_uploads_dir(self.system, ctx.bucket)
            f = await c.open_flags(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm=0o644)
        size = await write_body(f, BlockWriter(f, hasher=hasher, expect=expect), chunks)
        return size, f.inode

    async def put_file(self, ctx: Ctx, chunks: AsyncIterator[bytes], meta: ObjectMeta, sums: Checksums | None,
                       expect_size: int | None, dest: str, *, noreplace: bool = False,
                       etag: Callable[[], str] | None = None, hash_blocks: bool = False) -> ObjectMeta:
        """Stream into a temporary file, check digests, attach metadata, then rename over `dest` atomically."""
        c = ctx.client
        tmp = tmp_path(ctx.bucket)
        try:
            size, inode = await self.write_stream(c, tmp, chunks, ctx,
                                                  sums.lanes() if hash_blocks and sums is not None else None,
                                                  expect=expect_size)
            if expect_size is not None and size != expect_size:
                raise S3Error("IncompleteBody", f"received {size} of {expect_size} bytes")
            if sums is not None:
                sums.verify()
            meta.etag = etag() if etag is not None else (sums.md5.hexdigest() if sums is not None else "")
            meta.size, meta.mtime_ns = size, inode.mtime_ns
            await c.setxattr(tmp, META_XATTR, meta.dumps())
            await self.rename_into_place(ctx, tmp, dest, noreplace)
        except BaseException:
            try:
                await c.remove(tmp)
            except OSError:
                pass
            raise
        S3_BYTES.labels(ctx.op, "in").inc(meta.size)
        return meta

    async def rename_into_place(self, ctx: Ctx, src: str, dest: str, noreplace: bool) -> None:
        """Rename `src` to `dest`, creating parent directories (retried if a delete removes them meanwhile)."""
        c = ctx.client
        parent = dest.rsplit("/", 1)[0]
        for attempt in range(5):
            if attempt and parent != ctx.bpath:
                try:
                    await c.mkdir(parent, 0o755, parents=True, exist_ok=True)
                except FileExistsError:
                    raise S3Error("InvalidObjectName", "a prefix of this key is an object (a file), so the key "
                                                       "cannot map to a path", resource=ctx.key) from None
                except NotADirectoryError:
                    raise S3Error("InvalidObjectName", "a prefix of this key is an object (a file), so the key "
                                                       "cannot map to a path", resource=ctx.key) from None
            try:
                await c.rename(src, dest, flags=RENAME_NOREPLACE if noreplace else 0)
                return
            except FileNotFoundError:
                if attempt == 4:
                    raise
            except FileExistsError:
                if noreplace:
                    raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not "
                                                        "hold", resource=ctx.key) from None
                raise S3Error("InvalidObjectName", "the key names a non-empty prefix (a directory)",
                              resource=ctx.key) from None
            except (IsADirectoryError, NotADirectoryError):
                raise S3Error("InvalidObjectName", "the key names a prefix (a directory) or lies below an object",
                              resource=ctx.key) from None
            except FSError as e:
                if e.code == Code.NOT_EMPTY:
                    raise S3Error("InvalidObjectName", "the key names a non-empty prefix (a directory)",
                                  resource=ctx.key) from None
                raise

    async def remove_empty_parents(self, c: AsyncClient, bucket: str, key: str) -> None:
        """After a delete, drop the now-empty directories the key implied (as S3 prefixes vanish)."""
        parts = key.rstrip("/").split("/")[:-1]
        while parts:
            try:
                await c.rmdir(f"/{bucket}/" + "/".join(parts))
            except OSError:
                return
            parts.pop()

    # ---- service & buckets ---------------------------------------------------------------
    async def list_buckets(self, ctx: Ctx) -> web.Response:
        if ctx.user is None:
            raise S3Error("AccessDenied", "Anonymous access is refused")
        items = []
        for ent, inode in await self.system.scandir("/"):
            if inode is None or inode.type != mp.DIRECTORY:
                continue
            try:
                check_bucket_name(ent.name)
            except S3Error:
                continue
            items.append(f"<Bucket>{x('Name', ent.name)}{x('CreationDate', iso(inode.ctime_ns))}</Bucket>")
        owner = f"<Owner>{x('ID', ctx.user.uid)}{x('DisplayName', ctx.user.name)}</Owner>"
        return web.Response(body=xml_doc("ListAllMyBucketsResult", owner + "<Buckets>" + "".join(items) +
                                         "</Buckets>"), content_type="application/xml")

    async def create_bucket(self, ctx: Ctx) -> web.Response:
        if ctx.user is None:
            raise S3Error("AccessDenied", "Anonymous access is refused")
        check_bucket_name(ctx.bucket)
        acl = ctx.header("x-amz-acl") or "private"
        if acl not in ("private", "public-read"):
            raise S3Error("NotImplemented", f"canned ACL {acl!r} is not implemented")
        for h in UNSUPPORTED_HEADERS:
            if h in ctx.request.headers:
                raise S3Error("NotImplemented", f"the {h} header is not implemented")
        body = await self.read_small_body(ctx)
        if body.strip():
            loc = parse_xml(body).findtext("LocationConstraint") or ""
            if loc and loc != self.region:
                raise S3Error("InvalidLocationConstraint", f"this endpoint serves region {self.region!r}")
        try:
            # anyone authenticated may create a bucket (the root directory is not theirs): create it as the
            # gateway and hand it to the caller
            await self.system.mkdir(ctx.bpath, 0o755)
        except FileExistsError:
            s = await self.system.stat(ctx.bpath)
            if s.st_uid == ctx.user.uid:
                raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                                                         "succeeded and you already own it.", resource=ctx.bucket)
            raise S3Error("BucketAlreadyExists", "The requested bucket name is not available.", resource=ctx.bucket)
        try:
            await self.system.chown(ctx.bpath, ctx.user.uid, ctx.user.gid)
            if acl == "public-read":
                await self.system.setxattr(ctx.bpath, ACL_XATTR, b"public-read")
            await ensure_uploads_dir(self.system, ctx.bucket)
        except BaseException:
            await self.system.rmtree(ctx.bpath)
            raise
        return web.Response(headers={"Location": "/" + ctx.bucket})

    async def head_bucket(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        await ctx.client.list_page(ctx.bpath, "", 1)         # permission check as the caller
        return web.Response(headers={"x-amz-bucket-region": self.region})

    async def delete_bucket(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        s = await self.system.stat(ctx.bpath)
        if ctx.user is None or (ctx.user.uid not in (0, s.st_uid)):
            raise S3Error("AccessDenied", "only the bucket's owner may delete it", resource=ctx.bucket)
        c = self.system                 # the root directory is not the owner's: remove it as the gateway
        for ent in (await c.list_page(ctx.bpath, "", 2)).entries:
            if ent.name != UPLOADS_DIR:
                raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", resource=ctx.bucket)
        uploads = f"{ctx.bpath}/{UPLOADS_DIR}"
        try:
            page = await c.list_page(uploads, "", 1)
            if page.entries:
                raise S3Error("BucketNotEmpty", "The bucket has multipart uploads in progress", resource=ctx.bucket)
            await c.rmdir(uploads)
        except FileNotFoundError:
            pass
        await c.rmdir(ctx.bpath)
        return web.Response(status=204)

    async def get_bucket_location(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        loc = "" if self.region == "us-east-1" else escape(self.region)
        return web.Response(body=f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="{NS}">'
                                 f'{loc}</LocationConstraint>'.encode(), content_type="application/xml")

    async def get_bucket_versioning(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        return web.Response(body=xml_doc("VersioningConfiguration", ""), content_type="application/xml")

    async def get_bucket_acl(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        s = await ctx.client.stat(ctx.bpath)
        owner = f"<Owner>{x('ID', s.st_uid)}</Owner>"
        grants = (f'<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser">'
                  f"{x('ID', s.st_uid)}</Grantee>{x('Permission', 'FULL_CONTROL')}</Grant>")
        if await self.bucket_acl(ctx.bucket) == "public-read":
            grants += ('<Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Group">'
                       "<URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>"
                       "<Permission>READ</Permission></Grant>")
        return web.Response(body=xml_doc("AccessControlPolicy", owner + f"<AccessControlList>{grants}"
                                         "</AccessControlList>"), content_type="application/xml")

    async def put_bucket_acl(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        acl = ctx.header("x-amz-acl")
        body = await self.read_small_body(ctx)
        if acl not in ("private", "public-read") or body.strip():
            raise S3Error("NotImplemented", "only the canned ACLs private and public-read are implemented")
        s = await ctx.client.stat(ctx.bpath)
        if ctx.user is None or (s.st_uid != ctx.user.uid and ctx.user.uid != 0):
            raise S3Error("AccessDenied", "only the bucket owner may change its ACL")
        if acl == "public-read":
            await ctx.client.setxattr(ctx.bpath, ACL_XATTR, b"public-read")
        else:
            try:
                await ctx.client.removexattr(ctx.bpath, ACL_XATTR)
            except OSError:
                pass
        return web.Response()

    # ---- listing -------------------------------------------------------------------------
    def _max_keys(self, ctx: Ctx, name: str = "max-keys") -> int:
        text = ctx.query.get(name, "1000")
        try:
            n = int(text)
        except ValueError:
            raise S3Error("InvalidArgument", f"{name} must be an integer") from None
        if n < 0:
            raise S3Error("InvalidArgument", f"{name} must not be negative")
        return min(n, 1000)

    async def _collect(self, ctx: Ctx, prefix: str, delimiter: str, marker: Marker | None,
                       limit: int) -> tuple[list, list[str], bool]:
        """Up to `limit` objects + common prefixes in order; whether more follow."""
        objects: list = []
        prefixes: list[str] = []
        gen = Lister(ctx.client, ctx.bucket, prefix, delimiter, marker).entries()
        truncated = False
        try:
            async for e in gen:
                if len(objects) + len(prefixes) >= limit:
                    truncated = True
                    break
                if e.inode is None:
                    prefixes.append(e.key)
                else:
                    objects.append(e)
        finally:
            await gen.aclose()
        metas = await asyncio.gather(*(_dir_marker_meta(e.inode) if e.inode.type == mp.DIRECTORY
                                       else read_meta(ctx.client, f"{ctx.bpath}/{e.key}") for e in objects),
                                     return_exceptions=True)
        out = []
        for e, meta in zip(objects, metas):
            out.append((e, meta if isinstance(meta, ObjectMeta) else ObjectMeta()))
        return out, prefixes, truncated

    def _contents(self, items: list, enc: bool, owner: bool) -> str:
        parts = []
        for e, meta in items:
            key = quote(e.key, safe="/") if enc else e.key
            own = f"<Owner>{x('ID', e.inode.uid)}{x('DisplayName', e.inode.uid)}</Owner>" if owner else ""
            parts.append(f"<Contents>{x('Key', key)}{x('LastModified', iso(e.inode.mtime_ns))}"
                         f"{x('ETag', chr(34) + meta.etag_for(e.inode) + chr(34))}"
                         f"{x('Size', 0 if e.inode.type == mp.DIRECTORY else e.inode.length)}"
                         f"{own}<StorageClass>STANDARD</StorageClass></Contents>")
        return "".join(parts)

    def _encoding(self, ctx: Ctx) -> bool:
        enc = ctx.query.get("encoding-type")
        if enc not in (None, "url"):
            raise S3Error("InvalidArgument", "encoding-type must be 'url'")
        return enc == "url"

    async def list_objects_v2(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        q = ctx.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        limit = self._max_keys(ctx)
        enc = self._encoding(ctx)
        token = q.get("continuation-token")
        marker = None
        if token is not None:
            try:
                d = json.loads(base64.urlsafe_b64decode(token.encode()))
                marker = Marker(d["k"], bool(d["p"]))
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise S3Error("InvalidArgument", "The continuation token provided is incorrect") from None
        elif q.get("start-after"):
            marker = Marker(q["start-after"])
        items, prefixes, truncated = await self._collect(ctx, prefix, delimiter, marker, limit)
        e = (lambda s: quote(s, safe="/")) if enc else (lambda s: s)
        body = [x("Name", ctx.bucket), x("Prefix", e(prefix)), x("KeyCount", len(items) + len(prefixes)),
                x("MaxKeys", limit), x("IsTruncated", str(truncated).lower())]
        if delimiter:
            body.append(x("Delimiter", e(delimiter)))
        if token is not None:
            body.append(x("ContinuationToken", token))
        if q.get("start-after"):
            body.append(x("StartAfter", e(q["start-after"])))
        if enc:
            body.append(x("EncodingType", "url"))
        if truncated:
            last_obj = items[-1][0].key if items else ""
            last_cp = prefixes[-1] if prefixes else ""
            if last_cp.encode() > last_obj.encode():
                nxt = {"k": last_cp, "p": True}
            else:
                nxt = {"k": last_obj, "p": False}
            body.append(x("NextContinuationToken", base64.urlsafe_b64encode(json.dumps(nxt).encode()).decode()))
        body.append(self._contents(items, enc, q.get("fetch-owner") == "true"))
        body.extend(f"<CommonPrefixes>{x('Prefix', e(p))}</CommonPrefixes>" for p in prefixes)
        return web.Response(body=xml_doc("ListBucketResult", "".join(body)), content_type="application/xml")

    async def list_objects_v1(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        q = ctx.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        limit = self._max_keys(ctx)
        enc = self._encoding(ctx)
        m = q.get("marker", "")
        marker = Marker(m, bool(delimiter) and m.endswith(delimiter)) if m else None
        items, prefixes, truncated = await self._collect(ctx, prefix, delimiter, marker, limit)
        e = (lambda s: quote(s, safe="/")) if enc else (lambda s: s)
        body = [x("Name", ctx.bucket), x("Prefix", e(prefix)), x("Marker", e(m)), x("MaxKeys", limit),
                x("IsTruncated", str(truncated).lower())]
        if delimiter:
            body.append(x("Delimiter", e(delimiter)))
        if enc:
            body.append(x("EncodingType", "url"))
        if truncated and delimiter:
            last = max([it[0].key for it in items[-1:]] + prefixes[-1:], key=lambda s: s.encode())
            body.append(x("NextMarker", e(last)))
        body.append(self._contents(items, enc, True))
        body.extend(f"<CommonPrefixes>{x('Prefix', e(p))}</CommonPrefixes>" for p in prefixes)
        return web.Response(body=xml_doc("ListBucketResult", "".join(body)), content_type="application/xml")

    # ---- objects -------------------------------------------------------------------------
    async def object_access(self, ctx: Ctx) -> None:
        """Before an object request: anonymous callers need a public-read bucket; others learn of a
        missing bucket when the path lookup fails (one RPC less per request)."""
        check_bucket_name_soft(ctx.bucket)
        if ctx.user is None:
            await self.require_bucket(ctx)

    async def no_such_key(self, ctx: Ctx) -> S3Error:
        """NoSuchBucket when the bucket is gone, else NoSuchKey."""
        await self.require_bucket(ctx)
        return S3Error("NoSuchKey", "The specified key does not exist.", resource=ctx.key)

    async def put_object(self, ctx: Ctx) -> web.Response:
        await self.object_access(ctx)
        check_key(ctx.key)
        self.reject_unsupported_headers(ctx)
        size = self.declared_length(ctx)
        if size is None and "aws-chunked" not in (ctx.header("Content-Encoding") or "") and \
                ctx.header("Transfer-Encoding") is None:
            raise S3Error("MissingContentLength", "You must provide the Content-Length HTTP header.")
        if size is not None and size > MAX_SINGLE_PUT:
            raise S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
        if ctx.key.endswith("/"):
            return await self._put_dir_marker(ctx, size)
        if size is None or size > 1 << 20:
            await self.require_writable(ctx)       # refuse before the bytes travel, not after
        await self._check_write_conditions(ctx)
        meta = self.request_meta(ctx)
        sums = self.checksums(ctx)
        meta = await self.put_file(ctx, self.body(ctx, sums, hash_inline=False), meta, sums, size, ctx.opath,
                                   noreplace=ctx.header("If-None-Match") == "*", hash_blocks=True)
        return web.Response(headers={"ETag": f'"{meta.etag}"'})

    async def _put_dir_marker(self, ctx: Ctx, size: int | None) -> web.Response:
        """A zero-byte key ending in '/' (what consoles create as a 'folder') is a directory."""
        sums = self.checksums(ctx)
        data = await self.read_small_body(ctx) if size else b""
        if data:
            raise S3Error("InvalidObjectName", "a key ending in '/' maps to a directory and cannot hold data")
        sums.verify()
        try:
            await ctx.client.mkdir(ctx.opath.rstrip("/"), 0o755, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise S3Error("InvalidObjectName", "an object with this name exists", resource=ctx.key) from None
        return web.Response(headers={"ETag": f'"{sums.md5.hexdigest()}"'})

    async def _check_write_conditions(self, ctx: Ctx) -> None:
        """Conditional writes: If-None-Match: * (no overwrite) and If-Match (overwrite a known version)."""
        inm, im = ctx.header("If-None-Match"), ctx.header("If-Match")
        if inm is not None and inm != "*":
            raise S3Error("NotImplemented", "If-None-Match on writes supports only '*'")
        if im is None and inm is None:
            return
        try:
            s = await ctx.client.stat(ctx.opath)
            etag = (await read_meta(ctx.client, ctx.opath)).etag_for(s.inode)
        except (FileNotFoundError, NotADirectoryError):
            if im is not None:
                raise S3Error("NoSuchKey", "The specified key does not exist.", resource=ctx.key) from None
            return
        if inm == "*" or (im is not None and not _etag_matches(im, etag)):
            raise S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                          resource=ctx.key)

    async def stat_object(self, ctx: Ctx, bucket: str, key: str) -> tuple[mp.Inode, ObjectMeta]:
        """Inode and S3 metadata of an object (NoSuchKey for directories and missing paths)."""
        path = f"/{bucket}/{key}"
        try:
            s = await ctx.client.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise S3Error("NoSuchKey", "The specified key does not exist.", resource=key) from None
        if key.endswith("/"):
            if not st.S_ISDIR(s.st_mode):
                raise S3Error("NoSuchKey", "The specified key does not exist.", resource=key)
            return s.inode, await _dir_marker_meta(s.inode)
        if not st.S_ISREG(s.st_mode):
            raise S3Error("NoSuchKey", "The specified key does not exist.", resource=key)
        return s.inode, await read_meta(ctx.client, path)

    def _object_headers(self, inode: mp.Inode, meta: ObjectMeta, etag: str, ctx: Ctx) -> dict[str, str]:
        h = {"ETag": f'"{etag}"', "Last-Modified": http_date(inode.mtime_ns), "Accept-Ranges": "bytes",
             "Content-Type": meta.content_type or "binary/octet-stream"}
        if meta.parts:
            h["x-amz-mp-parts-count"] = str(meta.parts)
        for k, v in meta.headers.items():
            h[k] = v
        for k, v in meta.user.items():
            h["x-amz-meta-" + k] = v
        for q, hname in (("response-content-type", "Content-Type"), ("response-content-language", "Content-Language"),
                         ("response-expires", "Expires"), ("response-cache-control", "Cache-Control"),
                         ("response-content-disposition", "Content-Disposition"),
                         ("response-content-encoding", "Content-Encoding")):
            if q in ctx.query:
                h[hname] = ctx.query[q]
        return h

    def _check_read_conditions(self, ctx: Ctx, etag: str, mtime_ns: int) -> None:
        """RFC 7232 preconditions as S3 applies them (If-Match beats If-Unmodified-Since, etc.)."""
        mtime = mtime_ns // 1_000_000_000
        im, ius = ctx.header("If-Match"), ctx.header("If-Unmodified-Since")
        inm, ims = ctx.header("If-None-Match"), ctx.header("If-Modified-Since")
        fail = S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        if im is not None:
            if not _etag_matches(im, etag):
                raise fail
        elif ius is not None:
            t = _parse_http_date(ius)
            if t is not None and mtime > t:
                raise fail
        if inm is not None:
            if _etag_matches(inm, etag):
                raise S3Error("NotModified", "Not Modified", status=304)
        elif ims is not None:
            t = _parse_http_date(ims)
            if t is not None and mtime <= t:
                raise S3Error("NotModified", "Not Modified", status=304)

    async def head_object(self, ctx: Ctx) -> web.StreamResponse:
        await self.object_access(ctx)
        check_key(ctx.key)
        try:
            inode, meta = await self.stat_object(ctx, ctx.bucket, ctx.key)
        except S3Error as e:
            raise (await self.no_such_key(ctx)) if e.code == "NoSuchKey" else e from None
        etag = meta.etag_for(inode)
        self._check_read_conditions(ctx, etag, inode.mtime_ns)
        resp = web.StreamResponse(headers=self._object_headers(inode, meta, etag, ctx))
        resp.content_length = inode.length
        await resp.prepare(ctx.request)
        return resp

    async def get_object(self, ctx: Ctx) -> web.StreamResponse:
        await self.object_access(ctx)
        check_key(ctx.key)
        if ctx.key.endswith("/"):
            inode, meta = await self.stat_object(ctx, ctx.bucket, ctx.key)
            return web.Response(body=b"", headers=self._object_headers(inode, meta, meta.etag, ctx))
        try:
            f = await ctx.client.open(ctx.opath, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise (await self.no_such_key(ctx)) from None
        try:
            inode = f.inode
            meta = await read_meta(ctx.client, ctx.opath)
            etag = meta.etag_for(inode)
            self._check_read_conditions(ctx, etag, inode.mtime_ns)
            size = f.length
            start, end, partial = 0, size, False
            rng = ctx.header("Range")
            if rng:
                r = _parse_range(rng, size)
                if r is not None:
                    start, end = r
                    partial = True
            headers = self._object_headers(inode, meta, etag, ctx)
            resp = web.StreamResponse(status=206 if partial else 200, headers=headers)
            if partial:
                resp.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
            resp.content_length = end - start
            await resp.prepare(ctx.request)
            sent = 0
            async for data in read_blocks(f, start, end):
                await resp.write(data)
                sent += len(data)
            await resp.write_eof()
            S3_BYTES.labels(ctx.op, "out").inc(sent)
            return resp
        finally:
            await f.close()

    async def delete_object(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        check_key(ctx.key)
        await self._delete_key(ctx.client, ctx.bucket, ctx.key)
        return web.Response(status=204)

    async def _delete_key(self, c: AsyncClient, bucket: str, key: str) -> None:
        """Delete one key (idempotent: a missing key is success), then its empty parent directories."""
        path = f"/{bucket}/{key.rstrip('/')}"
        try:
            if key.endswith("/"):
                await c.rmdir(path)
            else:
                await c.remove(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except IsADirectoryError:
            return                      # a prefix, not an object: nothing to delete
        except FSError as e:
            if e.code == Code.NOT_EMPTY:
                return
            raise
        await self.remove_empty_parents(c, bucket, key)

    async def delete_objects(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        root = parse_xml(await self.read_small_body(ctx))
        if root.tag != "Delete":
            raise S3Error("MalformedXML", "expected a Delete element")
        objs = root.findall("Object")
        if not objs or len(objs) > 1000:
            raise S3Error("MalformedXML", "DeleteObjects takes 1 to 1000 keys")
        quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
        out = []
        for o in objs:
            key = o.findtext("Key")
            if key is None:
                raise S3Error("MalformedXML", "an Object has no Key")
            if o.findtext("VersionId"):
                out.append(f"<Error>{x('Key', key)}{x('Code', 'NotImplemented')}"
                           f"{x('Message', 'versioning is not implemented')}</Error>")
                continue
            try:
                check_key(key)
                await self._delete_key(ctx.client, ctx.bucket, key)
                if not quiet:
                    out.append(f"<Deleted>{x('Key', key)}</Deleted>")
            except S3Error as e:
                out.append(f"<Error>{x('Key', key)}{x('Code', e.code)}{x('Message', e.message)}</Error>")
            except FSError as e:
                err = from_fs_error(e)
                out.append(f"<Error>{x('Key', key)}{x('Code', err.code)}{x('Message', err.message)}</Error>")
        return web.Response(body=xml_doc("DeleteResult", "".join(out)), content_type="application/xml")

    def copy_source(self, ctx: Ctx) -> tuple[str, str]:
        """(bucket, key) named by x-amz-copy-source."""
        src = unquote(ctx.header("x-amz-copy-source") or "")
        if "?versionId=" in src:
            raise S3Error("NotImplemented", "versioned copy sources are not implemented")
        bucket, _, key = src.lstrip("/").partition("/")
        if not bucket or not key:
            raise S3Error("InvalidArgument", "Copy Source must mention the source bucket and key: "
                                             "sourcebucket/sourcekey")
        check_bucket_name_soft(bucket)
        check_key(key, allow_dir=False)
        return bucket, key

    def check_copy_conditions(self, ctx: Ctx, etag: str, mtime_ns: int) -> None:
        """x-amz-copy-source-if-* preconditions (all failures are 412)."""
        mtime = mtime_ns // 1_000_000_000
        im, inm = ctx.header("x-amz-copy-source-if-match"), ctx.header("x-amz-copy-source-if-none-match")
        ius = ctx.header("x-amz-copy-source-if-unmodified-since")
        ims = ctx.header("x-amz-copy-source-if-modified-since")
        fail = S3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
        if im is not None:
            if not _etag_matches(im, etag):
                raise fail
        elif ius is not None and (t := _parse_http_date(ius)) is not None and mtime > t:
            raise fail
        if inm is not None:
            if _etag_matches(inm, etag):
                raise fail
        elif ims is not None and (t := _parse_http_date(ims)) is not None and mtime <= t:
            raise fail

    async def copy_object(self, ctx: Ctx) -> web.Response:
        await self.require_bucket(ctx)
        check_key(ctx.key, allow_dir=False)
        self.reject_unsupported_headers(ctx)
        sbucket, skey = self.copy_source(ctx)
        inode, smeta = await self.stat_object(ctx, sbucket, skey)
        setag = smeta.etag_for(inode)
        self.check_copy_conditions(ctx, setag, inode.mtime_ns)
        directive = (ctx.header("x-amz-metadata-directive") or "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise S3Error("InvalidArgument", "Unknown metadata directive.")
        if (sbucket, skey) == (ctx.bucket, ctx.key) and directive == "COPY":
            raise S3Error("InvalidRequest", "This copy request is illegal because it is trying to copy an object to "
                                            "itself without changing the object's metadata.")
        meta = self.request_meta(ctx) if directive == "REPLACE" else \
            ObjectMeta(content_type=smeta.content_type, user=dict(smeta.user), headers=dict(smeta.headers))
        await self._check_write_conditions(ctx)
        f = await ctx.client.open(f"/{sbucket}/{skey}", "rb")
        sums = Checksums(None, None, {})
        try:
            async def chunks() -> AsyncIterator[bytes]:
                async for data in read_blocks(f, 0, f.length):
                    sums.update(data)
                    yield data
            meta = await self.put_file(ctx, chunks(), meta, sums, f.length, ctx.opath)
        finally:
            await f.close()
        body = x("LastModified", iso(meta.mtime_ns)) + x("ETag", f'"{meta.etag}"')
        return web.Response(body=xml_doc("CopyObjectResult", body), content_type="application/xml")


async def _dir_marker_meta(inode: mp.Inode) -> ObjectMeta:
    """A directory read as its "folder" marker object: zero bytes, the ETag of no content."""
    return ObjectMeta(etag=hashlib.md5(b"").hexdigest(), size=inode.length, mtime_ns=inode.mtime_ns)


def check_bucket_name_soft(name: str) -> None:
    """Reject names that can never be a bucket (addressing a path outside the namespace)."""
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise S3Error("InvalidBucketName", f"the bucket name {name!r} is not valid")
    try:
        check_bucket_name(name)
    except S3Error:
        raise S3Error("NoSuchBucket", "The specified bucket does not exist", resource=name) from None


def _etag_matches(header: str, etag: str) -> bool:
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == etag:
            return True
    return False


def _parse_range(text: str, size: int) -> tuple[int, int] | None:
    """One 'bytes=' range -> [start, end); None to ignore it; InvalidRange when unsatisfiable."""
    if not text.startswith("bytes=") or "," in text:
        return None
    a, sep, b = text[6:].strip().partition("-")
    if not sep:
        return None
    try:
        if a == "":
            n = int(b)
            if n <= 0:
                raise S3Error("InvalidRange", "The requested range is not satisfiable")
            return max(0, size - n), size
        start = int(a)
        end = int(b) + 1 if b else max(size, start + 1)
    except ValueError:
        return None
    if start < 0 or end <= start:
        return None
    if start >= size:
        raise S3Error("InvalidRange", "The requested range is not satisfiable")
    return start, min(end, size)
