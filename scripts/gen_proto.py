#!/usr/bin/env python3
"""Regenerate threefs/proto/*_pb2*.py from the .proto files (run after editing a schema).

Usage: python scripts/gen_proto.py [--out DIR]   (DIR defaults to the repository root)
The generated modules are committed; tests/unit/test_proto_fresh.py fails when they are stale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "threefs" / "proto"


def generate(out: Path) -> list[Path]:
    """Run protoc (from grpcio-tools) on every schema; return the written files."""
    from grpc_tools import protoc

    protos = sorted(p.relative_to(ROOT).as_posix() for p in PROTO_DIR.glob("*.proto"))
    (out / "threefs" / "proto").mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{ROOT}", f"--python_out={out}", f"--pyi_out={out}"]
    args += [f"--grpc_python_out={out}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    gen = out / "threefs" / "proto"
    return sorted(p for p in gen.iterdir() if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT)
    ns = ap.parse_args()
    for p in generate(ns.out):
        print(p)
    sys.exit(0)


if __name__ == "__main__":
    main()
