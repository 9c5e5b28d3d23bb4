"""open_cached: an open that never reads the disk to resolve a path, and nowait reads built on it."""
from __future__ import annotations

import os

import pytest

from threefs.storage import cached_open
from threefs.storage.cached_open import open_cached


def _drop_dentries() -> None:
    """Evict clean dentries and inodes machine-wide (root only; pages stay cached)."""
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2")
    except OSError as e:
        pytest.skip(f"dropping the dentry cache needs root: {e}")


def test_open_cached_opens_a_cached_path_and_declines_an_evicted_one(tmp_path):
    if not cached_open.available:
        pytest.skip("this kernel has no openat2 RESOLVE_CACHED (Linux < 5.12): opens are plain")
    p = tmp_path / "d" / "f"
    p.parent.mkdir()
    p.write_bytes(b"x")
    fd = open_cached(str(p))
    assert fd is not None
    os.close(fd)
    _drop_dentries()
    assert open_cached(str(p)) is None          # resolving it now needs the disk: declined
    os.close(os.open(p, os.O_RDONLY))             # a plain open brings the path back into the cache
    fd = open_cached(str(p))
    assert fd is not None and os.read(fd, 10) == b"x"
    os.close(fd)


def test_open_cached_reports_a_known_absent_path_like_open(tmp_path):
    p = tmp_path / "missing"
    with pytest.raises(FileNotFoundError):
        os.open(p, os.O_RDONLY)                   # leaves a negative dentry in the cache
    with pytest.raises(FileNotFoundError):
        open_cached(str(p))


def test_without_openat2_opens_are_plain(tmp_path, monkeypatch):
    monkeypatch.setattr(cached_open, "available", False)
    p = tmp_path / "f"
    p.write_bytes(b"y")
    _drop_dentries()
    fd = open_cached(str(p))
    assert fd is not None and os.read(fd, 10) == b"y"
    os.close(fd)
