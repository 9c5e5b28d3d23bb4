"""The fault tests' client process: several tasks of sustained concurrent writes and reads, with a ledger.

Run as `python workload.py --mgmtd ADDR --out DIR --stop-file PATH`. Each task owns a file of fixed
slots (whole chunks and parts of chunks) and rewrites them with numbered versions; every region is
filled with 16-byte records (magic, task, slot, version, CRC of the record), so a read can tell exactly
which version it saw and whether it is torn (records of different versions mixed). Each task also
appends records to its own log file, so every acknowledged append stays readable to the end. Reads (own
and other tasks' slots, through two independent clients) must return one whole version v with
    acknowledged-before-the-read-started <= v <= issued-before-the-read-ended,
or zeros for a slot never written. Every acknowledged write goes to DIR/ledger.jsonl (path, offset,
length, CRC32C) the moment it is acknowledged; violations and errors too. On the stop file the tasks
finish, files are closed and DIR/summary.json is written; the exit status is 0 only without violations.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field

from crc32c import crc32c

from threefs.client.fs import AsyncClient, AsyncFile

RECORD = 16
MAGIC = b"TF"
LOG_RECORD = 4096
_REC = struct.Struct("<2sHHHI")       # magic, task, slot, reserved, version  (+ u32 crc)


def record(task: int, slot: int, version: int) -> bytes:
    head = _REC.pack(MAGIC, task, slot, 0, version)
    return head + struct.pack("<I", crc32c(head))


def pattern(task: int, slot: int, version: int, length: int) -> bytes:
    """`length` bytes (a multiple of 16) of identical records naming (task, slot, version)."""
    return record(task, slot, version) * (length // RECORD)


def decode(region: bytes) -> tuple[str, int]:
    """('zero', 0), ('ok', version) or ('torn' / 'corrupt', -1) for a region read back."""
    if not any(region):
        return "zero", 0
    first = region[:RECORD]
    magic, _task, _slot, _res, version = _REC.unpack_from(first)
    if magic != MAGIC or struct.unpack_from("<I", first, 12)[0] != crc32c(first[:12]):
        return "corrupt", -1
    if region != first * (len(region) // RECORD):
        return "torn", -1
    return "ok", version


def slots(chunk: int, chunks: int) -> list[tuple[int, int]]:
    """(offset, length) of the slots of a task file: even chunks whole, odd chunks in parts."""
    out: list[tuple[int, int]] = []
    for i in range(chunks):
        base = i * chunk
        if i % 2 == 0:
            out.append((base, chunk))
        elif i % 4 == 1:
            q = chunk // 4
            out += [(base, q), (base + q, 2 * q), (base + 3 * q, q)]
        else:
            e = chunk // 8
            out += [(base, e), (base + 4 * e, e)]
    return out


@dataclass
class Slot:
    task: int
    index: int
    path: str
    offset: int
    length: int
    issued: int = 0
    acked: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Workload:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.rnd = random.Random(ns.seed)
        self.stop = asyncio.Event()
        self.ledger = open(os.path.join(ns.out, "ledger.jsonl"), "a", buffering=1)
        self.stats = {"writes": 0, "reads": 0, "appends": 0, "meta_ops": 0, "bytes_written": 0, "bytes_read": 0,
                      "violations": 0, "errors": 0, "read_retries": 0}
        self.slots: list[Slot] = []
        self.files: dict[tuple[int, str], AsyncFile] = {}     # (client index, path) -> open file
        self.clients: list[AsyncClient] = []
        self.log_len: dict[int, int] = {}

    def note(self, **rec) -> None:
        self.ledger.write(json.dumps(rec, separators=(",", ":")) + "\n")

    async def setup(self) -> None:
        ns = self.ns
        for _ in range(ns.clients):
            self.clients.append(await AsyncClient(ns.mgmtd, retry_timeout=ns.retry_timeout).connect())
        await self.clients[0].makedirs(ns.dir, exist_ok=True)
        for t in range(ns.tasks):
            ci = t % ns.clients                 # a task writes through its own client
            c = self.clients[ci]
            path = f"{ns.dir}/task-{t}"
            f = await c.open(path, "w+b")
            await f.truncate(ns.chunks * ns.chunk)
            self.files[(ci, path)] = f
            for i, (off, ln) in enumerate(slots(ns.chunk, ns.chunks)):
                self.slots.append(Slot(t, i, path, off, ln))
            lp = f"{ns.dir}/log-{t}"
            self.files[(ci, lp)] = await c.open(lp, "w+b")
            self.log_len[t] = 0

    async def reader_file(self, ci: int, path: str) -> AsyncFile:
        f = self.files.get((ci, path))
        if f is None:
            f = self.files[(ci, path)] = await self.clients[ci].open(path, "rb")
        return f

    async def write_slot(self, task: int, s: Slot) -> None:
        async with s.lock:                      # one writer per slot: versions are acknowledged in order
            v = s.issued + 1
            data = pattern(task, s.index, v, s.length)
            s.issued = v
            f = self.files[(task % self.ns.clients, s.path)]
            await f.pwrite(data, s.offset)
            s.acked = v
        self.stats["writes"] += 1
        self.stats["bytes_written"] += len(data)
        self.note(k="w", p=s.path, o=s.offset, n=s.length, v=v, d=crc32c(data), t=task, s=s.index)

    async def append_log(self, task: int) -> None:
        path = f"{self.ns.dir}/log-{task}"
        n = self.log_len[task] // LOG_RECORD
        data = pattern(task, 1000 + n % 60000, n + 1, LOG_RECORD)
        off = self.log_len[task]
        await self.files[(task % self.ns.clients, path)].pwrite(data, off)
        self.log_len[task] = off + LOG_RECORD
        self.stats["appends"] += 1
        self.stats["bytes_written"] += len(data)
        self.note(k="w", p=path, o=off, n=LOG_RECORD, v=n + 1, d=crc32c(data), t=task, s=-1)

    async def read_slot(self, ci: int, s: Slot) -> None:
        lower = s.acked
        f = await self.reader_file(ci, s.path)
        data = await f.pread(s.length, s.offset)
        upper = s.issued
        self.stats["reads"] += 1
        self.stats["bytes_read"] += len(data)
        kind, v = decode(data) if len(data) == s.length else ("short", -1)
        ok = kind in ("ok", "zero") and lower <= v <= upper
        if ok and kind == "ok":
            _, task, slot, _, _ = _REC.unpack_from(data)
            ok = (task, slot) == (s.task, s.index)
        if not ok:
            self.stats["violations"] += 1
            self.note(k="bad", p=s.path, o=s.offset, n=s.length, kind=kind, v=v, lower=lower, upper=upper,
                      client=ci, got=len(data))
            print(f"VIOLATION {s.path}@{s.offset}: {kind} v={v} expected [{lower}, {upper}] via client {ci}",
                  file=sys.stderr, flush=True)

    async def meta_ops(self, task: int) -> None:
        """Namespace traffic through meta: stat, a small scratch file written and closed, an fsync."""
        c = self.clients[task % self.ns.clients]
        await c.stat(f"{self.ns.dir}/task-{task}")
        scratch = f"{self.ns.dir}/scratch-{task}-{self.stats['meta_ops'] % 4}"
        payload = pattern(task, 999, self.stats["meta_ops"] + 1, 4096)
        await c.write_file(scratch, payload)
        await self.files[(task % self.ns.clients, f"{self.ns.dir}/log-{task}")].fsync()
        self.stats["meta_ops"] += 1

    async def task(self, t: int) -> None:
        rnd = random.Random(self.ns.seed * 1000 + t)
        mine = [s for s in self.slots if s.task == t]
        ops = 0
        while not self.stop.is_set():
            ops += 1
            try:
                r = rnd.random()
                if self.ns.meta_every and ops % self.ns.meta_every == 0:
                    await self.meta_ops(t)
                elif r < self.ns.read_ratio:
                    s = rnd.choice(self.slots) if rnd.random() < 0.5 else rnd.choice(mine)
                    await self.read_slot(rnd.randrange(self.ns.clients), s)
                elif r < self.ns.read_ratio + 0.1:
                    await self.append_log(t)
                else:
                    await self.write_slot(t, rnd.choice(mine))
            except OSError as e:
                self.stats["errors"] += 1
                self.note(k="err", t=t, error=f"{type(e).__name__}: {e}")
                print(f"ERROR task {t}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                return
            if self.ns.pause:
                await asyncio.sleep(self.ns.pause)

    async def watch_stop(self) -> None:
        while not os.path.exists(self.ns.stop_file):
            await asyncio.sleep(0.05)
        self.stop.set()

    async def run(self) -> int:
        started = time.monotonic()
        await self.setup()
        self.note(k="ready")
        watcher = asyncio.create_task(self.watch_stop())
        await asyncio.gather(*(self.task(t) for t in range(self.ns.tasks)))
        watcher.cancel()
        for f in self.files.values():
            await f.close()
        for c in self.clients:
            await c.close()
        self.stats["seconds"] = round(time.monotonic() - started, 2)
        self.stats["log_lengths"] = {f"{self.ns.dir}/log-{t}": n for t, n in self.log_len.items()}
        with open(os.path.join(self.ns.out, "summary.json"), "w") as out:
            json.dump(self.stats, out)
        self.ledger.close()
        return 0 if not self.stats["violations"] and not self.stats["errors"] else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mgmtd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--dir", default="/wl")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=64 << 10)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--read-ratio", type=float, default=0.45)
    ap.add_argument("--meta-every", type=int, default=25)
    ap.add_argument("--retry-timeout", type=float, default=60.0)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args()
    os.makedirs(ns.out, exist_ok=True)
    try:
        code = asyncio.run(Workload(ns).run())
    except Exception:
        traceback.print_exc()
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
