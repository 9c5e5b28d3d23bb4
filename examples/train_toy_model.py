"""Train a toy model for a few steps on samples read from threefs through the batched Dataset.

    python examples/train_toy_model.py --mgmtd 127.0.0.1:8000        # an existing cluster
    python examples/train_toy_model.py                              # a temporary dev cluster

It writes a synthetic regression data set (records of 16 float32 features + 1 float32 target) as a
few shard files, trains a linear model with DataLoader workers that each read batches through
their own USRBIO-style ring, then saves a checkpoint on threefs and loads it back.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threefs.client.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from threefs.client.dataset import RecordDataset  # noqa: E402
from threefs.client.fs import Client  # noqa: E402

FEATURES = 16
RECORD = (FEATURES + 1) * 4


def write_shards(mgmtd: str, root: str, records: int, shards: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Synthetic data y = x . w + noise, split over `shards` files; returns the paths and the true w."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=FEATURES).astype(np.float32)
    paths = []
    with Client(mgmtd) as c:          # closed before DataLoader forks its workers
        c.makedirs(root, exist_ok=True)
        per = -(-records // shards)
        for s in range(shards):
            n = min(per, records - s * per)
            x = rng.normal(size=(n, FEATURES)).astype(np.float32)
            y = x @ w + rng.normal(scale=0.01, size=n).astype(np.float32)
            path = f"{root}/shard-{s:03d}.f32"
            c.write_file(path, np.concatenate([x, y[:, None]], axis=1).astype(np.float32).tobytes())
            paths.append(path)
    return paths, w


def train(mgmtd: str, args: argparse.Namespace) -> int:
    paths, w_true = write_shards(mgmtd, args.dir, args.records, args.shards, args.seed)
    ds = RecordDataset(paths, RECORD, mgmtd=mgmtd, dtype=torch.float32, shape=(FEATURES + 1,))
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                                         drop_last=True, generator=torch.Generator().manual_seed(args.seed))
    torch.manual_seed(args.seed)
    model = torch.nn.Linear(FEATURES, 1)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    losses: list[float] = []
    step = 0
    t0 = time.perf_counter()
    while step < args.steps:
        for batch in loader:
            x, y = batch[:, :FEATURES], batch[:, FEATURES:]
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if step % max(1, args.steps // 10) == 0 or step == 1:
                print(f"step {step:4d}  loss {loss.item():.5f}", flush=True)
            if step >= args.steps:
                break
    dt = time.perf_counter() - t0
    samples = step * args.batch_size
    print(f"trained {step} steps, {samples} samples in {dt:.2f}s ({samples / dt:.0f} samples/s, "
          f"{args.workers} workers)")
    with Client(mgmtd) as c:
        ckpt = f"{args.dir}/model.3fs"
        save_checkpoint({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, ckpt, client=c)
        back = load_checkpoint(ckpt, client=c)
    same = back["step"] == step and all(torch.equal(v, back["model"][k]) for k, v in model.state_dict().items())
    err = float(np.abs(model.weight.detach().numpy().ravel() - w_true).max())
    print(f"first loss {losses[0]:.5f}, last loss {losses[-1]:.5f}; max |w - w_true| {err:.4f}; "
          f"checkpoint round trip {'ok' if same else 'MISMATCH'}")
    return 0 if same and losses[-1] < losses[0] else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mgmtd", default=os.environ.get("THREEFS_MGMTD"),
                    help="mgmtd host:port (default: start a temporary dev cluster)")
    ap.add_argument("--dir", default="/examples/toy", help="threefs directory for the data and checkpoint")
    ap.add_argument("--records", type=int, default=8192)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.mgmtd:
        return train(args.mgmtd, args)
    from threefs.cli.devcluster import ClusterSpec, DevCluster
    with tempfile.TemporaryDirectory(prefix="threefs-toy-") as tmp:
        dc = DevCluster(tmp, ClusterSpec(base_port=0, targets_per_node=1, chunk_size=256 << 10))
        try:
            dc.up(timeout=60)
            print(f"started a dev cluster in {tmp} (mgmtd {dc.mgmtd_address})")
            return train(dc.mgmtd_address, args)
        finally:
            dc.down()


if __name__ == "__main__":
    sys.exit(main())
