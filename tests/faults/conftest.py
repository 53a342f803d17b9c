"""One cluster of our own (PostgreSQL, Redis, API, Beat) for the whole fault suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.harness import Cluster
from tests.services import ServicesUnderTest


@pytest.fixture(scope="module")
def cluster(migrated: ServicesUnderTest) -> Iterator[Cluster]:
    log_dir = migrated.data_dir / "faults"
    log_dir.mkdir(exist_ok=True)
    c = Cluster(log_dir).start()
    c.beat()
    try:
        yield c
    finally:
        c.stop()
