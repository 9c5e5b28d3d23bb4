"""The "3fs" fsspec file system: URLs and registration, metadata, ranged reads, uploads, pandas/pyarrow."""
from __future__ import annotations

import datetime
import pickle
import random

import fsspec
import pytest

from threefs.client.fsspec import ThreeFSFile, ThreeFSFileSystem

CHUNK = 64 << 10


@pytest.fixture
def fs(cluster, client) -> ThreeFSFileSystem:
    return ThreeFSFileSystem(cluster.mgmtd_address, client=client)


def rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def test_protocol_is_registered_and_urls_carry_the_cluster(cluster, client, workdir):
    """fsspec finds "3fs" by entry point; the mgmtd address comes from the URL or THREEFS_MGMTD."""
    assert fsspec.get_filesystem_class("3fs") is ThreeFSFileSystem
    client.write_file(f"{workdir}/hello.txt", b"hello 3fs")
    with fsspec.open(f"3fs://{cluster.mgmtd_address}{workdir}/hello.txt", "rb") as f:
        assert f.read() == b"hello 3fs"
    fs, path = fsspec.core.url_to_fs(f"3fs://{cluster.mgmtd_address}{workdir}/hello.txt")
    assert isinstance(fs, ThreeFSFileSystem) and fs.mgmtd == cluster.mgmtd_address
    assert path == f"{workdir}/hello.txt"
    # the environment names the cluster (the session fixture exported THREEFS_MGMTD)
    with fsspec.open(f"3fs://{workdir}/hello.txt", "rt") as f:
        assert f.read() == "hello 3fs"
    assert fsspec.filesystem("3fs").cat_file(f"3fs:///{workdir}/hello.txt") == b"hello 3fs"
    assert fs.unstrip_protocol(path) == f"3fs://{cluster.mgmtd_address}{workdir}/hello.txt"


def test_pickled_file_system_reconnects(fs, client, workdir):
    """A pickled file system (dask, spawned workers) carries the address, not the live client."""
    client.write_file(f"{workdir}/p", b"pickled")
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.mgmtd == fs.mgmtd and copy.cat_file(f"{workdir}/p") == b"pickled"
    assert copy.client is not client
    copy.close()
    with fs.open(f"{workdir}/p", "rb") as f:
        f.seek(2)
        g = pickle.loads(pickle.dumps(f))          # read-mode files reopen at their position
        assert g.read() == b"ckled"
        g.close()


def test_missing_cluster_address_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("THREEFS_MGMTD", raising=False)
    with pytest.raises(ValueError, match="THREEFS_MGMTD"):
        ThreeFSFileSystem(skip_instance_cache=True)


@pytest.mark.parametrize("url,path", [
    ("3fs://10.0.0.1:9000/a/b", "/a/b"), ("3fs:///a/b/", "/a/b"), ("3fs://a/b", "/a/b"),
    ("3fs://h1:1,h2:2/x", "/x"), ("3fs://[::1]:80/y", "/y"), ("3fs://127.0.0.1:8000", "/"),
    ("/a//b/../c", "/a/c"), ("", "/"),
])
def test_strip_protocol(url, path):
    assert ThreeFSFileSystem._strip_protocol(url) == path


def test_info_ls_and_times(fs, client, workdir):
    client.makedirs(f"{workdir}/d/sub")
    client.write_file(f"{workdir}/d/f", b"x" * 1000)
    info = fs.info(f"{workdir}/d/f")
    assert (info["type"], info["size"], info["name"]) == ("file", 1000, f"{workdir}/d/f")
    assert fs.info(f"{workdir}/d")["type"] == "directory"
    listing = {e["name"]: e for e in fs.ls(f"{workdir}/d")}
    assert set(listing) == {f"{workdir}/d/f", f"{workdir}/d/sub"}
    assert listing[f"{workdir}/d/f"]["size"] == 1000 and listing[f"{workdir}/d/sub"]["type"] == "directory"
    assert sorted(fs.ls(f"{workdir}/d", detail=False)) == [f"{workdir}/d/f", f"{workdir}/d/sub"]
    assert fs.ls(f"{workdir}/d/f", detail=False) == [f"{workdir}/d/f"]
    now = datetime.datetime.now(datetime.timezone.utc)
    for when in (fs.created(f"{workdir}/d/f"), fs.modified(f"{workdir}/d/f")):
        assert when.tzinfo is not None and abs((now - when).total_seconds()) < 300
    with pytest.raises(FileNotFoundError):
        fs.info(f"{workdir}/nope")
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{workdir}/nope")
    assert not fs.exists(f"{workdir}/nope") and fs.isdir(f"{workdir}/d") and fs.isfile(f"{workdir}/d/f")


