"""The batched zero-copy API (USRBIO shapes): iovecs, read/write rings, io_depth batching, errors, threads."""
from __future__ import annotations

import ctypes
import errno
import os
import random
import threading
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import pytest
from client_util import CHUNK, rand_bytes

from threefs.client import usrbio
from threefs.client.usrbio import deregister_fd, make_ioring, make_iovec, register_fd
from threefs.mgmtd.routing import Routing
from threefs.proto import common_pb2 as cpb


@pytest.fixture
def iov():
    v = make_iovec(16 << 20)
    yield v
    v.close()


def sparse_file(client, path: str, seed: int) -> bytes:
    """A file with data, whole-chunk holes, partial-chunk holes and a hole at its end; returns its bytes."""
    size = 96 * CHUNK + 12345
    want = bytearray(size)
    rng = random.Random(seed)
    with client.open(path, "wb") as f:
        for start in (0, 3 * CHUNK + 100, 10 * CHUNK, 40 * CHUNK - 7, 70 * CHUNK + 5000):
            data = rand_bytes(rng.randrange(1, 9 * CHUNK), rng.randrange(1 << 30))
            f.pwrite(data, start)
            want[start:start + len(data)] = data
        f.truncate(size)                          # the tail past the last write is a hole too
    assert client.stat(path).st_size == size
    return bytes(want)


def read_all(ring, iov, jobs, fd_of, expect_of) -> int:
    """Prepare (path, offset, length) reads into consecutive iov space, round by round; check every byte."""
    checked = 0
    i = 0
    while i < len(jobs):
        pos, batch = 0, []
        while i < len(jobs) and pos + jobs[i][2] <= len(iov) and len(batch) < ring.entries:
            path, off, n = jobs[i]
            ring.prepare(iov[pos:pos + n], True, fd_of[path], off, userdata=(path, off, n, pos))
            batch.append(i)
            pos += n
            i += 1
        results = ring.submit().wait(min_results=len(batch), timeout=120)
        assert len(results) == len(batch)
        for r in results:
            path, off, n, pos = r.userdata
            want = expect_of[path][off:off + n]
            assert r.result == len(want), (path, off, n, r.result)
            assert iov[pos:pos + len(want)] == want, (path, off, n)
            checked += 1
    return checked


