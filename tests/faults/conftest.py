"""One cluster of our own (PostgreSQL, Redis, API, Beat) for the whole fault suite."""

from __future__ import annotations

import glob
import shutil
from collections.abc import Iterator

import pytest

from tests.faults.harness import Cluster
from tests.services import ServicesUnderTest, in_ci


@pytest.fixture(scope="module")
def cluster(migrated: ServicesUnderTest) -> Iterator[Cluster]:
    missing = [
        b for b in ("initdb", "pg_ctl") if not glob.glob(f"/usr/lib/postgresql/*/bin/{b}") and not shutil.which(b)
    ]
    if not shutil.which("redis-server"):
        try:
            from vocalborn.embedded import redis_server_binary

            redis_server_binary()
        except RuntimeError:
            missing.append("redis-server")
    if missing:
        message = f"the fault suite starts its own PostgreSQL and Redis; not installed: {missing}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    log_dir = migrated.data_dir / "faults"
    log_dir.mkdir(exist_ok=True)
    c = Cluster(log_dir).start()
    c.beat()
    try:
        yield c
    finally:
        c.stop()
