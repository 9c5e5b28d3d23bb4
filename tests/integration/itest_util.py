"""Helpers shared by the integration tests (not fixtures: plain functions over a DevCluster/Client)."""
from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from crc32c import crc32c

from threefs.cli.devcluster import DevCluster
from threefs.client.file_io import FileIO
from threefs.common import placement

CHUNK = 64 << 10          # chunk size of the test clusters (tests/conftest.py)


def start_cluster(root: Path, **spec) -> DevCluster:
    """tests/conftest.py's start_cluster, loaded by path: with several conftest.py files in the tree,
    `from conftest import ...` may find another directory's conftest."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec_ = importlib.util.spec_from_file_location("_threefs_tests_root_conftest", path)
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module.start_cluster(root, **spec)


def rand_bytes(n: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (reproducible failures)."""
    return random.Random(seed).randbytes(n)


def wait_until(pred: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `pred` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.02)


def threefs_cli(*args: str, check: bool = True, input: bytes | None = None,
                timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run `python -m threefs ARGS` as a subprocess, capturing bytes output."""
    proc = subprocess.run([sys.executable, "-m", "threefs", *args], capture_output=True, input=input,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"threefs {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout: {proc.stdout.decode(errors='replace')}\n"
                             f"stderr: {proc.stderr.decode(errors='replace')}")
    return proc


def cli_json(*args: str):
    return json.loads(threefs_cli(*args).stdout)


def query_chunk_cli(cluster: DevCluster, path: str, index: int) -> dict:
    """`threefs admin query-chunk PATH INDEX --json` against the cluster."""
    return cli_json("admin", "query-chunk", path, str(index), "--json", "--mgmtd", cluster.mgmtd_address)


def chunk_location(client, path: str, index: int) -> tuple[int, bytes]:
    """(chain id, chunk id) of chunk `index` of `path`, computed the way the client places it."""
    inode = client.stat(path).inode
    fio = FileIO(inode, client.aio.mgmtd, client.aio.storage)
    return fio.chain_of(index), placement.chunk_id(inode.id, index)


def target_dir(cluster: DevCluster, target_id: int) -> Path:
    node = target_id // 100
    return cluster.data_dir / f"storage-{node}" / f"target-{target_id}"


def chunk_data_path(cluster: DevCluster, target_id: int, chunk_id: bytes, version: int) -> Path:
    """Where a target keeps version `version` of a chunk (ChunkEngine._path's rule)."""
    return target_dir(cluster, target_id) / "data" / f"{crc32c(chunk_id) & 0xFF:02x}" / f"{chunk_id.hex()}.{version}"


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        assert len(b) == 1, f"{path} has no byte at {offset}"
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
