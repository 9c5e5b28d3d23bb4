"""A target whose store cannot be opened (its chunk metadata corrupt, as after a disk failure): the node
starts anyway, serves its other targets and reports that one OFFLINE; the cluster reads and writes on;
once the operator replaces the target (an empty directory), it resyncs and every replica matches."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from fault_util import Harness

from threefs.proto import common_pb2 as cpb


@pytest.mark.timeout(300)
def test_a_node_with_a_corrupt_target_serves_the_others_until_it_is_replaced(tmp_path) -> None:
    h = Harness(tmp_path).up()
    try:
        before = os.urandom(3 << 20)
        h.write_file("/before.bin", before)
        node = h.storage_nodes()[0]
        broken = h.dc.target_id(node, 0)
        other = h.dc.target_id(node, 1)
        store = h.dc.data_dir / f"storage-{node}" / f"target-{broken}"

        h.fault("corrupt", "storage", node, signal.SIGKILL)
        (store / "meta" / "CURRENT").write_text("not a manifest name\n")
        h.restart("storage", node)            # READY: the node does not refuse to start

        def broken_offline_other_serving(r) -> bool:
            states = {t.target_id: (t.public_state, r.targets[t.target_id].local_state)
                      for c in r.chains.values() for t in c.targets}
            return states[broken][0] == cpb.OFFLINE and states[other] == (cpb.SERVING, cpb.UPTODATE)
        h.wait_routing(broken_offline_other_serving, 60, f"target {broken} OFFLINE, {other} SERVING")
        log = h.dc.log_path(h.dc.proc("storage", node)).read_text()
        assert f"target {broken} at {store} cannot be opened and stays OFFLINE" in log and "Corruption" in log

        during = os.urandom(3 << 20)
        h.write_file("/during.bin", during)   # chains of the broken target run on two replicas
        assert h.observer.call(h.observer.client.read_file("/before.bin")) == before

        # The operator replaces the disk: an empty target directory, then a restart; it resyncs.
        h.fault("replace", "storage", node, signal.SIGTERM)
        shutil.rmtree(store)
        h.restart("storage", node)
        h.wait_healed(timeout=120)
        report = h.verify_files()             # /before.bin and /during.bin on every replica
        assert report.bytes_verified == len(before) + len(during)
    finally:
        h.close()


def test_a_node_whose_every_target_is_broken_exits_with_one_line(tmp_path) -> None:
    target = tmp_path / "t1"
    (target / "meta").mkdir(parents=True)
    (target / "meta" / "CURRENT").write_text("garbage\n")
    r = subprocess.run([sys.executable, "-m", "threefs", "storage", "--node-id", "10001", "--port", "0",
                        "--mgmtd", "127.0.0.1:1", "--target", f"1000101={target}"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "Error: storage: no target of this node can be opened:" in r.stderr and "Corruption" in r.stderr

