"""Multipart uploads: each upload is a directory `<bucket>/.s3-uploads/<uploadId>/`, each part a file in it.

Completion turns the first part's file into the object (renamed into place, so its bytes are never
copied) and appends the other parts to it with pipelined reads and writes.
"""
from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

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
)

if TYPE_CHECKING:
    from threefs.gateway.s3.app import Ctx, S3Gateway

UPLOAD_XATTR = "user.s3.upload"
MAX_PARTS = 10000
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_PART_NAME = re.compile(r"^\d{5}$")


def _no_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the "
                                   "upload may have been aborted or completed.", resource=upload_id)


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
        info = {"key": ctx.key, "meta": meta.dumps().decode(), "initiated": time.time_ns(),
                "uid": ctx.user.uid if ctx.user else 0}
        await ctx.client.setxattr(updir, UPLOAD_XATTR, json.dumps(info).encode())
        from threefs.gateway.s3.app import x, xml_doc
        body = x("Bucket", ctx.bucket) + x("Key", ctx.key) + x("UploadId", upload_id)
        return web.Response(body=xml_doc("InitiateMultipartUploadResult", body), content_type="application/xml")

    async def _store_part(self, ctx: Ctx, updir: str, n: int, chunks: AsyncIterator[bytes], sums: Checksums,
                          expect: int | None, hash_blocks: bool = False) -> ObjectMeta:
        """Write a part to a temporary file in the upload directory, check it, rename it into place."""
        c = ctx.client
        tmp = f"{updir}/.tmp-{uuid.uuid4().hex}"
        try:
            size, inode = await self.gw.write_stream(c, tmp, chunks, hasher=sums.update if hash_blocks else None)
        except (FileNotFoundError, NotADirectoryError):
            raise _no_upload(ctx.query["uploadId"]) from None
        try:
            if expect is not None and size != expect:
                raise S3Error("IncompleteBody", f"received {size} of {expect} bytes")
            sums.verify()
            meta = ObjectMeta(etag=sums.md5.hexdigest(), size=size, mtime_ns=inode.mtime_ns)
            await c.setxattr(tmp, META_XATTR, meta.dumps())
            await c.rename(tmp, f"{updir}/{n:05d}")
        except BaseException:
            try:
                await c.remove(tmp)
            except OSError:
                pass
            raise
        return meta

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

    async def list_uploads(self, ctx: Ctx) -> web.Response:
        """Uploads in progress, ordered by key then initiation time (read from the bucket's uploads directory)."""
        gw = self.gw
        await gw.require_bucket(ctx)
        q = ctx.query
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        key_marker, id_marker = q.get("key-marker", ""), q.get("upload-id-marker", "")
        limit = gw._max_keys(ctx, "max-uploads")
        root = f"{ctx.bpath}/{UPLOADS_DIR}"
        ids: list[str] = []
        try:
            prev = ""
            while True:
                page = await ctx.client.list_page(root, prev, 1000)
                ids.extend(e.name for e in page.entries if _UPLOAD_ID.match(e.name))
                if not page.more or not page.entries:
                    break
                prev = page.entries[-1].name
        except FileNotFoundError:
            pass

        async def record(upload_id: str) -> tuple[str, int, str, int] | None:
            try:
                info = json.loads(await ctx.client.getxattr(f"{root}/{upload_id}", UPLOAD_XATTR))
            except (OSError, ValueError):
                return None
            return info["key"], info["initiated"], upload_id, info.get("uid", 0)

        records = [r for r in await asyncio.gather(*(record(i) for i in ids)) if r is not None]
        records = [r for r in records if r[0].startswith(prefix)]
        records.sort(key=lambda r: (r[0].encode(), r[1], r[2]))
        if key_marker:
            records = [r for r in records if r[0].encode() > key_marker.encode() or
                       (id_marker and r[0] == key_marker and r[2] > id_marker)]
        from threefs.gateway.s3.app import iso, x, xml_doc
        uploads, prefixes = [], []
        truncated = False
        for r in records:
            if len(uploads) + len(prefixes) >= limit:
                truncated = True
                break
            rest = r[0][len(prefix):]
            if delimiter and delimiter in rest:
                cp = prefix + rest[:rest.index(delimiter) + len(delimiter)]
                if not prefixes or prefixes[-1] != cp:
                    prefixes.append(cp)
                continue
            uploads.append(r)
        body = [x("Bucket", ctx.bucket), x("KeyMarker", key_marker), x("UploadIdMarker", id_marker),
                x("Prefix", prefix), x("MaxUploads", limit), x("IsTruncated", str(truncated).lower())]
        if delimiter:
            body.append(x("Delimiter", delimiter))
        if truncated and uploads:
            body.append(x("NextKeyMarker", uploads[-1][0]) + x("NextUploadIdMarker", uploads[-1][2]))
        for key, initiated, upload_id, uid in uploads:
            body.append(f"<Upload>{x('Key', key)}{x('UploadId', upload_id)}<Initiator>{x('ID', uid)}</Initiator>"
                        f"<Owner>{x('ID', uid)}</Owner><StorageClass>STANDARD</StorageClass>"
                        f"{x('Initiated', iso(initiated))}</Upload>")
        body.extend(f"<CommonPrefixes>{x('Prefix', p)}</CommonPrefixes>" for p in prefixes)
        return web.Response(body=xml_doc("ListMultipartUploadsResult", "".join(body)),
                            content_type="application/xml")

    async def abort(self, ctx: Ctx) -> web.Response:
        await self.gw.require_bucket(ctx)
        updir, _ = await self._info(ctx)
        await ctx.client.rmtree(updir)
        return web.Response(status=204)

    async def complete(self, ctx: Ctx) -> web.Response:
        gw = self.gw
        await gw.require_bucket(ctx)
        updir, info = await self._info(ctx)
        from threefs.gateway.s3.app import parse_xml, x, xml_doc
        root = parse_xml(await gw.read_small_body(ctx))
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
        metas = await asyncio.gather(*(read_meta(ctx.client, f"{updir}/{n:05d}") for n, _ in listed),
                                     return_exceptions=True)
        for (n, etag), meta in zip(listed, metas):
            if not isinstance(meta, ObjectMeta) or not meta.etag or meta.etag != etag:
                raise S3Error("InvalidPart", f"One or more of the specified parts could not be found (part {n}). "
                                             "The part may not have been uploaded, or the specified entity tag may "
                                             "not match the part's entity tag.")
        for (n, _), meta in list(zip(listed, metas))[:-1]:
            if meta.size < gw.min_part_size:
                raise S3Error("EntityTooSmall", f"Your proposed upload is smaller than the minimum allowed size "
                                                f"(part {n} is {meta.size} bytes; parts but the last need "
                                                f"{gw.min_part_size})")
        etag = hashlib.md5(b"".join(bytes.fromhex(m.etag) for m in metas)).hexdigest() + f"-{len(listed)}"
        base = f"{updir}/{listed[0][0]:05d}"
        base_size = metas[0].size
        c = ctx.client
        f = await c.open_flags(base, os.O_WRONLY)
        total = base_size
        try:
            offsets = []
            for m in metas[1:]:
                offsets.append(total)
                total += m.size
            sem = asyncio.Semaphore(2)

            async def append(n: int, off: int, size: int) -> None:
                async with sem:
                    src = await c.open(f"{updir}/{n:05d}", "rb")
                    try:
                        w = BlockWriter(f, off)
                        try:
                            async for data in read_blocks(src, 0, size):
                                await w.write(data)
                            await w.finish()
                        except BaseException:
                            await w.abort()
                            raise
                    finally:
                        await src.close()

            await asyncio.gather(*(append(n, off, m.size) for (n, _), off, m in
                                   zip(listed[1:], offsets, metas[1:])))
            await f.close()
        except BaseException:
            await f.close()
            await self._restore(ctx, base, base_size)
            raise
        meta = ObjectMeta.loads(info["meta"].encode())
        meta.etag, meta.size, meta.mtime_ns, meta.parts = etag, total, f.inode.mtime_ns, len(listed)
        try:
            await c.setxattr(base, META_XATTR, meta.dumps())
            await gw.rename_into_place(ctx, base, ctx.opath, False)
        except BaseException:
            await self._restore(ctx, base, base_size, metas[0])
            raise
        await c.rmtree(updir)
        body = x("Location", f"/{ctx.bucket}/{ctx.key}") + x("Bucket", ctx.bucket) + x("Key", ctx.key) + \
            x("ETag", f'"{etag}"')
        return web.Response(body=xml_doc("CompleteMultipartUploadResult", body), content_type="application/xml")

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
