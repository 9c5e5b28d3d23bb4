"""The Python client's small files: bytes written to a file it created wait in memory and go to meta
at fsync/close when they fit (threefs.meta.inline); any other turn sends them to storage first."""
from __future__ import annotations

import os

from threefs.client.fs import Client
from threefs.client.usrbio import deregister_fd, make_ioring, make_iovec, register_fd
from threefs.meta.config import MetaConfig

INLINE_MAX = MetaConfig().inline_max


def inline(client, path: str) -> bool:
    return client.stat(path).inode.inline


def test_small_writes_go_to_meta_at_close(client, workdir) -> None:
    p = f"{workdir}/f"
    client.write_file(p, b"tiny")
    assert inline(client, p) and client.read_file(p) == b"tiny"
    with client.open(f"{workdir}/g", "w+b") as f:
        f.write(b"abc")
        f.seek(10)
        f.write(b"xyz")                              # a hole between
        f.seek(0)
        assert f.read() == b"abc" + bytes(7) + b"xyz"     # this handle reads its own bytes
    assert inline(client, f"{workdir}/g") and client.read_file(f"{workdir}/g") == b"abc" + bytes(7) + b"xyz"


def test_outgrowing_the_limit_sends_everything_to_storage(client, workdir) -> None:
    p = f"{workdir}/f"
    a, b = os.urandom(5000), os.urandom(5000)
    with client.open(p, "wb") as f:
        f.write(a)
        f.write(b)                                   # 10000 > the limit: a and b go to storage
    assert not inline(client, p) and client.read_file(p) == a + b


def test_fsync_puts_the_content_in_meta_and_later_writes_follow(client, workdir) -> None:
    p, q = f"{workdir}/f", f"{workdir}/g"
    with client.open(p, "wb") as f:
        f.write(b"first")
        f.fsync()
        assert inline(client, p) and client.read_file(p) == b"first"
        f.write(b" and second")                      # still small: meta again at close
    assert inline(client, p) and client.read_file(p) == b"first and second"
    big = os.urandom(3 * INLINE_MAX)
    with client.open(q, "wb") as f:
        f.write(b"head")
        f.fsync()
        f.write(big)                                 # the content in meta moves to storage first
    assert not inline(client, q) and client.read_file(q) == b"head" + big


def test_truncate_and_ring_writes_take_the_storage_path(client, workdir) -> None:
    p = f"{workdir}/t"
    with client.open(p, "wb") as f:
        f.write(b"0123456789")
        f.truncate(4)
    assert not inline(client, p) and client.read_file(p) == b"0123"
    q = f"{workdir}/r"
    iov = make_iovec(4096)
    f = client.open(q, "w+b")
    try:
        f.write(b"staged bytes")
        fd = register_fd(f)
        try:
            iov[:4] = b"RING"
            with make_ioring(client, 4, for_read=False) as ring:
                ring.prepare(iov[:4], False, fd, 6)
                assert ring.submit().wait(timeout=30)[0].result == 4
        finally:
            deregister_fd(fd)
    finally:
        f.close()
        iov.close()
    assert client.read_file(q) == b"stagedRINGes"


def test_closing_the_client_sends_staged_content(cluster, workdir) -> None:
    c = Client(cluster.mgmtd_address)
    f = c.open(f"{workdir}/left-open", "wb")
    f.write(b"not closed by the application")
    c.close()
    with Client(cluster.mgmtd_address) as c2:
        assert c2.read_file(f"{workdir}/left-open") == b"not closed by the application"


def test_read_only_open_with_o_trunc_truncates(client, workdir) -> None:
    """O_RDONLY|O_TRUNC empties the file, as on Linux: inline content and storage chunks alike."""
    for name, size in (("small", 10), ("large", 300_000)):
        p = f"{workdir}/rotrunc-{name}"
        client.write_file(p, os.urandom(size))
        f = client.run(client.aio.open_flags(p, os.O_RDONLY | os.O_TRUNC))
        assert client.run(f.read()) == b""
        client.run(f.close())
        assert client.stat(p).st_size == 0 and client.read_file(p) == b""
