"""The integration scenarios on Redis and on RabbitMQ as the broker: submit → worker → result,
transient failure → retry (a delayed publish) → success, cancel, SIGKILL and SIGTERM of a worker.

Every case runs once per broker (the ``stack`` fixture is parametrized); each starts its own
processes with that broker's environment and stops them by PID.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.broker.conftest import Stack
from tests.broker.scenarios import event_counts, make_admin, result_counts
from tests.flaky_ai import FlakyService, running_flaky_service
from tests.support import wait_until


@pytest.fixture(scope="module")
def ai_service() -> Iterator[tuple[FlakyService, int]]:
    with running_flaky_service() as running:
        yield running


def test_a_submitted_recording_is_analysed(workers: Stack, therapist: dict[str, Any], learner: dict[str, Any]) -> None:
    stack = workers
    stack.worker("flow", concurrency=2)
    api = stack.api
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    r = api.submit(learner, record_id, include_suggestions=True)
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]

    final = api.wait_for(api.admin(), task_id, {"success", "failure"}, timeout=90)  # admins see worker names
    assert final["status"] == "success", final
    assert final["worker_name"].startswith("flow-")
    result = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"])
    assert result.status_code == 200 and 0 <= result.json()["overall_score"] <= 100
    kinds = [e["event_type"] for e in api.events(learner, task_id)]
    assert kinds[0] == "submitted" and kinds[1] == "started" and kinds[-1] == "succeeded"
    assert result_counts([task_id])[task_id] == 1


def test_transient_errors_retry_after_their_backoff_then_succeed(
    workers: Stack,
    ai_service: tuple[FlakyService, int],
    therapist: dict[str, Any],
    learner: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    """The retry is published with a countdown of 1-4 s: on RabbitMQ that is a delayed message
    (native delayed delivery), on Redis an ETA the worker holds. No beat runs, so only that
    delayed message can bring the task back; one delivered early would be dropped by the claim
    and the task would never finish."""
    stack = workers
    service, port = ai_service
    worker = stack.worker(
        "remote",
        AI_ENGINE="remote",
        AI_SERVICE_URL=f"http://127.0.0.1:{port}",
        AI_SERVICE_TIMEOUT="20",
        RETRY_BACKOFF_BASE="2",
        RETRY_BACKOFF_MAX="4",
    )
    api = stack.api
    service.fail_next, service.fail_status = 2, 503
    try:
        record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        task_id = api.submit(learner, record_id).json()["task_id"]
        final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)
    finally:
        service.fail_next = 0
    assert final["status"] == "success", (final, worker.log()[-3000:])
    assert final["retry_count"] == 2
    events = api.events(learner, task_id)
    assert [e["attempt"] for e in events if e["event_type"] == "started"] == [1, 2, 3]
    assert [e["event_type"] for e in events].count("retry") == 2
    assert "early delivery dropped" not in worker.log()
    assert result_counts([task_id])[task_id] == 1
    if stack.kind == "rabbitmq":
        # quorum queues, and the retry went through the delayed-delivery queues, not the worker
        assert "Direct exchanges are not supported" not in worker.log()
        rabbit = request.getfixturevalue("rabbitmq")
        if rabbit.created:
            queues = rabbit.queues()
            assert queues[os.environ["TASK_QUEUE"]]["type"] == "quorum"
            assert queues[os.environ["MAINTENANCE_QUEUE"]]["type"] == "quorum"
            assert {f"celery_delayed_{n}" for n in range(28)} <= queues.keys()


def test_a_retry_waiting_for_its_backoff_does_not_hold_the_workers_only_slot(
    workers: Stack, ai_service: tuple[FlakyService, int], therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    """A worker with one pool process: task A fails transiently and must wait 4-8 s; task B,
    submitted right after, runs meanwhile. (On RabbitMQ quorum queues behind a direct exchange the
    worker would hold A's ETA message in its only prefetch slot and B would wait for A.)"""
    stack = workers
    service, port = ai_service
    stack.worker(
        "one-slot",
        concurrency=1,
        AI_ENGINE="remote",
        AI_SERVICE_URL=f"http://127.0.0.1:{port}",
        RETRY_BACKOFF_BASE="8",
        RETRY_BACKOFF_MAX="8",
    )
    api = stack.api
    first = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    second = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    service.fail_next, service.fail_status = 1, 503
    try:
        a = api.submit(learner, first).json()["task_id"]
        api.wait_for(learner, a, {"retry"}, timeout=60)
        b = api.submit(learner, second).json()["task_id"]
        assert api.wait_for(learner, a, {"success", "failure"}, timeout=90)["status"] == "success"
        assert api.wait_for(learner, b, {"success", "failure"}, timeout=90)["status"] == "success"
    finally:
        service.fail_next = 0
    a_retry_started = [e["event_id"] for e in api.events(learner, a) if e["event_type"] == "started"][-1]
    b_succeeded = [e["event_id"] for e in api.events(learner, b) if e["event_type"] == "succeeded"][0]
    assert b_succeeded < a_retry_started, "the second task waited for the first one's backoff"


def test_cancelling_stops_a_running_analysis_and_a_queued_one_never_runs(
    workers: Stack, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    stack = workers
    worker = stack.worker("cancel", concurrency=1, ANALYSIS_STEP_DELAY_SECONDS="1.0")
    api = stack.api
    admin = make_admin(api)
    running_id = api.submit(learner, api.ready_record(therapist, learner)["record"]["practice_record_id"]).json()[
        "task_id"
    ]
    queued_id = api.submit(learner, api.ready_record(therapist, learner)["record"]["practice_record_id"]).json()[
        "task_id"
    ]
    wait_until(
        lambda: api.status(learner, running_id)["status"] == "processing", 60, 0.1, "the first analysis to start"
    )
    # one pool process: the second task waits in the broker; the learner cancels it there
    r = api.client.delete(f"/api/v1/tasks/analysis/{queued_id}", headers=learner["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    # the operator cancels the running one: it stops at its next step
    r = api.client.delete(f"/api/v1/admin/tasks/{running_id}", headers=admin["headers"])
    assert r.status_code == 200, r.text

    final = api.wait_for(learner, running_id, {"success", "failure", "cancelled"}, timeout=60)
    assert final["status"] == "cancelled", final
    running_kinds = [e["event_type"] for e in api.events(learner, running_id)]
    assert "started" in running_kinds and running_kinds[-1] == "cancelled"
    # the queued message still reaches the worker, which acknowledges and skips it
    wait_until(lambda: f"task {queued_id} is already cancelled" in worker.log(), 60, 0.2, "the skip of the message")
    queued_kinds = [e["event_type"] for e in api.events(learner, queued_id)]
    assert queued_kinds == ["submitted", "cancelled"]
    assert result_counts([running_id, queued_id]) == {running_id: 0, queued_id: 0}


def test_a_worker_killed_mid_analysis_loses_nothing(
    workers: Stack, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    stack = workers
    victim = stack.worker("victim", concurrency=1, ANALYSIS_STEP_DELAY_SECONDS="1.0")
    stack.beat()
    api = stack.api
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    running = wait_until(
        lambda: (s := api.status(api.admin(), task_id))["progress"] >= 20 and s["status"] == "processing" and s,
        60,
        0.1,
        "the analysis to be half-way",
    )
    assert running["worker_name"].startswith("victim-")
    victim.kill()  # SIGKILL, main process and pool child alike

    stack.worker("rescuer", concurrency=1)
    final = api.wait_for(api.admin(), task_id, {"success", "failure"}, timeout=90)
    assert final["status"] == "success", final
    assert final["worker_name"].startswith("rescuer-")
    assert result_counts([task_id])[task_id] == 1
    assert event_counts([task_id], "succeeded")[task_id] == 1
    started = [e for e in api.events(api.admin(), task_id) if e["event_type"] == "started"]
    assert started[0]["worker_name"].startswith("victim-") and started[-1]["worker_name"].startswith("rescuer-")


def test_a_worker_stopped_with_sigterm_finishes_its_running_analysis(
    workers: Stack, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    """Celery's warm shutdown: SIGTERM stops consuming, the running analysis completes, the
    worker exits 0. This is what `docker compose stop` sends (stop_grace_period 400s)."""
    stack = workers
    worker = stack.worker("graceful", concurrency=1, ANALYSIS_STEP_DELAY_SECONDS="0.8")
    api = stack.api
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    wait_until(
        lambda: (s := api.status(learner, task_id))["status"] == "processing" and s["progress"] >= 20,
        60,
        0.1,
        "the analysis to be running",
    )
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGTERM)
    code = worker.proc.wait(60)
    assert code == 0, worker.log()[-3000:]

    final = api.status(api.admin(), task_id)
    assert final["status"] == "success", (final, worker.log()[-3000:])
    assert final["worker_name"].startswith("graceful-")
    assert result_counts([task_id])[task_id] == 1
    started = [e for e in api.events(api.admin(), task_id) if e["event_type"] == "started"]
    assert len(started) == 1
