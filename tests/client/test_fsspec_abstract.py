"""fsspec's own conformance suites (copy, get, put, open, pipe) against the "3fs" file system."""
from __future__ import annotations

import uuid

import pytest
from fsspec.tests.abstract import (
    AbstractCopyTests,
    AbstractFixtures,
    AbstractGetTests,
    AbstractOpenTests,
    AbstractPipeTests,
    AbstractPutTests,
)

from threefs.client.fsspec import ThreeFSFileSystem


class ThreeFSFixtures(AbstractFixtures):
    """The fixtures the abstract suites need: our file system and a fresh directory per test."""

    @pytest.fixture
    def fs(self, cluster, client):
        return ThreeFSFileSystem(cluster.mgmtd_address, client=client)

    @pytest.fixture
    def fs_path(self, client):
        """A fresh directory whose name has no glob characters (test ids contain "**", "?")."""
        path = f"/fsspec-abstract/{uuid.uuid4().hex}"
        client.makedirs(path)
        return path


class TestThreeFSCopy(AbstractCopyTests, ThreeFSFixtures):
    pass


class TestThreeFSGet(AbstractGetTests, ThreeFSFixtures):
    pass


class TestThreeFSPut(AbstractPutTests, ThreeFSFixtures):
    pass


class TestThreeFSOpen(AbstractOpenTests, ThreeFSFixtures):
    pass


class TestThreeFSPipe(AbstractPipeTests, ThreeFSFixtures):
    pass
