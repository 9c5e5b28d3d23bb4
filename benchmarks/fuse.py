"""FUSE mount benchmark: threefs beside a local directory (the limit) and a GlusterFS replica-3 volume.

    .venv/bin/python benchmarks/fuse.py [--size-mib 1024] [--files 2000] [--only threefs,local,gluster] [--rounds 2]

Runs as root (mounts, drop_caches, readahead). Uses fio when installed, else dd and Python.
Workloads: sequential 1 MiB write (+fsync) and cold read of one file, 4 KiB and 128 KiB random reads
(QD1, time-bounded), and a small-file loop (4 KiB create+write, stat, read, unlink).

All systems are mounted at once and each workload runs on them in turn, `--rounds` times; each
metric reports the best round. On a shared machine the load drifts within minutes, so running one
system after the other skews the ratios; interleaving exposes every system to the same drift.

What pyfuse3 itself allows (machine.md): readahead must be raised after mounting (the mount does,
to 8192 KiB: reads then arrive as 1 MiB, and raises max_background through fusectl so that the
kernel keeps them in flight); `max_read` mounts but breaks the mount and `max_write`,
`async_read`, `sync_read` are rejected (`threefs mount` refuses them); direct_io (--no-read-cache)
lifts cold reads but loses the page cache; the kernel writeback cache is optional (--writeback-cache).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

MiB = 1 << 20


_STORAGE_MGMTD: list[str] = []     # clusters whose storage nodes must unmap their chunks before a drop


def drop_caches() -> None:
    """Cold reads: flush dirty pages and drop the page cache (root only; best effort). threefs storage
    nodes keep recently written and read chunks mapped, and the kernel keeps mapped pages: they let go
    of them first (`threefs admin drop-cache`)."""
    for mgmtd in _STORAGE_MGMTD:
        r = subprocess.run([sys.executable, "-m", "threefs", "admin", "drop-cache", "--mgmtd", mgmtd],
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"threefs admin drop-cache failed: {r.stderr.strip()}")
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
    except OSError:
        pass


def fio(job: list[str]) -> dict:
    out = subprocess.run(["fio", "--output-format=json", *job], check=True, capture_output=True, text=True).stdout
    return json.loads(out[out.index("{"):])["jobs"][0]


def seq_write(path: Path, size: int) -> float:
    """MB/s of a sequential 1 MiB-block write of `size` bytes, fsync included."""
    if shutil.which("fio"):
        j = fio(["--name=w", f"--filename={path}", "--rw=write", "--bs=1M", f"--size={size}", "--end_fsync=1",
                 "--ioengine=psync"])
        return j["write"]["bw_bytes"] / 1e6
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={size // MiB}", "conv=fsync"],
                   check=True, capture_output=True)
    return size / (time.perf_counter() - t0) / 1e6


def seq_read(path: Path, size: int) -> float:
    drop_caches()
    if shutil.which("fio"):
        j = fio(["--name=r", f"--filename={path}", "--rw=read", "--bs=1M", f"--size={size}", "--ioengine=psync"])
        return j["read"]["bw_bytes"] / 1e6
    t0 = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M"], check=True, capture_output=True)
    return size / (time.perf_counter() - t0) / 1e6


def rand_read(path: Path, size: int, bs: int, seconds: float) -> float:
    """IOPS of QD1 random reads of `bs` bytes (page cache dropped first)."""
    drop_caches()
    if shutil.which("fio"):
        j = fio(["--name=rr", f"--filename={path}", "--rw=randread", f"--bs={bs}", f"--size={size}",
                 "--ioengine=psync", f"--runtime={seconds}", "--time_based", "--norandommap"])
        return j["read"]["iops"]
    fd = os.open(path, os.O_RDONLY)
    try:
        rnd = random.Random(1)
        blocks = size // bs
        n = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            os.pread(fd, bs, rnd.randrange(blocks) * bs)
            n += 1
        return n / seconds
    finally:
        os.close(fd)


def small_files(d: Path, n: int) -> dict[str, float]:
    """ops/s of create+write 4 KiB, stat, read and unlink over `n` files."""
    d.mkdir(parents=True, exist_ok=True)
    payload = os.urandom(4096)
    names = [d / f"f{i:06d}" for i in range(n)]
    out: dict[str, float] = {}

    def timed(label: str, fn: Callable[[Path], object]) -> None:
        t0 = time.perf_counter()
        for p in names:
            fn(p)
        out[label] = n / (time.perf_counter() - t0)

    timed("create", lambda p: p.write_bytes(payload))
    timed("stat", os.stat)
    drop_caches()
    timed("read", lambda p: p.read_bytes())
    timed("unlink", os.unlink)
    return out


def big_file(root: Path, size: int, seconds: float) -> dict[str, float]:
    """Sequential write and read, then random reads, of one `size`-byte file (removed afterwards)."""
    big = root / "big.bin"
    r: dict[str, float] = {}
    r["seq_write_MBps"] = seq_write(big, size)
    r["seq_read_MBps"] = seq_read(big, size)
    r["rand4k_iops"] = rand_read(big, size, 4096, seconds)
    r["rand128k_iops"] = rand_read(big, size, 128 << 10, seconds)
    os.unlink(big)
    return r


def small_suite(root: Path, files: int, round_no: int) -> dict[str, float]:
    """The small-file loop in a fresh directory of this round."""
    return {f"small_{k}_per_s": v for k, v in small_files(root / f"small{round_no}", files).items()}


def run_interleaved(roots: dict[str, Path], size: int, files: int, seconds: float,
                    rounds: int) -> dict[str, dict[str, float]]:
    """Each workload on every system in turn, `rounds` times; the best value of each metric."""
    best: dict[str, dict[str, float]] = {name: {} for name in roots}
    for r in range(rounds):
        for label, workload in (("big file", lambda root: big_file(root, size, seconds)),
                                ("small files", lambda root, r=r: small_suite(root, files, r))):
            for name, root in roots.items():
                t0 = time.monotonic()
                got = workload(root)
                for k, v in got.items():
                    best[name][k] = max(best[name].get(k, 0.0), v)
                print(f"round {r + 1} {label} {name}: {json.dumps({k: round(v, 1) for k, v in got.items()})} "
                      f"({time.monotonic() - t0:.0f} s)", flush=True)
    return best


@contextmanager
def local_dir(work: Path) -> Iterator[Path]:
    d = work / "local"
    d.mkdir()
    yield d


def wait_line(proc: subprocess.Popen, prefix: str, log: Path) -> None:
    line = proc.stdout.readline()
    if not line.startswith(prefix):
        proc.kill()
        proc.wait(timeout=30)
        raise RuntimeError(f"expected {prefix!r}, got {line!r}: {log.read_text()[-4000:]}")


@contextmanager
def threefs_mount(work: Path, mgmtd: str | None, mount_args: list[str]) -> Iterator[Path]:
    """A dev cluster (3 storage nodes x 3 targets, 1 MiB chunks, replica 3) unless --mgmtd, and a mount."""
    from threefs.cli.devcluster import ClusterSpec, DevCluster
    dc = None
    if mgmtd is None:
        dc = DevCluster(work / "cluster", ClusterSpec())
        dc.up(timeout=120)
        mgmtd = dc.mgmtd_address
    _STORAGE_MGMTD.append(mgmtd)
    mnt = work / "threefs"
    mnt.mkdir()
    log = open(work / "mount.log", "w")    # the daemon's log: a pipe nobody reads would stall it when full
    proc = subprocess.Popen([sys.executable, "-m", "threefs", "mount", "--mgmtd", mgmtd, str(mnt), *mount_args],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        wait_line(proc, "READY fuse", work / "mount.log")
        threading.Thread(target=shutil.copyfileobj, args=(proc.stdout, log), daemon=True).start()
        d = mnt / f"bench-{os.getpid()}"
        d.mkdir()
        yield d
        shutil.rmtree(d, ignore_errors=True)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True, check=False)
        _STORAGE_MGMTD.remove(mgmtd)
        if dc is not None:
            dc.down()


@contextmanager
def gluster_volume(work: Path) -> Iterator[Path]:
    """machine.md's recipe: glusterd with private state, replica 3 on three bricks, FUSE-mounted."""
    if not shutil.which("glusterd") or not os.path.exists("/etc/glusterfs/glusterd.vol"):
        raise RuntimeError("glusterd is not installed (apt-get install glusterfs-server)")
    g = work / "gluster"
    (g / "state").mkdir(parents=True)
    vol = (g / "glusterd.vol")
    vol.write_text(Path("/etc/glusterfs/glusterd.vol").read_text().replace("/var/lib/glusterd", str(g / "state")))
    host = socket.gethostname()
    name = f"bench{os.getpid()}"
    mnt = g / "mnt"
    mnt.mkdir()
    r = subprocess.run(["glusterd", "-f", str(vol), "-p", str(g / "glusterd.pid"), "-l", str(g / "glusterd.log")],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"glusterd did not start: {r.stderr.strip() or r.stdout.strip()}")

    def gl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["gluster", "--mode=script", *args], capture_output=True, text=True, check=check,
                              timeout=120)
    try:
        deadline = time.monotonic() + 30
        while gl("volume", "list", check=False).returncode != 0:
            if time.monotonic() > deadline:
                log = (g / "glusterd.log").read_text()[-2000:] if (g / "glusterd.log").exists() else ""
                raise RuntimeError(f"glusterd did not answer within 30 s; log tail:\n{log}")
            time.sleep(0.2)
        gl("volume", "create", name, "replica", "3", *(f"{host}:{g}/b{i}" for i in (1, 2, 3)), "force")
        gl("volume", "start", name)
        subprocess.run(["mount", "-t", "glusterfs", f"localhost:/{name}", str(mnt)], check=True, capture_output=True,
                       text=True, timeout=60)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)
        gl("volume", "stop", name, "force", check=False)
        gl("volume", "delete", name, check=False)
        pid = (g / "glusterd.pid")
        if pid.exists():
            try:
                os.kill(int(pid.read_text().strip()), 15)
            except (ProcessLookupError, ValueError):
                pass
        for pf in (g / "state").rglob("*.pid"):       # brick and self-heal daemons of this volume
            try:
                os.kill(int(pf.read_text().strip()), 15)
            except (ProcessLookupError, ValueError, OSError):
                pass


