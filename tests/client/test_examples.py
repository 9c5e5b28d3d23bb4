"""The dataloader example trains end to end against the shared cluster (fork-started DataLoader workers)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_train_toy_model_example(cluster, workdir):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_toy_model.py"),
                           "--mgmtd", cluster.mgmtd_address, "--dir", f"{workdir}/toy", "--records", "2048",
                           "--steps", "40", "--batch-size", "32", "--workers", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    m = re.search(r"first loss ([\d.]+), last loss ([\d.]+)", proc.stdout)
    assert m and float(m.group(2)) < float(m.group(1)) / 4, proc.stdout
    assert "checkpoint round trip ok" in proc.stdout
    assert "trained 40 steps, 1280 samples" in proc.stdout
