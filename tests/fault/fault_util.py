"""The fault-injection harness: a private dev cluster, the workload process, faults, healing, verification.

`Harness` starts a cluster of real processes with short failure-detection intervals, runs
`workload.py` in its own process, kills (SIGKILL) or stops (SIGSTOP) a chosen process when a condition
holds (e.g. after N acknowledged writes or while a target is SYNCING), restarts it, waits until every
target is SERVING and UPTODATE again, stops the workload and checks: the client process exited 0 (no
crash, no read ever returned torn, uncommitted or stale data), every acknowledged write reads back
byte-exact, and every replica of every chunk holds the same committed version and checksum.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from crc32c import crc32c

from threefs.cli.devcluster import STORAGE_BASE_ID, ClusterSpec, DevCluster
from threefs.client.file_io import FileIO
from threefs.client.fs import AsyncClient
from threefs.common import placement
from threefs.mgmtd.routing import Routing
from threefs.proto import common_pb2 as cpb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from workload import LOG_RECORD, pattern, slots

T = TypeVar("T")
CHUNK = 64 << 10
FAULT_SPEC = {"base_port": 0, "storage_nodes": 3, "targets_per_node": 2, "replicas": 3, "chunk_size": CHUNK,
              "heartbeat_interval": 0.2, "heartbeat_fail_ms": 2000, "check_interval": 0.2, "bootstrap_ms": 10_000,
              "lease_ms": 3000, "gc_interval": 0.2}
WORKLOAD_DEFAULTS = {"tasks": 4, "clients": 2, "chunks": 4, "read_ratio": 0.45, "meta_every": 25,
                     "retry_timeout": 60.0}


def wait_until(pred: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll `pred` until it holds; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Ack:
    """One acknowledged write from the ledger."""

    path: str
    offset: int
    length: int
    version: int
    digest: int
    task: int
    slot: int


@dataclass
class Report:
    """What a run did and what the verification covered."""

    writes: int = 0
    reads: int = 0
    appends: int = 0
    meta_ops: int = 0
    faults: list[str] = field(default_factory=list)
    bytes_verified: int = 0
    chunks_compared: int = 0
    replicas_compared: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (f"writes={self.writes} appends={self.appends} reads={self.reads} meta_ops={self.meta_ops} "
                f"faults={len(self.faults)} bytes_verified={self.bytes_verified} chunks={self.chunks_compared} "
                f"replicas={self.replicas_compared} seconds={self.seconds:.1f}")


class Observer:
    """A client of the cluster on its own event-loop thread (routing queries, reads, replica queries)."""

    def __init__(self, mgmtd: str) -> None:
        self.mgmtd = mgmtd
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fault-observer", daemon=True)
        self.thread.start()
        self.client: AsyncClient = self.call(self._connect())

    async def _connect(self) -> AsyncClient:
        return await AsyncClient(self.mgmtd, retry_timeout=60.0).connect()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def routing(self) -> Routing:
        return self.call(self.client.mgmtd.refresh(force=True), timeout=30)

    def close(self) -> None:
        try:
            self.call(self.client.close(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


class Monitor:
    """Samples mgmtd's routing info (raw, as served) and records violations of the P-spec invariants:
    routing and chain versions never go backwards, every chain keeps a SERVING or LASTSRV target, at most
    one SYNCING target per chain, chain membership never changes (unless `membership` is switched off)."""

    def __init__(self, observer: Observer, mgmtd: str, interval: float = 0.05) -> None:
        from threefs.mgmtd.client import MgmtdClient
        self.observer = observer
        self.client = MgmtdClient(mgmtd, timeout=2.0)
        self.interval = interval
        self.membership = True
        self.violations: list[str] = []
        self.samples = 0
        self._routing = 0
        self._chains: dict[int, tuple[int, list[int]]] = {}
        self._task = observer.call(self._start())

    async def _start(self) -> asyncio.Task:
        return asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        from threefs.common.errors import FSError
        from threefs.proto import mgmtd_pb2 as mpb
        while True:
            try:
                rsp = await self.client._call("GetRoutingInfo", mpb.GetRoutingInfoReq(known_version=0))
                self.check(rsp.info)
            except FSError:
                pass                    # mgmtd down or restarting
            await asyncio.sleep(self.interval)

    def check(self, info: cpb.RoutingInfo) -> None:
        self.samples += 1
        if info.version < self._routing:
            self.violations.append(f"routing version went back: {self._routing} -> {info.version}")
        self._routing = max(self._routing, info.version)
        for c in info.chains:
            states = [t.public_state for t in c.targets]
            members = sorted(t.target_id for t in c.targets)
            if not any(s in (cpb.SERVING, cpb.LASTSRV) for s in states):
                self.violations.append(f"chain {c.chain_id} v{c.chain_version} has no SERVING or LASTSRV target")
            if sum(s == cpb.SYNCING for s in states) > 1:
                self.violations.append(f"chain {c.chain_id} v{c.chain_version} has two SYNCING targets")
            prev = self._chains.get(c.chain_id)
            if prev is not None:
                if c.chain_version < prev[0]:
                    self.violations.append(f"chain {c.chain_id} version went back: {prev[0]} -> {c.chain_version}")
                if self.membership and members != prev[1]:
                    self.violations.append(f"chain {c.chain_id} membership changed: {prev[1]} -> {members}")
            self._chains[c.chain_id] = (c.chain_version, members)

    def close(self) -> None:
        async def stop() -> None:
            self._task.cancel()
            await self.client.close()
        self.observer.call(stop(), timeout=30)


class Harness:
    """A breakable cluster plus the workload process and the checks after healing."""

    def __init__(self, root: Path, **spec) -> None:
        self.root = root
        self.dc = DevCluster(root / "cluster", ClusterSpec(**{**FAULT_SPEC, **spec}))
        self.out = root / "workload"
        self.stop_file = self.out / "STOP"
        self.proc: subprocess.Popen | None = None
        self.observer: Observer | None = None
        self.monitor: Monitor | None = None
        self.extra_files: dict[str, bytes] = {}         # written by the test itself; verified too
        self.report = Report()
        self.stopped: set[tuple[str, int]] = set()
        self._ledger_pos = 0
        self._acks = 0
        self._started = time.monotonic()

    # ---- cluster -----------------------------------------------------------------------------
    def up(self) -> Harness:
        self.dc.up(timeout=60)
        self.observer = Observer(self.dc.mgmtd_address)
        self.monitor = Monitor(self.observer, self.dc.mgmtd_address)
        return self

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for p in self.dc.procs:
            if p.pid and (p.role, p.node_id) in self.stopped:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        if self.observer is not None:
            try:
                if self.monitor is not None:
                    self.monitor.close()
                self.observer.close()
            except Exception:  # noqa: BLE001 - teardown after a failed test
                pass
        self.dc.down(timeout=10)

    def routing(self) -> Routing:
        assert self.observer is not None
        return self.observer.routing()

    def wait_routing(self, pred: Callable[[Routing], bool], timeout: float, what: str) -> Routing:
        got: list[Routing] = []

        def check() -> bool:
            try:
                r = self.routing()
            except OSError:
                return False
            got[:] = [r]
            return pred(r)

        wait_until(check, timeout, what, interval=0.05)
        return got[0]

    def chain(self, chain_id: int = 1) -> list[tuple[int, int]]:
        return [(t.target_id, t.public_state) for t in self.routing().chain(chain_id).targets]

    @staticmethod
    def node_of(target_id: int) -> int:
        return target_id // 100

    def storage_nodes(self) -> list[int]:
        return [STORAGE_BASE_ID + i for i in range(self.dc.spec.storage_nodes)]

    def node_at(self, chain_id: int, position: int) -> int:
        """The storage node holding the target at `position` (0 head, -1 tail) of a chain's serving list."""
        return self.node_of(self.routing().serving(chain_id)[position])

    def fault(self, what: str, role: str, node_id: int, sig: int) -> None:
        """Inject a fault now: SIGKILL (the process dies) or SIGSTOP (it hangs)."""
        p = self.dc.proc(role, node_id)
        self.report.faults.append(f"{what}: {signal.Signals(sig).name} {p.name} at {self._acks} acks")
        if sig == signal.SIGSTOP:
            self.dc.signal_proc(p, sig)
            self.stopped.add((role, node_id))
        else:
            self.dc.stop_proc(p, sig=sig)

    def resume(self, role: str, node_id: int) -> None:
        """SIGCONT a stopped process."""
        self.dc.signal_proc(self.dc.proc(role, node_id), signal.SIGCONT)
        self.stopped.discard((role, node_id))

    def restart(self, role: str, node_id: int) -> None:
        """Start a killed process again (same port, same data) and wait until it is ready."""
        p = self.dc.proc(role, node_id)
        env = {"THREEFS_TOKEN": self.dc.extra["token"]} if role in ("s3", "hdfs", "fuse") else None   # as `up` does
        self.dc.start_proc(p, env=env)
        self.dc.wait_ready(p, timeout=60)

    def chunks_on(self, target_id: int) -> int:
        """How many chunks a target holds now (SpaceInfo of its node)."""
        assert self.observer is not None
        c = self.observer.client
        rsp = self.observer.call(c.storage.space_info(c.mgmtd.routing.target_address(target_id)), timeout=30)
        return next(t.chunks for t in rsp.targets if t.target_id == target_id)

    def syncing_targets(self, r: Routing, node_id: int | None = None) -> list[int]:
        """Targets that are SYNCING now (on `node_id` only, if given)."""
        return [t.target_id for c in r.chains for t in r.chain(c).targets if t.public_state == cpb.SYNCING
                and (node_id is None or self.node_of(t.target_id) == node_id)]

    def excluded(self, node_id: int) -> Callable[[Routing], bool]:
        """Predicate: no chain lists a target of `node_id` as SERVING any more (mgmtd noticed)."""
        def pred(r: Routing) -> bool:
            return all(self.node_of(t) != node_id for c in r.chains for t in r.serving(c))
        return pred

    @staticmethod
    def healed(r: Routing) -> bool:
        return all(t.public_state == cpb.SERVING and r.targets[t.target_id].local_state == cpb.UPTODATE
                   for c in r.chains.values() for t in c.targets)

    def wait_healed(self, timeout: float = 90.0) -> Routing:
        """Wait until every target of every chain is SERVING and UPTODATE."""
        return self.wait_routing(self.healed, timeout, "every target SERVING and UPTODATE")

    # ---- workload ------------------------------------------------------------------------------
    def start_workload(self, **opts) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, str(HERE / "workload.py"), "--mgmtd", self.dc.mgmtd_address,
                "--out", str(self.out), "--stop-file", str(self.stop_file)]
        for k, v in {**WORKLOAD_DEFAULTS, **opts}.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        log = open(self.out / "workload.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.root)
        log.close()
        wait_until(lambda: self._poll_ledger() is not None and self._ready, 60, "the workload to start")

    _ready = False

    def _poll_ledger(self, running: bool = True) -> int:
        path = self.out / "ledger.jsonl"
        if running and self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the workload exited early ({self.proc.returncode}):\n{self.workload_log()}")
        if not path.exists():
            return 0
        with open(path, "rb") as f:
            f.seek(self._ledger_pos)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self._ledger_pos += end
        for line in chunk[:end].splitlines():
            if line.startswith(b'{"k":"w"'):
                self._acks += 1
            elif line.startswith(b'{"k":"ready"'):
                self._ready = True
            elif line.startswith((b'{"k":"bad"', b'{"k":"err"')):
                raise AssertionError(f"the workload reported {line.decode()}\n{self.workload_log()}")
        return self._acks

    def acks(self) -> int:
        return self._poll_ledger()

    def wait_acks(self, n: int, timeout: float = 60.0) -> int:
        """Wait for `n` more acknowledged writes (the workload keeps going through the fault)."""
        target = self.acks() + n
        wait_until(lambda: self._poll_ledger() >= target, timeout, f"{n} more acknowledged writes")
        return self._acks

    def write_file(self, path: str, data: bytes) -> None:
        """Write a file through the observer's client (e.g. while a replica is down) and verify it later."""
        assert self.observer is not None
        self.observer.call(self.observer.client.write_file(path, data))
        self.extra_files[path] = data

    def workload_log(self, lines: int = 30) -> str:
        path = self.out / "workload.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def finish(self) -> Report:
        """Stop the workload, check it exited cleanly, verify every acknowledged write on every replica."""
        assert self.proc is not None
        self.stop_file.touch()
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the workload did not stop:\n{self.workload_log()}") from None
        assert code == 0, f"the client process exited with {code} (crash or violation):\n{self.workload_log()}"
        self._poll_ledger(running=False)
        summary = json.loads((self.out / "summary.json").read_text())
        assert summary["violations"] == 0 and summary["errors"] == 0, summary
        r = self.report
        r.writes, r.reads, r.appends, r.meta_ops = (summary["writes"], summary["reads"], summary["appends"],
                                                    summary["meta_ops"])
        self.verify(summary)
        assert self.monitor is not None
        assert self.monitor.samples > 0, "the routing monitor never saw routing info"
        assert not self.monitor.violations, self.monitor.violations[:5]
        r.seconds = time.monotonic() - self._started
        return r

    # ---- verification --------------------------------------------------------------------------
    def ledger(self) -> list[Ack]:
        out = []
        with open(self.out / "ledger.jsonl") as f:
            for line in f:
                rec = json.loads(line)
                if rec["k"] == "w":
                    out.append(Ack(rec["p"], rec["o"], rec["n"], rec["v"], rec["d"], rec["t"], rec["s"]))
        return out

    def expected_files(self, summary: dict) -> dict[str, bytearray]:
        """Every workload file as it must read now, rebuilt from the ledger alone."""
        acks = self.ledger()
        last: dict[tuple[str, int], Ack] = {}
        for a in acks:
            prev = last.get((a.path, a.offset))
            assert prev is None or a.version == prev.version + 1 or a.slot == -1, \
                f"ledger versions of {a.path}@{a.offset} are not consecutive: {prev.version} then {a.version}"
            last[(a.path, a.offset)] = a
        tasks = {a.task for a in acks}
        chunks = WORKLOAD_DEFAULTS["chunks"]
        files: dict[str, bytearray] = {}
        for t in sorted(tasks):
            files[f"/wl/task-{t}"] = bytearray(chunks * CHUNK)
        for path, n in summary["log_lengths"].items():
            files[path] = bytearray(n)
        for path, data in self.extra_files.items():
            files[path] = bytearray(data)
        for a in last.values():
            if a.slot >= 0:
                data = pattern(a.task, a.slot, a.version, a.length)
                assert (a.offset, a.length) in slots(CHUNK, chunks)
            else:
                data = pattern(a.task, 1000 + (a.offset // LOG_RECORD) % 60000, a.version, LOG_RECORD)
            assert crc32c(data) == a.digest, f"ledger digest of {a.path}@{a.offset} does not match its pattern"
            files[a.path][a.offset:a.offset + a.length] = data
        return files

    def verify_files(self) -> Report:
        """Without a workload: verify the files the test wrote itself (byte-exact, identical replicas)."""
        assert self.observer is not None
        self.observer.call(self._verify({p: bytearray(d) for p, d in self.extra_files.items()}), timeout=300)
        return self.report

    def verify(self, summary: dict) -> None:
        """Every acknowledged write byte-exact through a fresh client, and identical replicas."""
        assert self.observer is not None
        files = self.expected_files(summary)
        self.observer.call(self._verify(files), timeout=300)

    async def _verify(self, files: dict[str, bytearray]) -> None:
        c = self.observer.client if self.observer else None
        assert c is not None
        await c.mgmtd.refresh(force=True)
        for path, expect in sorted(files.items()):
            st = await c.stat(path)
            assert st.st_size == len(expect), f"{path}: length {st.st_size}, expected {len(expect)}"
            got = await c.read_file(path)
            if got != bytes(expect):
                bad = next(i for i in range(len(expect)) if got[i] != expect[i])
                raise AssertionError(f"{path}: acknowledged data differs from offset {bad}")
            self.report.bytes_verified += len(expect)
            fio = FileIO(st.inode, c.mgmtd, c.storage)
            chunk = st.inode.layout.chunk_size       # the file's own (a test may change the cluster's)
            for idx in range(-(-len(expect) // chunk)):
                chain_id = fio.chain_of(idx)
                cid = placement.chunk_id(st.inode.id, idx)
                content = bytes(expect[idx * chunk:(idx + 1) * chunk])
                targets = [t.target_id for t in c.mgmtd.routing.chain(chain_id).targets]
                metas = []
                for tid in targets:
                    rsp = await c.storage.query_chunk(tid, cid)
                    metas.append((tid, rsp))
                found = [rsp.found for _, rsp in metas]
                if not any(found):
                    assert not any(content), f"{path} chunk {idx}: data expected but no replica has the chunk"
                    continue
                assert all(found), f"{path} chunk {idx}: missing on {[t for t, r in metas if not r.found]}"
                states = {(r.meta.commit_ver, r.meta.update_ver, r.meta.size, r.meta.checksum) for _, r in metas}
                assert len(states) == 1, f"{path} chunk {idx}: replicas differ: " + ", ".join(
                    f"{t}: commit {r.meta.commit_ver} update {r.meta.update_ver} size {r.meta.size} "
                    f"crc {r.meta.checksum:08x}" for t, r in metas)
                commit, update, size, checksum = states.pop()
                assert commit == update, f"{path} chunk {idx}: a pending version is left on the replicas"
                assert checksum == crc32c(content[:size]), f"{path} chunk {idx}: replica checksum is not the data's"
                assert not any(content[size:]), f"{path} chunk {idx}: data beyond the replicas' size {size}"
                self.report.chunks_compared += 1
                self.report.replicas_compared += len(metas)