def table(results: dict[str, dict[str, float]]) -> str:
    keys = [k for k in next(iter(results.values()))]
    systems = list(results)
    lines = ["| metric | " + " | ".join(systems) + (" | threefs / gluster |" if {"threefs", "gluster"} <= set(results)
                                                        else " |"),
             "|---" * (len(systems) + 1 + ({"threefs", "gluster"} <= set(results))) + "|"]
    for k in keys:
        row = [f"{results[s].get(k, float('nan')):,.0f}" for s in systems]
        if {"threefs", "gluster"} <= set(results):
            row.append(f"{results['threefs'][k] / results['gluster'][k]:.2f}x")
        lines.append(f"| {k} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="size of the sequential/random file")
    ap.add_argument("--files", type=int, default=2000, help="files in the small-file loop")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each random-read run")
    ap.add_argument("--only", default="threefs,local,gluster", help="comma-separated systems to run")
    ap.add_argument("--mgmtd", help="use this cluster instead of starting a dev cluster")
    ap.add_argument("--mount-arg", action="append", default=[], help="extra `threefs mount` argument")
    ap.add_argument("--workdir", help="directory on local disk for the cluster, bricks and local runs")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each workload per system (best one counts)")
    ap.add_argument("--json", help="write the results here too")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fusebench-", dir=a.workdir))
    size = a.size_mib * MiB
    print(f"fuse benchmark: {a.size_mib} MiB file, {a.files} small files, tool: "
          f"{'fio' if shutil.which('fio') else 'dd + Python'}, work dir {work}", flush=True)
    results: dict[str, dict[str, float]] = {}
    systems = {"threefs": lambda: threefs_mount(work, a.mgmtd, a.mount_arg), "local": lambda: local_dir(work),
               "gluster": lambda: gluster_volume(work)}
    try:
        with ExitStack() as stack:
            roots: dict[str, Path] = {}
            for name in a.only.split(","):
                try:
                    roots[name] = stack.enter_context(systems[name]())
                except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
                    detail = getattr(e, "stderr", "") or ""
                    print(f"{name}: skipped: {e} {detail}".strip(), flush=True)
            if roots:
                results = run_interleaved(roots, size, a.files, a.seconds, a.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if results:
        print(table(results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
