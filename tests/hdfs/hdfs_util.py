"""Helpers of the WebHDFS suite (a module of its own: `from conftest import ...` can find another
directory's conftest.py when several test directories are collected in one run)."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

ALICE, BOB = 1001, 1002


@dataclass
class Gateway:
    """A running gateway process and how to reach it."""

    proc: subprocess.Popen
    address: str

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_gateway(mgmtd: str, *args: str) -> Gateway:
    """Run `threefs hdfs serve` on a free port and wait for its READY line."""
    proc = subprocess.Popen([sys.executable, "-m", "threefs", "hdfs", "serve", "--mgmtd", mgmtd, "--port", "0",
                             *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("READY hdfs "):
            return Gateway(proc, line.split()[2])
    proc.wait()
    raise RuntimeError(f"the gateway exited with {proc.returncode} before READY")
