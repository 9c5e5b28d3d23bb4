"""Checkpoints on threefs: one file per state dict, tensors written by parallel large writes.

    save_checkpoint(model.state_dict(), "/ckpt/step-100.3fs", client=c)
    model.load_state_dict(load_checkpoint("/ckpt/step-100.3fs", client=c))

File layout: 8-byte magic, u64 header length, a JSON header (the state dict's structure with
every tensor replaced by a reference to {dtype, shape, offset, nbytes}), then the raw tensor bytes,
each aligned to 4 KiB. The file is written under a temporary name, fsynced and renamed, so a
reader sees the old checkpoint or the whole new one. torch tensors (any dtype, bfloat16 included)
and NumPy arrays are stored; other leaves must be JSON values.
"""
from __future__ import annotations

import asyncio
import errno
import json
import math
import posixpath
import struct
import uuid
from typing import Any

from threefs.client.fs import AsyncFile, Client

try:
    import torch
except ImportError:  # torch is optional: NumPy arrays work without it
    torch = None
try:
    import numpy
except ImportError:  # numpy is optional too
    numpy = None

__all__ = ["save_checkpoint", "load_checkpoint", "MAGIC"]

MAGIC = b"3FSCKPT\x01"
_PREFIX = struct.Struct("<8sQ")
ALIGN = 4096
READ_WINDOW = 64 << 20
READS_IN_FLIGHT = 4


def _align(n: int, a: int = ALIGN) -> int:
    return -(-n // a) * a


def _raw(value: Any) -> tuple[dict[str, Any], memoryview] | None:
    """(metadata, bytes view) of a tensor/array leaf (no copy when it is already contiguous on the CPU)."""
    if torch is not None and isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        flat = t.reshape(-1)
        data = memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")
        return {"kind": "torch", "dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)}, data
    if numpy is not None and isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            raise TypeError("NumPy arrays of Python objects cannot be checkpointed")
        a = numpy.ascontiguousarray(value)
        meta = {"kind": "numpy", "dtype": a.dtype.str, "shape": list(a.shape)}
        return meta, memoryview(a.reshape(-1).view(numpy.uint8))
    return None


def _encode(value: Any, blobs: list[tuple[dict[str, Any], memoryview]]) -> Any:
    """The JSON form of a (nested) state: tensors become {"__tensor__": i}, blobs[i] their bytes."""
    leaf = _raw(value)
    if leaf is not None:
        blobs.append(leaf)
        return {"__tensor__": len(blobs) - 1}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, blobs), _encode(v, blobs)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, blobs) for v in value]}
    if isinstance(value, list):
        return [_encode(v, blobs) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__}: use tensors, arrays, dicts, lists and JSON values")


def _decode(value: Any, tensors: list[Any]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _client(client: Client | None, mgmtd: str | None) -> tuple[Client, bool]:
    return (client, False) if client is not None else (Client(mgmtd), True)


def save_checkpoint(state_dict: Any, path: str, client: Client | None = None, *, mgmtd: str | None = None,
                    fsync: bool = True) -> int:
    """Write `state_dict` (nested dicts/lists of tensors, arrays and JSON values) to `path`; returns its size."""
    blobs: list[tuple[dict[str, Any], memoryview]] = []
    tree = _encode(state_dict, blobs)
    metas = []
    for meta, data in blobs:
        metas.append({**meta, "nbytes": data.nbytes})
    # offsets relative to the data start, which depends on the header length: iterate to a fixed point
    data_start = 0
    while True:
        offset = data_start
        for m in metas:
            m["offset"] = offset
            offset = _align(offset + m["nbytes"])
        header = json.dumps({"version": 1, "tensors": metas, "state": tree}, separators=(",", ":")).encode()
        start = _align(_PREFIX.size + len(header))
        if start == data_start:
            break
        data_start = start
    end = max([m["offset"] + m["nbytes"] for m in metas], default=data_start)
    end = max(end, data_start)
    c, owned = _client(client, mgmtd)
    temp = posixpath.join(posixpath.dirname(path) or "/", f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        async def write() -> None:
            f = await c.aio.open(temp, "wb")
            try:
                jobs = [f.pwrite(_PREFIX.pack(MAGIC, len(header)) + header, 0)]
                jobs += [f.pwrite(data, m["offset"]) for m, (_, data) in zip(metas, blobs) if m["nbytes"]]
                await asyncio.gather(*jobs)   # each large write is split per chunk and sent in parallel
                if end > f.length:
                    await f.truncate(end)
                if fsync:
                    await f.fsync()
            finally:
                await f.close()

        try:
            c.run(write())
            c.rename(temp, path)
        except BaseException:
            try:
                c.remove(temp)
            except OSError:
                pass
            raise
    finally:
        if owned:
            c.close()
    return end


async def _read_into(f: AsyncFile, view: memoryview, offset: int) -> None:
    """Fill `view` from `offset`, in windows read concurrently (each batched per storage node)."""
    sem = asyncio.Semaphore(READS_IN_FLIGHT)

    async def window(lo: int) -> None:
        async with sem:
            part = view[lo:lo + READ_WINDOW]
            n = await f.preadinto(part, offset + lo)
            if n != len(part):
                raise OSError(errno.EIO, f"checkpoint is truncated at {offset + lo + n} bytes", f.path)

    await asyncio.gather(*(window(lo) for lo in range(0, len(view), READ_WINDOW)))


def load_checkpoint(path: str, client: Client | None = None, *, mgmtd: str | None = None) -> Any:
    """Read a checkpoint written by save_checkpoint: the same structure, tensors with identical dtype/shape/bytes.

    Tensors of one checkpoint share one buffer (no per-tensor copies); torch tensors come back as
    torch tensors (requires torch), NumPy arrays as arrays.
    """
    c, owned = _client(client, mgmtd)
    try:
        async def read() -> tuple[dict[str, Any], int, bytearray]:
            f = await c.aio.open(path, "rb")
            try:
                first = bytearray(min(f.length, 1 << 16))
                await _read_into(f, memoryview(first), 0)
                if len(first) < _PREFIX.size or first[:8] != MAGIC:
                    raise ValueError(f"{path} is not a threefs checkpoint")
                _, hlen = _PREFIX.unpack_from(first)
                if _PREFIX.size + hlen > len(first):
                    rest = bytearray(_PREFIX.size + hlen)
                    await _read_into(f, memoryview(rest), 0)
                    first = rest
                header = json.loads(bytes(first[_PREFIX.size:_PREFIX.size + hlen]))
                metas = header["tensors"]
                lo = min((m["offset"] for m in metas), default=0)
                hi = max((m["offset"] + m["nbytes"] for m in metas), default=0)
                buf = bytearray(max(0, hi - lo))
                if buf:
                    await _read_into(f, memoryview(buf), lo)
                return header, lo, buf
            finally:
                await f.close()

        header, base, buf = c.run(read())
    finally:
        if owned:
            c.close()
    tensors = [_materialize(m, buf, m["offset"] - base) for m in header["tensors"]]
    return _decode(header["state"], tensors)


def _materialize(meta: dict[str, Any], buf: bytearray, offset: int) -> Any:
    shape = tuple(meta["shape"])
    count = math.prod(shape)
    if meta["kind"] == "torch":
        if torch is None:
            raise ModuleNotFoundError("this checkpoint holds torch tensors: install torch to load it")
        dtype = getattr(torch, meta["dtype"])
        if count == 0:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape)
    if numpy is None:
        raise ModuleNotFoundError("this checkpoint holds NumPy arrays: install numpy to load it")
    dtype = numpy.dtype(meta["dtype"])
    return numpy.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape)
