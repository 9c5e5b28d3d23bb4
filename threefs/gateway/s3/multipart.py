"""Multipart uploads: each upload is a directory `<bucket>/.s3-uploads/<uploadId>/`.

Parts are laid out so that completion copies as little as possible. The upload's part size S is fixed by
the first part of at least the minimum part size (an xattr set with XATTR_CREATE, so concurrent parts
agree). A part p of length L <= S is written straight into the upload's hidden staging file at
(p-1)*S; any other part goes to a file of its own. Every part has a record `NNNNN` (its ETag, size and,
for a staged part, its offset). When every part but the last is S bytes long, completion copies the
parts that have files of their own into their places in the staging file, cuts it to the object's
length and renames it into place: with uniform parts nothing is copied. Otherwise the parts are
appended, streaming, to the first part's file (or to a fresh file when part 1 is staged).
"""
from __future__ import annotations

import asyncio
import bisect
import errno
import hashlib
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web
from prometheus_client import Counter

from threefs.client.fs import AsyncClient, AsyncFile
from threefs.gateway.s3.errors import S3Error
from threefs.gateway.s3.listing import UPLOADS_DIR
from threefs.gateway.s3.objects import (
    META_XATTR,
    BlockWriter,
    Checksums,
    ObjectMeta,
    check_key,
    ensure_uploads_dir,
    read_blocks,
    read_meta,
    write_body,
)

if TYPE_CHECKING:
    from threefs.gateway.s3.app import Ctx, S3Gateway

UPLOAD_XATTR = "user.s3.upload"
PART_SIZE_XATTR = "user.s3.partsize"
XATTR_CREATE = 1
STAGING = ".staging"         # the object-to-be: staged parts at (p-1)*S
SEALED = ".sealed"           # completion has begun: no new in-place writes
LOCK_PREFIX = ".w-"          # .w-NNNNN: an upload of part NNNNN is writing its staging range
MAX_PARTS = 10000
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_PART_NAME = re.compile(r"^\d{5}$")

MP_COPIED = Counter("threefs_s3_multipart_copied_bytes",
                    "Bytes CompleteMultipartUpload copied to assemble objects (0 when parts were staged in place)")
MP_COMPLETED = Counter("threefs_s3_multipart_completions", "Completed multipart uploads, by assembly path", ["path"])


class _UploadPage:
    """The first `size` of a stream of (sort key, upload record or None for a common prefix), in order;
    common prefixes appear once. Holds at most `size` entries whatever the stream's length."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: list[tuple[tuple[bytes, int, str], tuple[str, int, str, int] | None]] = []
        self.prefixes: set[bytes] = set()

    def add(self, sort: tuple[bytes, int, str], rec: tuple[str, int, str, int] | None) -> None:
        if rec is None and sort[0] in self.prefixes:
            return
        if self.size <= 0 or (len(self.items) >= self.size and sort >= self.items[-1][0]):
            return
        bisect.insort(self.items, (sort, rec), key=lambda it: it[0])
        if rec is None:
            self.prefixes.add(sort[0])
        if len(self.items) > self.size:
            dropped, drec = self.items.pop()
            if drec is None:
                self.prefixes.discard(dropped[0])


class _NoStaging(Exception):
    """The upload has no staging file (begun by an older gateway): parts go to files of their own."""


def _no_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                                   "upload may have been aborted or completed.", resource=upload_id)


async def _bounded(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """`chunks`, refusing more than `limit` bytes in all (a staged part must not spill into the next range)."""
    n = 0
    async for data in chunks:
        n += len(data)
        if n > limit:
            raise S3Error("IncompleteBody", f"the body is longer than the {limit} bytes declared")
        yield data


async def _record(c: AsyncClient, updir: str, n: int) -> ObjectMeta:
    """Part `n`'s record (an empty ObjectMeta when the part was never uploaded)."""
    try:
        return await read_meta(c, f"{updir}/{n:05d}")
    except (FileNotFoundError, NotADirectoryError):
        return ObjectMeta()


def _source(updir: str, n: int, meta: ObjectMeta) -> tuple[str, int]:
    """Where part `n`'s bytes are: (path, offset)."""
    return (f"{updir}/{STAGING}", meta.part_at) if meta.part_at >= 0 else (f"{updir}/{n:05d}", 0)