def test_mkdir_makedirs_rmdir_rm(fs, workdir):
    fs.mkdir(f"{workdir}/a/b/c")                       # create_parents=True by default
    assert fs.isdir(f"{workdir}/a/b/c")
    with pytest.raises(FileExistsError):
        fs.mkdir(f"{workdir}/a/b/c")
    with pytest.raises(FileNotFoundError):
        fs.mkdir(f"{workdir}/x/y", create_parents=False)
    fs.makedirs(f"{workdir}/a/b/c", exist_ok=True)
    with pytest.raises(FileExistsError):
        fs.makedirs(f"{workdir}/a/b/c")
    fs.pipe_file(f"{workdir}/a/b/c/f", b"1")
    with pytest.raises(OSError):
        fs.rmdir(f"{workdir}/a/b/c")                     # not empty
    with pytest.raises(IsADirectoryError):
        fs.rm(f"{workdir}/a")                            # a directory needs recursive=True
    fs.rm_file(f"{workdir}/a/b/c/f")
    fs.rmdir(f"{workdir}/a/b/c")
    assert not fs.exists(f"{workdir}/a/b/c")
    fs.pipe({f"{workdir}/a/b/g1": b"1", f"{workdir}/a/g2": b"2"})
    fs.rm(f"{workdir}/a", recursive=True)
    assert not fs.exists(f"{workdir}/a")
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{workdir}/a", recursive=True)


def test_mv_is_a_rename(fs, client, workdir):
    data = rand(3 * CHUNK + 5, 1)
    fs.pipe_file(f"{workdir}/src/f", data)
    ino = client.stat(f"{workdir}/src/f").st_ino
    fs.mv(f"{workdir}/src/f", f"{workdir}/dst/renamed")      # missing parent created
    assert client.stat(f"{workdir}/dst/renamed").st_ino == ino and not fs.exists(f"{workdir}/src/f")
    fs.mv(f"{workdir}/dst/renamed", f"{workdir}/src")          # into an existing directory
    assert fs.cat_file(f"{workdir}/src/renamed") == data
    fs.mv(f"{workdir}/src", f"{workdir}/moved")                 # a whole directory
    assert fs.cat_file(f"{workdir}/moved/renamed") == data and not fs.exists(f"{workdir}/src")


def test_cp_file_large_and_directory(fs, workdir, monkeypatch):
    monkeypatch.setattr("threefs.client.fsspec.COPY_BLOCK", 3 * CHUNK + 7)   # several pieces
    data = rand(11 * CHUNK + 123, 2)
    fs.pipe_file(f"{workdir}/big", data)
    fs.cp_file(f"{workdir}/big", f"{workdir}/new/copy")
    assert fs.cat_file(f"{workdir}/new/copy") == data
    fs.pipe_file(f"{workdir}/empty", b"")
    fs.cp_file(f"{workdir}/empty", f"{workdir}/empty2")
    assert fs.cat_file(f"{workdir}/empty2") == b""
    fs.makedirs(f"{workdir}/dir")
    fs.cp_file(f"{workdir}/dir", f"{workdir}/dir2")
    assert fs.isdir(f"{workdir}/dir2")


@pytest.mark.parametrize("start,end", [(None, None), (0, 10), (CHUNK - 3, CHUNK + 3), (-100, None), (5, -5),
                                       (None, 2 * CHUNK), (4 * CHUNK, None), (10, 5), (-10 ** 9, 3)])
def test_cat_file_ranges(fs, workdir, start, end):
    data = rand(4 * CHUNK + 99, 3)
    fs.pipe_file(f"{workdir}/f", data)
    assert fs.cat_file(f"{workdir}/f", start, end) == data[start:end]


def test_pipe_file_modes(fs, workdir):
    fs.pipe_file(f"{workdir}/p", b"one", mode="create")
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{workdir}/p", b"two", mode="create")
    fs.pipe_file(f"{workdir}/p", b"three")
    assert fs.cat_file(f"{workdir}/p") == b"three"


def test_buffered_file_ranged_reads_and_seeks(fs, workdir):
    data = rand(20 * CHUNK + 17, 4)
    fs.pipe_file(f"{workdir}/f", data)
    rng = random.Random(5)
    with fs.open(f"{workdir}/f", "rb", block_size=CHUNK) as f:
        assert isinstance(f, ThreeFSFile) and f.size == len(data)
        for _ in range(60):
            off = rng.randrange(0, len(data) + 100)
            n = rng.randrange(0, 3 * CHUNK)
            f.seek(off)
            assert f.read(n) == data[off:off + n]
        f.seek(-10, 2)
        assert f.read() == data[-10:]
        assert f.read() == b""


