"""Transient failures retry with backoff; permanent ones fail at once. A real worker process uses
the remote engine against a small AI service on loopback that we make misbehave on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.flaky_ai import FlakyService, running_flaky_service
from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def ai_service() -> Iterator[tuple[FlakyService, int]]:
    with running_flaky_service() as running:
        yield running


@pytest.fixture(scope="module")
def remote_worker(migrated: ServicesUnderTest, ai_service: tuple[FlakyService, int]) -> Iterator[WorkerProcess]:
    env = {"AI_ENGINE": "remote", "AI_SERVICE_URL": f"http://127.0.0.1:{ai_service[1]}", "AI_SERVICE_TIMEOUT": "20"}
    w = WorkerProcess("remote", migrated.data_dir, concurrency=1, env=env).start()
    yield w
    w.stop()


def _run_with_failures(
    api: Api, service: FlakyService, therapist: dict[str, Any], learner: dict[str, Any], fails: int, status: int
) -> tuple[str, dict[str, Any]]:
    """Make the AI service fail the next ``fails`` calls with ``status``; run one analysis to its end."""
    service.fail_next, service.fail_status = fails, status
    try:
        record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        task_id = api.submit(learner, record_id).json()["task_id"]
        return task_id, api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)
    finally:
        service.fail_next = 0


def test_transient_errors_retry_with_backoff_then_succeed(
    api: Api,
    ai_service: tuple[FlakyService, int],
    remote_worker: WorkerProcess,
    therapist: dict[str, Any],
    learner: dict[str, Any],
) -> None:
    task_id, final = _run_with_failures(api, ai_service[0], therapist, learner, 2, 503)
    assert final["status"] == "success", final
    assert final["retry_count"] == 2
    events = api.events(learner, task_id)
    retries = [e for e in events if e["event_type"] == "retry"]
    assert [e["status"] for e in retries] == ["retry", "retry"]
    assert all("503" in e["message"] for e in retries)
    started = [e["attempt"] for e in events if e["event_type"] == "started"]
    assert started == [1, 2, 3]
    assert events[-1]["event_type"] == "succeeded"


def test_transient_errors_give_up_after_max_retries(
    api: Api,
    ai_service: tuple[FlakyService, int],
    remote_worker: WorkerProcess,
    therapist: dict[str, Any],
    learner: dict[str, Any],
) -> None:
    # the first run and all three retries fail
    task_id, final = _run_with_failures(api, ai_service[0], therapist, learner, 4, 503)
    assert final["status"] == "failure"
    assert final["retry_count"] == 3
    assert final["error_message"].startswith("gave up after 3 retries")
    kinds = [e["event_type"] for e in api.events(learner, task_id)]
    assert kinds.count("retry") == 3 and kinds.count("started") == 4 and kinds[-1] == "failed"


def test_a_rejected_input_fails_at_once_without_retries(
    api: Api,
    ai_service: tuple[FlakyService, int],
    remote_worker: WorkerProcess,
    therapist: dict[str, Any],
    learner: dict[str, Any],
) -> None:
    _, final = _run_with_failures(api, ai_service[0], therapist, learner, 1, 400)
    assert final["status"] == "failure" and final["retry_count"] == 0
    assert "injected failure 400" in final["error_message"]
