"""`threefs up/down/status` on private dev clusters (each test starts and stops its own)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from itest_util import CHUNK, rand_bytes, start_cluster, threefs_cli, wait_until
from threefs.cli.devcluster import DevCluster, pid_alive
from threefs.client.fs import Client


@pytest.fixture
def private(tmp_path):
    dc = start_cluster(tmp_path / "dc")
    try:
        yield dc
    finally:
        DevCluster(dc.data_dir).down()      # the state file names the current pids (tests restart some)


def pids(dc: DevCluster) -> dict[str, int]:
    return {p.name: p.pid for p in dc.procs}


def proc_state(pid: int) -> str:
    """The kernel's state letter of `pid` ("gone" when there is no such process)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def exited(pid: int) -> bool:
    """Independent of threefs: every thread of the process has finished exiting (its files, sockets and
    locks are released). A multi-threaded process's leader shows "Z" while its other threads still exit."""
    if proc_state(pid) not in ("Z", "X", "gone"):
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def running(pid: int) -> bool:
    return not exited(pid)


def test_up_is_idempotent(private):
    before = pids(private)
    assert len(before) == 5 and all(before.values())
    st = DevCluster(private.data_dir).up(timeout=30)
    assert st["running"] is True
    assert {f"{p['role']}-{p['node_id']}": p["pid"] for p in st["processes"]} == before
    assert pids(DevCluster(private.data_dir)) == before          # the state file was not rewritten
    p = threefs_cli("up", "--data-dir", str(private.data_dir), "--json")
    again = json.loads(p.stdout)
    assert {f"{x['role']}-{x['node_id']}": x["pid"] for x in again["processes"]} == before
    assert again["mgmtd"] == private.mgmtd_address
    assert all(running(pid) for pid in before.values())
    # The human output's hint exports what `threefs status` and `down` need to find this cluster.
    out = threefs_cli("up", "--data-dir", str(private.data_dir)).stdout.decode()
    export = next(line.split()[1:] for line in out.splitlines() if line.strip().startswith("export "))
    env = dict(os.environ, **dict(kv.split("=", 1) for kv in export))
    assert env["THREEFS_MGMTD"] == private.mgmtd_address
    st = subprocess.run([sys.executable, "-m", "threefs", "status", "--json"], env=env, capture_output=True,
                        timeout=60, check=True)
    assert {f"{x['role']}-{x['node_id']}": x["pid"] for x in json.loads(st.stdout)["processes"]} == before


def test_up_restarts_only_the_dead_process(private):
    data = rand_bytes(3 * CHUNK + 1, 4)
    with Client(private.mgmtd_address) as c:
        c.write_file("/before", data)
    before = pids(private)
    victim = private.proc("storage", 10002)
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(lambda: exited(before[victim.name]), 20, "the killed storage node to exit")
    st = DevCluster(private.data_dir).up(timeout=60)
    assert st["running"] is True
    after = {f"{p['role']}-{p['node_id']}": p["pid"] for p in st["processes"]}
    assert after[victim.name] != before[victim.name] and running(after[victim.name])
    assert {k: v for k, v in after.items() if k != victim.name} == \
        {k: v for k, v in before.items() if k != victim.name}
    with Client(private.mgmtd_address) as c:
        assert c.read_file("/before") == data
        c.write_file("/after", data[::-1])
        assert c.read_file("/after") == data[::-1]


def test_stale_pid_file_restarts_on_same_ports_with_data(private):
    data = rand_bytes(5 * CHUNK + 321, 5)
    with Client(private.mgmtd_address) as c:
        c.makedirs("/keep")
        c.write_file("/keep/file", data)
    ports = {p.name: p.port for p in private.procs}
    old = pids(private)
    for pid in old.values():
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: all(exited(pid) for pid in old.values()), 20, "the killed processes to exit")
    stale = DevCluster(private.data_dir)
    assert pids(stale) == old                      # the state file still names the dead pids
    assert stale.running() == []
    st = stale.up(timeout=60)
    assert st["running"] is True
    assert {p.name: p.port for p in stale.procs} == ports
    assert st["mgmtd"] == private.mgmtd_address
    new = pids(stale)
    assert all(running(pid) for pid in new.values())
    assert not set(new.values()) & set(old.values())
    with Client(stale.mgmtd_address) as c:
        assert c.listdir("/keep") == ["file"]
        assert c.stat("/keep/file").st_size == len(data)
        assert c.read_file("/keep/file") == data
        c.write_file("/keep/after", b"still writable")
        assert c.read_file("/keep/after") == b"still writable"


