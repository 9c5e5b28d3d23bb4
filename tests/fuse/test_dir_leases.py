"""Directory leases through real mounts: lookups in a directory a mount made skip meta, and every other
client's addition there is seen at once (recall), also when the holder was killed or hangs."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_cluster
from tests.fuse.conftest import Mount, is_mounted, wait_for

RECALL_BOUND = 5.0     # seconds: well under the 10 s lease, so an addition that waited a lease out fails this


def _meta_calls(cluster, method: str) -> float:
    """Requests meta served for `method` (every status)."""
    total = 0.0
    for p in cluster.status()["processes"]:
        if p["role"] == "meta" and p["pid"] and p["metrics"]:
            text = urllib.request.urlopen(p["metrics"], timeout=10).read().decode()
            for fam in text_string_to_metric_families(text):
                for s in fam.samples:
                    if s.name == "threefs_rpc_requests_total" and s.labels.get("method") == f"Meta.{method}":
                        total += s.value
    return total


def test_lookups_of_new_names_in_a_directory_made_here_skip_meta(cluster, mount) -> None:
    d = mount.path / "lease-local"
    d.mkdir()
    before = _meta_calls(cluster, "Lookup")
    for i in range(50):
        (d / f"f{i}").write_bytes(b"x" * i)
    assert not (d / "missing").exists()
    after = _meta_calls(cluster, "Lookup")
    assert after - before < 5, f"{after - before} lookups reached meta for 50 creates in a leased directory"
    assert sorted(os.listdir(d)) == sorted(f"f{i}" for i in range(50))
    assert all((d / f"f{i}").read_bytes() == b"x" * i for i in range(50))
    (d / "sub").mkdir()                      # names this mount adds are looked up in meta, never answered missing
    os.symlink("f1", d / "ln")
    os.link(d / "f2", d / "hl")
    os.rename(d / "f3", d / "moved")
    assert (d / "sub").is_dir() and os.readlink(d / "ln") == "f1" and (d / "hl").read_bytes() == b"xx"
    assert (d / "moved").read_bytes() == b"xxx" and not (d / "f3").exists()


def test_another_clients_additions_are_seen_at_once(cluster, mount, mount2, client) -> None:
    """Each way of adding a name, by another mount or the library, in a directory A leases (made just then)."""
    (mount2.path / "lease-outside").write_bytes(b"moved in")
    (mount2.path / "lease-target").write_bytes(b"linked")
    steps = {
        "create": lambda b: (b / "n").write_bytes(b"written on B"),
        "mkdir": lambda b: (b / "n").mkdir(),
        "symlink": lambda b: os.symlink("target", b / "n"),
        "link": lambda b: os.link(mount2.path / "lease-target", b / "n"),
        "rename": lambda b: os.rename(mount2.path / "lease-outside", b / "n"),
        "library": lambda b: client.open(f"/{b.name}/n", "wb").close(),
    }
    before = _meta_calls(cluster, "Lookup")
    for what, add in steps.items():
        a = mount.path / f"lease-{what}"
        a.mkdir()
        assert not (a / "n").exists()                           # answered by A's lease
        t0 = time.monotonic()
        add(mount2.path / a.name)
        took = time.monotonic() - t0
        assert took < RECALL_BOUND, f"{what} in a leased directory took {took:.1f}s (the lease was waited out)"
        assert os.path.lexists(a / "n"), f"A does not see the name B's {what} added"
        (a / "again").write_bytes(b"A still creates")           # A goes on without its lease
        assert (mount2.path / a.name / "again").read_bytes() == b"A still creates"
    assert _meta_calls(cluster, "Lookup") - before >= len(steps)    # after a recall, A asks meta again
    assert (mount.path / "lease-create" / "n").read_bytes() == b"written on B"
    assert (mount.path / "lease-mkdir" / "n").is_dir()
    assert os.readlink(mount.path / "lease-symlink" / "n") == "target"
    assert (mount.path / "lease-link" / "n").read_bytes() == b"linked"
    assert (mount.path / "lease-rename" / "n").read_bytes() == b"moved in"


def test_a_killed_holders_lease_does_not_hold_others_up(cluster, mount_root, client) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "lease-killed")
    try:
        (m.path / "lease-killed-dir").mkdir()
        assert not (m.path / "lease-killed-dir" / "x").exists()
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=10)
        t0 = time.monotonic()
        with client.open("/lease-killed-dir/x", "wb") as f:         # the recall finds nothing listening
            f.write(b"after the holder died")
        took = time.monotonic() - t0
        assert took < RECALL_BOUND, f"the create waited {took:.1f}s for a dead holder's lease"
        assert client.open("/lease-killed-dir/x", "rb").read() == b"after the holder died"
    finally:
        m.stop()
        subprocess.run(["fusermount3", "-u", "-z", str(m.path)], check=False, capture_output=True)
        assert not is_mounted(m.path)


def test_a_hung_holders_lease_is_waited_out_and_it_sees_the_addition_after(cluster, mount_root, client) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "lease-hung")
    try:
        d = m.path / "lease-hung-dir"
        d.mkdir()
        assert not (d / "y").exists()
        m.proc.send_signal(signal.SIGSTOP)          # the recall reaches a socket nobody answers
        try:
            t0 = time.monotonic()
            client.open("/lease-hung-dir/y", "wb").close()
            took = time.monotonic() - t0
        finally:
            m.proc.send_signal(signal.SIGCONT)
        assert 5.0 < took < 30.0, f"the create took {took:.1f}s: it must wait the 10 s lease out, no longer"
        assert (d / "y").exists()                    # the holder stopped relying on its lease before meta let go
    finally:
        m.stop()


# ---- deferred creates (threefs.fuse.deferred) ------------------------------------------------------

def test_small_files_in_a_leased_directory_take_one_meta_call_each(cluster, mount, mount2) -> None:
    d = mount.path / "deferred-small"
    d.mkdir()
    calls = {m: _meta_calls(cluster, m) for m in ("Create", "Sync", "Lookup")}
    for i in range(40):
        (d / f"f{i}").write_bytes(b"%d" % i * 100)
    got = {m: _meta_calls(cluster, m) - calls[m] for m in calls}
    assert got["Create"] == 40 and got["Sync"] == 0 and got["Lookup"] < 5, got
    other = mount2.path / "deferred-small"
    assert all((other / f"f{i}").read_bytes() == b"%d" % i * 100 for i in range(40))
    here, there = os.stat(d / "f7"), os.stat(other / "f7")
    assert (here.st_ino, here.st_uid, here.st_gid, here.st_mode, here.st_size) == \
        (there.st_ino, there.st_uid, there.st_gid, there.st_mode, there.st_size)
    assert here.st_mtime_ns == there.st_mtime_ns          # meta stored the time the mount told the kernel


def test_a_pending_create_reaches_meta_before_this_mount_asks_meta_anything(cluster, mount, client) -> None:
    d = mount.path / "deferred-barrier"
    d.mkdir()
    with open(d / "open", "wb") as f:
        f.write(b"not yet closed")
        f.flush()
        assert "open" in os.listdir(d)                     # the listing asks meta: the create went first
        assert client.stat("/deferred-barrier/open") is not None
    assert client.open("/deferred-barrier/open", "rb").read() == b"not yet closed"


def test_a_recall_sends_the_holders_pending_creates_first(cluster, mount, mount2) -> None:
    a = mount.path / "deferred-recall"
    a.mkdir()
    with open(a / "x", "wb") as f:
        f.write(b"A's")
        f.flush()
        fd = None
        try:
            fd = os.open(mount2.path / "deferred-recall" / "x", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass                                          # the recall made A's create first
        finally:
            if fd is not None:
                os.close(fd)
        assert fd is None, "B created a name A had already created (A's pending create was not sent first)"
    assert (mount2.path / "deferred-recall" / "x").read_bytes() == b"A's"
    r = mount.path / "deferred-rmdir"
    r.mkdir()
    with open(r / "y", "wb") as f:                        # B removes the directory while A creates in it
        f.write(b"y")
        f.flush()
        with pytest.raises(OSError) as e:
            os.rmdir(mount2.path / "deferred-rmdir")
        assert e.value.errno == errno.ENOTEMPTY
    assert (mount2.path / "deferred-rmdir" / "y").read_bytes() == b"y"


def test_a_file_left_open_reaches_meta_before_its_lease_ends(cluster, mount, client) -> None:
    d = mount.path / "deferred-open"
    d.mkdir()
    f = open(d / "kept", "wb")           # nothing written: no periodic flush of a buffer sends it either
    try:
        assert wait_for(lambda: client.exists("/deferred-open/kept"), timeout=15), \
            "the pending create outlived its directory's lease"
        f.write(b"written after")
    finally:
        f.close()
    assert client.open("/deferred-open/kept", "rb").read() == b"written after"


def test_a_deferred_create_meta_never_got_fails_the_close_and_leaves_no_file(tmp_path, mount_root) -> None:
    dc = start_cluster(tmp_path / "c", storage_nodes=3, targets_per_node=1)
    m = None
    try:
        m = Mount(dc.mgmtd_address, mount_root / "deferred-lost", "--retry-timeout", "3")
        d = m.path / "dir"
        d.mkdir()
        meta = next(p for p in dc.procs if p.role == "meta")
        f = open(d / "x", "wb")                      # answered by the mount: meta has not heard of it yet
        f.write(b"never stored")
        dc.stop_proc(meta, sig=signal.SIGKILL)
        with pytest.raises(OSError) as e:
            f.close()                                # the create goes with the close: meta is gone
        assert e.value.errno == errno.EIO
        dc.start_proc(meta)
        dc.wait_ready(meta, 60)
        assert not (d / "x").exists()                # the kernel forgot the name; meta never had it
        (d / "x").write_bytes(b"second try")
        assert (d / "x").read_bytes() == b"second try"
        assert m.proc.poll() is None
    finally:
        if m is not None:
            m.stop()
        dc.down()
