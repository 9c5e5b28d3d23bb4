"""HdfsCLI (`hdfs` package) against `threefs hdfs serve`: streaming 64 MiB, append, metadata ops, errors."""
from __future__ import annotations

import hashlib
import os

import pytest
from hdfs import HdfsError, InsecureClient
from hdfs_util import ALICE, BOB


@pytest.fixture
def alice(gateway) -> InsecureClient:
    return InsecureClient(gateway.url, user="alice")


@pytest.fixture
def bob(gateway) -> InsecureClient:
    return InsecureClient(gateway.url, user="bob")


def test_stream_64mib_and_ranges(alice, hdir, root_client):
    size, piece = 64 << 20, 1 << 20
    seed = os.urandom(piece)
    pieces = [seed[i:] + seed[:i] for i in range(0, 64 * 4096, 4096)]   # 64 distinct 1 MiB pieces
    want = hashlib.sha256(b"".join(pieces)).hexdigest()
    alice.write(f"{hdir}/big.bin", data=iter(pieces))
    assert alice.status(f"{hdir}/big.bin")["length"] == size
    h = hashlib.sha256()
    with alice.read(f"{hdir}/big.bin", chunk_size=1 << 20) as reader:
        for block in reader:
            h.update(block)
    assert h.hexdigest() == want
    with alice.read(f"{hdir}/big.bin", offset=(5 << 20) + 17, length=3 << 20) as reader:
        assert reader.read() == b"".join(pieces)[(5 << 20) + 17:(8 << 20) + 17]
    with root_client.open(f"{hdir}/big.bin", "rb") as f:          # interop: the native client reads it
        assert f.pread(4096, 63 << 20) == pieces[63][:4096]


def test_append_empty_and_overwrite(alice, hdir):
    alice.write(f"{hdir}/e", data=b"")
    assert alice.status(f"{hdir}/e")["length"] == 0
    with alice.read(f"{hdir}/e") as r:
        assert r.read() == b""
    alice.write(f"{hdir}/a", data=b"one\n")
    alice.write(f"{hdir}/a", data=b"two\n", append=True)
    alice.write(f"{hdir}/a", data=b"three\n", append=True)
    with alice.read(f"{hdir}/a") as r:
        assert r.read() == b"one\ntwo\nthree\n"
    with pytest.raises(HdfsError) as e:
        alice.write(f"{hdir}/a", data=b"clobber")
    assert e.value.exception == "FileAlreadyExistsException"
    with alice.read(f"{hdir}/a") as r:
        assert r.read() == b"one\ntwo\nthree\n"                 # the refused CREATE lost nothing
    alice.write(f"{hdir}/a", data=b"new", overwrite=True)
    with alice.read(f"{hdir}/a") as r:
        assert r.read() == b"new"
    assert [n for n in alice.list(hdir) if "webhdfs-upload" in n] == []


def test_metadata_ops(alice, gateway, hdir, root_client):
    alice.makedirs(f"{hdir}/d/e", permission="750")
    assert alice.status(f"{hdir}/d/e")["permission"] == "750"
    alice.write(f"{hdir}/d/f", data=b"x" * 1000, permission="640")
    assert dict(alice.list(f"{hdir}/d", status=True))["f"]["permission"] == "640"
    alice.set_permission(f"{hdir}/d/f", "604")
    assert root_client.stat(f"{hdir}/d/f").st_mode & 0o777 == 0o604
    alice.set_times(f"{hdir}/d/f", access_time=1_600_000_000_000, modification_time=1_700_000_000_123)
    st = alice.status(f"{hdir}/d/f")
    assert (st["accessTime"], st["modificationTime"]) == (1_600_000_000_000, 1_700_000_000_123)
    alice.set_replication(f"{hdir}/d/f", 3)
    assert alice.status(f"{hdir}/d/f")["replication"] == 2               # the chain length, unchanged
    root = InsecureClient(gateway.url, user="root")
    root.set_owner(f"{hdir}/d/f", owner="bob", group="bob")
    assert (root_client.stat(f"{hdir}/d/f").st_uid, root_client.stat(f"{hdir}/d/f").st_gid) == (BOB, BOB)
    assert (alice.status(f"{hdir}/d/f")["owner"], alice.status(f"{hdir}/d/f")["group"]) == ("bob", "bob")
    with pytest.raises(HdfsError) as e:
        alice.set_owner(f"{hdir}/d/e", owner="bob")                      # only root may give files away
    assert e.value.exception == "AccessControlException"
    content = alice.content(f"{hdir}/d")
    assert (content["directoryCount"], content["fileCount"], content["length"]) == (2, 1, 1000)
    assert alice.checksum(f"{hdir}/d/f")["algorithm"] == "MD5-of-0MD5-of-512CRC32C"
    alice.rename(f"{hdir}/d/f", f"{hdir}/d/e")                          # into the existing directory
    assert alice.list(f"{hdir}/d/e") == ["f"]
    with pytest.raises(HdfsError):
        alice.rename(f"{hdir}/nope", f"{hdir}/d/g")                      # HdfsCLI raises on boolean false
    with pytest.raises(HdfsError) as e:
        alice.delete(f"{hdir}/d", recursive=False)
    assert e.value.exception == "PathIsNotEmptyDirectoryException"
    assert root_client.exists(f"{hdir}/d/e/f")
    assert alice.delete(f"{hdir}/d", recursive=True) is True
    assert not root_client.exists(f"{hdir}/d") and alice.delete(f"{hdir}/d") is False
    assert root_client.stat(hdir).st_uid == ALICE


def test_denied_and_missing(alice, bob, hdir, root_client):
    alice.write(f"{hdir}/private", data=b"p", permission="600")
    with pytest.raises(HdfsError) as e, bob.read(f"{hdir}/private") as r:
        r.read()
    assert e.value.exception == "AccessControlException" and "user=bob" in e.value.message
    with pytest.raises(HdfsError) as e:
        bob.delete(f"{hdir}/private")
    assert e.value.exception == "AccessControlException"
    assert root_client.exists(f"{hdir}/private")
    with pytest.raises(HdfsError) as e:
        bob.write(f"{hdir}/private", data=b"x", append=True)
    assert e.value.exception == "AccessControlException"
    assert alice.status(f"{hdir}/missing", strict=False) is None
    with pytest.raises(HdfsError) as e:
        alice.status(f"{hdir}/missing")
    assert e.value.exception == "FileNotFoundException"
    with pytest.raises(HdfsError) as e, alice.read(f"{hdir}/missing") as r:
        r.read()
    assert e.value.exception == "FileNotFoundException"