def test_down_stops_every_process(private):
    before = pids(private)
    p = threefs_cli("down", "--data-dir", str(private.data_dir), "--json")
    stopped = json.loads(p.stdout)["stopped"]
    assert sorted(stopped) == sorted(before)
    assert stopped[0].startswith("meta") and stopped[-1].startswith("mgmtd")   # meta first, mgmtd last
    # down returns once every process has exited: ports and files are free for the next `up`
    assert {name: proc_state(pid) for name, pid in before.items() if not exited(pid)} == {}
    st = json.loads(threefs_cli("status", "--data-dir", str(private.data_dir), "--json").stdout)
    assert st["running"] is False
    assert all(x["pid"] is None and x["state"] == "stopped" for x in st["processes"])
    again = json.loads(threefs_cli("down", "--data-dir", str(private.data_dir), "--json").stdout)
    assert again["stopped"] == []


def test_pid_alive_sees_a_process_right_after_it_was_started():
    """`up`/`wait_ready` check a child with pid_alive right after Popen: a live child must count as alive.

    (Right after Popen returns, /proc/<pid>/cmdline can still be empty while the kernel finishes the
    exec; a process must not be declared dead for that.)
    """
    misses = 0
    for _ in range(100):
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "threefs"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            misses += not pid_alive(child.pid)
        finally:
            child.kill()
            child.wait()
            child.stdin.close()
    assert misses == 0, f"pid_alive called a just-started live process dead {misses} times out of 100"


@pytest.mark.parametrize("threads", [0, 4], ids=["single-threaded", "multi-threaded"])
def test_pid_alive_holds_until_a_killed_process_has_exited(threads):
    """stop_proc/down wait on pid_alive: it must stay true while the process is still exiting (still
    holding its listening socket, files and locks), or `down` returns early and an immediate `up` finds
    the port or the rocksdb LOCK still taken. Every service is multi-threaded (I/O pools, gRPC), and a
    thread-group leader shows "Z" while its other threads are still exiting."""
    code = ("import socket, sys, threading; s = [socket.socket() for _ in range(3000)]; "
            f"[threading.Thread(target=sys.stdin.read, daemon=True).start() for _ in range({threads})]; "
            "print('ok', flush=True); threading.Event().wait()")
    early = []
    for _ in range(20 if threads else 10):
        child = subprocess.Popen([sys.executable, "-c", code, "threefs"], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, start_new_session=True)
        try:
            assert child.stdout.readline() == b"ok\n"
            wait_until(lambda: pid_alive(child.pid), 10, "the child to count as alive")
            os.kill(child.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pid_alive(child.pid):            # as stop_proc does, minus its sleep
                assert time.monotonic() < deadline, "the killed child never counted as dead"
            if not exited(child.pid):
                early.append(f"{proc_state(child.pid)} with {len(os.listdir(f'/proc/{child.pid}/task'))} threads")
        finally:
            child.kill()
            child.wait()
            child.stdin.close()
            child.stdout.close()
    assert early == [], f"pid_alive reported a still-exiting process dead: {early}"


def test_failed_up_stops_the_processes_it_started_and_says_why(tmp_path):
    data = tmp_path / "dc"
    (data / "meta").mkdir(parents=True)
    (data / "meta" / "kv").write_text("not a database")       # meta cannot open its store: start-up fails
    p = threefs_cli("up", "--data-dir", str(data), "--base-port", "0", "--targets-per-node", "1", "--no-fuse",
                    "--no-s3", "--no-hdfs", check=False, timeout=180)
    err = p.stderr.decode()
    assert p.returncode != 0 and "Traceback" not in err
    assert "meta-100 exited during start-up" in err and "stopped the 5 processes" in err, err
    dc = DevCluster(data)
    assert dc.procs and not dc.running()                         # mgmtd and storage were stopped again
    assert all(exited(x.pid) for x in dc.procs if x.pid) and not any(x.pid for x in dc.procs)
    (data / "meta" / "kv").unlink()                              # fixed: the next `up` starts it all
    st = json.loads(threefs_cli("up", "--data-dir", str(data), "--json", timeout=180).stdout)
    try:
        assert st["running"] is True
    finally:
        DevCluster(data).down()


def test_up_refuses_a_mountpoint_it_cannot_create_before_starting_anything(tmp_path):
    data = tmp_path / "dc"
    p = threefs_cli("up", "--data-dir", str(data), "--base-port", "0", "--targets-per-node", "1",
                    "--mountpoint", "/proc/no-such-dir/mnt", check=False, timeout=60)
    assert p.returncode != 0
    assert "cannot create the mountpoint /proc/no-such-dir/mnt" in p.stderr.decode()
    assert not DevCluster(data).running()
