"""The REST protocol itself: redirects, RemoteException names/classes/statuses, paging, xattrs, tokens, interop."""
from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from hdfs_util import start_gateway


def url(gw, path: str) -> str:
    return f"{gw.url}/webhdfs/v1{path}"


def remote(rsp: requests.Response) -> tuple[int, str, str]:
    body = rsp.json()["RemoteException"]
    return rsp.status_code, body["exception"], body["javaClassName"]


def put_file(gw, path: str, data: bytes, user: str = "alice", **params) -> requests.Response:
    first = requests.put(url(gw, path), params={"op": "CREATE", "user.name": user, **params}, allow_redirects=False)
    assert first.status_code == 307, first.text
    assert first.headers["Location"].startswith(url(gw, path)) and "data=true" in first.headers["Location"]
    return requests.put(first.headers["Location"], data=data)


def uploads(client, path: str) -> list[str]:
    return [n for n in client.listdir(path) if n.endswith(".webhdfs-upload")]


def wait_for(cond, timeout: float = 20.0) -> None:
    """Poll `cond` until it holds (a state visible only through the namespace)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def token_gateway(hdfs_cluster, hdfs_users):
    gw = start_gateway(hdfs_cluster.mgmtd_address, "--token", hdfs_users["root"], "--require-token",
                       "--list-limit", "3")
    yield gw
    gw.stop()


def test_create_redirect_created_and_interop(gateway, hdir, root_client):
    rsp = put_file(gateway, f"{hdir}/x/y/new.bin", b"payload", permission="600")
    assert rsp.status_code == 201 and rsp.headers["Location"].endswith(f"{hdir}/x/y/new.bin")
    st = root_client.stat(f"{hdir}/x/y/new.bin")
    assert (st.st_size, st.st_mode & 0o777, st.st_uid) == (7, 0o600, 1001)
    with root_client.open(f"{hdir}/x/y/new.bin", "rb") as f:
        assert f.read() == b"payload"
    with root_client.open(f"{hdir}/native.bin", "wb") as f:
        f.write(b"from the native client")
    got = requests.get(url(gateway, f"{hdir}/native.bin"), params={"op": "OPEN", "user.name": "alice",
                                                                     "offset": 5, "length": 6})
    assert got.status_code == 200 and got.content == b"the na"
    first = requests.post(url(gateway, f"{hdir}/native.bin"), params={"op": "APPEND", "user.name": "root"},
                          allow_redirects=False)
    assert first.status_code == 307
    assert requests.post(first.headers["Location"], data=b"!").status_code == 200
    assert root_client.stat(f"{hdir}/native.bin").st_size == len(b"from the native client!")


@pytest.mark.parametrize("method,path,params,want", [
    ("GET", "/missing", {"op": "GETFILESTATUS"}, (404, "FileNotFoundException", "java.io.FileNotFoundException")),
    ("GET", "/", {"op": "NOSUCHOP"}, (400, "IllegalArgumentException", "java.lang.IllegalArgumentException")),
    ("GET", "/", {}, (400, "IllegalArgumentException", "java.lang.IllegalArgumentException")),
    ("GET", "/", {"op": "MKDIRS"}, (400, "IllegalArgumentException", "java.lang.IllegalArgumentException")),
    ("PUT", "/h/p", {"op": "MKDIRS", "permission": "8"}, (400, "IllegalArgumentException",
                                                          "java.lang.IllegalArgumentException")),
    ("GET", "/", {"op": "OPEN"}, (404, "FileNotFoundException", "java.io.FileNotFoundException")),
    ("GET", "/", {"op": "LISTSTATUS", "user.name": "mallory"}, (401, "SecurityException",
                                                                 "java.lang.SecurityException")),
    ("PUT", "/forbidden", {"op": "MKDIRS"}, (403, "AccessControlException",
                                             "org.apache.hadoop.security.AccessControlException")),
])
def test_error_table(gateway, method, path, params, want):
    params = {"user.name": "alice", **params}
    rsp = requests.request(method, url(gateway, path), params=params, allow_redirects=False)
    assert remote(rsp) == want
    assert rsp.headers["Content-Type"].startswith("application/json")


def test_refusals_lose_nothing(gateway, hdir, root_client):
    assert put_file(gateway, f"{hdir}/keep", b"precious").status_code == 201
    rsp = requests.put(url(gateway, f"{hdir}/keep"), params={"op": "CREATE", "user.name": "alice"})
    assert remote(rsp)[:2] == (403, "FileAlreadyExistsException")
    requests.put(url(gateway, f"{hdir}/sub"), params={"op": "MKDIRS", "user.name": "alice"}).raise_for_status()
    put_file(gateway, f"{hdir}/sub/in", b"i")
    rsp = requests.delete(url(gateway, f"{hdir}/sub"), params={"op": "DELETE", "user.name": "alice"})
    assert remote(rsp)[:2] == (403, "PathIsNotEmptyDirectoryException")
    rsp = requests.post(url(gateway, f"{hdir}/keep"), params={"op": "TRUNCATE", "newlength": 99, "user.name": "alice"})
    assert remote(rsp) == (400, "HadoopIllegalArgumentException", "org.apache.hadoop.HadoopIllegalArgumentException")
    rsp = requests.post(url(gateway, f"{hdir}/keep"), params={"op": "CONCAT", "sources": f"{hdir}/sub/in",
                                                              "user.name": "alice"})
    assert remote(rsp)[:2] == (400, "UnsupportedOperationException")
    assert root_client.read_file(f"{hdir}/keep") == b"precious" and root_client.read_file(f"{hdir}/sub/in") == b"i"
    # an upload cut off mid-body leaves the old file as it was
    first = requests.put(url(gateway, f"{hdir}/keep"), params={"op": "CREATE", "user.name": "alice",
                                                               "overwrite": "true"}, allow_redirects=False)
    target = first.headers["Location"].split(gateway.address, 1)[1]
    with socket.create_connection((gateway.host, gateway.port)) as s:
        s.sendall(f"PUT {target} HTTP/1.1\r\nHost: {gateway.address}\r\nContent-Length: 1000000\r\n\r\n".encode()
                  + b"partial")
        wait_for(lambda: uploads(root_client, hdir))            # the gateway is receiving into a hidden sibling
        assert root_client.read_file(f"{hdir}/keep") == b"precious"
    wait_for(lambda: not uploads(root_client, hdir))            # the cut-off upload is discarded
    assert root_client.read_file(f"{hdir}/keep") == b"precious"


def test_truncate_concat_settimes(gateway, hdir, root_client):
    put_file(gateway, f"{hdir}/t", b"0123456789")
    rsp = requests.post(url(gateway, f"{hdir}/t"), params={"op": "TRUNCATE", "newlength": 4, "user.name": "alice"})
    assert rsp.json() == {"boolean": True} and root_client.read_file(f"{hdir}/t") == b"0123"
    put_file(gateway, f"{hdir}/empty1", b"")
    put_file(gateway, f"{hdir}/empty2", b"")
    rsp = requests.post(url(gateway, f"{hdir}/t"), params={"op": "CONCAT", "user.name": "alice",
                                                           "sources": f"{hdir}/empty1,{hdir}/empty2"})
    assert rsp.status_code == 200
    assert not root_client.exists(f"{hdir}/empty1") and root_client.read_file(f"{hdir}/t") == b"0123"
    rsp = requests.put(url(gateway, f"{hdir}/t"), params={"op": "SETTIMES", "modificationtime": 1234567,
                                                          "user.name": "alice"})
    assert rsp.status_code == 200 and root_client.stat(f"{hdir}/t").st_mtime_ns == 1234567 * 1_000_000


def test_xattrs(gateway, hdir):
    put_file(gateway, f"{hdir}/x", b"x")
    base = {"user.name": "alice"}

    def call(method: str, **params) -> requests.Response:
        return requests.request(method, url(gateway, f"{hdir}/x"), params={**base, **params})

    assert call("PUT", op="SETXATTR", **{"xattr.name": "user.color", "xattr.value": '"blue"',
                                         "flag": "CREATE"}).status_code == 200
    assert call("PUT", op="SETXATTR", **{"xattr.name": "user.bin", "xattr.value": "0x00ff",
                                         "flag": "CREATE"}).status_code == 200
    assert json.loads(call("GET", op="LISTXATTRS").json()["XAttrNames"]) == ["user.bin", "user.color"]
    got = call("GET", op="GETXATTRS", **{"xattr.name": "user.color", "encoding": "TEXT"}).json()
    assert got == {"XAttrs": [{"name": "user.color", "value": '"blue"'}]}
    got = call("GET", op="GETXATTRS", encoding="HEX").json()["XAttrs"]
    assert {a["name"]: a["value"] for a in got} == {"user.bin": "0x00ff", "user.color": "0x" + b"blue".hex()}
    rsp = call("PUT", op="SETXATTR", **{"xattr.name": "user.color", "xattr.value": "red", "flag": "CREATE"})
    assert remote(rsp)[:2] == (403, "FileAlreadyExistsException")
    assert remote(call("PUT", op="SETXATTR", **{"xattr.name": "trusted.a", "xattr.value": "1",
                                                "flag": "CREATE"}))[:2] == (400, "UnsupportedOperationException")
    assert remote(call("PUT", op="SETXATTR", **{"xattr.name": "color", "xattr.value": "1",
                                                "flag": "CREATE"}))[:2] == (400, "IllegalArgumentException")
    assert call("PUT", op="REMOVEXATTR", **{"xattr.name": "user.color"}).status_code == 200
    rsp = call("GET", op="GETXATTRS", **{"xattr.name": "user.color"})
    assert remote(rsp)[:2] == (403, "IOException")


def test_tokens_and_batch_listing(token_gateway, hdfs_users, hdir, root_client):
    for i in range(7):
        root_client.write_file(f"{hdir}/f{i}", b"")
    rsp = requests.get(url(token_gateway, hdir), params={"op": "LISTSTATUS", "user.name": "alice"})
    assert remote(rsp)[:2] == (401, "SecurityException")
    rsp = requests.get(url(token_gateway, hdir), params={"op": "LISTSTATUS", "delegation": "tfs-bogus"})
    assert remote(rsp)[:2] == (401, "SecurityException")
    rsp = requests.get(url(token_gateway, hdir), params={"op": "LISTSTATUS", "user.name": "alice",
                                                         "delegation": hdfs_users["bob"]})
    assert remote(rsp)[:2] == (401, "SecurityException")
    tok = {"delegation": hdfs_users["alice"]}
    assert requests.get(url(token_gateway, "/"), params={"op": "GETHOMEDIRECTORY", **tok}).json() == \
        {"Path": "/user/alice"}
    names, after = [], ""
    while True:
        page = requests.get(url(token_gateway, hdir), params={"op": "LISTSTATUS_BATCH", "startAfter": after,
                                                              **tok}).json()["DirectoryListing"]
        batch = [s["pathSuffix"] for s in page["partialListing"]["FileStatuses"]["FileStatus"]]
        assert len(batch) <= 3
        names += batch
        if not page["remainingEntries"]:
            break
        after = batch[-1]
    assert names == [f"f{i}" for i in range(7)]
    full = requests.get(url(token_gateway, hdir), params={"op": "LISTSTATUS", **tok}).json()
    assert [s["pathSuffix"] for s in full["FileStatuses"]["FileStatus"]] == names
    rsp = requests.put(url(token_gateway, f"{hdir}/bobdir"), params={"op": "MKDIRS",
                                                                     "delegation": hdfs_users["bob"]})
    assert remote(rsp)[:2] == (403, "AccessControlException")


def test_default_user_and_numeric_owners(hdfs_cluster, hdfs_users, gateway, hdir, root_client):
    gw = start_gateway(hdfs_cluster.mgmtd_address, "--token", hdfs_users["root"], "--default-user", "bob")
    try:
        rsp = requests.get(url(gw, "/"), params={"op": "GETHOMEDIRECTORY", "user.name": "mallory"})
        assert rsp.json() == {"Path": "/user/bob"}
        assert requests.get(url(gw, "/"), params={"op": "GETHOMEDIRECTORY"}).json() == {"Path": "/user/bob"}
    finally:
        gw.stop()
    put_file(gateway, f"{hdir}/n", b"n")
    rsp = requests.put(url(gateway, f"{hdir}/n"), params={"op": "SETOWNER", "owner": "4242", "group": "77",
                                                          "user.name": "root"})
    assert rsp.status_code == 200
    st = requests.get(url(gateway, f"{hdir}/n"), params={"op": "GETFILESTATUS", "user.name": "alice"}).json()
    assert (st["FileStatus"]["owner"], st["FileStatus"]["group"]) == ("4242", "77")
    assert (root_client.stat(f"{hdir}/n").st_uid, root_client.stat(f"{hdir}/n").st_gid) == (4242, 77)
    rsp = requests.put(url(gateway, f"{hdir}/n"), params={"op": "SETOWNER", "user.name": "root"})
    assert remote(rsp)[:2] == (400, "IllegalArgumentException")
    rsp = requests.put(url(gateway, f"{hdir}/n"), params={"op": "SETOWNER", "owner": "nobody-known",
                                                          "user.name": "root"})
    assert remote(rsp)[:2] == (400, "IllegalArgumentException")
