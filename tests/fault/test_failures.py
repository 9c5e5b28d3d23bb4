"""Fault injection under a sustained workload (several client tasks writing and reading concurrently, a
ledger of every acknowledged write): kill or hang a process at a chosen moment, bring it back, and after
the cluster healed (every target SERVING again) check every acknowledged write byte-exact on every replica,
that no read returned torn/uncommitted/stale data, and that the client process never crashed."""
from __future__ import annotations

import errno
import os
import signal
import time

import pytest
from fault_util import Harness, wait_until

from threefs.client.fs import AsyncClient
from threefs.proto import common_pb2 as cpb

KILL, STOP = signal.SIGKILL, signal.SIGSTOP
DETECT = 20.0        # seconds allowed for mgmtd to notice a dead or hung node (fail interval 2 s)


def _kill_and_restart(h: Harness, position: int, what: str) -> int:
    h.start_workload()
    h.wait_acks(150)
    node = h.node_at(1, position)
    before = h.routing().chain(1).chain_version
    h.fault(what, "storage", node, KILL)
    r = h.wait_routing(h.excluded(node), DETECT, f"mgmtd to take node {node} out of its chains")
    assert r.chain(1).chain_version > before
    assert [t.public_state for t in r.chain(1).targets][-1] == cpb.OFFLINE, "the dead target moves to the end"
    h.wait_acks(150)                                     # the workload goes on with two replicas
    h.restart("storage", node)
    h.wait_healed()
    h.wait_acks(100)
    return node


@pytest.mark.parametrize("position,what", [(0, "head"), (1, "middle"), (-1, "tail")])
def test_sigkill_of_a_chain_replica(harness, position, what):
    """SIGKILL the head / middle / tail of chain 1 mid-workload (reads included: 3FS issue #268)."""
    node = _kill_and_restart(harness, position, what)
    report = harness.finish()
    print(f"\n[{what} {node}] {report.line()}")
    assert report.writes > 300 and report.reads > 100


def _kill_mid_resync(h: Harness, node: int, what: str, *, victim_syncing: bool) -> None:
    """Wait until a resync onto `node` (victim_syncing) or from `node` has moved some chunks, then SIGKILL."""
    r = h.wait_routing(lambda r: bool(h.syncing_targets(r, node if victim_syncing else None)), DETECT,
                       "a resync to start")
    syncing = h.syncing_targets(r, node if victim_syncing else None)[0]
    start = h.chunks_on(syncing)
    wait_until(lambda: h.chunks_on(syncing) >= start + 8, DETECT, "the resync to copy some chunks", interval=0.05)
    assert h.syncing_targets(h.routing()), "the resync must still be running when the node dies"
    h.fault(what, "storage", node, KILL)


def test_sigkill_during_resync(make_harness):
    """Kill the rejoining node in the middle of its resync, then the node feeding the next resync; resync
    traffic is capped (2 MiB/s) so that ~11 MiB to copy keep it running for seconds."""
    h = make_harness(resync_rate_mb=2.0)
    h.start_workload()
    h.wait_acks(100)
    victim = h.node_at(1, -1)
    h.fault("first failure", "storage", victim, KILL)
    h.wait_routing(h.excluded(victim), DETECT, "the victim out of its chains")
    h.write_file("/resync-bulk", os.urandom(180 * 64 << 10))      # what the victim misses
    h.restart("storage", victim)
    _kill_mid_resync(h, victim, "syncing target during resync", victim_syncing=True)
    h.wait_routing(lambda r: not h.syncing_targets(r, victim), DETECT, "the victim out of SYNCING")
    h.wait_acks(50)
    h.restart("storage", victim)
    r = h.wait_routing(lambda r: bool(h.syncing_targets(r, victim)), DETECT, "the victim to resync again")
    syncing_chain = r.targets[h.syncing_targets(r, victim)[0]].chain_id
    source = h.node_of(r.serving(syncing_chain)[-1])
    assert source != victim
    _kill_mid_resync(h, source, "resync source during resync", victim_syncing=False)
    h.wait_routing(h.excluded(source), DETECT, "the resync source out of its chains")
    h.wait_acks(50)
    h.restart("storage", source)
    h.wait_healed()
    h.wait_acks(50)
    report = h.finish()
    print(f"\n[resync] {report.line()}")
    logs = "".join(h.dc.log_path(p).read_text() for p in h.dc.procs if p.role == "storage")
    assert "resync of chain" in logs and "failed (will retry)" in logs, "a resync was interrupted and retried"


def test_two_of_three_replicas_down_then_back(harness):
    h = harness
    h.start_workload()
    h.wait_acks(100)
    survivor = h.node_at(1, 0)
    down = [n for n in h.storage_nodes() if n != survivor]
    for n in down:
        h.fault("two of three", "storage", n, KILL)
    r = h.wait_routing(lambda r: all(h.excluded(n)(r) for n in down), DETECT, "both out of their chains")
    assert all(r.serving(c) and all(h.node_of(t) == survivor for t in r.serving(c)) for c in r.chains)
    h.wait_acks(150)                                      # one replica still takes writes and reads
    for n in down:
        h.restart("storage", n)
    h.wait_healed()
    h.wait_acks(50)
    report = h.finish()
    print(f"\n[two down] {report.line()}")


