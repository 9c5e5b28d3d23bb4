"""A dev cluster of real processes on loopback, all data under one directory (`threefs up/down/status`).

Layout of DATA_DIR: cluster.json (ports, node ids, pids), logs/<role>-<id>.log, mgmtd/ (KV),
meta/ (KV), storage-<id>/target-<tid>/ (chunk engines). Starting is idempotent: a running cluster
is reported, a stale one (dead pids) is restarted on the same ports with its data.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
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


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1", exclude: set[int] | frozenset[int] = frozenset()) -> int:
    """A port free now, outside the kernel's ephemeral range and not in `exclude`.

    A port from bind(0) is ephemeral: between planning and the service's own bind, any outgoing
    connection on the machine may take it as its source port (EADDRINUSE at start-up). Ports below
    the ephemeral range are only ever taken by an explicit bind. `exclude` holds ports already
    planned but not yet bound: a plan of a dozen random picks would otherwise repeat one now and then.
    """
    low, _ = _ephemeral_range()
    if low > 11000:
        for port in random.sample(range(10000, low), 64):
            if port not in exclude and port_free(host, port):
                return port
    while True:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


_PF_EXITING = 0x4   # /proc/PID/stat flags: the process is exiting


def pid_alive(pid: int, marker: str = "threefs") -> bool:
    """True if `pid` runs and is one of ours (guards against pid reuse after a stale pid file).

    A process whose command line is empty is counted as alive: that is a child still inside exec()
    or one still exiting (holding its sockets and locks); only a zombie whose threads all exited is gone.
    """
    try:
        os.kill(pid, 0)
        # The command line first, the state after it: an exiting process's command line can read torn (its
        # memory is unmapped page by page), and the exiting flag only ever goes on, so a state read after
        # the command line that is not exiting proves the command line was read whole.
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] in ("Z", "X"):
        # a zombie leader whose other threads still exit keeps its sockets and locks; the thread count
        # (num_threads, from the same read) drops as each thread is released, after it closed its files
        return int(fields[17]) > 1
    if int(fields[6]) & _PF_EXITING:
        return True         # killed, still releasing its files
    return not cmd.strip() or marker in cmd


def _clear_stale_mount(mountpoint: str) -> None:
    """Detach a FUSE mount left by a killed daemon (ENOTCONN) and create the mountpoint, so the new daemon
    can mount there; a mountpoint that cannot be used fails here, before anything starts."""
    from threefs.fuse.mountpoint import prepare
    try:
        prepare(mountpoint)
    except ValueError as e:
        raise RuntimeError(f"{e}; choose another --mountpoint") from None


class StartError(RuntimeError):
    """`up` failed part way; the processes that start had launched were stopped again."""


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
    chunk_size: int = 4 << 20
    stripe: int = 0                    # 0: number of chains
    heartbeat_interval: float = 1.0
    heartbeat_fail_ms: int = 10_000
    check_interval: float = 1.0        # mgmtd failure checks / chain-state updates
    bootstrap_ms: int = 10_000         # mgmtd: chains frozen after a (re)start until targets reported
    lease_ms: int = 10_000             # mgmtd primary lease (one mgmtd: only matters across restarts)
    resync_rate_mb: float = 0.0        # storage: cap on resync traffic per node, MiB/s (0: none)
    gc_interval: float = 0.5
    fuse: bool = False                 # mount the file system at mountpoint (default DATA_DIR/mnt)
    mountpoint: str = ""
    s3: bool = False                   # S3 endpoint (credentials of the dev admin user in cluster.json)
    s3_domain: str = "s3.localhost"    # S3 also answers virtual-hosted style, Host BUCKET.<this> ("": off)
    hdfs: bool = False                 # WebHDFS endpoint
    metrics: bool = True               # every service serves Prometheus /metrics on a port of its own
    extra: dict = field(default_factory=dict)


class DevCluster:
    """Start, inspect and stop a dev cluster rooted at `data_dir`."""

    def __init__(self, data_dir: str | Path, spec: ClusterSpec | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.state_path = self.data_dir / STATE_FILE
        self.spec = spec or ClusterSpec()
        self.procs: list[Proc] = []
        self._children: dict[int, subprocess.Popen] = {}
        self.extra: dict = {}
        if self.state_path.exists():
            self._load()

    # ---- state file --------------------------------------------------------------------
    def _load(self) -> None:
        state = json.loads(self.state_path.read_text())
        self.spec = ClusterSpec(**state["spec"])
        self.procs = [Proc(**p) for p in state["procs"]]
        self.extra = state.get("extra", {})

    def _save(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"spec": asdict(self.spec), "procs": [asdict(p) for p in self.procs],
                                   "extra": self.extra}, indent=2))
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
        planned: set[int] = set()

        def port() -> int:
            p = next(ports) if ports else free_port(s.host, exclude=planned)
            planned.add(p)
            return p

        d = self.data_dir
        common = ["--host", s.host]
        mg = port()
        mgmtd_addr = f"{s.host}:{mg}"
        self.procs = [Proc("mgmtd", MGMTD_ID, mg, ["mgmtd", "--node-id", str(MGMTD_ID), "--port", str(mg),
                                                   "--kv", f"rocksdb://{d / 'mgmtd' / 'kv'}",
                                                   "--heartbeat-fail-ms", str(s.heartbeat_fail_ms),
                                                   "--check-interval", str(s.check_interval),
                                                   "--bootstrap-ms", str(s.bootstrap_ms),
                                                   "--lease-ms", str(s.lease_ms),
                                                   "--lease-extend-interval", str(max(0.1, s.lease_ms / 6000)),
                                                   "--lease-suspicious-ms", str(s.lease_ms // 3), *common])]
        for i in range(s.storage_nodes):
            nid = STORAGE_BASE_ID + i
            sp = port()
            targets = []
            for t in range(s.targets_per_node):
                tid = self.target_id(nid, t)
                targets += ["--target", f"{tid}={d / f'storage-{nid}' / f'target-{tid}'}"]
            self.procs.append(Proc("storage", nid, sp, ["storage", "--node-id", str(nid), "--port", str(sp),
                                                         "--mgmtd", mgmtd_addr, "--heartbeat-interval",
                                                         str(s.heartbeat_interval), *targets, *common]
                                   + (["--resync-rate-mb", str(s.resync_rate_mb)] if s.resync_rate_mb else [])))
        mp_ = port()
        self.procs.append(Proc("meta", META_BASE_ID, mp_, [
            "meta", "--node-id", str(META_BASE_ID), "--port", str(mp_), "--mgmtd", mgmtd_addr,
            "--kv", f"rocksdb://{d / 'meta' / 'kv'}", "--chunk-size", str(s.chunk_size),
            "--stripe", str(self.stripe), "--heartbeat-interval", str(s.heartbeat_interval),
            "--gc-interval", str(s.gc_interval), *common]))
        if s.s3:
            sp = port()
            self.procs.append(Proc("s3", 1, sp, ["s3", "serve", "--mgmtd", mgmtd_addr, "--port", str(sp), *common]
                                   + (["--domain", s.s3_domain] if s.s3_domain else [])))
        if s.hdfs:
            hp = port()
            self.procs.append(Proc("hdfs", 1, hp, ["hdfs", "serve", "--mgmtd", mgmtd_addr, "--port", str(hp),
                                                   *common]))
        if s.fuse:
            self.procs.append(Proc("fuse", 1, 0, ["mount", "--mgmtd", mgmtd_addr, "--allow-other", self.mountpoint]))
        if s.metrics:
            for p in self.procs:
                if p.role != "fuse":
                    p.args += ["--metrics-port", str(port())]

    @property
    def mountpoint(self) -> str:
        return self.spec.mountpoint or str(self.data_dir / "mnt")

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

    def start_proc(self, p: Proc, env: dict[str, str] | None = None) -> None:
        log = self.log_path(p)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            out.write(f"--- start {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            out.flush()
            proc = subprocess.Popen([sys.executable, "-m", "threefs", *p.args, "--log-level", "INFO"],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.data_dir,
                                    env={**os.environ, **(env or {})})
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
        if any(p.role == "fuse" and p.name not in alive for p in self.procs):
            _clear_stale_mount(self.mountpoint)     # before anything starts: a bad mountpoint fails fast
        self._save()
        started: list[Proc] = []
        try:
            self._start_missing(alive, timeout, started)
        except BaseException as e:
            for p in reversed(started):     # no half-started cluster left behind: stop what this call started
                try:
                    self.stop_proc(p)
                except Exception:  # noqa: BLE001 - keep stopping the others; the original error matters
                    pass
            if started and isinstance(e, Exception):
                raise StartError(f"{e}\n(stopped the {len(started)} processes this start had launched; "
                                 f"logs are in {self.data_dir / 'logs'})") from e
            raise
        return self.status()

    def _start_missing(self, alive: set[str], timeout: float, started: list[Proc]) -> None:
        """Start, in dependency order, every process not in `alive`; each one started goes into `started`."""
        def start(p: Proc, env: dict[str, str] | None = None) -> None:
            self.start_proc(p, env=env)
            started.append(p)

        order = [p for p in self.procs if p.role == "mgmtd"] + [p for p in self.procs if p.role == "storage"]
        for group in (order[:1], order[1:]):
            for p in group:
                if p.name not in alive:
                    start(p)
            for p in group:
                if p.name not in alive:
                    self.wait_ready(p, timeout)
        asyncio.run(self._configure(timeout))
        meta = [p for p in self.procs if p.role == "meta"]
        for p in meta:
            if p.name not in alive:
                start(p)
                self.wait_ready(p, timeout)
        asyncio.run(self._wait_meta(timeout))
        front = [p for p in self.procs if p.role in ("s3", "hdfs", "fuse") and p.name not in alive]
        if front:
            token = self._credentials()["token"]
            for p in front:
                if p.role == "fuse":
                    _clear_stale_mount(self.mountpoint)
                start(p, env={"THREEFS_TOKEN": token})
            for p in front:
                self.wait_ready(p, timeout)

    def _credentials(self) -> dict:
        """The dev cluster's admin user (uid 0) token and S3 key, created on first use and kept in cluster.json."""
        if self.extra.get("token"):
            return self.extra
        from threefs.mgmtd.users import UsersClient

        async def make() -> dict:
            users = UsersClient(self.mgmtd_address)
            try:
                existing = await users.list_users()
                admin = next((u for u in existing if u.uid == 0), None)
                if admin is None:
                    admin = await users.add_user(0, "root", gid=0, root=True, admin=True)
                key = await users.add_s3_key(0, admin_token=admin.token)
                return {"token": admin.token, "s3_access_key": key.access_key, "s3_secret_key": key.secret_key}
            finally:
                await users.close()

        self.extra = asyncio.run(make())
        self._save()
        os.chmod(self.state_path, 0o600)
        return self.extra

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
                if sig != signal.SIGKILL:
                    os.kill(p.pid, signal.SIGCONT)     # a stopped (SIGSTOP) process must run to exit
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

    def signal_proc(self, p: Proc, sig: int) -> None:
        """Send `sig` to a running process without waiting (SIGSTOP/SIGCONT for a hung-node test)."""
        if not p.pid or not self._alive(p):
            raise RuntimeError(f"{p.name} is not running")
        os.kill(p.pid, sig)

    def restart_proc(self, p: Proc, *, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        """Stop a process with `sig` (SIGKILL: a crash), start it again with its data, wait until ready."""
        self.stop_proc(p, sig=sig)
        self.start_proc(p)
        self.wait_ready(p, timeout)

    def down(self, timeout: float = 15.0) -> list[str]:
        """Stop every process (meta first, mgmtd last); returns the names stopped."""
        stopped = []
        order = sorted(self.procs, key=lambda p: {"fuse": -2, "s3": -1, "hdfs": -1, "meta": 0, "storage": 1,
                                                  "mgmtd": 2}.get(p.role, 0))
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
        endpoints: dict[str, str] = {}
        for p in self.procs:
            alive = bool(p.pid) and pid_alive(p.pid)
            n = nodes.get(p.node_id) if p.role in ("mgmtd", "meta", "storage") else None
            state = "running" if alive else "stopped"
            if alive and n is not None:
                state = cpb.NodeStatus.Name(n.status).lower().replace("heartbeat_", "")
            address = self.mountpoint if p.role == "fuse" else f"{self.spec.host}:{p.port}"
            metrics = p.args[p.args.index("--metrics-port") + 1] if "--metrics-port" in p.args else None
            procs.append({"role": p.role, "node_id": p.node_id, "pid": p.pid if alive else None,
                          "address": address, "state": state, "log": str(self.log_path(p)),
                          "metrics": f"http://{self.spec.host}:{metrics}/metrics" if metrics else None})
            if p.role == "fuse":
                endpoints["mount"] = self.mountpoint
            elif p.role == "s3":
                endpoints["s3"] = f"http://{address}"
            elif p.role == "hdfs":
                endpoints["webhdfs"] = f"http://{address}/webhdfs/v1"
        creds = {k: v for k, v in self.extra.items() if k.startswith("s3_")} if "s3" in endpoints else {}
        return {"data_dir": str(self.data_dir), "running": bool(procs) and all(x["pid"] for x in procs),
                "mgmtd": self.mgmtd_address if self.procs else None, **endpoints, **creds,
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
