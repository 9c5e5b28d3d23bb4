"""A service SIGKILLed while applications write and read through the mount (a storage node holding a chain's
head or tail; meta or mgmtd, restarted at once): nothing fails, and every byte the mount acknowledged reads
back exact, through the mount and from every replica once the cluster has healed.

The writer and the reader are processes of their own: the test process restarts services, and a process
forked while it holds a file of the mount would close that file in the child (a FUSE FLUSH, which needs
meta) before it could exec the new meta server.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fault.fault_util import Harness
from tests.fuse.conftest import Mount
from threefs.cli.devcluster import META_BASE_ID

MIB = 1 << 20
STEP = 256 << 10

# argv: file, expected content file. Reads the whole file again and again (dropping the kernel's pages of
# it first, so the daemon serves every read) until STOP exists next to the expected content; prints one
# line per good read; exits 1 with a message on an error or a wrong byte.
READER = textwrap.dedent("""
    import os, sys
    path, expect_path = sys.argv[1], sys.argv[2]
    expect = open(expect_path, "rb").read()
    stop = os.path.join(os.path.dirname(expect_path), "STOP")
    while not os.path.exists(stop):
        try:
            with open(path, "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                got = f.read()
        except OSError as e:
            sys.exit(f"read failed: {e!r}")
        if got != expect:
            bad = next((i for i, (a, b) in enumerate(zip(got, expect)) if a != b), min(len(got), len(expect)))
            sys.exit(f"read {len(got)} bytes, differing from offset {bad}")
        print("read", flush=True)
""")

# argv: file, content file, step. Writes the content in steps, printing "third" once a third is written
# (it goes on writing), then fsyncs and closes; prints "done" once both returned.
WRITER = textwrap.dedent("""
    import os, sys
    path, data, step = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
    with open(path, "wb") as f:
        for off in range(0, len(data), step):
            if off == len(data) // 3 // step * step:
                print("third", flush=True)
            f.write(data[off:off + step])
        f.flush()
        os.fsync(f.fileno())
    print("done", flush=True)
""")


def _mapped_read_bytes(h: Harness) -> dict[str, float]:
    """Bytes the storage nodes sent from kept mappings, by whether the read checked their CRCs."""
    out = {"yes": 0.0, "no": 0.0}
    for p in h.dc.status()["processes"]:
        if p["role"] == "storage" and p["pid"] and p["metrics"]:
            text = urllib.request.urlopen(p["metrics"], timeout=10).read().decode()
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.name == "threefs_storage_mapped_read_bytes_total":
                        out[s.labels["checked"]] += s.value
    return out


def _read_uncached(path: Path) -> bytes:
    with open(path, "rb") as f:
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        return f.read()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("victim_of,chunk_size", [("head", 0), ("tail", 0), ("meta", 0), ("mgmtd", 0), ("head", MIB)],
                         ids=["head", "tail", "meta", "mgmtd", "head-1MiB-chunks"])
def test_a_service_killed_under_a_writer_and_a_reader_of_the_mount(tmp_path, mount_root, victim_of,
                                                                    chunk_size) -> None:
    """1 MiB chunks: the replica that serves a chunk keeps what it writes mapped, and reads of kept chunks
    skip the CRC check (threefs.storage.chunk_engine.read_view); the kill and the resync go through that."""
    h = Harness(tmp_path, **({"chunk_size": chunk_size} if chunk_size else {})).up()
    m = None
    procs: list[subprocess.Popen] = []
    work = tmp_path / "io"
    work.mkdir()
    try:
        m = Mount(h.dc.mgmtd_address, mount_root / f"kill-{victim_of}")
        rng = random.Random(f"fuse-kill-{victim_of}")
        old, new = rng.randbytes(20 * MIB), rng.randbytes(24 * MIB)     # old: long enough for read-ahead
        (m.path / "old").write_bytes(old)
        (work / "old").write_bytes(old)
        (work / "new").write_bytes(new)
        # A storage victim holds the head (or tail) of chain 1; the file's chunks rotate over every chain,
        # so writes to chains of the victim are in flight when it dies.
        if victim_of in ("head", "tail"):
            role, victim = "storage", h.node_at(1, 0 if victim_of == "head" else -1)
        else:
            role, victim = victim_of, META_BASE_ID if victim_of == "meta" else 1

        def child(code: str, *args: object) -> subprocess.Popen:
            p = subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            procs.append(p)
            return p

        reader = child(READER, m.path / "old", work / "old")
        assert reader.stdout.readline() == "read\n", reader.stderr.read()
        writer = child(WRITER, m.path / "new", work / "new", STEP)
        assert writer.stdout.readline() == "third\n", writer.stderr.read()
        h.fault(victim_of, role, victim, signal.SIGKILL)
        if role != "storage":
            h.restart(role, victim)         # the writer and the reader carry on against the new process

        assert writer.stdout.readline() == "done\n", writer.stderr.read()      # fsync and close returned
        assert writer.wait(timeout=60) == 0, writer.stderr.read()
        for _ in range(2):                  # whole reads that began after the writer finished
            assert reader.stdout.readline() == "read\n", reader.stderr.read()
        (work / "STOP").touch()
        assert reader.wait(timeout=60) == 0, reader.stderr.read()
        assert m.proc.poll() is None, "the mount daemon died"
        assert os.stat(m.path / "new").st_size == len(new)
        assert _read_uncached(m.path / "new") == new
        if chunk_size:         # the reads were served from kept mappings without a second check
            sent = _mapped_read_bytes(h)
            assert sent["no"] >= 2 * len(old), sent

        # A storage node comes back and resyncs; then every replica of every chunk matches what was acknowledged.
        if role == "storage":
            h.restart(role, victim)
        h.wait_healed(timeout=120)
        h.extra_files = {"/old": old, "/new": new}
        report = h.verify_files()
        assert report.bytes_verified == len(old) + len(new)
        assert report.replicas_compared == 3 * report.chunks_compared > 0
    finally:
        (work / "STOP").touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        if m is not None:
            m.stop()
            print("MOUNT STDERR", m.proc.stderr.read()[-6000:])
        print("META LOG", open(h.dc.log_path(h.dc.proc("meta", META_BASE_ID))).read()[-4000:])
        h.close()
