"""fsspec's WebHDFS client against `threefs hdfs serve`: round trips, ranges, append, rename, delete, fields."""
from __future__ import annotations

import os

import pytest
from fsspec.implementations.webhdfs import WebHDFS
from hdfs_util import ALICE, BOB

FIELDS = {"accessTime", "blockSize", "childrenNum", "fileId", "group", "length", "modificationTime", "owner",
          "pathSuffix", "permission", "replication", "storagePolicy", "type"}


@pytest.fixture
def alice(gateway) -> WebHDFS:
    return WebHDFS(gateway.host, port=gateway.port, user="alice", skip_instance_cache=True)


@pytest.fixture
def bob(gateway) -> WebHDFS:
    return WebHDFS(gateway.host, port=gateway.port, user="bob", skip_instance_cache=True)


@pytest.mark.parametrize("size", [0, 1, (64 << 10) + 3, (3 << 20) + 7])
def test_roundtrip_sizes(alice, hdir, size):
    data = os.urandom(size)
    path = f"{hdir}/f-{size}.bin"
    alice.pipe_file(path, data)
    assert alice.cat_file(path) == data
    assert alice.info(path)["size"] == size


def test_nested_dirs_listing_and_status_fields(alice, hdir, root_client):
    alice.makedirs(f"{hdir}/a/b/c", exist_ok=True)
    alice.pipe_file(f"{hdir}/a/b/c/x.txt", b"hello")
    alice.pipe_file(f"{hdir}/a/y.txt", b"0123456789")
    assert alice.ls(f"{hdir}/a") == [f"{hdir}/a/b", f"{hdir}/a/y.txt"]
    entries = {e["pathSuffix"]: e for e in alice.ls(f"{hdir}/a", detail=True)}
    y, b = entries["y.txt"], entries["b"]
    assert FIELDS <= set(y) and FIELDS <= set(b)
    native = root_client.stat(f"{hdir}/a/y.txt")
    assert (y["type"], y["size"], y["owner"], y["group"], y["permission"]) == ("file", 10, "alice", "alice", "644")
    assert (y["fileId"], y["blockSize"], y["replication"]) == (native.st_ino, 64 << 10, 2)
    assert y["modificationTime"] == native.st_mtime_ns // 1_000_000
    assert (b["type"], b["size"], b["childrenNum"], b["permission"], b["replication"]) == ("directory", 0, 1, "755", 0)
    raw = alice._call("GETFILESTATUS", path=f"{hdir}/a").json()["FileStatus"]
    assert set(raw) == FIELDS and (raw["type"], raw["childrenNum"], raw["pathSuffix"]) == ("DIRECTORY", 2, "")
    assert alice.content_summary(f"{hdir}/a") == {
        "directoryCount": 3, "ecPolicy": "", "fileCount": 2, "length": 15, "quota": -1, "spaceConsumed": 30,
        "spaceQuota": -1, "typeQuota": {}}


def test_ranged_reads(alice, hdir):
    data = os.urandom(300_000)
    path = f"{hdir}/r.bin"
    alice.pipe_file(path, data)
    assert alice.cat_file(path, start=70_000, end=200_001) == data[70_000:200_001]
    assert alice.cat_file(path, start=299_990) == data[299_990:]
    with alice.open(path, "rb", block_size=4096) as f:
        f.seek(123_456)
        assert f.read(1000) == data[123_456:124_456]


def test_rename_and_recursive_delete(alice, hdir):
    # (fsspec's "ab" mode never sets its upload Location, so APPEND is tested with HdfsCLI)
    path = f"{hdir}/log.txt"
    alice.pipe_file(path, b"one\ntwo\n")
    alice.mv(path, f"{hdir}/moved.txt")
    assert not alice.exists(path) and alice.cat_file(f"{hdir}/moved.txt") == b"one\ntwo\n"
    alice.makedirs(f"{hdir}/tree/x/y", exist_ok=True)
    alice.pipe_file(f"{hdir}/tree/x/y/z", b"z")
    alice.rm(f"{hdir}/tree", recursive=True)
    assert not alice.exists(f"{hdir}/tree")


def test_permissions_checksum_home(alice, bob, hdir, root_client):
    alice.pipe_file(f"{hdir}/secret", b"s3cret")
    alice.chmod(f"{hdir}/secret", 600)              # fsspec takes the octal digits as an int
    assert alice.info(f"{hdir}/secret")["permission"] == "600"
    assert root_client.stat(f"{hdir}/secret").st_mode & 0o7777 == 0o600
    with pytest.raises(PermissionError):
        bob.cat_file(f"{hdir}/secret")
    with pytest.raises(PermissionError):
        bob.pipe_file(f"{hdir}/bobs", b"x")          # alice's 755 directory
    assert not root_client.exists(f"{hdir}/bobs")
    ukey = alice.ukey(f"{hdir}/secret")
    assert ukey["algorithm"] == "MD5-of-0MD5-of-512CRC32C" and ukey["length"] == 28
    alice.pipe_file(f"{hdir}/same", b"s3cret")
    assert alice.ukey(f"{hdir}/same") == ukey
    alice.pipe_file(f"{hdir}/other", b"s3creT")
    assert alice.ukey(f"{hdir}/other")["bytes"] != ukey["bytes"]
    assert alice.home_directory() == "/user/alice"
    assert root_client.stat(f"{hdir}/secret").st_uid == ALICE != BOB


def test_missing_and_bad_arguments(alice, hdir):
    with pytest.raises(FileNotFoundError):
        alice.info(f"{hdir}/missing")
    with pytest.raises(FileNotFoundError):
        alice.cat_file(f"{hdir}/missing")
    alice.pipe_file(f"{hdir}/f", b"abc")
    with pytest.raises(ValueError):
        alice._call("OPEN", path=f"{hdir}/f", offset=-1)
    with pytest.raises(ValueError):
        alice._call("DELETE", method="delete", path=f"{hdir}/f", recursive="maybe")
    assert alice.cat_file(f"{hdir}/f") == b"abc"
    with pytest.raises(ValueError):
        alice._call("MKDIRS", method="put", path=f"{hdir}/p", permission="999")
    assert not alice.exists(f"{hdir}/p")
