"""Fixtures of the fault tests: a private, breakable cluster per test with the fault harness."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fault_util import Harness


@pytest.fixture
def harness(tmp_path) -> Harness:
    """A fresh cluster (3 storage nodes x 2 targets, 3 replicas, 64 KiB chunks, 2 s failure detection)."""
    h = Harness(tmp_path)
    try:
        h.up()
        yield h
    finally:
        h.close()


@pytest.fixture
def make_harness(tmp_path):
    """A factory for a harness with other cluster settings (ClusterSpec fields); stopped after the test."""
    made: list[Harness] = []

    def make(**spec) -> Harness:
        h = Harness(tmp_path / f"h{len(made)}", **spec)
        made.append(h)
        return h.up()

    try:
        yield make
    finally:
        for h in made:
            h.close()
