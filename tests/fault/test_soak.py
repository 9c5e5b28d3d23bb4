"""Soak: the fault workload for a configurable time (THREEFS_SOAK_SECONDS, default 90; seed
THREEFS_SOAK_SEED) with random faults one after another: SIGKILL or SIGSTOP of a storage node, two of
three nodes down, a kill during resync, mgmtd and meta restarts. After the last fault the cluster must
heal and every acknowledged write must read back byte-exact from every replica."""
from __future__ import annotations

import os
import random
import signal
import time

import pytest
from fault_util import Harness

from threefs.proto import common_pb2 as cpb

SOAK_SECONDS = float(os.environ.get("THREEFS_SOAK_SECONDS", "90"))
DETECT = 20.0


def _syncing_on(h: Harness, node: int):
    return lambda r: any(r.public_state(c, t.target_id) == cpb.SYNCING and h.node_of(t.target_id) == node
                         for c in r.chains for t in r.chain(c).targets)


def kill_storage(h: Harness, rnd: random.Random) -> str:
    node = rnd.choice(h.storage_nodes())
    h.fault("soak", "storage", node, signal.SIGKILL)
    h.wait_routing(h.excluded(node), DETECT, f"node {node} out of its chains")
    h.wait_acks(rnd.randint(20, 80))
    h.restart("storage", node)
    return f"SIGKILL storage {node}"


def hang_storage(h: Harness, rnd: random.Random) -> str:
    node = rnd.choice(h.storage_nodes())
    h.fault("soak", "storage", node, signal.SIGSTOP)
    h.wait_routing(h.excluded(node), DETECT, f"hung node {node} out of its chains")
    h.wait_acks(rnd.randint(20, 80))
    h.resume("storage", node)
    return f"SIGSTOP/SIGCONT storage {node}"


def two_down(h: Harness, rnd: random.Random) -> str:
    nodes = rnd.sample(h.storage_nodes(), 2)
    for n in nodes:
        h.fault("soak", "storage", n, signal.SIGKILL)
    h.wait_routing(lambda r: all(h.excluded(n)(r) for n in nodes), DETECT, "two nodes out of their chains")
    h.wait_acks(rnd.randint(20, 80))
    for n in nodes:
        h.restart("storage", n)
    return f"SIGKILL storage {nodes[0]} and {nodes[1]}"


def kill_during_resync(h: Harness, rnd: random.Random) -> str:
    node = rnd.choice(h.storage_nodes())
    h.fault("soak", "storage", node, signal.SIGKILL)
    h.wait_routing(h.excluded(node), DETECT, f"node {node} out of its chains")
    h.wait_acks(rnd.randint(50, 150))
    h.restart("storage", node)
    h.wait_routing(_syncing_on(h, node), DETECT, f"node {node} to resync")
    h.fault("soak during resync", "storage", node, signal.SIGKILL)
    h.restart("storage", node)
    return f"SIGKILL storage {node} twice (second during resync)"


def restart_mgmtd(h: Harness, rnd: random.Random) -> str:
    h.fault("soak", "mgmtd", 1, signal.SIGKILL)
    h.wait_acks(rnd.randint(20, 80))
    h.restart("mgmtd", 1)
    return "SIGKILL mgmtd"


def restart_meta(h: Harness, rnd: random.Random) -> str:
    h.fault("soak", "meta", 100, signal.SIGKILL)
    h.wait_routing(lambda r: r.nodes[100].status == cpb.HEARTBEAT_FAILED, DETECT, "meta marked failed")
    h.restart("meta", 100)
    return "SIGKILL meta"


FAULTS = [(kill_storage, 4), (hang_storage, 2), (two_down, 2), (kill_during_resync, 2), (restart_mgmtd, 1),
          (restart_meta, 1)]


@pytest.mark.slow
@pytest.mark.timeout(int(SOAK_SECONDS) + 300)
def test_soak_random_faults(harness, capsys):
    h = harness
    seed = int(os.environ.get("THREEFS_SOAK_SEED", str(int(time.time()) % 100_000)))
    rnd = random.Random(seed)
    lines = [f"soak: {SOAK_SECONDS:.0f}s, seed {seed}"]
    h.start_workload(meta_every=15)
    started = time.monotonic()
    deadline = started + SOAK_SECONDS
    while time.monotonic() < deadline:
        h.wait_healed()
        h.wait_acks(rnd.randint(50, 150))
        fault = rnd.choices([f for f, _ in FAULTS], weights=[w for _, w in FAULTS])[0]
        what = fault(h, rnd)
        lines.append(f"  t={time.monotonic() - started:5.1f}s acks={h.acks():6d}  {what}")
    h.wait_healed()
    h.wait_acks(50)
    report = h.finish()
    lines.append(f"soak result: {report.line()}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert len(report.faults) >= 2
    assert report.writes > 0 and report.reads > 0 and report.bytes_verified > 0
