"""The `threefs` command line as a user runs it: subprocesses against the shared cluster."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from itest_util import CHUNK, cli_json, query_chunk_cli, rand_bytes, threefs_cli


def fs(cluster, *args: str, **kw):
    return threefs_cli(*args, "--mgmtd", cluster.mgmtd_address, **kw)


def fs_json(cluster, *args: str):
    return cli_json(*args, "--json", "--mgmtd", cluster.mgmtd_address)


def test_put_get_round_trip(cluster, client, workdir, tmp_path):
    data = os.urandom((3 << 20) + 12345)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    p = fs(cluster, "put", str(src), f"{workdir}/big.bin")
    assert f"{len(data)} bytes" in p.stderr.decode()
    assert client.stat(f"{workdir}/big.bin").st_size == len(data)
    assert client.read_file(f"{workdir}/big.bin") == data
    dst = tmp_path / "dst.bin"
    fs(cluster, "get", f"{workdir}/big.bin", str(dst))
    assert dst.read_bytes() == data
    # put into a directory keeps the base name; get into a local directory too
    fs(cluster, "put", str(src), workdir)
    assert client.read_file(f"{workdir}/src.bin") == data
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    fs(cluster, "get", f"{workdir}/src.bin", str(out_dir))
    assert (out_dir / "src.bin").read_bytes() == data
    # an empty file
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    fs(cluster, "put", str(empty), f"{workdir}/empty")
    assert client.stat(f"{workdir}/empty").st_size == 0
    fs(cluster, "get", f"{workdir}/empty", str(tmp_path / "empty-back"))
    assert (tmp_path / "empty-back").read_bytes() == b""
    # stdin / stdout
    small = rand_bytes(CHUNK + 3, 1)
    fs(cluster, "put", "-", f"{workdir}/stdin.bin", input=small)
    assert fs(cluster, "get", f"{workdir}/stdin.bin", "-").stdout == small


def test_cat_ls_stat(cluster, client, workdir):
    data = rand_bytes(2 * CHUNK + 5, 2)
    client.write_file(f"{workdir}/a.bin", data)
    client.mkdir(f"{workdir}/sub")
    assert fs(cluster, "cat", f"{workdir}/a.bin").stdout == data
    assert fs(cluster, "ls", workdir).stdout.decode().split() == ["a.bin", "sub/"]
    long = fs(cluster, "ls", "-l", workdir).stdout.decode()
    assert "a.bin" in long and str(len(data)) in long and "-rw" in long
    rows = fs_json(cluster, "ls", workdir)
    assert [r["name"] for r in rows] == ["a.bin", "sub"]
    assert rows[0]["size"] == len(data)
    assert rows[0]["inode"] == client.stat(f"{workdir}/a.bin").st_ino
    info = fs_json(cluster, "stat", f"{workdir}/a.bin")
    assert info["type"] == "file"
    assert info["size"] == len(data)
    assert info["inode"] == client.stat(f"{workdir}/a.bin").st_ino
    assert info["layout"]["chunk_size"] == CHUNK
    assert info["layout"]["stripe"] == 2
    assert sorted(info["layout"]["chains"]) == [1, 2]
    d = fs_json(cluster, "stat", f"{workdir}/sub")
    assert d["type"] == "directory" and d["size"] == 0


def test_small_files_show_they_are_kept_in_meta(cluster, client, workdir):
    client.write_file(f"{workdir}/small", b"tiny")               # a new small file: inline in meta
    client.write_file(f"{workdir}/big", rand_bytes(CHUNK, 3))
    assert fs_json(cluster, "stat", f"{workdir}/small")["inline"] is True
    assert fs_json(cluster, "stat", f"{workdir}/big")["inline"] is False
    q = query_chunk_cli(cluster, f"{workdir}/small", 0)
    assert q["inline"] is True and not any(r["found"] for r in q["replicas"])
    out = threefs_cli("admin", "query-chunk", f"{workdir}/small", "--mgmtd", cluster.mgmtd_address).stdout.decode()
    assert "kept in meta" in out
    assert fs(cluster, "cat", f"{workdir}/small").stdout == b"tiny"


def test_mv_exchange_swaps_two_paths(cluster, client, workdir):
    client.write_file(f"{workdir}/x", b"x")
    client.mkdir(f"{workdir}/y")
    fs(cluster, "mv", "--exchange", f"{workdir}/x", f"{workdir}/y")
    assert client.isdir(f"{workdir}/x") and client.read_file(f"{workdir}/y") == b"x"
    p = fs(cluster, "mv", "--exchange", f"{workdir}/y", f"{workdir}/missing", check=False)
    assert p.returncode == 1 and b"does not exist" in p.stderr and b"Traceback" not in p.stderr


def test_query_chunk_says_what_to_fix(cluster, client, workdir):
    client.mkdir(f"{workdir}/adir")
    p = threefs_cli("admin", "query-chunk", f"{workdir}/adir", "--mgmtd", cluster.mgmtd_address, check=False)
    assert p.returncode == 1 and b"is not a regular file" in p.stderr and b"Traceback" not in p.stderr
    client.write_file(f"{workdir}/f", b"x")
    p = threefs_cli("admin", "query-chunk", f"{workdir}/f", "-1", "--mgmtd", cluster.mgmtd_address, check=False)
    assert p.returncode == 2 and b"-1" in p.stderr and b"Traceback" not in p.stderr


def test_mkdir_mv_rm(cluster, client, workdir):
    fs(cluster, "mkdir", "-p", f"{workdir}/x/y/z")
    assert client.isdir(f"{workdir}/x/y/z")
    fs(cluster, "mkdir", "-p", f"{workdir}/x/y/z")                     # -p: exists is fine
    p = fs(cluster, "mkdir", f"{workdir}/x", check=False)
    assert p.returncode == 1 and b"threefs: error:" in p.stderr
    client.write_file(f"{workdir}/x/f", b"hello")
    fs(cluster, "mv", f"{workdir}/x/f", f"{workdir}/x/g")
    assert client.read_file(f"{workdir}/x/g") == b"hello"
    fs(cluster, "mv", f"{workdir}/x/g", f"{workdir}/x/y")               # into a directory
    assert client.listdir(f"{workdir}/x/y") == ["g", "z"]
    fs(cluster, "rm", f"{workdir}/x/y/g")
    assert client.listdir(f"{workdir}/x/y") == ["z"]
    p = fs(cluster, "rm", f"{workdir}/x", check=False)                # a directory without -r
    assert p.returncode == 1 and b"threefs: error:" in p.stderr
    assert client.isdir(f"{workdir}/x/y/z")
    fs(cluster, "rm", "-r", f"{workdir}/x")
    assert not client.exists(f"{workdir}/x")
    fs(cluster, "rm", "-f", f"{workdir}/never-was")
    assert client.listdir(workdir) == []


def test_admin_listings(cluster):
    nodes = fs_json(cluster, "admin", "list-nodes")
    storage = [n for n in nodes if n["type"] == "STORAGE"]
    assert len(storage) == 3
    assert {n["id"] for n in storage} == {p.node_id for p in cluster.procs if p.role == "storage"}
    assert all(n["status"] == "HEARTBEAT_CONNECTED" for n in nodes if n["type"] in ("STORAGE", "META"))
    assert any(n["type"] == "META" for n in nodes)
    for n in storage:
        assert n["address"] == f"127.0.0.1:{cluster.proc('storage', n['id']).port}"
        assert n["pid"] == cluster.proc("storage", n["id"]).pid

    chains = fs_json(cluster, "admin", "list-chains")
    assert [c["chain_id"] for c in chains] == [1, 2]
    for c in chains:
        assert c["status"] == "SERVING"
        assert len(c["targets"]) == 3
        assert all(t["public"] == "SERVING" for t in c["targets"])
        assert len({t["target_id"] // 100 for t in c["targets"]}) == 3, "replicas must be on distinct nodes"
        assert c["tables"] == ["1@1"]

    tables = fs_json(cluster, "admin", "list-chain-tables")
    assert tables == [{"table_id": 1, "version": 1, "chains": 2, "replicas": "3", "desc": "dev cluster"}]

    targets = fs_json(cluster, "admin", "list-targets")
    assert len(targets) == 6
    assert {t["target_id"] for t in targets} == {cluster.target_id(n, i) for n in (10001, 10002, 10003)
                                                 for i in range(2)}
    for chain_id in (1, 2):
        roles = sorted(t["role"] for t in targets if t["chain_id"] == chain_id)
        assert roles == ["HEAD", "MIDDLE", "TAIL"]
    assert all(t["public"] == "SERVING" for t in targets)


def test_errors_are_one_line_without_traceback(cluster, client, workdir):
    client.mkdir(f"{workdir}/adir")
    cases = [("cat", f"{workdir}/adir"), ("cat", "/missing-file"), ("stat", "/missing-file"), ("ls", "/missing-dir"),
             ("rm", "/missing-file"), ("get", "/missing-file", "-"), ("mv", "/missing-file", "/x"),
             ("admin", "query-chunk", "/missing-file", "0")]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda args: fs(cluster, *args, check=False), cases))
    for args, p in zip(cases, results):
        err = p.stderr.decode()
        assert p.returncode == 1, (args, err)
        assert err.startswith("threefs: error:"), (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert "Traceback" not in err
        assert p.stdout == b""


def test_a_reader_that_leaves_early_is_not_an_error(cluster, client, workdir):
    """`threefs ls | head` and `threefs cat | head -c`: the reader closed the pipe; the command stops quietly
    with SIGPIPE's status (128 + 13), as other tools do, instead of printing a broken-pipe error."""
    client.makedirs(f"{workdir}/many")
    for i in range(50):
        client.open(f"{workdir}/many/f{i}", "wb").close()
    with client.open(f"{workdir}/big", "wb") as f:
        f.write(rand_bytes(3 * CHUNK, 7))
    for args in (("ls", f"{workdir}/many"), ("cat", f"{workdir}/big")):
        p = subprocess.Popen([sys.executable, "-m", "threefs", *args, "--mgmtd", cluster.mgmtd_address],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.close()                         # the reader is gone before the first byte is written
        err = p.stderr.read().decode()
        assert p.wait(timeout=60) == 141 and err == "", (args, p.returncode, err)


def test_storage_options_are_checked_before_anything_starts(tmp_path):
    p = subprocess.run([sys.executable, "-m", "threefs", "storage", "--node-id", "1", "--mgmtd", "127.0.0.1:1",
                        "--target", f"1={tmp_path / 't'}", "--mapped-chunks", "-1"], capture_output=True, timeout=60)
    err = p.stderr.decode()
    assert p.returncode == 2 and "--mapped-chunks" in err and "Traceback" not in err, err
    assert not (tmp_path / "t").exists()


def test_status_json(cluster):
    st = cli_json("status", "--json", "--data-dir", str(cluster.data_dir))
    assert st["running"] is True
    assert st["mgmtd"] == cluster.mgmtd_address
    assert st["data_dir"] == str(cluster.data_dir)
    procs = st["processes"]
    assert len(procs) == 5
    assert sorted(p["role"] for p in procs) == ["meta", "mgmtd", "storage", "storage", "storage"]
    for p in procs:
        assert isinstance(p["pid"], int) and p["pid"] > 0
        assert p["pid"] == cluster.proc(p["role"], p["node_id"]).pid
        os.kill(p["pid"], 0)                       # really running
    assert st["chains"] == 2


def test_cli_finds_cluster_from_data_dir(cluster, client, workdir):
    client.write_file(f"{workdir}/via-data-dir", b"found")
    env = {k: v for k, v in os.environ.items() if k != "THREEFS_MGMTD"}
    p = subprocess.run([sys.executable, "-m", "threefs", "cat", f"{workdir}/via-data-dir", "--data-dir",
                        str(cluster.data_dir)], capture_output=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"found"


def test_drop_cache_reaches_every_storage_node_and_says_what_failed(cluster, client, workdir):
    """`threefs admin drop-cache` asks each storage node to unmap what it keeps (how much it let go of is
    checked with 1 MiB chunks in tests/integration/test_cache_replica_reads.py; this cluster's 64 KiB
    chunks are never kept mapped); an unreachable cluster is a one-line error."""
    threefs_cli("admin", "drop-cache", "--mgmtd", cluster.mgmtd_address)   # what earlier tests' larger chunks left
    client.write_file(f"{workdir}/some", rand_bytes(4 * CHUNK, 5))
    res = cli_json("admin", "drop-cache", "--json", "--mgmtd", cluster.mgmtd_address)
    assert sorted(r["node_id"] for r in res) == sorted(n for n in range(10001, 10004))
    assert all(r["released"] == 0 and r["address"] for r in res), res
    out = threefs_cli("admin", "drop-cache", "--mgmtd", cluster.mgmtd_address).stdout.decode()
    assert out.count("released 0 chunk mappings") == 3, out
    p = threefs_cli("admin", "drop-cache", "--mgmtd", "127.0.0.1:1", check=False)
    err = p.stderr.decode()
    assert p.returncode == 1 and err.startswith("threefs: error:") and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
