"""Helpers shared by the chunk-engine unit tests: chunk ids, a committed write, reading a whole chunk."""
from __future__ import annotations

from crc32c import crc32c

from threefs.proto.storage_pb2 import WRITE
from threefs.storage.chunk_engine import ChunkEngine

CS = 1 << 20  # chunk size used by most tests


def cid(i: int) -> bytes:
    return b"\0\0" + i.to_bytes(14, "big")


def write(e: ChunkEngine, c: bytes, ver: int, offset: int, data: bytes, **kw):
    return e.update(
        c, update_ver=ver, chain_ver=1, kind=WRITE, offset=offset, data=data, data_crc=crc32c(data),
        chunk_size=kw.pop("chunk_size", CS), **kw,
    )


def put(e: ChunkEngine, c: bytes, ver: int, offset: int, data: bytes) -> None:
    write(e, c, ver, offset, data)
    e.commit(c, ver, 1)


def content(e: ChunkEngine, c: bytes, *, relaxed: bool = False) -> bytes:
    data, _ = e.read(c, 0, CS, relaxed=relaxed)
    return bytes(data)