def test_thousands_of_random_reads_match_a_local_copy(client, workdir, iov):
    """Random sizes 1 B..4 MiB at unaligned offsets: chunk edges, holes, EOF, past EOF, empty files."""
    files = {f"{workdir}/sparse": sparse_file(client, f"{workdir}/sparse", 1)}
    files[f"{workdir}/small"] = rand_bytes(3 * CHUNK + 1, 2)
    client.write_file(f"{workdir}/small", files[f"{workdir}/small"])
    files[f"{workdir}/empty"] = b""
    client.write_file(f"{workdir}/empty", b"")
    fds = {p: register_fd(p, client=client) for p in files}
    rng = random.Random(3)
    jobs = []
    for _ in range(2500):
        path = rng.choice(list(files))
        size = len(files[path])
        n = max(1, int(2 ** rng.uniform(0, 22)))                  # log-uniform 1 B .. 4 MiB
        kind = rng.random()
        if kind < 0.1:
            off = size - rng.randrange(0, min(n, size) + 1)           # straddles EOF
        elif kind < 0.15:
            off = size + rng.randrange(0, 3 * CHUNK)                  # entirely past EOF
        elif kind < 0.3:
            off = max(0, rng.randrange(0, size + 1) // CHUNK * CHUNK + rng.choice((-1, 0, 1)))   # chunk edges
        else:
            off = rng.randrange(0, size + 1)
        jobs.append((path, off, n))
    with make_ioring(client, 4096, for_read=True) as ring:
        assert read_all(ring, iov, jobs, fds, files) == len(jobs)
    for fd in fds.values():
        deregister_fd(fd)


def test_reads_land_in_the_iovec_and_are_batched_per_node(client, workdir, iov, monkeypatch):
    """Every chunk read's destination is iovec memory, and 512 small reads take a handful of BatchRead RPCs."""
    data = rand_bytes(64 * CHUNK, 4)
    client.write_file(f"{workdir}/f", data)
    fd = register_fd(f"{workdir}/f", client=client)
    seen_dests: list[memoryview] = []
    rpcs: list[int] = []
    orig_read, orig_call = client.aio.storage.read, client.aio.rpc.call

    async def spy_read(ops):
        seen_dests.extend(op.dest for op in ops)
        return await orig_read(ops)

    async def spy_call(address, method, request, *a, **kw):
        if method == "Storage.BatchRead":
            rpcs.append(len(request.ios))
        return await orig_call(address, method, request, *a, **kw)

    monkeypatch.setattr(client.aio.storage, "read", spy_read)
    monkeypatch.setattr(client.aio.rpc, "call", spy_call)
    rng = random.Random(5)
    offsets = [rng.randrange(0, len(data) - 4096) for _ in range(512)]
    with make_ioring(client, 512, for_read=True) as ring:
        for i, off in enumerate(offsets):
            ring.prepare(iov[i * 4096:(i + 1) * 4096], True, fd, off, userdata=off)
        results = ring.submit().wait(min_results=512, timeout=60)
    assert sorted(r.result for r in results) == [4096] * 512
    for r in results:
        i = offsets.index(r.userdata)
        assert iov[i * 4096:(i + 1) * 4096] == data[r.userdata:r.userdata + 4096]
    base = ctypes.addressof(ctypes.c_char.from_buffer(iov.buf))
    assert len(seen_dests) >= 512
    for d in seen_dests:
        addr = ctypes.addressof(ctypes.c_char.from_buffer(d))
        assert base <= addr and addr + d.nbytes <= base + len(iov), "a read destination outside the iovec"
    seen_dests.clear()
    del d
    assert sum(rpcs) == len([1 for off in offsets for _ in range(1 + (off % CHUNK + 4096 > CHUNK))])
    assert len(rpcs) <= 12, f"{len(rpcs)} BatchRead RPCs for 512 reads: not batched per node"
    deregister_fd(fd)


def test_iovec_views_and_shared_memory(tmp_path):
    """An iovec is a buffer, a NumPy array and a /dev/shm region; slices of shm.buf are accepted too."""
    with make_iovec(1 << 20) as v:
        assert os.path.exists(f"/dev/shm/{v.name}") and len(v) == 1 << 20
        v.np()[:4] = [1, 2, 3, 4]
        assert bytes(memoryview(v)[:4]) == b"\x01\x02\x03\x04" and bytes(v[:4]) == b"\x01\x02\x03\x04"
        arr = np.frombuffer(v, dtype=np.uint32)
        assert arr[0] == int.from_bytes(b"\x01\x02\x03\x04", "little")
        with open(f"/dev/shm/{v.name}", "rb") as other:      # what another process maps
            assert other.read(4) == b"\x01\x02\x03\x04"
        with pytest.raises(BufferError):
            v.close()                                 # a NumPy view is still alive
        del arr
        name = v.name
    assert not os.path.exists(f"/dev/shm/{name}"), "an owned region is destroyed on close"
    shm = SharedMemory(create=True, size=1 << 16)
    try:
        v = make_iovec(shm)
        mount = tmp_path / "mnt"
        (mount / "3fs-virt" / "iovs").mkdir(parents=True)
        link = v.link_into(mount)
        assert os.path.basename(link) == v.id.hex and os.readlink(link) == f"/dev/shm/{shm.name}"
        v2 = make_iovec(shm, mount, block_size=4096)
        assert v2.link.endswith(f"{v2.id.hex}.b4096")
        v.close()
        v2.close()
        assert not os.listdir(mount / "3fs-virt" / "iovs"), "close() removes the links"
        assert bytes(shm.buf[:1]) == b"\x00"          # a caller's region survives the iovec
    finally:
        shm.close()
        shm.unlink()
    with pytest.raises(ValueError):
        make_iovec(0)


def test_prepare_validates_buffers_and_ring_capacity(client, workdir, iov):
    client.write_file(f"{workdir}/f", b"abc")
    fd = register_fd(f"{workdir}/f", client=client)
    with make_ioring(client, 2, for_read=True) as ring:
        with pytest.raises(ValueError):
            ring.prepare(bytearray(10), True, fd, 0)               # not iovec memory
        with pytest.raises(ValueError):
            ring.prepare(iov[:10], False, fd, 0)                   # a write on a read ring
        with pytest.raises(ValueError):
            ring.prepare((iov, len(iov) - 5, 10), True, fd, 0)     # past the iovec's end
        a = ring.prepare(iov[:10], True, fd, 0, userdata="a")
        b = ring.prepare((iov, 100, 10), True, fd, 1, userdata="b")
        assert {a, b} == {0, 1}
        with pytest.raises(BlockingIOError):
            ring.prepare(iov[:10], True, fd, 0)                    # all entries in use
        with pytest.raises(ValueError):
            ring.wait(min_results=1, timeout=1)                    # nothing submitted yet: would never return
        got = {r.userdata: r for r in ring.submit().wait(min_results=2, timeout=30)}
        assert (got["a"].result, got["b"].result) == (3, 2)
        assert iov[:3] == b"abc" and iov[100:102] == b"bc"
        ring.prepare(iov[:1], True, fd, 0)                         # reaping freed the slots
    with make_iovec(1 << 16, block_size=4096) as blocked, make_ioring(client, 4) as ring:
        with pytest.raises(ValueError, match="block"):
            ring.prepare(blocked[4000:4200], True, fd, 0)          # crosses a registration block
        ring.prepare(blocked[4096:8192], True, fd, 0)
        assert ring.submit().wait(min_results=1, timeout=30)[0].result == 3
    deregister_fd(fd)
    with pytest.raises(OSError):
        deregister_fd(fd)


def test_bad_fds_and_offsets_are_errno_results_not_exceptions(client, workdir, iov):
    """-EBADF/-EINVAL for the bad I/Os of a batch; the good ones in it and later batches still work."""
    data = rand_bytes(2 * CHUNK, 6)
    client.write_file(f"{workdir}/f", data)
    fd = register_fd(f"{workdir}/f", client=client)
    gone = register_fd(f"{workdir}/f", client=client)
    deregister_fd(gone)
    with client.open(f"{workdir}/w", "wb") as wf:
        write_only = register_fd(wf)
        with make_ioring(client, 16) as ring:
            ring.prepare(iov[0:100], True, 12345, 0, userdata="unknown fd")
            ring.prepare(iov[100:200], True, gone, 0, userdata="deregistered fd")
            ring.prepare(iov[200:300], True, fd, -1, userdata="negative offset")
            ring.prepare(iov[300:400], True, write_only, 0, userdata="write-only fd")
            ring.prepare(iov[400:500], True, fd, 50, userdata="good")
            ring.prepare(iov[500:500], True, fd, 0, userdata="empty")
            got = {r.userdata: r.result for r in ring.submit().wait(min_results=6, timeout=30)}
            assert got == {"unknown fd": -errno.EBADF, "deregistered fd": -errno.EBADF,
                           "negative offset": -errno.EINVAL, "write-only fd": -errno.EBADF, "good": 100,
                           "empty": 0}
            assert iov[400:500] == data[50:150]
            ring.prepare(iov[0:CHUNK], True, fd, CHUNK, userdata="later")
            assert ring.submit().wait(timeout=30)[0].result == CHUNK
            assert iov[0:CHUNK] == data[CHUNK:]
        deregister_fd(write_only)
    deregister_fd(fd)


def test_forbid_read_holes_flag(client, workdir, iov):
    path = f"{workdir}/holey"
    with client.open(path, "wb") as f:
        f.pwrite(b"x" * 100, 0)
        f.pwrite(b"y" * 100, 5 * CHUNK)
    fd = register_fd(path, client=client)
    with make_ioring(client, 4, flags=usrbio.FORBID_READ_HOLES) as ring:
        ring.prepare(iov[:100], True, fd, 0, userdata="data")
        ring.prepare(iov[100:300], True, fd, 2 * CHUNK, userdata="hole")
        got = {r.userdata: r.result for r in ring.submit().wait(min_results=2, timeout=30)}
    assert got == {"data": 100, "hole": -errno.ENODATA}
    with make_ioring(client, 4) as ring:                  # by default holes read as zeros
        iov[100:300] = b"\xff" * 200
        ring.prepare(iov[100:300], True, fd, 2 * CHUNK)
        assert ring.submit().wait(timeout=30)[0].result == 200
        assert iov[100:300] == bytes(200)
    deregister_fd(fd)


def _batch_sizes(client, monkeypatch) -> list[int]:
    """Record how many chunk reads each storage read call (one per ring batch here) carries."""
    sizes: list[int] = []
    orig = client.aio.storage.read

    async def spy(ops):
        sizes.append(len(ops))
        return await orig(ops)

    monkeypatch.setattr(client.aio.storage, "read", spy)
    return sizes


def test_io_depth_positive_processes_exact_batches(client, workdir, iov, monkeypatch):
    client.write_file(f"{workdir}/f", rand_bytes(CHUNK, 7))
    fd = register_fd(f"{workdir}/f", client=client)
    sizes = _batch_sizes(client, monkeypatch)
    with make_ioring(client, 16, io_depth=4) as ring:
        for i in range(6):
            ring.prepare(iov[i * 100:(i + 1) * 100], True, fd, i)
        ring.submit()
        assert len(ring.wait(min_results=4, timeout=30)) == 4
        assert ring.wait(min_results=1, timeout=0.3) == [], "a partial batch of 2 must wait for 2 more I/Os"
        for i in range(6, 8):
            ring.prepare(iov[i * 100:(i + 1) * 100], True, fd, i)
        assert len(ring.submit().wait(min_results=4, timeout=30)) == 4
    assert sizes == [4, 4]
    deregister_fd(fd)


def test_io_depth_zero_processes_everything_submitted(client, workdir, iov, monkeypatch):
    client.write_file(f"{workdir}/f", rand_bytes(CHUNK, 8))
    fd = register_fd(f"{workdir}/f", client=client)
    sizes = _batch_sizes(client, monkeypatch)
    with make_ioring(client, 16, io_depth=0) as ring:
        for i in range(10):
            ring.prepare(iov[i * 100:(i + 1) * 100], True, fd, i)
        assert len(ring.submit().wait(min_results=10, timeout=30)) == 10
        ring.prepare(iov[:100], True, fd, 0)
        assert len(ring.submit().wait(min_results=1, timeout=30)) == 1
    assert sizes == [10, 1]
    deregister_fd(fd)


def test_io_depth_negative_caps_batches_and_flushes_after_timeout(client, workdir, iov, monkeypatch):
    client.write_file(f"{workdir}/f", rand_bytes(CHUNK, 9))
    fd = register_fd(f"{workdir}/f", client=client)
    sizes = _batch_sizes(client, monkeypatch)
    with make_ioring(client, 16, io_depth=-3, timeout=0.05) as ring:
        for i in range(7):
            ring.prepare(iov[i * 100:(i + 1) * 100], True, fd, i)
        assert len(ring.submit().wait(min_results=7, timeout=30)) == 7   # the last one goes after the timeout
    assert sorted(sizes, reverse=True) == [3, 3, 1]
    deregister_fd(fd)


def test_write_ring(client, workdir, iov):
    """Writes from iovec slices at random offsets; the handle's close publishes length and data."""
    size = 40 * CHUNK + 77
    want = bytearray(size)
    rng = random.Random(10)
    path = f"{workdir}/written"
    pieces = []
    pos = 0
    cut = sorted(rng.sample(range(1, size), 150))
    for lo, hi in zip([0] + cut, cut + [size]):
        pieces.append((lo, hi - lo, pos))
        pos += hi - lo
    rng.shuffle(pieces)
    src = rand_bytes(size, 11)
    f = client.open(path, "wb")
    fd = register_fd(f)
    with make_ioring(client, 64, for_read=False, io_depth=-16) as ring:
        todo = list(pieces)
        done = 0
        while todo or done < len(pieces):
            while todo:
                off, n, p = todo[-1]
                iov[p:p + n] = src[off:off + n]
                try:
                    ring.prepare(iov[p:p + n], False, fd, off, userdata=(off, n))
                except BlockingIOError:
                    break
                todo.pop()
                want[off:off + n] = src[off:off + n]
            for r in ring.submit().wait(min_results=1, timeout=60):
                assert r.result == r.userdata[1]
                done += 1
        with pytest.raises(ValueError):
            ring.prepare(iov[:1], True, fd, 0)
    f.close()
    deregister_fd(fd)
    assert client.stat(path).st_size == size
    assert client.read_file(path) == bytes(want) == src
    ro = register_fd(path, client=client)
    with make_ioring(client, 4, for_read=False) as ring:
        ring.prepare(iov[:10], False, ro, 0)
        assert ring.submit().wait(timeout=30)[0].result == -errno.EBADF      # read-only registration
    deregister_fd(ro)


def test_open_files_work_without_registering(client, workdir, iov):
    """prepare() also takes an open File: writes through a write handle, reads through a read handle."""
    with client.open(f"{workdir}/direct", "wb") as wf, make_ioring(client, 4, for_read=False) as wring:
        iov[:6] = b"direct"
        wring.prepare(iov[:6], False, wf, 10)
        assert wring.submit().wait(timeout=30)[0].result == 6
    assert client.read_file(f"{workdir}/direct") == bytes(10) + b"direct"
    with client.open(f"{workdir}/direct", "rb") as rf, make_ioring(client, 4) as ring:
        ring.prepare(iov[100:108], True, rf, 8)
        assert ring.submit().wait(timeout=30)[0].result == 8 and iov[100:108] == b"\0\0direct"
        rf.close()
        ring.prepare(iov[100:108], True, rf, 8)
        assert ring.submit().wait(timeout=30)[0].result == -errno.EBADF     # a closed file


def test_several_rings_from_several_threads(client, workdir, iov):
    data = sparse_file(client, f"{workdir}/shared", 12)
    fd = register_fd(f"{workdir}/shared", client=client)
    errors: list[BaseException] = []
    per = len(iov) // 4
    counts = [0] * 4

    def worker(t: int) -> None:
        try:
            rng = random.Random(100 + t)
            with make_ioring(client, 256, io_depth=-32) as ring:
                for _ in range(5):
                    jobs = [("f", rng.randrange(0, len(data) + CHUNK), rng.randrange(1, per // 40)) for _ in range(40)]
                    base = t * per
                    pos = 0
                    for _, off, n in jobs:
                        ring.prepare(iov[base + pos:base + pos + n], True, fd, off, userdata=(off, n, base + pos))
                        pos += n
                    for r in ring.submit().wait(min_results=len(jobs), timeout=60):
                        off, n, p = r.userdata
                        exp = data[off:off + n]
                        assert r.result == len(exp) and iov[p:p + len(exp)] == exp
                        counts[t] += 1
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors[0]
    assert counts == [200] * 4
    deregister_fd(fd)


def test_reads_refresh_stale_routing_and_retry(private_client, workdir, iov, monkeypatch):
    """A ring whose client holds outdated chain versions gets version mismatches, refreshes, and retries."""
    c = private_client
    data = rand_bytes(8 * CHUNK, 13)
    c.write_file(f"{workdir}/f", data)
    fd = register_fd(f"{workdir}/f", client=c)
    c.run(c.aio.mgmtd.close())              # stop background polling: only the retry path may refresh
    real = c.aio.mgmtd.routing
    stale = cpb.RoutingInfo()
    stale.CopyFrom(real.info)
    stale.version = real.version - 1
    for ch in stale.chains:
        ch.chain_version += 1
    c.aio.mgmtd.routing = Routing(stale)
    sent: list[tuple[int, int]] = []
    orig = c.aio.rpc.call

    async def spy(address, method, request, *a, **kw):
        if method == "Storage.BatchRead":
            sent.extend((io.chain_id, io.chain_ver) for io in request.ios)
        return await orig(address, method, request, *a, **kw)

    monkeypatch.setattr(c.aio.rpc, "call", spy)
    with make_ioring(c, 16) as ring:
        for i in range(8):
            ring.prepare(iov[i * CHUNK:(i + 1) * CHUNK], True, fd, i * CHUNK)
        assert [r.result for r in ring.submit().wait(min_results=8, timeout=60)] == [CHUNK] * 8
    assert iov[:8 * CHUNK] == data
    assert c.aio.mgmtd.routing.version == real.version
    real_ver = {ch.chain_id: ch.chain_version for ch in real.info.chains}
    assert any(v != real_ver[ch] for ch, v in sent), "no read went out with the stale version"
    assert any(v == real_ver[ch] for ch, v in sent), "no read was retried with the real version"
    deregister_fd(fd)


def test_ring_from_mgmtd_address_owns_its_client(cluster, client, workdir, iov):
    client.write_file(f"{workdir}/f", b"0123456789")
    fd = register_fd(f"{workdir}/f", client=client)      # fds are process-wide: any ring may use them
    ring = make_ioring(cluster.mgmtd_address, 8)
    ring.prepare(iov[:4], True, fd, 3)
    assert ring.submit().wait(timeout=30)[0].result == 4 and iov[:4] == b"3456"
    ring.close()
    assert ring.client.loop.is_closed()
    with pytest.raises(ValueError, match="FUSE"):
        make_ioring(str(os.getcwd()), 8)
    with pytest.raises(ValueError):
        ring.prepare(iov[:4], True, fd, 0)                # closed
    deregister_fd(fd)



def test_ring_overwrite_in_place_moves_mtime_at_close(client, workdir, iov):
    path = f"{workdir}/inplace"
    client.write_file(path, rand_bytes(CHUNK, 12))
    client.utime(path, ns=(10**18, 10**18))
    f = client.open(path, "r+b")
    fd = register_fd(f)
    iov[:4096] = b"z" * 4096
    with make_ioring(client, 4, for_read=False) as ring:
        ring.prepare(iov[:4096], False, fd, 8192)
        assert [r.result for r in ring.submit().wait(min_results=1, timeout=30)] == [4096]
    f.close()
    deregister_fd(fd)
    s = client.stat(path)
    assert s.st_size == CHUNK and s.st_mtime_ns > 10**18           # same length, new mtime (rsync sees it)
    assert client.read_file(path)[8192:12288] == b"z" * 4096
