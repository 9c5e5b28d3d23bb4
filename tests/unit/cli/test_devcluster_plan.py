"""A dev cluster's plan gives every service and metrics endpoint a port of its own."""
from __future__ import annotations

import random

from threefs.cli import devcluster
from threefs.cli.devcluster import ClusterSpec, DevCluster


def _planned_ports(dc: DevCluster) -> list[int]:
    ports = [p.port for p in dc.procs if p.role != "fuse"]
    ports += [int(p.args[p.args.index("--metrics-port") + 1]) for p in dc.procs if "--metrics-port" in p.args]
    return ports


def test_plan_never_repeats_a_port(tmp_path, monkeypatch):
    """Random picks that collide (CI once gave mgmtd its own metrics port) are skipped, not reused."""
    monkeypatch.setattr(devcluster, "_ephemeral_range", lambda: (32768, 60999))
    # Picks from only 14 ports for 14 services: without the exclusion, a repeat is all but certain.
    monkeypatch.setattr(devcluster.random, "sample", lambda pop, k: random.Random(7).choices(pop[:14], k=k))
    spec = ClusterSpec(storage_nodes=3, s3=True, hdfs=True, fuse=True, metrics=True)
    for _ in range(5):
        dc = DevCluster(tmp_path / "c", spec)
        dc._plan()
        ports = _planned_ports(dc)
        assert len(ports) == 14
        assert len(set(ports)) == len(ports), sorted(ports)


def test_base_port_plan_is_consecutive(tmp_path):
    dc = DevCluster(tmp_path / "c", ClusterSpec(base_port=23000, storage_nodes=2, s3=True, hdfs=False,
                                                fuse=False, metrics=True))
    dc._plan()
    ports = _planned_ports(dc)
    assert sorted(ports) == list(range(23000, 23000 + len(ports)))


def test_up_on_an_existing_cluster_refuses_another_shape_before_starting_anything(tmp_path):
    from click.testing import CliRunner

    from threefs.cli.main import cli
    dc = DevCluster(tmp_path / "dc", ClusterSpec(base_port=0, storage_nodes=3, targets_per_node=1, fuse=False))
    dc._plan()
    dc._save()
    runner = CliRunner()
    r = runner.invoke(cli, ["up", "--data-dir", str(tmp_path / "dc"), "--fuse", "--targets-per-node", "2",
                            "--replicas", "3"])
    assert r.exit_code == 2
    assert f"the cluster in {dc.data_dir} was created with --targets-per-node 1, --no-fuse; its shape is kept" \
        in " ".join(r.output.split())
    assert all(p.pid == 0 for p in DevCluster(tmp_path / "dc").procs)        # nothing was started
    assert "Traceback" not in r.output
