"""Checkpoints: exact round trips of tensors/arrays (dtype, shape, bytes), parallel writes, atomic replace."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest
from client_util import CHUNK

from threefs.client.checkpoint import load_checkpoint, save_checkpoint

torch = pytest.importorskip("torch")


def same_tensor(a, b) -> bool:
    """Identical dtype, shape and bytes (NaNs and -0.0 included)."""
    if type(a) is not type(b) or a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
        return False
    if isinstance(a, np.ndarray):
        return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    return bytes(a.contiguous().reshape(-1).view(torch.uint8).numpy()) == \
        bytes(b.contiguous().reshape(-1).view(torch.uint8).numpy())


def test_round_trip_is_exact(client, workdir):
    g = torch.Generator().manual_seed(0)
    weights = torch.randn(512, 1537, generator=g)            # ~3 MiB: many chunks, an unaligned end
    state = {
        "w": weights,
        "w.T": weights[:7, :9].t(),                          # non-contiguous
        "half": torch.randn(33, generator=g).half(),
        "bf16": torch.randn(5, 7, generator=g).to(torch.bfloat16),
        "i64": torch.arange(-5, 1000, dtype=torch.int64),
        "mask": torch.rand(17, generator=g) > 0.5,
        "u8": torch.randint(0, 256, (3, 3, 3), dtype=torch.uint8, generator=g),
        "c64": torch.randn(4, dtype=torch.complex64, generator=g),
        "scalar": torch.tensor(3.25),
        "empty": torch.empty(0, 4),
        "nan": torch.tensor([float("nan"), -0.0, float("inf")]),
        "np": np.arange(1001, dtype=">i4").reshape(7, 143),   # big-endian NumPy
        "np_f16": np.linspace(0, 1, 99, dtype=np.float16),
        "optimizer": {"state": {0: {"step": 10, "exp_avg": torch.ones(3)}, 1: {"step": 10, "exp_avg": torch.zeros(2)}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "name": None}]},
    }
    path = f"{workdir}/ckpt/model.3fs"
    client.makedirs(f"{workdir}/ckpt")
    size = save_checkpoint(state, path, client=client)
    assert client.stat(path).st_size == size >= weights.numel() * 4
    back = load_checkpoint(path, client=client)
    assert set(back) == set(state)
    for name in ("w", "w.T", "half", "bf16", "i64", "mask", "u8", "c64", "scalar", "empty", "nan", "np", "np_f16"):
        assert same_tensor(back[name], state[name] if not isinstance(state[name], torch.Tensor)
                           else state[name].contiguous()), name
    opt = back["optimizer"]
    assert set(opt["state"]) == {0, 1} and opt["state"][0]["step"] == 10
    assert torch.equal(opt["state"][1]["exp_avg"], torch.zeros(2))
    assert opt["param_groups"] == [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "name": None}]
    model = torch.nn.Linear(16, 4)
    save_checkpoint(model.state_dict(), f"{workdir}/ckpt/linear.3fs", client=client)
    fresh = torch.nn.Linear(16, 4)
    fresh.load_state_dict(load_checkpoint(f"{workdir}/ckpt/linear.3fs", client=client))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))


def test_writes_are_parallel_and_large(private_client, workdir):
    """The chunk writes of a checkpoint overlap in flight (not one after another)."""
    c = private_client
    in_flight = 0
    peak = 0
    sizes: list[int] = []
    orig = c.aio.rpc.call

    async def spy(address, method, request, *a, **kw):
        nonlocal in_flight, peak
        if method != "Storage.Write":
            return await orig(address, method, request, *a, **kw)
        in_flight += 1
        peak = max(peak, in_flight)
        sizes.append(request.io.length)
        try:
            await asyncio.sleep(0)       # let the other writes of the batch get on the wire
            return await orig(address, method, request, *a, **kw)
        finally:
            in_flight -= 1

    c.aio.rpc.call = spy
    state = {f"t{i}": torch.full((CHUNK // 4 * 3,), float(i)) for i in range(4)}   # 3 chunks each
    save_checkpoint(state, f"{workdir}/par.3fs", client=c)
    assert peak >= 4, f"at most {peak} chunk writes in flight"
    assert sum(1 for s in sizes if s == CHUNK) >= 8          # whole-chunk writes, not small pieces
    back = load_checkpoint(f"{workdir}/par.3fs", client=c)
    assert all(torch.equal(back[k], v) for k, v in state.items())


def test_save_replaces_atomically_and_rejects_unknown_leaves(client, workdir):
    path = f"{workdir}/a.3fs"
    save_checkpoint({"x": torch.ones(10)}, path, client=client)
    with pytest.raises(TypeError):
        save_checkpoint({"x": torch.zeros(10), "bad": object()}, path, client=client)
    assert torch.equal(load_checkpoint(path, client=client)["x"], torch.ones(10)), "a failed save changed the file"
    save_checkpoint({"x": torch.zeros(10)}, path, client=client)
    assert torch.equal(load_checkpoint(path, client=client)["x"], torch.zeros(10))
    assert client.listdir(workdir) == ["a.3fs"], "temporary files left behind"
    client.write_file(f"{workdir}/junk", b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a threefs checkpoint"):
        load_checkpoint(f"{workdir}/junk", client=client)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(f"{workdir}/missing", client=client)


def test_checkpoint_with_own_client_from_environment(cluster, client, workdir):
    """Without a client argument the helpers connect to THREEFS_MGMTD (and close that client again)."""
    save_checkpoint({"a": np.arange(5.0), "meta": {"epoch": 3}}, f"{workdir}/env.3fs")
    back = load_checkpoint(f"{workdir}/env.3fs", mgmtd=cluster.mgmtd_address)
    assert back["meta"] == {"epoch": 3} and np.array_equal(back["a"], np.arange(5.0))
