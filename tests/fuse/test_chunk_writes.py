"""Sequential writes through the mount reach storage as whole chunks when a file's chunks are larger
than the kernel's 1 MiB writes: one chain write (one version) per chunk, byte-exact."""
from __future__ import annotations

import os
import subprocess
import sys

from threefs.client.file_io import FileIO
from threefs.common import placement

MIB = 1 << 20


def versions(client, path: str) -> list[int]:
    """Each chunk's committed version on its head (how many updates the chunk took)."""
    inode = client.stat(path).inode
    fio = FileIO(inode, client.aio.mgmtd, client.aio.storage)
    client._runner.run(fio.ready())
    out = []
    for index in range(-(-inode.length // fio.chunk_size)):
        head = client.aio.mgmtd.routing.head(fio.chain_of(index))
        rsp = client._runner.run(client.aio.storage.query_chunk(head, placement.chunk_id(inode.id, index)))
        out.append(rsp.meta.commit_ver if rsp.found else 0)
    return out


def test_sequential_writes_land_as_one_write_per_chunk(d, cluster, client) -> None:
    rel = "/" + d.name
    subprocess.run([sys.executable, "-m", "threefs", "admin", "set-layout", rel, "--chunk-size", "4M",
                    "--mgmtd", cluster.mgmtd_address], check=True, capture_output=True)
    aligned = os.urandom(16 * MIB + 5000)
    with open(d / "aligned", "wb", buffering=0) as f:      # 1 MiB writes from offset 0, like dd and fio
        for off in range(0, len(aligned), MIB):
            f.write(aligned[off:off + MIB])
    odd = os.urandom(9 * MIB + 777)
    cuts = [0, 3000, 3000 + MIB, 3000 + 2 * MIB, 3000 + 3 * MIB + 12345, *range(3000 + 4 * MIB, len(odd), MIB)]
    with open(d / "odd", "wb", buffering=0) as f:          # writes straddling the chunk boundaries
        for a, b in zip(cuts, cuts[1:] + [len(odd)]):
            f.write(odd[a:b])
    small = os.urandom(5 * MIB)
    with open(d / "small", "wb", buffering=0) as f:        # 4 KiB writes
        for off in range(0, len(small), 4096):
            f.write(small[off:off + 4096])
    for name, data in (("aligned", aligned), ("odd", odd), ("small", small)):
        assert client.read_file(f"{rel}/{name}") == data, name
        assert client.stat(f"{rel}/{name}").inode.layout.chunk_size == 4 * MIB
        assert versions(client, f"{rel}/{name}") == [1] * -(-len(data) // (4 * MIB)), name


def test_many_writers_at_once_all_land_byte_exact(d, cluster, client) -> None:
    """20 files written at once: more than the mount lets be in flight in all (256 MiB), so writers
    wait for their own sends; every file must still read back whole."""
    from concurrent.futures import ThreadPoolExecutor
    rel = "/" + d.name
    subprocess.run([sys.executable, "-m", "threefs", "admin", "set-layout", rel, "--chunk-size", "4M",
                    "--mgmtd", cluster.mgmtd_address], check=True, capture_output=True)
    blobs = {f"w{i}": os.urandom(18 * MIB + 1000 + i) for i in range(20)}

    def write(name: str) -> None:
        data = blobs[name]
        with open(d / name, "wb", buffering=0) as f:
            for off in range(0, len(data), MIB):
                f.write(data[off:off + MIB])

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(write, blobs))
    for name, data in blobs.items():
        assert client.read_file(f"{rel}/{name}") == data, name
