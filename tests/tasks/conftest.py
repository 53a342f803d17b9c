from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.services import ServicesUnderTest
from tests.support import Api


@pytest.fixture(scope="module")
def api(migrated: ServicesUnderTest) -> Iterator[Api]:
    from vocalborn.main import app

    with TestClient(app) as client:
        yield Api(client)


@pytest.fixture
def therapist(api: Api) -> dict[str, Any]:
    return api.register("therapist")


@pytest.fixture
def learner(api: Api) -> dict[str, Any]:
    return api.register("learner")
