"""The committed protobuf modules must match what scripts/gen_proto.py generates from the schemas."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_modules_are_fresh(tmp_path):
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    fresh = gen.generate(tmp_path)
    assert fresh, "protoc produced nothing"
    stale = []
    for f in fresh:
        committed = ROOT / "threefs" / "proto" / f.name
        if not committed.exists() or committed.read_bytes() != f.read_bytes():
            stale.append(f.name)
    assert not stale, f"stale generated modules {stale}: run `make proto` (python scripts/gen_proto.py) and commit"
