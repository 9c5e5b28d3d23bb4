"""Real FUSE mounts of the session cluster: `threefs mount` processes, always unmounted at teardown."""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The suite's modules import `tests.conftest` and `tests.fuse.conftest`: make the repository root importable
# under a plain `pytest` run too (`python -m pytest` puts the working directory on sys.path).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def _skip_reason() -> str | None:
    """Why this machine cannot run real mounts, or None."""
    if importlib.util.find_spec("pyfuse3") is None:
        return "pyfuse3 is not installed (pip install threefs[fuse])"
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        return "this machine has no /dev/fuse or fusermount3 (apt-get install fuse3)"
    if os.geteuid() != 0:
        return "the FUSE tests mount with allow_other and switch uids: they need root"
    return None


SKIP_REASON = _skip_reason()


def pytest_collection_modifyitems(config, items) -> None:
    if SKIP_REASON:
        here = Path(__file__).parent
        for item in items:
            if here in Path(item.fspath).parents:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


OTHER_UID = 4242
OTHER_GID = 4242
# The venv may sit where other users cannot reach; the uid-switched children only need the stdlib.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def is_mounted(mnt: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(mnt) for line in f)


class Mount:
    """One `threefs mount` process and its mountpoint."""

    def __init__(self, mgmtd: str, mnt: Path, *args: str) -> None:
        self.path = mnt
        try:
            mnt.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass        # a dead mount is there (ENOTCONN): `threefs mount` detaches it
        self.proc = subprocess.Popen([sys.executable, "-m", "threefs", "mount", "--mgmtd", mgmtd, str(mnt),
                                      "-o", "allow_other", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()      # blocks until READY or exit (the daemon prints nothing else)
        if not line.startswith("READY fuse"):
            self.proc.wait(timeout=10)
            raise RuntimeError(f"mount failed: {line}{self.proc.stderr.read()}")

    def stop(self) -> None:
        """SIGTERM (clean unmount); lazy fusermount3 -u if anything is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if is_mounted(self.path):
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False, capture_output=True)


@pytest.fixture(scope="session")
def mount_root() -> Iterator[Path]:
    """Mountpoints' parent, traversable by other users (pytest's own tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="threefs-fuse-"))
    root.chmod(0o755)
    yield root
    if not any(is_mounted(p) for p in root.iterdir()):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mount(cluster, mount_root) -> Iterator[Mount]:
    """A mount with 3FS's default caching (attr/entry TTL 30 s), allow_other."""
    m = Mount(cluster.mgmtd_address, mount_root / "mnt")
    yield m
    m.stop()
    assert not is_mounted(m.path)


@pytest.fixture(scope="session")
def mount2(cluster, mount_root) -> Iterator[Mount]:
    """A second mount of the same cluster (another client: close-to-open between mounts)."""
    m = Mount(cluster.mgmtd_address, mount_root / "mnt2")
    yield m
    m.stop()


@pytest.fixture
def d(mount, request) -> Path:
    """A fresh world-writable directory in the mount per test."""
    path = mount.path / ("t-" + request.node.name.replace("[", "-").replace("]", "").replace("/", "_")[:80])
    path.mkdir()
    os.chmod(path, 0o777)
    return path


def run_as(code: str, uid: int = OTHER_UID, gid: int = OTHER_GID, **kw) -> subprocess.CompletedProcess:
    """Run Python code as another user (setresuid in the child); the result's stdout is the printout."""
    def drop() -> None:
        os.setgroups([gid])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    return subprocess.run([SYSTEM_PYTHON, "-c", code], preexec_fn=drop, capture_output=True, text=True,
                          timeout=60, cwd="/", **kw, check=False)


def wait_for(cond, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll `cond` until it is true or `timeout` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())
