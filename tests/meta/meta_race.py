"""The namespace race shared by the concurrency tests: many client tasks apply random operations to
a small shared set of names under two directories, A and B, for a bounded time."""
from __future__ import annotations

import asyncio
import errno
import random
import time

from meta_util import CHUNK
from threefs.client.fs import AsyncClient
from threefs.proto import common_pb2 as cpb

NAMES = [f"n{i}" for i in range(6)]
EXPECTED = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR, errno.EINVAL}


def random_path(rng: random.Random, wd: str) -> str:
    parts = [rng.choice("AB")] + [rng.choice(NAMES) for _ in range(rng.choice((1, 1, 1, 2, 2, 3)))]
    return f"{wd}/" + "/".join(parts)


async def worker(c: AsyncClient, wd: str, seed: int, deadline: float, counts: dict[str, int]) -> None:
    """Apply random operations until `deadline`; POSIX errors a race can cause are expected, others fail."""
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        op = rng.choice(["create", "create", "write", "mkdir", "mkdir", "rename", "rename", "rename", "unlink",
                         "rmdir", "rmtree", "link"])
        a, b = random_path(rng, wd), random_path(rng, wd)
        try:
            if op == "create":
                await c.mknod(a)
            elif op == "write":
                f = await c.open(a, "wb")
                try:
                    await f.write(bytes([seed % 251]) * rng.choice((10, CHUNK + 10)))
                finally:
                    await f.close()
            elif op == "mkdir":
                await c.mkdir(a)
            elif op == "rename":
                await c.rename(a, b)
            elif op == "unlink":
                await c.remove(a)
            elif op == "rmdir":
                await c.rmdir(a)
            elif op == "rmtree":
                await c.rmtree(a)
            else:
                await c.link(a, b)
            counts[op] = counts.get(op, 0) + 1
        except OSError as e:
            if e.errno not in EXPECTED and not (op == "link" and e.errno == errno.EPERM):
                raise AssertionError(f"{op} {a} {b}: unexpected {errno.errorcode.get(e.errno)}: {e}") from e
            counts["failed"] = counts.get("failed", 0) + 1


async def race(mgmtd: str, wd: str, duration: float, tasks: int = 16) -> dict[str, int]:
    """Run `tasks` racing workers on 4 clients for `duration` seconds; returns op counts."""
    clients = [await AsyncClient(mgmtd, user=cpb.UserInfo(uid=0), retry_timeout=20).connect() for _ in range(4)]
    try:
        await clients[0].mkdir(f"{wd}/A")
        await clients[0].mkdir(f"{wd}/B")
        counts: dict[str, int] = {}
        deadline = time.monotonic() + duration
        await asyncio.gather(*(worker(clients[i % len(clients)], wd, i, deadline, counts) for i in range(tasks)))
        return counts
    finally:
        for c in clients:
            await c.close()
