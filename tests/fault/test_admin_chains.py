"""Admin chain commands against a live cluster: list-chains states, offline-target, update-chain
add/remove, rotate-lastsrv; each edit bumps the chain version and the cluster heals afterwards."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from fault_util import Harness

from threefs.proto import common_pb2 as cpb

DETECT = 20.0


def cli(h: Harness, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "threefs", "admin", *args, "--mgmtd", h.dc.mgmtd_address],
                          capture_output=True, text=True, timeout=60, check=False)
    if check:
        assert proc.returncode == 0, f"admin {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc


def states(h: Harness, chain_id: int) -> list[tuple[int, str, str]]:
    rows = json.loads(cli(h, "list-chains", "--json").stdout)
    row = next(r for r in rows if r["chain_id"] == chain_id)
    return [(t["target_id"], t["public"], t["local"]) for t in row["targets"]]


def test_offline_target_and_update_chain(harness):
    h = harness
    assert h.monitor is not None
    h.monitor.membership = False
    data = os.urandom(6 * 64 << 10)
    h.write_file("/admin-data", data)
    before = h.routing().chain(1)
    assert all(s[1:] == ("SERVING", "UPTODATE") for s in states(h, 1))
    text = cli(h, "list-chains").stdout
    assert f"{before.targets[0].target_id}(SERVING-UPTODATE)" in text

    victim = before.targets[-1].target_id
    out = json.loads(cli(h, "offline-target", "--target-id", str(victim), "--json").stdout)
    assert out["local"] == "LOCAL_OFFLINE"
    r = h.wait_routing(lambda r: r.chain(1).targets[-1].public_state == cpb.OFFLINE and
                       r.targets[victim].local_state == cpb.LOCAL_OFFLINE and
                       r.chain(1).targets[-1].target_id == victim, DETECT, "the target OFFLINE in chain 1")
    assert r.chain(1).chain_version > before.chain_version
    assert (victim, "OFFLINE", "OFFLINE") in states(h, 1)
    assert f"{victim}(OFFLINE-OFFLINE)" in cli(h, "list-chains").stdout
    # an admin-offlined target stays offline (no automatic rejoin) while its process runs
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert h.routing().targets[victim].local_state == cpb.LOCAL_OFFLINE
        time.sleep(0.1)

    serving = h.routing().serving(1)
    refused = cli(h, "update-chain", "1", str(serving[0]), "-m", "remove", check=False)
    assert refused.returncode == 1 and "OFFLINE" in refused.stderr and "Traceback" not in refused.stderr
    version = h.routing().chain(1).chain_version
    removed = json.loads(cli(h, "update-chain", "1", str(victim), "-m", "remove", "--json").stdout)
    assert [t["target_id"] for t in removed["targets"]] == serving and removed["version"] == version + 1
    targets = {t["target_id"]: t for t in json.loads(cli(h, "list-targets", "--json").stdout)}
    assert targets[victim]["chain_id"] is None
    assert h.observer is not None
    assert h.observer.call(h.observer.client.read_file("/admin-data")) == data
    added = json.loads(cli(h, "update-chain", "1", str(victim), "-m", "add", "--json").stdout)
    assert added["targets"][-1] == {"target_id": victim, "public": "OFFLINE"} and added["version"] == version + 2
    assert cli(h, "update-chain", "1", str(victim), "-m", "add", check=False).returncode == 1

    # restarting its process clears the admin offline: the target syncs back in
    h.dc.restart_proc(h.dc.proc("storage", h.node_of(victim)), sig=signal.SIGTERM)
    h.wait_healed()
    assert [s[0] for s in states(h, 1)][-1] == victim
    report = h.verify_files()
    assert report.chunks_compared >= 6


def test_rotate_lastsrv(harness):
    h = harness
    data = os.urandom(4 * 64 << 10)
    h.write_file("/lastsrv-data", data)
    assert cli(h, "rotate-lastsrv", "1", check=False).returncode == 1        # chain 1 still serves
    for n in h.storage_nodes():
        h.fault("whole storage tier", "storage", n, signal.SIGKILL)
    r = h.wait_routing(lambda r: all([t.public_state for t in r.chain(c).targets] == [cpb.LASTSRV, cpb.OFFLINE,
                                                                                        cpb.OFFLINE]
                                     for c in r.chains), DETECT, "every chain to wait for its LASTSRV target")
    holders = {h.node_of(r.chain(c).targets[0].target_id) for c in r.chains}
    live = next(n for n in h.storage_nodes() if n not in holders)
    h.restart("storage", live)                        # a node holding no LASTSRV target comes back
    h.wait_routing(lambda r: all(r.public_state(c, t.target_id) == cpb.WAITING for c in r.chains
                                 for t in r.chain(c).targets if h.node_of(t.target_id) == live),
                   DETECT, "its targets to wait for the LASTSRV ones")
    for chain_id in sorted(r.chains):                 # the file is striped over every chain
        for _ in range(len(r.chain(chain_id).targets)):
            out = json.loads(cli(h, "rotate-lastsrv", str(chain_id), "--json").stdout)
            assert out["targets"][0]["public"] == "LASTSRV" and out["targets"][-1]["public"] == "OFFLINE"
            if h.node_of(out["targets"][0]["target_id"]) == live:
                break
        h.wait_routing(lambda r, c=chain_id: [h.node_of(t) for t in r.serving(c)] == [live], DETECT,
                       f"chain {chain_id} to serve from the promoted target")
    assert h.observer is not None
    assert h.observer.call(h.observer.client.read_file("/lastsrv-data")) == data
    for n in h.storage_nodes():
        if n != live:
            h.restart("storage", n)
    h.wait_healed()
    report = h.verify_files()
    assert report.chunks_compared >= 4
