"""/metrics on the API and on a worker need METRICS_TOKEN as a bearer token."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
import pytest

from tests.security.conftest import Pair
from tests.services import ServicesUnderTest
from tests.support import WorkerProcess, wait_until
from vocalborn.embedded import free_port

pytestmark = pytest.mark.worker

TOKEN = secrets.token_hex(32)


def test_the_api_metrics_need_the_token_on_every_process(start_pair: Callable[[dict[str, str]], Pair]) -> None:
    pair = start_pair({"METRICS_TOKEN": TOKEN})
    for api in pair.apis:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            r = api.client.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text
            assert "vocalborn_" not in r.text
        r = api.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and "vocalborn_tasks" in r.text


def test_without_a_token_outside_production_the_api_metrics_stay_open(api: object) -> None:
    from tests.support import Api

    assert isinstance(api, Api)
    assert api.client.get("/metrics").status_code == 200


def test_the_worker_metrics_need_the_token(migrated: ServicesUnderTest) -> None:
    port = free_port()
    worker = WorkerProcess(
        "metricsauth", migrated.data_dir, env={"WORKER_METRICS_PORT": str(port), "METRICS_TOKEN": TOKEN}
    ).start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"

        def serving() -> bool:
            try:
                return httpx.get(url, timeout=2).status_code in (200, 401)
            except httpx.HTTPError:
                return False

        wait_until(serving, 30, 0.2, "the worker metrics endpoint")
        r = httpx.get(url, timeout=5)
        assert r.status_code == 401 and "celery_" not in r.text
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
        r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert r.status_code == 200 and "celery_worker_up" in r.text, r.text[:500]
    finally:
        worker.stop()
