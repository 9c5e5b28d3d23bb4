"""Fixtures for the Python-client tests (cluster/client/workdir come from tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture
def private_client(cluster):
    """A Client of its own, for tests that patch or stop parts of it."""
    from threefs.client.fs import Client
    c = Client(cluster.mgmtd_address)
    yield c
    c.close()
