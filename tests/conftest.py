"""Test-wide set-up: a database and Redis keys of this run's own, configured before any
vocalborn module reads its settings."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests import support
from tests.services import ServicesUnderTest, discover
from tests.support import Api

_services: ServicesUnderTest | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _services
    _services = discover()
    os.environ.update(_services.env)
    from vocalborn.config import get_settings

    get_settings.cache_clear()


# Folders whose every test is slow in one way: they need no marker per module.
_FOLDER_MARKERS = {
    "broker": ("broker", "worker"),
    "web": ("browser", "worker"),
    "faults": ("faults", "worker"),
    "deploy": ("worker",),  # docker-compose, uv sync and vocalborn processes: started, not imported
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # An `isolated` test runs only in a session of its own modules (.ci/run runs it that way):
    # beside the whole suite it proved order-dependent (see tests/tasks/test_time_limits.py).
    isolated = [i for i in items if i.get_closest_marker("isolated")]
    if isolated and len({i.path for i in items}) > len({i.path for i in isolated}):
        config.hook.pytest_deselected(items=isolated)
        items[:] = [i for i in items if not i.get_closest_marker("isolated")]
    for item in items:
        parts = item.path.relative_to(config.rootpath).parts
        for marker in _FOLDER_MARKERS.get(parts[1] if len(parts) > 2 else "", ()):
            item.add_marker(marker)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("postgresql") and _services is not None and _services.database_kind == "sqlite":
        pytest.skip("needs PostgreSQL (the fast paths run only there); set TEST_DATABASE_URL or start the local server")
    support.current_test_markers.clear()
    support.current_test_markers.update(m.name for m in item.iter_markers())


def pytest_report_header(config: pytest.Config) -> list[str]:
    if _services is None:
        return []
    lines = [
        f"vocalborn test services: database={_services.database_kind} redis={_services.redis_kind} "
        f"run={_services.run_id}"
    ]
    lines += [f"  note: {n}" for n in _services.notes]
    return lines


def pytest_unconfigure(config: pytest.Config) -> None:
    if _services is not None:
        from vocalborn.db import reset_engine

        reset_engine()
        _services.cleanup()


@pytest.fixture(scope="session")
def services() -> ServicesUnderTest:
    assert _services is not None
    return _services


@pytest.fixture(scope="session")
def migrated(services: ServicesUnderTest) -> Iterator[ServicesUnderTest]:
    from vocalborn.cli import run_migrations

    run_migrations()
    yield services


@pytest.fixture(scope="module")
def api(migrated: ServicesUnderTest) -> Iterator[Api]:
    """The API in-process (real database, real broker), one per test module."""
    from fastapi.testclient import TestClient

    from vocalborn.main import app

    with TestClient(app) as client:
        yield Api(client)


@pytest.fixture(autouse=True, scope="module")
def _unfreeze_after_module() -> Iterator[None]:
    """An app's start-up (any TestClient entering the lifespan) freezes the test process's
    objects (vocalborn.process): unfreeze after each module, so its garbage can go."""
    yield
    gc.unfreeze()


@pytest.fixture
def therapist(api: Api) -> dict[str, Any]:
    return api.register("therapist")


@pytest.fixture
def learner(api: Api) -> dict[str, Any]:
    return api.register("learner")
