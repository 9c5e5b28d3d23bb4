"""`3fs-virt/`: instant recursive delete (rm-rf) and USRBIO iov registration (iovs)."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tests.fuse.conftest import run_as


def test_virt_dir_layout(mount) -> None:
    v = mount.path / "3fs-virt"
    assert v.is_dir() and sorted(os.listdir(v)) == ["iovs", "rm-rf"]
    assert "3fs-virt" not in os.listdir(mount.path)       # hidden from listings (tar/rsync of the root)
    with pytest.raises(OSError) as e:
        (v / "x").mkdir()
    assert e.value.errno == errno.EPERM


def test_rm_rf_by_symlink(mount, d: Path) -> None:
    tree = d / "tree"
    for i in range(5):
        (tree / f"s{i}" / "deep").mkdir(parents=True)
        for j in range(20):
            (tree / f"s{i}" / "deep" / f"f{j}").write_bytes(b"x" * 100)
    os.symlink(str(tree), mount.path / "3fs-virt" / "rm-rf" / "tree")
    assert not tree.exists()
    assert os.listdir(d) == []
    assert os.listdir(mount.path / "3fs-virt" / "rm-rf") == []
    (d / "file").write_text("x")
    os.symlink(str(d / "file"), mount.path / "3fs-virt" / "rm-rf" / "f")     # a single file works too
    assert not (d / "file").exists()


def test_rm_rf_errors(mount, d: Path) -> None:
    rmrf = mount.path / "3fs-virt" / "rm-rf"
    for target, code in (("/etc", errno.EXDEV), (str(d / "missing"), errno.ENOENT), (str(mount.path), errno.EPERM)):
        with pytest.raises(OSError) as e:
            os.symlink(target, rmrf / "x")
        assert e.value.errno == code, target
    (d / "closed").mkdir(mode=0o755)
    (d / "closed" / "f").touch()
    r = run_as(f"import os\ntry:\n  os.symlink({str(d / 'closed')!r}, {str(rmrf / 'x')!r})\n"
               "except OSError as e:\n  print(e.errno)")
    assert r.stdout.strip() == str(errno.EACCES), r.stderr       # meta checks the caller's rights
    assert (d / "closed" / "f").exists()


def test_rm_rf_by_rename(mount, d: Path) -> None:
    (d / "t" / "u").mkdir(parents=True)
    (d / "t" / "u" / "f").touch()
    os.rename(d / "t", mount.path / "3fs-virt" / "rm-rf" / "t")
    assert not (d / "t").exists()


def test_iovs_registration(mount) -> None:
    from threefs.client.usrbio import make_iovec
    iovs = mount.path / "3fs-virt" / "iovs"
    iov = make_iovec(1 << 20, mount.path, block_size=0)
    try:
        name = Path(iov.link).name
        assert name in os.listdir(iovs)
        assert os.readlink(iovs / name) == f"/dev/shm/{iov.name}"
        assert os.path.islink(iovs / name)
    finally:
        iov.close()
    assert name not in os.listdir(iovs)
    with pytest.raises(OSError) as e:
        os.symlink("/etc/passwd", iovs / ("0" * 32))
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        os.symlink("/dev/shm/whatever", iovs / "not-a-uuid")
    assert e.value.errno == errno.EINVAL