def test_buffered_writes_upload_in_blocks(fs, client, workdir, monkeypatch):
    """Writes are sent as block-sized pwrites while the file is open, and appear whole on close."""
    data = rand(9 * CHUNK + 1, 6)
    sizes: list[int] = []
    f = fs.open(f"{workdir}/w", "wb", block_size=2 * CHUNK)
    handle = f._handle
    orig = handle.pwrite
    monkeypatch.setattr(handle, "pwrite", lambda d, off: sizes.append(len(d)) or orig(d, off))
    for i in range(0, len(data), 10_000):
        f.write(data[i:i + 10_000])
    assert len(sizes) >= 4 and all(s >= 2 * CHUNK for s in sizes)   # uploaded before close
    f.close()
    assert fs.cat_file(f"{workdir}/w") == data
    with fs.open(f"{workdir}/w", "ab") as f:
        f.write(b"tail")
    assert client.read_file(f"{workdir}/w") == data + b"tail"
    with pytest.raises(FileExistsError):
        fs.open(f"{workdir}/w", "xb")
    with fs.open(f"{workdir}/deep/er/x", "wb") as f:              # parents are created
        f.write(b"x")
    assert fs.cat_file(f"{workdir}/deep/er/x") == b"x"


def test_transaction_commits_on_exit_and_discards_on_error(fs, workdir):
    with fs.transaction:
        with fs.open(f"{workdir}/t1", "wb") as f:
            f.write(b"committed")
        assert not fs.exists(f"{workdir}/t1")            # not visible before the transaction ends
    assert fs.cat_file(f"{workdir}/t1") == b"committed"
    with pytest.raises(RuntimeError):
        with fs.transaction:
            with fs.open(f"{workdir}/t2", "wb") as f:
                f.write(b"dropped")
            raise RuntimeError("abort")
    assert not fs.exists(f"{workdir}/t2")
    assert fs.ls(workdir, detail=False) == [f"{workdir}/t1"]   # no temporary files left


def test_pandas_parquet_round_trip(cluster, workdir):
    """pandas hands "threefs://" URLs to fsspec; "3fs://" (a scheme starting with a digit) needs filesystem=."""
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"i": range(5000), "f": [x / 7 for x in range(5000)], "s": [f"row{x}" for x in range(5000)]})
    url = f"threefs://{cluster.mgmtd_address}{workdir}/frame.parquet"
    df.to_parquet(url, engine="pyarrow", row_group_size=1000)
    pd.testing.assert_frame_equal(pd.read_parquet(url, engine="pyarrow"), df)
    fs = fsspec.filesystem("3fs")
    assert fs.info(f"3fs://{workdir}/frame.parquet")["size"] > 0
    back = pd.read_parquet(f"3fs://{cluster.mgmtd_address}{workdir}/frame.parquet", filesystem=fs, columns=["s"])
    assert list(back["s"]) == list(df["s"])
    df.iloc[:10].to_parquet(f"3fs://{workdir}/small.parquet", filesystem=fs)
    pd.testing.assert_frame_equal(pd.read_parquet(f"threefs:///{workdir}/small.parquet"), df.iloc[:10])


def test_pyarrow_dataset_over_fsspec(fs, workdir):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    tables = []
    for part in range(3):
        t = pa.table({"part": [part] * 1000, "v": list(range(part * 1000, (part + 1) * 1000))})
        pq.write_table(t, f"{workdir}/ds/part-{part}.parquet", filesystem=fs)
        tables.append(t)
    dataset = ds.dataset(f"{workdir}/ds", filesystem=fs, format="parquet")
    assert sorted(f.rsplit("/", 1)[1] for f in dataset.files) == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    got = dataset.to_table().sort_by("v")
    assert got.equals(pa.concat_tables(tables).sort_by("v"))
    assert dataset.to_table(filter=ds.field("part") == 1).num_rows == 1000


def test_touch_creates_truncates_or_updates_times(fs, client, workdir):
    path = f"{workdir}/touched"
    fs.touch(path)
    assert fs.info(path)["size"] == 0
    fs.pipe_file(path, b"keep me")
    client.utime(path, ns=(1_000_000_000, 1_000_000_000))
    fs.touch(path, truncate=False)
    st = client.stat(path)
    assert st.st_size == 7 and st.st_mtime_ns > 1_000_000_000
    fs.touch(path)
    assert fs.info(path)["size"] == 0