def test_sigstop_of_the_head(harness):
    """A hung head (SIGSTOP): detected by heartbeat timeout, clients move to the new head; when it
    resumes it fences itself (stale routing view) and rejoins through resync."""
    h = harness
    h.start_workload()
    h.wait_acks(150)
    node = h.node_at(1, 0)
    h.fault("hung head", "storage", node, STOP)
    stopped_at = time.monotonic()
    h.wait_routing(h.excluded(node), DETECT, "mgmtd to give up on the hung node")
    assert time.monotonic() - stopped_at >= 1.5, "a hung node is only detected by its missing heartbeats"
    h.wait_acks(150)                                     # in-flight calls to the hung head were abandoned
    h.resume("storage", node)
    h.wait_healed()
    h.wait_acks(50)
    report = h.finish()
    print(f"\n[sigstop head {node}] {report.line()}")
    log = h.dc.log_path(h.dc.proc("storage", node)).read_text()
    assert "stalled" in log, "the resumed node must notice it was frozen and refresh routing before serving"


def test_mgmtd_restart_during_workload(harness):
    """SIGKILL mgmtd: the data path goes on without it; the restarted mgmtd resumes from its KV with
    every chain version, publishes higher routing versions, and handles the next failure."""
    h = harness
    h.start_workload()
    h.wait_acks(100)
    before = h.routing()
    h.fault("mgmtd", "mgmtd", 1, KILL)
    h.wait_acks(150)                                     # storage and clients keep their routing info
    h.restart("mgmtd", 1)
    after = h.wait_routing(lambda r: r.version > before.version, DETECT, "the restarted mgmtd")
    for c in before.chains:
        assert after.chain(c).chain_version >= before.chain(c).chain_version
    h.wait_routing(lambda r: not r.info.bootstrapping, DETECT, "bootstrapping to end")
    h.wait_acks(100)
    node = h.node_at(2, 0)
    h.fault("storage after mgmtd restart", "storage", node, KILL)
    h.wait_routing(h.excluded(node), DETECT, "the new mgmtd to detect the failure")
    h.wait_acks(50)
    h.restart("storage", node)
    h.wait_healed()
    report = h.finish()
    print(f"\n[mgmtd restart] {report.line()}")


def test_meta_restart_during_workload(harness):
    """SIGKILL meta while tasks create, write, close and fsync files: their meta calls retry until the
    restarted meta answers; the data path never stops."""
    h = harness
    h.start_workload(meta_every=5)
    h.wait_acks(100)
    h.fault("meta", "meta", 100, KILL)
    h.wait_routing(lambda r: r.nodes[100].status == cpb.HEARTBEAT_FAILED, DETECT, "mgmtd to see meta gone")
    h.restart("meta", 100)
    h.wait_acks(150)
    report = h.finish()
    assert report.meta_ops > 20
    print(f"\n[meta restart] {report.line()}")


def test_no_serving_replica_fails_with_eio_or_etimedout_then_recovers(harness):
    """With every replica of the chains down, clients give up within their retry bound with EIO or
    ETIMEDOUT (not hang, not crash); after the nodes return the data written before is intact."""
    h = harness
    data = os.urandom(5 * 64 << 10)
    h.write_file("/before-outage", data)
    for n in h.storage_nodes():
        h.fault("whole storage tier", "storage", n, KILL)
    assert h.observer is not None

    async def attempt() -> tuple[list[int], float]:
        c = await AsyncClient(h.dc.mgmtd_address, retry_timeout=3.0).connect()
        errnos = []
        started = time.monotonic()
        try:
            f = await c.open("/before-outage", "r+b")
            for op in (f.pread(len(data), 0), f.pwrite(b"x" * 100, 0), f.close()):
                try:
                    await op
                    errnos.append(0)
                except OSError as e:
                    errnos.append(e.errno)
        finally:
            await c.close()
        return errnos, time.monotonic() - started

    errnos, took = h.observer.call(attempt())
    assert all(e in (errno.EIO, errno.ETIMEDOUT) for e in errnos[:2]), errnos
    assert errnos[2] in (0, errno.EIO, errno.ETIMEDOUT), errnos     # closing needs no storage but may try
    assert took < 20, f"giving up took {took:.1f}s"
    h.wait_routing(lambda r: all(any(t.public_state == cpb.LASTSRV for t in r.chain(c).targets) for c in r.chains),
                   DETECT, "every chain to keep a LASTSRV marker")
    for n in h.storage_nodes():
        h.restart("storage", n)
    h.wait_healed()
    h.start_workload()
    h.wait_acks(100)
    report = h.finish()
    print(f"\n[no serving replica] {report.line()}")


def test_fault_helpers_wait_on_conditions():
    with pytest.raises(AssertionError, match="waiting for never"):
        wait_until(lambda: False, 0.05, "never")
