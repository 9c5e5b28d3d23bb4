"""A dev cluster of real processes on loopback, all data under one directory (`threefs up/down/status`).

Layout of DATA_DIR: cluster.json (ports, node ids, pids), logs/<role>-<id>.log, mgmtd/ (KV),
meta/ (KV), storage-<id>/target-<tid>/ (chunk engines). Starting is idempotent: a running cluster
is reported, a stale one (dead pids) is restarted on the same ports with its data.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from threefs.common.errors import FSError
from threefs.mgmtd.client import MgmtdClient
from threefs.proto import common_pb2 as cpb

STATE_FILE = "cluster.json"
MGMTD_ID = 1
META_BASE_ID = 100
STORAGE_BASE_ID = 10001


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def pid_alive(pid: int, marker: str = "threefs") -> bool:
    """True if `pid` runs and is one of ours (guards against pid reuse after a stale pid file).

    A process whose command line is empty is counted as alive: that is a child still inside exec()
    or one still exiting (holding its sockets and locks); only a zombie whose threads all exited is gone.
    """
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                # a zombie leader whose other threads still exit keeps its sockets and locks
                return len(os.listdir(f"/proc/{pid}/task")) > 1
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return not cmd.strip() or marker in cmd


@dataclass
class Proc:
    """One process of the cluster."""

    role: str
    node_id: int
    port: int
    args: list[str]
    pid: int = 0

    @property
    def name(self) -> str:
        return f"{self.role}-{self.node_id}"


@dataclass
class ClusterSpec:
    """Shape of a dev cluster."""

    host: str = "127.0.0.1"
    base_port: int = 0                 # 0: pick free ports
    storage_nodes: int = 3
    targets_per_node: int = 3
    replicas: int = 3
    chunk_size: int = 1 << 20
    stripe: int = 0                    # 0: number of chains
    heartbeat_interval: float = 1.0
    heartbeat_fail_ms: int = 10_000
    gc_interval: float = 0.5
    extra: dict = field(default_factory=dict)


class DevCluster:
    """Start, inspect and stop a dev cluster rooted at `data_dir`."""

    def __init__(self, data_dir: str | Path, spec: ClusterSpec | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.state_path = self.data_dir / STATE_FILE
        self.spec = spec or ClusterSpec()
        self.procs: list[Proc] = []
        self._children: dict[int, subprocess.Popen] = {}
        if self.state_path.exists():
            self._load()

    # ---- state file --------------------------------------------------------------------
    def _load(self) -> None:
        state = json.loads(self.state_path.read_text())
        self.spec = ClusterSpec(**state["spec"])
        self.procs = [Proc(**p) for p in state["procs"]]

    def _save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"spec": asdict(self.spec), "procs": [asdict(p) for p in self.procs]}, indent=2))
        os.replace(tmp, self.state_path)

    @property
    def mgmtd_address(self) -> str:
        return f"{self.spec.host}:{self.proc('mgmtd').port}"

    def proc(self, role: str, node_id: int | None = None) -> Proc:
        for p in self.procs:
            if p.role == role and (node_id is None or p.node_id == node_id):
                return p
        raise KeyError(f"no {role} {node_id or ''} in the cluster")

    def log_path(self, p: Proc) -> Path:
        return self.data_dir / "logs" / f"{p.name}.log"

    # ---- planning ----------------------------------------------------------------------
    def target_id(self, node_id: int, index: int) -> int:
        return node_id * 100 + index + 1

    def _plan(self) -> None:
        s = self.spec
        ports = iter(range(s.base_port, s.base_port + 1000)) if s.base_port else None

        def port() -> int:
            return next(ports) if ports else free_port(s.host)

        d = self.data_dir
        common = ["--host", s.host]
        mg = port()
        mgmtd_addr = f"{s.host}:{mg}"
        self.procs = [Proc("mgmtd", MGMTD_ID, mg, ["mgmtd", "--node-id", str(MGMTD_ID), "--port", str(mg),
                                                   "--kv", f"rocksdb://{d / 'mgmtd' / 'kv'}",
                                                   "--heartbeat-fail-ms", str(s.heartbeat_fail_ms), *common])]
        for i in range(s.storage_nodes):
            nid = STORAGE_BASE_ID + i
            sp = port()
            targets = []
            for t in range(s.targets_per_node):
                tid = self.target_id(nid, t)
                targets += ["--target", f"{tid}={d / f'storage-{nid}' / f'target-{tid}'}"]
            self.procs.append(Proc("storage", nid, sp, ["storage", "--node-id", str(nid), "--port", str(sp),
                                                         "--mgmtd", mgmtd_addr, "--heartbeat-interval",
                                                         str(s.heartbeat_interval), *targets, *common]))
        mp_ = port()
        self.procs.append(Proc("meta", META_BASE_ID, mp_, [
            "meta", "--node-id", str(META_BASE_ID), "--port", str(mp_), "--mgmtd", mgmtd_addr,
            "--kv", f"rocksdb://{d / 'meta' / 'kv'}", "--chunk-size", str(s.chunk_size),
            "--stripe", str(self.stripe), "--heartbeat-interval", str(s.heartbeat_interval),
            "--gc-interval", str(s.gc_interval), *common]))

    @property
    def n_chains(self) -> int:
        return self.spec.storage_nodes * self.spec.targets_per_node // self.spec.replicas

    @property
    def stripe(self) -> int:
        return self.spec.stripe or self.n_chains

    def chains(self) -> list[cpb.ChainInfo]:
        """Chains of `replicas` targets on distinct nodes, heads spread round-robin over nodes."""
        s = self.spec
        nodes = [STORAGE_BASE_ID + i for i in range(s.storage_nodes)]
        slots = [(n, t) for t in range(s.targets_per_node) for n in nodes]   # interleaved by node
        out = []
        for c in range(self.n_chains):
            members = slots[c * s.replicas:(c + 1) * s.replicas]
            k = c % s.replicas
            members = members[k:] + members[:k]
            info = cpb.ChainInfo(chain_id=c + 1)
            info.targets.extend(cpb.ChainTarget(target_id=self.target_id(n, t)) for n, t in members)
            out.append(info)
        return out

    # ---- lifecycle -----------------------------------------------------------------------
    def running(self) -> list[Proc]:
        return [p for p in self.procs if p.pid and pid_alive(p.pid)]

    def start_proc(self, p: Proc) -> None:
        log = self.log_path(p)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            out.write(f"--- start {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            out.flush()
            proc = subprocess.Popen([sys.executable, "-m", "threefs", *p.args, "--log-level", "INFO"],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.data_dir)
        p.pid = proc.pid
        self._children[proc.pid] = proc
        self._save()

    def _alive(self, p: Proc) -> bool:
        child = self._children.get(p.pid)
        if child is not None:          # our own child: no race with exec() rewriting its cmdline
            return child.poll() is None
        return pid_alive(p.pid)

    def wait_ready(self, p: Proc, timeout: float = 60.0) -> None:
        """Wait until the process logged READY since its last start (or died: raise with its log tail)."""
        log = self.log_path(p)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            last = text.rsplit("--- start", 1)[-1]
            if "READY" in last:
                return
            if not self._alive(p):
                tail = "\n".join(last.strip().splitlines()[-15:])
                raise RuntimeError(f"{p.name} exited during start-up; log {log}:\n{tail}")
            time.sleep(0.05)
        raise TimeoutError(f"{p.name} did not become ready within {timeout:.0f}s (log: {log})")

    def up(self, timeout: float = 90.0) -> dict:
        """Start every process that is not running; configure chains; return status()."""
        if not self.procs:
            self._plan()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        alive = {p.name for p in self.running()}
        if alive and len(alive) == len(self.procs):
            return self.status()
        for p in self.procs:
            if p.name not in alive and not port_free(self.spec.host, p.port):
                raise RuntimeError(f"port {p.port} needed by {p.name} is in use by another program; "
                                   f"stop it or choose another --base-port")
        self._save()
        order = [p for p in self.procs if p.role == "mgmtd"] + [p for p in self.procs if p.role == "storage"]
        for group in (order[:1], order[1:]):
            for p in group:
                if p.name not in alive:
                    self.start_proc(p)
            for p in group:
                if p.name not in alive:
                    self.wait_ready(p, timeout)
        asyncio.run(self._configure(timeout))
        meta = [p for p in self.procs if p.role == "meta"]
        for p in meta:
            if p.name not in alive:
                self.start_proc(p)
                self.wait_ready(p, timeout)
        asyncio.run(self._wait_meta(timeout))
        return self.status()

    async def _configure(self, timeout: float) -> None:
        """Upload chains and chain table 1 once every storage target has reported."""
        m = MgmtdClient(self.mgmtd_address)
        try:
            want = {t.target_id for c in self.chains() for t in c.targets}
            await m.wait_for(lambda r: want <= {t.target_id for t in r.targets.values() if t.node_id}, timeout)
            await m.set_chains(self.chains())
            await m.set_chain_table(cpb.ChainTable(table_id=1, chain_ids=[c.chain_id for c in self.chains()],
                                                   desc="dev cluster"))
        finally:
            await m.close()

    async def _wait_meta(self, timeout: float) -> None:
        m = MgmtdClient(self.mgmtd_address)
        try:
            await m.wait_for(lambda r: any(n.type == cpb.META and n.status == cpb.HEARTBEAT_CONNECTED
                                           for n in r.nodes.values()), timeout)
        finally:
            await m.close()

    def stop_proc(self, p: Proc, timeout: float = 15.0, sig: int = signal.SIGTERM) -> None:
        if p.pid and self._alive(p):
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while self._alive(p) and time.monotonic() < deadline:
                time.sleep(0.02)
            if self._alive(p):
                os.kill(p.pid, signal.SIGKILL)
                while self._alive(p):
                    time.sleep(0.02)
        self._children.pop(p.pid, None)
        p.pid = 0
        self._save()

    def down(self, timeout: float = 15.0) -> list[str]:
        """Stop every process (meta first, mgmtd last); returns the names stopped."""
        stopped = []
        order = sorted(self.procs, key=lambda p: {"meta": 0, "storage": 1, "mgmtd": 2}.get(p.role, 0))
        for p in order:
            if p.pid and pid_alive(p.pid):
                self.stop_proc(p, timeout)
                stopped.append(p.name)
            p.pid = 0
        if self.procs:
            self._save()
        return stopped

    def status(self) -> dict:
        """Every process with its state, and the endpoints a user needs."""
        routing = None
        if self.procs and any(p.role == "mgmtd" and p.pid and pid_alive(p.pid) for p in self.procs):
            routing = asyncio.run(self._routing())
        nodes = {n.node_id: n for n in routing.info.nodes} if routing else {}
        procs = []
        for p in self.procs:
            alive = bool(p.pid) and pid_alive(p.pid)
            n = nodes.get(p.node_id)
            state = "running" if alive else "stopped"
            if alive and n is not None:
                state = cpb.NodeStatus.Name(n.status).lower().replace("heartbeat_", "")
            procs.append({"role": p.role, "node_id": p.node_id, "pid": p.pid if alive else None,
                          "address": f"{self.spec.host}:{p.port}", "state": state,
                          "log": str(self.log_path(p))})
        return {"data_dir": str(self.data_dir), "running": bool(procs) and all(x["pid"] for x in procs),
                "mgmtd": self.mgmtd_address if self.procs else None,
                "routing_version": routing.version if routing else None,
                "chains": len(routing.chains) if routing else 0,
                "processes": procs}

    async def _routing(self):
        m = MgmtdClient(self.mgmtd_address, timeout=3.0)
        try:
            return await m.refresh(force=True)
        except FSError:
            return None
        finally:
            await m.close()
