"""PyTorch datasets over threefs: records and sample indexes, batched fetching, DataLoader workers."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from client_util import CHUNK, rand_bytes

from threefs.client.dataset import RecordDataset, SampleIndexDataset

torch = pytest.importorskip("torch")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def shards(client, workdir):
    """Three files of 100-byte records (the last with a trailing partial record)."""
    rec = 100
    files = {}
    for i, n in enumerate((700, 1, 1333)):
        data = rand_bytes(n * rec + (37 if i == 2 else 0), 20 + i)
        path = f"{workdir}/shard-{i}"
        client.write_file(path, data)
        files[path] = data
    return files, rec


def records(files: dict[str, bytes], rec: int) -> list[bytes]:
    out = []
    for data in files.values():
        out.extend(data[i:i + rec] for i in range(0, len(data) - rec + 1, rec))
    return out


def test_record_dataset_items_and_batches(cluster, shards):
    files, rec = shards
    want = records(files, rec)
    ds = RecordDataset(list(files), rec, mgmtd=cluster.mgmtd_address)
    try:
        assert len(ds) == len(want) == 2034
        for i in (0, 699, 700, 701, 2033, -1):
            item = ds[i]
            assert isinstance(item, torch.Tensor) and item.dtype == torch.uint8
            assert bytes(item.numpy()) == want[i]
        with pytest.raises(IndexError):
            ds[len(ds)]
        idx = list(np.random.default_rng(1).permutation(len(ds))[:700])
        batch = ds.__getitems__(idx)
        assert [bytes(t.numpy()) for t in batch] == [want[i] for i in idx]
    finally:
        ds.close()


def test_batches_use_one_ring_submission(cluster, shards, monkeypatch):
    files, rec = shards
    ds = RecordDataset(list(files), rec, mgmtd=cluster.mgmtd_address, iov_size=20 * rec)
    try:
        ring = ds.reader.ring
        submits = []
        orig = ring.submit
        monkeypatch.setattr(ring, "submit", lambda: submits.append(len(ring._prepared)) or orig())
        out = ds.__getitems__(list(range(50)))
        assert submits == [20, 20, 10], "a batch fills the iovec per submission"
        assert [bytes(t.numpy()) for t in out] == records(files, rec)[:50]
    finally:
        ds.close()


def test_dtype_shape_and_transform(cluster, client, workdir):
    arr = np.arange(60 * 6, dtype=np.float32).reshape(60, 6)
    client.write_file(f"{workdir}/f32", arr.tobytes())
    ds = RecordDataset(f"{workdir}/f32", 6 * 4, mgmtd=cluster.mgmtd_address, dtype=torch.float32, shape=(2, 3))
    try:
        assert torch.equal(ds[7], torch.from_numpy(arr[7].reshape(2, 3)))
        stacked = torch.stack(ds.__getitems__([1, 2, 3]))
        assert stacked.shape == (3, 2, 3) and torch.equal(stacked.reshape(3, 6), torch.from_numpy(arr[1:4]))
    finally:
        ds.close()
    ds = RecordDataset(f"{workdir}/f32", 24, mgmtd=cluster.mgmtd_address, transform=lambda v: bytes(v[:4]))
    try:
        assert ds[1] == arr[1, :1].tobytes()
    finally:
        ds.close()
    client.write_file(f"{workdir}/with-header", b"HDR!" * 4 + arr.tobytes())
    ds = RecordDataset([f"{workdir}/with-header"], 24, header=16, mgmtd=cluster.mgmtd_address, dtype=torch.float32)
    try:
        assert len(ds) == 60 and torch.equal(ds[59], torch.from_numpy(arr[59]))
    finally:
        ds.close()


def test_sample_index_dataset_across_chunks_and_eof(cluster, client, workdir):
    data = rand_bytes(5 * CHUNK + 3, 30)
    client.write_file(f"{workdir}/blob", data)
    other = rand_bytes(1000, 31)
    client.write_file(f"{workdir}/other", other)
    blob, oth = f"{workdir}/blob", f"{workdir}/other"
    samples = [(blob, CHUNK - 10, 20), (oth, 0, 1000), (blob, 0, 5 * CHUNK + 3), (blob, 5 * CHUNK, 100), (oth, 999, 1),
               (oth, 5000, 7)]
    ds = SampleIndexDataset(samples, mgmtd=cluster.mgmtd_address)
    try:
        got = [bytes(t.numpy()) for t in ds.__getitems__(range(len(samples)))]
        src = {f"{workdir}/blob": data, f"{workdir}/other": other}
        assert got == [src[p][o:o + n] for p, o, n in samples]          # past EOF: short or empty
    finally:
        ds.close()
    with pytest.raises(ValueError):
        SampleIndexDataset([("/x", -1, 3)], mgmtd=cluster.mgmtd_address)


def test_missing_file_raises_clear_error(cluster, client, workdir):
    ds = SampleIndexDataset([(f"{workdir}/nope", 0, 10)], mgmtd=cluster.mgmtd_address)
    try:
        with pytest.raises(FileNotFoundError):
            ds[0]
    finally:
        ds.close()


@pytest.mark.parametrize("context", ["forkserver"])
def test_dataloader_workers_each_open_their_own_ring(cluster, shards, context):
    """DataLoader(num_workers=2, batch_size) reads every record once, in its workers (not the test process)."""
    files, rec = shards
    want = records(files, rec)
    ds = RecordDataset(list(files), rec, mgmtd=cluster.mgmtd_address)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=2,
                                         multiprocessing_context=context,
                                         generator=torch.Generator().manual_seed(0))
    seen = []
    for batch in loader:
        assert batch.shape[1:] == (rec,) and batch.shape[0] <= 64
        seen.extend(bytes(row.numpy()) for row in batch)
    assert sorted(seen) == sorted(want)
    assert ds._reader is None, "the test process itself opened no reader"


def test_fork_after_live_client_fails_fast_instead_of_hanging(cluster):
    """A child forked while its parent had a connected client gets a clear error (gRPC would hang there).

    The parent's client is marked connected without starting gRPC: forking a process whose gRPC
    threads run can crash the child inside CPython's own fork handling, before any threefs code.
    """
    code = (
        "import os, sys\n"
        "from threefs.client import fs\n"
        f"parent = fs.AsyncClient({cluster.mgmtd_address!r})\n"
        "fs._CONNECTED[parent] = os.getpid()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        f"        fs.Client({cluster.mgmtd_address!r})\n"
        "        os._exit(3)\n"
        "    except RuntimeError as e:\n"
        "        os._exit(0 if 'forkserver' in str(e) else 4)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "code = os.waitstatus_to_exitcode(status)\n"
        "del fs._CONNECTED[parent]\n"
        f"fs.Client({cluster.mgmtd_address!r}).close()   # the parent itself is unaffected\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
