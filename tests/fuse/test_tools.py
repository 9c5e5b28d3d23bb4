"""Ordinary tools on the mount: git, tar and rsync round trips."""
from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest


def make_tree(root: Path) -> None:
    """A small tree with nested dirs, sizes across chunk boundaries, a symlink, a hard link and modes."""
    (root / "a" / "b" / "c").mkdir(parents=True)
    for i, size in enumerate((0, 1, 4095, 65536, 65537, 300_000)):
        (root / "a" / f"f{i}").write_bytes(os.urandom(size))
    (root / "a" / "b" / "c" / "deep.txt").write_text("deep\n" * 100)
    os.symlink("../f1", root / "a" / "b" / "link")
    os.link(root / "a" / "f2", root / "a" / "b" / "hard")
    os.chmod(root / "a" / "f3", 0o600)
    os.chmod(root / "a" / "b", 0o750)
    os.utime(root / "a" / "f4", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))


def same_tree(x: Path, y: Path) -> None:
    """Byte-identical files, same symlinks, modes and mtimes."""
    xs = sorted(str(p.relative_to(x)) for p in x.rglob("*"))
    ys = sorted(str(p.relative_to(y)) for p in y.rglob("*"))
    assert xs == ys
    for rel in xs:
        a, b = x / rel, y / rel
        sa, sb = os.lstat(a), os.lstat(b)
        assert sa.st_mode == sb.st_mode, rel
        if a.is_symlink():
            assert os.readlink(a) == os.readlink(b)
        elif a.is_file():
            assert filecmp.cmp(a, b, shallow=False), rel
            assert sa.st_mtime_ns // 10**9 == sb.st_mtime_ns // 10**9, rel


def test_tar_round_trip(d: Path, tmp_path: Path) -> None:
    if shutil.which("tar") is None:
        pytest.skip("tar is not installed")
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    subprocess.run(["tar", "-C", str(src), "-cf", str(d / "t.tar"), "."], check=True)
    (d / "x").mkdir()
    subprocess.run(["tar", "-C", str(d / "x"), "-xpf", str(d / "t.tar")], check=True)
    same_tree(src, d / "x")
    assert os.stat(d / "x" / "a" / "f2").st_nlink == 2
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-C", str(d / "x"), "-cf", str(tmp_path / "back.tar"), "."], check=True)
    subprocess.run(["tar", "-C", str(out), "-xpf", str(tmp_path / "back.tar")], check=True)
    same_tree(src, out)
    with tarfile.open(d / "t.tar") as t:
        assert "./a/b/c/deep.txt" in t.getnames()


def test_rsync_round_trip(d: Path, tmp_path: Path) -> None:
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (scripts/install.sh installs it)")
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    subprocess.run(["rsync", "-aH", f"{src}/", f"{d}/r/"], check=True)
    same_tree(src, d / "r")
    back = tmp_path / "back"
    subprocess.run(["rsync", "-aH", f"{d}/r/", f"{back}/"], check=True)
    same_tree(src, back)
    r = subprocess.run(["rsync", "-aHi", "--checksum", f"{src}/", f"{d}/r/"], check=True, capture_output=True,
                       text=True)
    assert r.stdout.strip() == ""               # nothing differs: a second sync is a no-op


def test_git_init_add_commit(d: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x", HOME=str(d))
    repo = d / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "safe.directory=*", *args], cwd=repo, env=env, check=True,
                              capture_output=True, text=True).stdout

    git("init", "-q")
    for i in range(30):
        (repo / f"file{i}.txt").write_text(f"content {i}\n" * (i + 1))
    (repo / "sub").mkdir()
    (repo / "sub" / "bin").write_bytes(os.urandom(200_000))
    git("add", "-A")
    git("commit", "-q", "-m", "first")
    (repo / "file3.txt").write_text("changed\n")
    git("commit", "-q", "-am", "second")
    assert git("log", "--oneline").count("\n") == 2
    assert git("status", "--porcelain") == ""
    git("fsck", "--strict")
    assert git("show", "HEAD~1:file3.txt") == "content 3\n" * 4
