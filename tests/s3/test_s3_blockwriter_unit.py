"""BlockWriter (no server): a body streamed in odd-sized pieces lands intact and in order, hashed in
order on every lane, in a bounded number of buffers (never the whole object), and a failed write
surfaces and is cleaned up."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import zlib

import pytest

from threefs.gateway.s3 import objects
from threefs.gateway.s3.errors import S3Error
from threefs.gateway.s3.objects import BlockWriter, Checksums


class FakeFile:
    """pwrite into a bytearray after a short delay (writes complete out of order)."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.data = bytearray()
        self.fail_at = fail_at
        self.inflight = 0
        self.max_inflight = 0

    async def pwrite(self, data, offset: int) -> int:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(0.001 * (1 + (offset >> 20) % 3))
            if self.fail_at is not None and offset >= self.fail_at:
                raise OSError(5, "injected write failure")
            end = offset + len(data)
            if len(self.data) < end:
                self.data.extend(bytes(end - len(self.data)))
            self.data[offset:end] = data
            return len(data)
        finally:
            self.inflight -= 1


def _pieces(data: bytes, sizes=(1, 70_001, 262_144, 3_000_000, 5)):
    pos, i = 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        yield data[pos:pos + n]
        pos += n
        i += 1


@pytest.mark.parametrize("expect", [True, False])
def test_stream_is_written_and_hashed_in_order(expect):
    data = os.urandom(3 * objects.WRITE_BLOCK + 12_345)
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    sums = Checksums(base64.b64encode(hashlib.md5(data).digest()).decode(), hashlib.sha256(data).hexdigest(),
                     {"crc32": crc})
    f = FakeFile()
    allocated = []

    async def run() -> int:
        w = BlockWriter(f, hasher=sums.lanes(), expect=len(data) if expect else None)
        for p in _pieces(data):
            await w.write(p)
            allocated.append(w.nbufs)
        return await w.finish()

    assert asyncio.run(run()) == len(data)
    assert bytes(f.data) == data
    sums.verify()
    assert sums.size == len(data) and sums.md5.hexdigest() == hashlib.md5(data).hexdigest()
    assert max(allocated) <= objects.MAX_BUFFERS             # bounded, whatever the object's length
    assert f.max_inflight <= objects.MAX_BUFFERS


def test_bad_digest_is_still_detected():
    data = os.urandom(2 * objects.WRITE_BLOCK + 7)
    sums = Checksums(None, hashlib.sha256(data[:-1] + b"x").hexdigest(), {})

    async def run() -> None:
        w = BlockWriter(FakeFile(), hasher=sums.lanes(), expect=len(data))
        for p in _pieces(data):
            await w.write(p)
        await w.finish()

    asyncio.run(run())
    with pytest.raises(S3Error) as e:
        sums.verify()
    assert e.value.code == "XAmzContentSHA256Mismatch"


def test_write_failure_surfaces_and_abort_reaps():
    data = os.urandom(6 * objects.WRITE_BLOCK)
    sums = Checksums(None, None, {})

    async def run() -> None:
        w = BlockWriter(FakeFile(fail_at=objects.WRITE_BLOCK), hasher=sums.lanes())
        try:
            for p in _pieces(data):
                await w.write(p)
            await w.finish()
        except BaseException:
            await w.abort()
            assert not w.pending
            raise

    with pytest.raises(OSError):
        asyncio.run(run())
