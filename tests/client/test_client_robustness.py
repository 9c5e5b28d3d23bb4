"""Client robustness: meta retries keep the request id, timeouts and errors are clear, the facade is thread-safe."""
from __future__ import annotations

import errno
import threading
import time

import pytest
from client_util import CHUNK, rand_bytes

from threefs.client.fs import Client
from threefs.client.meta_client import MetaClient
from threefs.client.usrbio import deregister_fd, make_ioring, make_iovec, register_fd
from threefs.common.errors import Code, make_error
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient, RpcServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp

pytestmark = pytest.mark.timeout(120)


class FakeMgmtd:
    """Just enough of MgmtdClient for MetaClient: routing info naming the given meta servers."""

    def __init__(self, addresses: list[str]) -> None:
        info = cpb.RoutingInfo(version=1)
        for i, a in enumerate(addresses):
            info.nodes.append(cpb.NodeInfo(node_id=100 + i, type=cpb.META, address=a, status=cpb.HEARTBEAT_CONNECTED))
        self.routing = Routing(info)
        self.refreshes = 0

    async def refresh(self, *, force: bool = False) -> Routing:
        self.refreshes += 1
        return self.routing


class FakeMeta:
    """A meta server whose Stat fails with `failures` codes first, recording every request id it sees."""

    def __init__(self, failures: list[Code], *, hang: bool = False) -> None:
        self.failures = list(failures)
        self.hang = hang
        self.seen: list[bytes] = []
        self.server = RpcServer()
        self.server.register("Meta.Stat", mp.StatReq, self.stat)

    async def stat(self, req: mp.StatReq, payload):
        self.seen.append(req.base.request_id)
        if self.hang:
            await __import__("asyncio").Event().wait()
        if self.failures:
            raise make_error(self.failures.pop(0), "injected")
        return mp.StatRsp(inode=mp.Inode(id=42, type=mp.FILE, length=7)), None


async def test_meta_retries_resend_the_same_request_id():
    meta = FakeMeta([Code.TXN_CONFLICT, Code.BUSY, Code.UNAVAILABLE])
    addr = await meta.server.start()
    rpc = RpcClient()
    try:
        mc = MetaClient(FakeMgmtd([addr]), rpc, cpb.UserInfo(uid=0), retry_timeout=10)
        req = mp.StatReq(base=mc.base(), path=mp.PathAt(path="/x"))
        rsp = await mc.call("Stat", req, mp.StatRsp)
        assert rsp.inode.id == 42
        assert len(meta.seen) == 4 and len(set(meta.seen)) == 1, "a retry must carry the original request id"
        assert meta.seen[0] == req.base.request_id
    finally:
        await rpc.close()
        await meta.server.stop()


async def test_meta_failover_to_another_server_keeps_the_request_id():
    dead = FakeMeta([])
    dead_addr = await dead.server.start()
    await dead.server.stop()                        # its address refuses connections now
    live = FakeMeta([])
    live_addr = await live.server.start()
    rpc = RpcClient()
    try:
        mgmtd = FakeMgmtd([dead_addr, live_addr])
        mc = MetaClient(mgmtd, rpc, cpb.UserInfo(uid=0), retry_timeout=10)
        mc._address = dead_addr                      # start on the dead one
        req = mp.StatReq(base=mc.base(), path=mp.PathAt(path="/x"))
        assert (await mc.call("Stat", req, mp.StatRsp)).inode.id == 42
        assert live.seen == [req.base.request_id] and mgmtd.refreshes >= 1
    finally:
        await rpc.close()
        await live.server.stop()


async def test_meta_timeout_and_permanent_errors_are_clear():
    hung = FakeMeta([], hang=True)
    addr = await hung.server.start()
    rpc = RpcClient()
    try:
        mc = MetaClient(FakeMgmtd([addr]), rpc, cpb.UserInfo(uid=0), timeout=0.2, retry_timeout=0.8)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            await mc.call("Stat", mp.StatReq(base=mc.base(), path=mp.PathAt(path="/x")), mp.StatRsp)
        assert 0.6 < time.monotonic() - t0 < 5 and len(hung.seen) >= 2
    finally:
        await rpc.close()
        await hung.server.stop()
    missing = FakeMeta([Code.NOT_FOUND])
    addr = await missing.server.start()
    rpc = RpcClient()
    try:
        mc = MetaClient(FakeMgmtd([addr]), rpc, cpb.UserInfo(uid=0))
        with pytest.raises(FileNotFoundError):
            await mc.call("Stat", mp.StatReq(base=mc.base(), path=mp.PathAt(path="/x")), mp.StatRsp)
        assert len(missing.seen) == 1, "a permanent error is not retried"
    finally:
        await rpc.close()
        await missing.server.stop()


def test_unreachable_cluster_is_a_connection_error():
    t0 = time.monotonic()
    with pytest.raises(ConnectionError):
        Client("127.0.0.1:1")
    assert time.monotonic() - t0 < 15


def test_reads_without_a_serving_replica_time_out_with_eio(cluster, workdir):
    """No serving replica for a chain: the ring reports -EIO after retry_timeout, pread raises OSError(EIO)."""
    c = Client(cluster.mgmtd_address, retry_timeout=1.0)
    iov = make_iovec(1 << 20)
    try:
        path = f"{workdir}/f"
        data = rand_bytes(4 * CHUNK, 40)
        c.write_file(path, data)
        fd = register_fd(path, client=c)
        c.run(c.aio.mgmtd.close())                 # no polling: the routing below stays in force
        broken = cpb.RoutingInfo()
        broken.CopyFrom(c.aio.mgmtd.routing.info)
        broken.version += 100                       # newer than mgmtd's: refreshes keep it
        for ch in broken.chains:
            for t in ch.targets:
                t.public_state = cpb.OFFLINE
        c.aio.mgmtd.routing = Routing(broken)
        with make_ioring(c, 4) as ring:
            ring.prepare(iov[:100], True, fd, 0)
            t0 = time.monotonic()
            res = ring.submit().wait(timeout=30)
            assert [r.result for r in res] == [-errno.EIO]
            assert 0.4 < time.monotonic() - t0 < 10          # retried for about retry_timeout, then gave up
        with c.open(path, "rb") as f:
            with pytest.raises(OSError) as ei:
                f.pread(10, 0)
            assert ei.value.errno == errno.EIO and "failed" in str(ei.value)
        deregister_fd(fd)
    finally:
        iov.close()
        c.close()


def test_sync_facade_is_thread_safe(client, workdir):
    """Eight threads share one Client: writes, reads, stats and listings all see consistent results."""
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            d = f"{workdir}/t{t}"
            client.makedirs(d)
            for i in range(6):
                data = rand_bytes(CHUNK + 1000 * i + t, 100 * t + i)
                client.write_file(f"{d}/f{i}", data)
                assert client.stat(f"{d}/f{i}").st_size == len(data)
                with client.open(f"{d}/f{i}", "rb") as f:
                    assert f.pread(100, CHUNK - 50) == data[CHUNK - 50:CHUNK + 50]
                assert client.read_file(f"{d}/f{i}") == data
            assert sorted(client.listdir(d)) == [f"f{i}" for i in range(6)]
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(90)
    assert not any(th.is_alive() for th in threads)
    assert not errors, errors[0]
    assert sorted(client.listdir(workdir)) == [f"t{t}" for t in range(8)]
