"""Users and tokens in mgmtd, and meta refusing requests whose token does not resolve (auth on)."""
from __future__ import annotations

import asyncio
import dataclasses
import errno

import pytest

from meta_util import TEST_CONFIG, InProcCluster, expect_errno, wait_until
from threefs.common.errors import Code, FSError
from threefs.mgmtd.users import UsersClient
from threefs.proto import meta_pb2 as mp


@pytest.fixture(scope="module")
def auth_cluster(tmp_path_factory):
    config = dataclasses.replace(TEST_CONFIG, authenticate=True, auth_cache_ttl=0.3)
    c = InProcCluster(tmp_path_factory.mktemp("auth"), "memory://", config=config).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def admin(auth_cluster):
    """The first admin, added without a token (bootstrap: no admin exists yet)."""
    return users(auth_cluster, lambda u: u.add_user(0, "root", root=True, admin=True))


def users(cluster: InProcCluster, fn):
    async def body():
        client = UsersClient(cluster.mgmtd_address)
        try:
            return await fn(client)
        finally:
            await client.close()

    return asyncio.run(body())


def code_of(fn, *args) -> Code:
    try:
        fn(*args)
    except FSError as e:
        return e.code
    raise AssertionError("the call succeeded")


def test_user_table_and_admin_tokens(auth_cluster, admin):
    assert admin.token and admin.admin and admin.gid == 0
    with pytest.raises(FSError) as e:
        users(auth_cluster, lambda u: u.add_user(1000, "alice"))             # now an admin token is needed
    assert e.value.code == Code.AUTH_FAILED
    alice = users(auth_cluster, lambda u: u.add_user(1000, "alice", gid=100, groups=[7, 8], admin_token=admin.token))
    assert (alice.uid, alice.gid, list(alice.groups), alice.root, alice.admin) == (1000, 100, [7, 8], False, False)
    with pytest.raises(FSError) as e:
        users(auth_cluster, lambda u: u.add_user(1001, "bob", admin_token=alice.token))
    assert e.value.code == Code.PERMISSION_DENIED
    with pytest.raises(FSError) as e:
        users(auth_cluster, lambda u: u.add_user(1000, "again", admin_token=admin.token))
    assert e.value.code == Code.EXISTS
    listed = users(auth_cluster, lambda u: u.list_users(admin.token))
    assert [(u.uid, u.name) for u in listed][:2] == [(0, "root"), (1000, "alice")]
    assert users(auth_cluster, lambda u: u.authenticate(alice.token)).uid == 1000
    with pytest.raises(FSError) as e:
        users(auth_cluster, lambda u: u.authenticate("tfs-wrong"))
    assert e.value.code == Code.AUTH_FAILED


def test_meta_refuses_missing_and_bad_tokens(auth_cluster, admin):
    good = auth_cluster.client(uid=0, token=admin.token)
    good.makedirs("/open", 0o777, exist_ok=True)
    assert code_of(auth_cluster.client(uid=0).listdir, "/") == Code.AUTH_FAILED
    bad = auth_cluster.client(uid=0, token="tfs-not-a-token")
    assert code_of(bad.stat, "/open") == Code.AUTH_FAILED
    expect_errno(errno.EACCES, bad.mkdir, "/x")


def test_a_token_decides_who_the_caller_is(auth_cluster, admin):
    token = admin.token
    carol = users(auth_cluster, lambda u: u.add_user(2000, "carol", admin_token=token))
    root = auth_cluster.client(uid=0, token=token)
    root.mkdir("/carol-test", 0o755)
    root.makedirs("/open", 0o777, exist_ok=True)
    liar = auth_cluster.client(uid=0, gid=0, token=carol.token)       # claims uid 0, the token says 2000
    expect_errno(errno.EACCES, liar.mkdir, "/carol-test/x")
    liar.write_file("/open/carol-file", b"")
    assert root.stat("/open/carol-file").st_uid == 2000
    proxy = auth_cluster.client(uid=3000, gid=3000, token=token)      # a root token may act for any uid
    proxy.write_file("/open/proxied", b"")
    assert root.stat("/open/proxied").st_uid == 3000
    fsck_req = lambda c: c.run(c.aio.meta.call("Fsck", mp.FsckReq(base=c.aio.meta.base()), mp.FsckRsp))  # noqa: E731
    assert code_of(fsck_req, liar) == Code.NOT_PERMITTED             # admin requests need an admin token
    assert list(fsck_req(root).errors) == []


def test_a_replaced_token_stops_working_after_the_cache_ttl(auth_cluster, admin):
    token = admin.token
    auth_cluster.client(uid=0, token=token).makedirs("/open", 0o777, exist_ok=True)
    dave = users(auth_cluster, lambda u: u.add_user(2100, "dave", admin_token=token))
    c = auth_cluster.client(uid=2100, token=dave.token)
    assert c.listdir("/open") is not None
    new = users(auth_cluster, lambda u: u.set_token(2100, admin_token=token))
    assert new.token != dave.token
    wait_until(lambda: code_of_or_none(c.listdir, "/open") == Code.AUTH_FAILED, 10, "the old token to expire")
    assert auth_cluster.client(uid=2100, token=new.token).listdir("/open") is not None
    users(auth_cluster, lambda u: u.remove_user(2100, admin_token=token))
    wait_until(lambda: code_of_or_none(auth_cluster.client(uid=2100, token=new.token).listdir, "/open")
               == Code.AUTH_FAILED, 10, "the removed user's token to expire")


def code_of_or_none(fn, *args) -> Code | None:
    try:
        fn(*args)
    except FSError as e:
        return e.code
    return None
