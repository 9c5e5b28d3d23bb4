"""Fixtures for the KV engine suite: every behavioural test runs against each engine."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from threefs.kv.engine import KVEngine
from threefs.kv.memory import MemoryKV
from threefs.kv.rocksdb import RocksKV

ENGINES = ["memory", "rocksdb"]


@pytest.fixture(params=ENGINES)
def make_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., KVEngine]:
    """A factory for the parametrized engine kind (rocksdb lives in tmp_path/db)."""

    def make(**kwargs: int) -> KVEngine:
        if request.param == "memory":
            return MemoryKV(**kwargs)
        return RocksKV(tmp_path / "db", **kwargs)

    make.kind = request.param  # type: ignore[attr-defined]
    return make


@pytest_asyncio.fixture
async def engine(make_engine: Callable[..., KVEngine]) -> AsyncIterator[KVEngine]:
    """A fresh engine of each kind, closed after the test."""
    eng = make_engine()
    yield eng
    await eng.close()


@pytest_asyncio.fixture
async def rocks(tmp_path: Path) -> AsyncIterator[RocksKV]:
    """A fresh RocksKV in tmp_path/db, closed after the test."""
    eng = RocksKV(tmp_path / "db")
    yield eng
    await eng.close()
