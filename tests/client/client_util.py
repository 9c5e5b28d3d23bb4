"""Helpers shared by the Python-client tests (plain functions; fixtures live in conftest.py)."""
from __future__ import annotations

import random

CHUNK = 64 << 10          # chunk size of the shared test cluster (tests/conftest.py)


def rand_bytes(n: int, seed: int) -> bytes:
    """Deterministic pseudo-random bytes (reproducible failures)."""
    return random.Random(seed).randbytes(n)
