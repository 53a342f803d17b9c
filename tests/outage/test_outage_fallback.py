"""AI_ENGINE_FALLBACK=local: while the remote service is down and its circuit open, the local
engine analyses; the result says so (engine_fallback, in the API and the stored row). When the
service is back and the circuit closed, the remote engine analyses again. Real worker, Redis
(the circuit shared by the worker's two processes), PostgreSQL, and a real HTTP service."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.outage.conftest import OutageService, reset_circuit, stored_result
from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def worker(migrated: ServicesUnderTest, outage_service: OutageService) -> Iterator[WorkerProcess]:
    reset_circuit(migrated)
    env = {
        "AI_ENGINE": "remote",
        "AI_SERVICE_URL": outage_service.url,
        "AI_SERVICE_TIMEOUT": "20",
        "AI_RETRY_NETWORK_MAX": "5",
        "AI_RETRY_NETWORK_DELAY": "0.5",
        "AI_CIRCUIT_FAILURE_THRESHOLD": "2",
        "AI_CIRCUIT_RESET_SECONDS": "120",  # stays open for the whole outage here
        "AI_ENGINE_FALLBACK": "local",
        # a loaded machine: the local engine beside the suite's other work (its model is preloaded)
        "TASK_SOFT_TIME_LIMIT": "60",
        "TASK_TIME_LIMIT": "70",
        "BROKER_VISIBILITY_TIMEOUT": "80",
    }
    w = WorkerProcess("fallback", migrated.data_dir, concurrency=2, env=env).start()
    yield w
    w.stop()
    reset_circuit(migrated)


def test_the_local_engine_analyses_while_the_remote_circuit_is_open(
    api: Api,
    migrated: ServicesUnderTest,
    outage_service: OutageService,
    worker: WorkerProcess,
    therapist: dict[str, Any],
    learner: dict[str, Any],
) -> None:
    records = [api.ready_record(therapist, learner)["record"]["practice_record_id"] for _ in range(4)]
    outage_service.down()
    try:
        task_ids = []
        for record_id in records[:3]:
            r = api.submit(learner, record_id)
            assert r.status_code in (200, 201, 202), r.text
            task_ids.append(str(r.json()["task_id"]))
        for task_id in task_ids:
            final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)
            assert final["status"] == "success", (final, api.events(learner, task_id))
            body = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"]).json()
            # the fallback names itself: the local engine's version, and engine_fallback
            assert body["engine_fallback"] is True, body
            assert body["analysis_model_version"].startswith("vocalborn-phonetic"), body
            assert stored_result(task_id) == {
                "engine_fallback": True,
                "analysis_model_version": body["analysis_model_version"],
            }
            # no task spent its retry budget: the circuit opened after 2 failures in all
            assert final["retry_count"] <= 2, final
        # the operator sees the shared circuit open
        shown = subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "tasks", "circuit"],
            capture_output=True, text=True, timeout=60, env={**os.environ, **migrated.env, **worker.extra_env},
        )  # fmt: skip
        assert shown.returncode == 0 and "circuit: OPEN" in shown.stdout and "fallback engine: local" in shown.stdout, (
            shown.stdout + shown.stderr
        )
    finally:
        outage_service.up()

    # the service is back: once the circuit closes (here: reset by the operator), remote again
    calls = outage_service.service.calls
    reset_circuit(migrated)
    r = api.submit(learner, records[3])
    task_id = str(r.json()["task_id"])
    assert api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)["status"] == "success"
    body = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"]).json()
    assert body["engine_fallback"] is False and outage_service.service.calls == calls + 1, body
    assert stored_result(task_id)["engine_fallback"] is False