async def _remove_quietly(c: AsyncClient, path: str) -> None:
    try:
        await c.remove(path)
    except OSError:
        pass


async def _publish(c: AsyncClient, tmp: str, meta: ObjectMeta, dest: str) -> None:
    """Attach `meta` to the temporary file `tmp` and rename it over `dest` (removing `tmp` on failure)."""
    try:
        await c.setxattr(tmp, META_XATTR, meta.dumps())
        await c.rename(tmp, dest)
    except BaseException:
        await _remove_quietly(c, tmp)
        raise


class Multipart:
    """The multipart operations of one gateway."""

    def __init__(self, gw: S3Gateway) -> None:
        self.gw = gw

    def _updir(self, ctx: Ctx) -> str:
        upload_id = ctx.query.get("uploadId", "")
        if not _UPLOAD_ID.match(upload_id):
            raise _no_upload(upload_id)
        return f"{ctx.bpath}/{UPLOADS_DIR}/{upload_id}"

    async def _info(self, ctx: Ctx) -> tuple[str, dict]:
        """The upload directory and its record; NoSuchUpload unless it exists for this key."""
        updir = self._updir(ctx)
        try:
            info = json.loads(await ctx.client.getxattr(updir, UPLOAD_XATTR))
        except (FileNotFoundError, NotADirectoryError):
            raise _no_upload(ctx.query["uploadId"]) from None
        except OSError as e:
            if e.errno == errno.ENODATA:
                raise _no_upload(ctx.query["uploadId"]) from None
            raise
        if info.get("key") != ctx.key:
            raise _no_upload(ctx.query["uploadId"])
        return updir, info

    @staticmethod
    def _part_number(ctx: Ctx) -> int:
        try:
            n = int(ctx.query.get("partNumber", ""))
        except ValueError:
            n = 0
        if not 1 <= n <= MAX_PARTS:
            raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PARTS}, inclusive")
        return n

    async def initiate(self, ctx: Ctx) -> web.Response:
        gw = self.gw
        await gw.require_bucket(ctx)
        check_key(ctx.key, allow_dir=False)
        gw.reject_unsupported_headers(ctx)
        meta = gw.request_meta(ctx)
        await gw.require_writable(ctx)
        await ensure_uploads_dir(gw.system, ctx.bucket)
        upload_id = uuid.uuid4().hex
        updir = f"{ctx.bpath}/{UPLOADS_DIR}/{upload_id}"
        await ctx.client.mkdir(updir, 0o700)
        await ctx.client.mknod(f"{updir}/{STAGING}", 0o644)
        info = {"key": ctx.key, "meta": meta.dumps().decode(), "initiated": time.time_ns(),
                "uid": ctx.user.uid if ctx.user else 0}
        await ctx.client.setxattr(updir, UPLOAD_XATTR, json.dumps(info).encode())
        from threefs.gateway.s3.app import x, xml_doc
        body = x("Bucket", ctx.bucket) + x("Key", ctx.key) + x("UploadId", upload_id)
        return web.Response(body=xml_doc("InitiateMultipartUploadResult", body), content_type="application/xml")

    async def _store_part(self, ctx: Ctx, updir: str, n: int, chunks: AsyncIterator[bytes], sums: Checksums,
                          expect: int | None, hash_blocks: bool = False) -> ObjectMeta:
        """Store part `n`: in place in the staging file when the upload's part size allows it, else in its own
        file; either way its record (`<updir>/NNNNN`) appears only once the bytes are complete and checked."""
        at = await self._claim(ctx, updir, n, expect)
        if at is None:
            return await self._store_part_file(ctx, updir, n, chunks, sums, expect, hash_blocks)
        try:
            return await self._store_part_staged(ctx, updir, n, at, chunks, sums, expect, hash_blocks)
        except _NoStaging:
            return await self._store_part_file(ctx, updir, n, chunks, sums, expect, hash_blocks)
        finally:
            await self._release(ctx.client, updir, n)

    async def _store_part_file(self, ctx: Ctx, updir: str, n: int, chunks: AsyncIterator[bytes], sums: Checksums,
                               expect: int | None, hash_blocks: bool) -> ObjectMeta:
        """Write a part to a temporary file in the upload directory, check it, rename it into place."""
        c = ctx.client
        tmp = f"{updir}/.tmp-{uuid.uuid4().hex}"
        try:
            size, inode = await self.gw.write_stream(c, tmp, chunks, hasher=sums.lanes() if hash_blocks else None,
                                                     expect=expect)
        except (FileNotFoundError, NotADirectoryError):
            raise _no_upload(ctx.query["uploadId"]) from None
        try:
            if expect is not None and size != expect:
                raise S3Error("IncompleteBody", f"received {size} of {expect} bytes")
            sums.verify()
            meta = ObjectMeta(etag=sums.md5.hexdigest(), size=size, mtime_ns=inode.mtime_ns)
        except BaseException:
            await _remove_quietly(c, tmp)
            raise
        await _publish(c, tmp, meta, f"{updir}/{n:05d}")
        return meta

    async def _store_part_staged(self, ctx: Ctx, updir: str, n: int, at: int, chunks: AsyncIterator[bytes],
                                 sums: Checksums, expect: int, hash_blocks: bool) -> ObjectMeta:
        """Write a part straight into the staging file at `at` (its range is claimed), then record it there.

        A failure leaves unreferenced bytes in the range and the previous record (if any) untouched."""
        c = ctx.client
        try:
            f = await c.open_flags(f"{updir}/{STAGING}", os.O_WRONLY)
        except (FileNotFoundError, NotADirectoryError):
            if not await c.exists(updir):
                raise _no_upload(ctx.query["uploadId"]) from None
            raise _NoStaging from None              # an upload begun before staging files existed
        w = BlockWriter(f, at, hasher=sums.lanes() if hash_blocks else None, expect=expect)
        end = await write_body(f, w, _bounded(chunks, expect))
        if end - at != expect:
            raise S3Error("IncompleteBody", f"received {end - at} of {expect} bytes")
        sums.verify()
        meta = ObjectMeta(etag=sums.md5.hexdigest(), size=expect, mtime_ns=time.time_ns(), part_at=at)
        await self._write_record(ctx, updir, n, meta)
        return meta

    async def _write_record(self, ctx: Ctx, updir: str, n: int, meta: ObjectMeta) -> None:
        """Atomically make `meta` the record of part `n` (an empty file carrying it, renamed over the old one)."""
        c = ctx.client
        tmp = f"{updir}/.tmp-{uuid.uuid4().hex}"
        try:
            await c.mknod(tmp, 0o644)
        except (FileNotFoundError, NotADirectoryError):
            raise _no_upload(ctx.query["uploadId"]) from None
        await _publish(c, tmp, meta, f"{updir}/{n:05d}")

    async def _part_size(self, c: AsyncClient, updir: str, size: int | None = None) -> int | None:
        """The upload's part size S: fixed (once, atomically) by the first part of at least the minimum part
        size to arrive; None while unknown. With `size`, a part of that size may fix it."""
        try:
            return int(await c.getxattr(updir, PART_SIZE_XATTR))
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise
        if size is None or size < max(1, self.gw.min_part_size):
            return None
        try:
            await c.setxattr(updir, PART_SIZE_XATTR, str(size).encode(), XATTR_CREATE)
        except FileExistsError:
            return int(await c.getxattr(updir, PART_SIZE_XATTR))
        return size

    async def _claim(self, ctx: Ctx, updir: str, n: int, size: int | None) -> int | None:
        """Claim part `n`'s range of the staging file; its offset, or None when the part needs its own file.

        The range ((n-1)*S, length <= S) is written in place only when no current record refers to it (a
        re-upload of a part recorded there goes to its own file, so a failed re-upload cannot damage the
        recorded bytes), no other upload of `n` is writing it (a lock file), and completion has not begun
        (the seal). The lock is taken before the record and the seal are read, so completion, which seals
        and then looks for locks, never misses a writer."""
        if size is None:
            return None
        c = ctx.client
        try:
            psize = await self._part_size(c, updir, size)
        except (FileNotFoundError, NotADirectoryError):
            raise _no_upload(ctx.query["uploadId"]) from None
        if psize is None or size > psize:
            return None
        try:
            await c.mknod(f"{updir}/{LOCK_PREFIX}{n:05d}", 0o600)
        except FileExistsError:
            return None
        except (FileNotFoundError, NotADirectoryError):
            raise _no_upload(ctx.query["uploadId"]) from None
        try:
            if await c.exists(f"{updir}/{SEALED}") or (await _record(c, updir, n)).part_at >= 0:
                await self._release(c, updir, n)
                return None
        except BaseException:
            await self._release(c, updir, n)
            raise
        return (n - 1) * psize

    @staticmethod
    async def _release(c: AsyncClient, updir: str, n: int) -> None:
        """Drop the claim on part `n`'s staging range."""
        try:
            await c.remove(f"{updir}/{LOCK_PREFIX}{n:05d}")
        except OSError:
            pass

    async def upload_part(self, ctx: Ctx) -> web.Response:
        gw = self.gw
        await gw.require_bucket(ctx)
        n = self._part_number(ctx)
        updir, _ = await self._info(ctx)
        size = gw.declared_length(ctx)
        if size is not None and size > 5 << 30:
            raise S3Error("EntityTooLarge", "parts are at most 5 GiB")
        sums = gw.checksums(ctx)
        meta = await self._store_part(ctx, updir, n, gw.body(ctx, sums, hash_inline=False), sums, size,
                                      hash_blocks=True)
        return web.Response(headers={"ETag": f'"{meta.etag}"'})

    async def upload_part_copy(self, ctx: Ctx) -> web.Response:
        gw = self.gw
        await gw.require_bucket(ctx)
        n = self._part_number(ctx)
        updir, _ = await self._info(ctx)
        sbucket, skey = gw.copy_source(ctx)
        inode, smeta = await gw.stat_object(ctx, sbucket, skey)
        gw.check_copy_conditions(ctx, smeta.etag_for(inode), inode.mtime_ns)
        start, end = 0, inode.length
        rng = ctx.header("x-amz-copy-source-range")
        if rng is not None:
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng.strip())
            if not m or int(m.group(1)) > int(m.group(2)):
                raise S3Error("InvalidArgument", "The x-amz-copy-source-range value must be of the form "
                                                 "bytes=first-last where first and last are the zero-based offsets")
            start, end = int(m.group(1)), int(m.group(2)) + 1
            if end > inode.length:
                raise S3Error("InvalidRange", "The requested range is not satisfiable")
        f = await ctx.client.open(f"/{sbucket}/{skey}", "rb")
        sums = Checksums(None, None, {})
        try:
            async def chunks() -> AsyncIterator[bytes]:
                async for data in read_blocks(f, start, end):
                    sums.update(data)
                    yield data
            meta = await self._store_part(ctx, updir, n, chunks(), sums, end - start)
        finally:
            await f.close()
        from threefs.gateway.s3.app import iso, x, xml_doc
        body = x("LastModified", iso(meta.mtime_ns)) + x("ETag", f'"{meta.etag}"')
        return web.Response(body=xml_doc("CopyPartResult", body), content_type="application/xml")

    async def _parts(self, ctx: Ctx, updir: str, after: int, limit: int) -> tuple[list[tuple[int, ObjectMeta]], bool]:
        """Parts numbered above `after`, up to `limit`, and whether more follow (paged readdir)."""
        out: list[int] = []
        prev = f"{after:05d}" if after else ""
        truncated = False
        while True:
            page = await ctx.client.list_page(updir, prev, 1000)
            for ent in page.entries:
                if not _PART_NAME.match(ent.name):
                    continue
                if len(out) >= limit:
                    truncated = True
                    break
                out.append(int(ent.name))
            if truncated or not page.more or not page.entries:
                break
            prev = page.entries[-1].name
        metas = await asyncio.gather(*(read_meta(ctx.client, f"{updir}/{n:05d}") for n in out))
        return list(zip(out, metas)), truncated

    async def list_parts(self, ctx: Ctx) -> web.Response:
        gw = self.gw
        await gw.require_bucket(ctx)
        updir, info = await self._info(ctx)
        try:
            after = int(ctx.query.get("part-number-marker", "0") or 0)
        except ValueError:
            raise S3Error("InvalidArgument", "part-number-marker must be an integer") from None
        limit = gw._max_keys(ctx, "max-parts")
        parts, truncated = await self._parts(ctx, updir, after, limit)
        from threefs.gateway.s3.app import iso, x, xml_doc
        body = [x("Bucket", ctx.bucket), x("Key", ctx.key), x("UploadId", ctx.query["uploadId"]),
                x("PartNumberMarker", after), x("MaxParts", limit), x("IsTruncated", str(truncated).lower()),
                "<StorageClass>STANDARD</StorageClass>",
                f"<Initiator>{x('ID', info.get('uid', 0))}</Initiator><Owner>{x('ID', info.get('uid', 0))}</Owner>"]
        if parts:
            body.append(x("NextPartNumberMarker", parts[-1][0]))
        for n, meta in parts:
            body.append(f"<Part>{x('PartNumber', n)}{x('LastModified', iso(meta.mtime_ns))}"
                        f"{x('ETag', chr(34) + meta.etag + chr(34))}{x('Size', meta.size)}</Part>")
        return web.Response(body=xml_doc("ListPartsResult", "".join(body)), content_type="application/xml")

    @staticmethod
    async def _upload_record(c: AsyncClient, root: str, upload_id: str) -> tuple[str, int, str, int] | None:
        """(key, initiated, upload id, uid) of one upload; None when it is gone or unreadable."""
        try:
            info = json.loads(await c.getxattr(f"{root}/{upload_id}", UPLOAD_XATTR))
            return info["key"], int(info["initiated"]), upload_id, int(info.get("uid", 0))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def _upload_records(self, c: AsyncClient, root: str) -> AsyncIterator[tuple[str, int, str, int]]:
        """Every upload of the bucket, one readdir page (and one batch of record reads) at a time."""
        prev = ""
        while True:
            try:
                page = await c.list_page(root, prev, 1000)
            except FileNotFoundError:
                return
            ids = [e.name for e in page.entries if _UPLOAD_ID.match(e.name)]
            for r in await asyncio.gather(*(self._upload_record(c, root, i) for i in ids)):
                if r is not None:
                    yield r
            if not page.more or not page.entries:
                return
            prev = page.entries[-1].name

    async def list_uploads(self, ctx: Ctx) -> web.Response:
        """Uploads in progress, by key then initiation time, one page after (key-marker, upload-id-marker).

        Upload directories are named by random id, so finding a page means reading every upload's record,
        but only the page itself (max-uploads + 1 entries) is ever held: a bounded selection."""
        gw = self.gw
        await gw.require_bucket(ctx)
        q = ctx.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
        limit = gw._max_keys(ctx, "max-uploads")
        enc = gw._encoding(ctx)
        root = f"{ctx.bpath}/{UPLOADS_DIR}"
        after = await self._marker(ctx.client, root, key_marker, id_marker)
        page = _UploadPage(limit + 1)
        async for key, initiated, upload_id, uid in self._upload_records(ctx.client, root):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if delimiter and delimiter in rest:
                cp = prefix + rest[:rest.index(delimiter) + len(delimiter)]
                if cp.encode() > key_marker.encode():
                    page.add((cp.encode(), -1, ""), None)
                continue
            sort = (key.encode(), initiated, upload_id)
            if after(sort):
                page.add(sort, (key, initiated, upload_id, uid))
        items = page.items[:limit]
        truncated = len(page.items) > limit
        from threefs.gateway.s3.app import iso, x, xml_doc
        e = (lambda t: quote(t, safe="/")) if enc else (lambda t: t)
        body = [x("Bucket", ctx.bucket), x("KeyMarker", e(key_marker)), x("UploadIdMarker", id_marker),
                x("Prefix", e(prefix)), x("MaxUploads", limit), x("IsTruncated", str(truncated).lower())]
        if delimiter:
            body.append(x("Delimiter", e(delimiter)))
        if enc:
            body.append(x("EncodingType", "url"))
        if truncated and items:
            sort, rec = items[-1]
            body.append(x("NextKeyMarker", e(sort[0].decode())) + x("NextUploadIdMarker", rec[2] if rec else ""))
        for sort, rec in items:
            if rec is None:
                continue
            key, initiated, upload_id, uid = rec
            body.append(f"<Upload>{x('Key', e(key))}{x('UploadId', upload_id)}<Initiator>{x('ID', uid)}</Initiator>"
                        f"<Owner>{x('ID', uid)}</Owner><StorageClass>STANDARD</StorageClass>"
                        f"{x('Initiated', iso(initiated))}</Upload>")
        body.extend(f"<CommonPrefixes>{x('Prefix', e(sort[0].decode()))}</CommonPrefixes>"
                    for sort, rec in items if rec is None)
        return web.Response(body=xml_doc("ListMultipartUploadsResult", "".join(body)),
                            content_type="application/xml")

    async def _marker(self, c: AsyncClient, root: str, key_marker: str,
                      id_marker: str) -> Callable[[tuple[bytes, int, str]], bool]:
        """Whether an upload (by its sort key) comes after the markers: past every upload of `key_marker`
        without an upload-id-marker, else just past that upload (by initiation time; by id when it is gone)."""
        km = key_marker.encode()
        if not key_marker:
            return lambda sort: True
        if not id_marker:
            return lambda sort: sort[0] > km
        rec = await self._upload_record(c, root, id_marker) if _UPLOAD_ID.match(id_marker) else None
        if rec is not None and rec[0] == key_marker:
            at = (km, rec[1], id_marker)
            return lambda sort: sort > at
        return lambda sort: sort[0] > km or (sort[0] == km and sort[2] > id_marker)

    async def abort(self, ctx: Ctx) -> web.Response:
        await self.gw.require_bucket(ctx)
        updir, _ = await self._info(ctx)
        await ctx.client.rmtree(updir)
        return web.Response(status=204)

    @staticmethod
    def _listed(root) -> list[tuple[int, str]]:
        """(part number, ETag) pairs of a CompleteMultipartUpload body, checked for order."""
        listed: list[tuple[int, str]] = []
        for p in root.findall("Part"):
            try:
                listed.append((int(p.findtext("PartNumber") or ""), (p.findtext("ETag") or "").strip().strip('"')))
            except ValueError:
                raise S3Error("MalformedXML", "PartNumber must be an integer") from None
        if not listed:
            raise S3Error("MalformedXML", "You must specify at least one part")
        for (a, _), (b, _) in itertools.pairwise(listed):
            if b <= a:
                raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. Parts must be "
                                                  "ordered by part number.")
        return listed

    async def _validate(self, ctx: Ctx, updir: str, listed: list[tuple[int, str]]) -> list[ObjectMeta]:
        """The records of the listed parts: InvalidPart unless each exists with the listed ETag,
        EntityTooSmall when a part but the last is below the minimum part size."""
        metas = await asyncio.gather(*(read_meta(ctx.client, f"{updir}/{n:05d}") for n, _ in listed),
                                     return_exceptions=True)
        for (n, etag), meta in zip(listed, metas):
            if not isinstance(meta, ObjectMeta) or not meta.etag or meta.etag != etag:
                raise S3Error("InvalidPart", f"One or more of the specified parts could not be found (part {n}). "
                                             "The part may not have been uploaded, or the specified entity tag may "
                                             "not match the part's entity tag.")
        for (n, _), meta in list(zip(listed, metas))[:-1]:
            if meta.size < self.gw.min_part_size:
                raise S3Error("EntityTooSmall", f"Your proposed upload is smaller than the minimum allowed size "
                                                f"(part {n} is {meta.size} bytes; parts but the last need "
                                                f"{self.gw.min_part_size})")
        return metas                                    # type: ignore[return-value]

    async def _seal(self, ctx: Ctx, updir: str) -> tuple[bool, bool]:
        """Stop new in-place part writes. Returns (sealed here, idle): whether this call created the seal
        (then it alone may lift it) and whether no in-place write is in flight, so that the staging file
        may become the object.

        A writer takes its lock and then looks for the seal; completion seals and then looks for locks: one
        of the two always sees the other. A lock left by a crashed gateway only costs the copy-free path."""
        c = ctx.client
        mine = True
        try:
            await c.mknod(f"{updir}/{SEALED}", 0o600)
        except FileExistsError:
            mine = False                    # another completion is running, or one failed without lifting it
        except (FileNotFoundError, NotADirectoryError):
            raise _no_upload(ctx.query["uploadId"]) from None
        page = await c.list_page(updir, LOCK_PREFIX[:-1], 1)
        return mine, not any(e.name.startswith(LOCK_PREFIX) for e in page.entries)

    @staticmethod
    async def _unseal(c: AsyncClient, updir: str) -> None:
        try:
            await c.remove(f"{updir}/{SEALED}")
        except OSError:
            pass

    @staticmethod
    def _staging_plan(listed: list[tuple[int, str]], metas: list[ObjectMeta], psize: int | None,
                      idle: bool) -> int | None:
        """Bytes the staging path would copy, or None when the staging file cannot become the object: the parts
        must be numbered 1..n, every part but the last exactly S bytes, staged parts at (p-1)*S, and no
        in-place write in flight."""
        if not idle or psize is None or [n for n, _ in listed] != list(range(1, len(listed) + 1)):
            return None
        for (n, _), m in zip(listed, metas):
            if (n < len(listed) and m.size != psize) or (m.part_at >= 0 and m.part_at != (n - 1) * psize):
                return None
        return sum(m.size for m in metas if m.part_at < 0)

    async def complete(self, ctx: Ctx) -> web.Response:
        gw = self.gw
        await gw.require_bucket(ctx)
        updir, info = await self._info(ctx)
        from threefs.gateway.s3.app import parse_xml, x, xml_doc
        listed = self._listed(parse_xml(await gw.read_small_body(ctx)))
        c = ctx.client
        sealed_here, idle = await self._seal(ctx, updir)
        done = False
        try:
            metas = await self._validate(ctx, updir, listed)
            etag = hashlib.md5(b"".join(bytes.fromhex(m.etag) for m in metas)).hexdigest() + f"-{len(listed)}"
            psize = await self._part_size(c, updir)
            staged_cost = self._staging_plan(listed, metas, psize, idle)
            copy_cost = sum(m.size for m in metas) - (metas[0].size if metas[0].part_at < 0 else 0)
            if staged_cost is not None and (staged_cost == 0 or staged_cost < copy_cost) and \
                    await c.exists(f"{updir}/{STAGING}"):
                await self._finish_in_staging(ctx, updir, info, listed, metas, psize, etag)  # type: ignore[arg-type]
                MP_COPIED.inc(staged_cost)
                MP_COMPLETED.labels("staging").inc()
            else:
                await self._finish_by_copy(ctx, updir, info, listed, metas, etag)
                MP_COPIED.inc(copy_cost)
                MP_COMPLETED.labels("copy").inc()
            done = True
        finally:
            if not done and sealed_here:
                await self._unseal(c, updir)
        await c.rmtree(updir)
        body = x("Location", f"/{ctx.bucket}/{ctx.key}") + x("Bucket", ctx.bucket) + x("Key", ctx.key) + \
            x("ETag", f'"{etag}"')
        return web.Response(body=xml_doc("CompleteMultipartUploadResult", body), content_type="application/xml")

    def _object_meta(self, info: dict, etag: str, size: int, mtime_ns: int, parts: int) -> ObjectMeta:
        """The completed object's S3 metadata: what CreateMultipartUpload was given, plus ETag and size."""
        meta = ObjectMeta.loads(info["meta"].encode())
        meta.etag, meta.size, meta.mtime_ns, meta.parts = etag, size, mtime_ns, parts
        return meta

    @staticmethod
    async def _copy_parts(c: AsyncClient, dst: AsyncFile, moves: list[tuple[tuple[str, int], int, int]]) -> None:
        """Stream each ((source path, offset), destination offset, size) into `dst`, two parts at a time."""
        sem = asyncio.Semaphore(2)

        async def one(src_at: tuple[str, int], off: int, size: int) -> None:
            async with sem:
                src = await c.open(src_at[0], "rb")
                try:
                    w = BlockWriter(dst, off)
                    try:
                        async for data in read_blocks(src, src_at[1], src_at[1] + size):
                            await w.write(data)
                        await w.finish()
                    except BaseException:
                        await w.abort()
                        raise
                finally:
                    await src.close()

        await asyncio.gather(*(one(s, off, size) for s, off, size in moves if size))

    async def _finish_in_staging(self, ctx: Ctx, updir: str, info: dict, listed: list[tuple[int, str]],
                                 metas: list[ObjectMeta], psize: int, etag: str) -> None:
        """Make the staging file the object: copy in the parts that have files of their own, cut it to the
        object's length (dropping stale bytes of shorter re-uploads and unlisted parts), rename it into place."""
        c = ctx.client
        staging = f"{updir}/{STAGING}"
        total = psize * (len(listed) - 1) + metas[-1].size
        moves = [(_source(updir, n, m), (n - 1) * psize, m.size) for (n, _), m in zip(listed, metas)
                 if m.part_at < 0]
        f = await c.open_flags(staging, os.O_WRONLY)
        try:
            await self._copy_parts(c, f, moves)
            await f.truncate(total)
        except BaseException:
            await f.close()
            await self._drop_staged_beyond(ctx, updir, len(listed))
            raise
        await f.close()
        try:
            inode = (await c.stat(staging)).inode
            if inode.length != total:
                raise S3Error("InternalError", f"the assembled object has {inode.length} bytes, not {total}")
            meta = self._object_meta(info, etag, total, inode.mtime_ns, len(listed))
            await c.setxattr(staging, META_XATTR, meta.dumps())
            await self.gw.rename_into_place(ctx, staging, ctx.opath, False)
        except BaseException:
            await self._drop_staged_beyond(ctx, updir, len(listed))
            raise

    async def _drop_staged_beyond(self, ctx: Ctx, updir: str, n: int) -> None:
        """After the staging file was cut to the length of parts 1..n, staged parts above n lost their bytes:
        forget them, so that a later completion naming them fails with InvalidPart instead of reading zeros."""
        try:
            parts, _ = await self._parts(ctx, updir, n, MAX_PARTS)
            for p, meta in parts:
                if meta.part_at >= 0:
                    await ctx.client.remove(f"{updir}/{p:05d}")
        except OSError:
            pass

    async def _finish_by_copy(self, ctx: Ctx, updir: str, info: dict, listed: list[tuple[int, str]],
                              metas: list[ObjectMeta], etag: str) -> None:
        """The general path: append the parts, streaming, to part 1's own file (so its bytes stay put) or,
        when part 1 is staged, to a fresh file; then rename that into place."""
        c = ctx.client
        if metas[0].part_at < 0:
            base, base_size, todo = f"{updir}/{listed[0][0]:05d}", metas[0].size, list(zip(listed, metas))[1:]
            f = await c.open_flags(base, os.O_WRONLY)
        else:
            base, base_size, todo = f"{updir}/.tmp-{uuid.uuid4().hex}", 0, list(zip(listed, metas))
            f = await c.open_flags(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm=0o644)
        moves, total = [], base_size
        for (n, _), m in todo:
            moves.append((_source(updir, n, m), total, m.size))
            total += m.size
        try:
            await self._copy_parts(c, f, moves)
            await f.close()
        except BaseException:
            await f.close()
            await self._undo(ctx, base, base_size, None)
            raise
        meta = self._object_meta(info, etag, total, f.inode.mtime_ns, len(listed))
        try:
            await c.setxattr(base, META_XATTR, meta.dumps())
            await self.gw.rename_into_place(ctx, base, ctx.opath, False)
        except BaseException:
            await self._undo(ctx, base, base_size, metas[0] if metas[0].part_at < 0 else None)
            raise

    async def _undo(self, ctx: Ctx, base: str, size: int, meta: ObjectMeta | None) -> None:
        """Undo a failed completion by copy: a fresh assembly file goes; part 1's file gets its length (and,
        given `meta`, its record) back, so a retry works."""
        if not base.rsplit("/", 1)[1].startswith(".tmp-"):
            await self._restore(ctx, base, size, meta)
            return
        try:
            await ctx.client.remove(base)
        except OSError:
            pass

    async def _restore(self, ctx: Ctx, base: str, size: int, meta: ObjectMeta | None = None) -> None:
        """Undo a failed completion: the first part gets its length (and record) back, so a retry works."""
        try:
            await ctx.client.truncate(base, size)
            if meta is not None:
                s = await ctx.client.stat(base)
                meta.mtime_ns = s.inode.mtime_ns
                await ctx.client.setxattr(base, META_XATTR, meta.dumps())
        except OSError:
            pass
