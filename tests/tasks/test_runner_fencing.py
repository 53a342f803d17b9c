"""A run that lost its task (requeued by the reaper, resubmitted by an admin) writes nothing.

In-process runner calls against the real database; no worker consumes this module's messages
while the assertions run."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from tests.support import Api


def _claim(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> Any:
    from vocalborn.tasks.worker import runner

    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    claim = runner.claim_task(uuid.UUID(task_id), "test-worker/1")
    assert isinstance(claim, runner.Claim)
    return claim


def _report() -> Any:
    from vocalborn.analysis.types import AnalysisReport

    return AnalysisReport(90.0, 91.0, 92.0, 93.0, {"timing_analysis": {"note": "made by the test"}})


def _state(task_id: uuid.UUID) -> tuple[str, int, int]:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

    with open_session() as db:
        task = db.get(AIAnalysisTask, task_id)
        assert task is not None
        results = len(db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == task_id)).all())
        return task.status, task.attempt, results


def test_a_run_whose_task_the_reaper_requeued_can_neither_succeed_nor_fail_it(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.worker import maintenance, runner

    claim = _claim(api, therapist, learner)
    silent = utcnow() - timedelta(seconds=get_settings().task_lease_seconds * 5)
    with open_session() as db:  # its heartbeat lapsed (a long DB hiccup, say)
        db.execute(
            update(AIAnalysisTask)
            .where(col(AIAnalysisTask.task_id) == claim.task_id)
            .values(heartbeat_at=silent, updated_at=silent)
        )
        db.commit()
    assert maintenance.reap_stalled_tasks()["requeued"] >= 1
    assert _state(claim.task_id)[0] == "pending"

    assert runner._complete(claim, _report()) is runner.Outcome.SKIPPED
    assert runner._fail(claim, "late failure from the old run") is runner.Outcome.SKIPPED
    assert runner._retry_or_fail(claim, "late retry from the old run") is runner.Outcome.SKIPPED
    assert _state(claim.task_id) == ("pending", claim.attempt, 0)


def test_a_transient_retry_does_not_use_up_the_delivery_cap(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.worker import runner

    claim = _claim(api, therapist, learner)
    assert runner._retry_or_fail(claim, "remote analysis timed out") is runner.Outcome.RETRY_SCHEDULED
    with open_session() as db:
        task = db.get(AIAnalysisTask, claim.task_id)
        assert task is not None
        assert (task.status, task.retry_count, task.deliveries) == ("retry", 1, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("overall_score", 101.0), ("fluency_score", float("nan")), ("rhythm_score", -1), ("pronunciation_accuracy", None)],
)
def test_an_invalid_report_is_refused_as_a_permanent_error(field: str, value: Any) -> None:
    from vocalborn.tasks.worker import runner

    report = _report()
    setattr(report, field, value)
    with pytest.raises(runner.PermanentError, match=field):
        runner.check_report(report)


def test_a_report_without_details_is_refused() -> None:
    from vocalborn.tasks.worker import runner

    report = _report()
    report.detailed_analysis = {}
    with pytest.raises(runner.PermanentError, match="detailed_analysis"):
        runner.check_report(report)
    runner.check_report(_report())  # and a sound one passes


def test_a_cancel_a_stuck_run_never_honours_is_forced_by_the_reaper(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.worker import maintenance, runner

    claim = _claim(api, therapist, learner)
    long_ago = utcnow() - timedelta(seconds=get_settings().task_lease_seconds * 3)
    with open_session() as db:  # cancel asked for long ago; the run is alive (fresh heartbeat) but stuck
        db.execute(
            update(AIAnalysisTask)
            .where(col(AIAnalysisTask.task_id) == claim.task_id)
            .values(cancel_requested_at=long_ago, heartbeat_at=utcnow())
        )
        db.commit()
    assert maintenance.reap_stalled_tasks()["cancelled"] >= 1
    assert _state(claim.task_id)[0] == "cancelled"
    assert runner._complete(claim, _report()) is runner.Outcome.SKIPPED  # the stuck run wakes up too late
    assert _state(claim.task_id) == ("cancelled", claim.attempt, 0)


def test_a_lease_held_by_a_dead_process_of_this_node_is_taken_over_at_once() -> None:
    import os
    import subprocess
    import sys

    from vocalborn.tasks.worker.claim import run_died_here as _run_died_here

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    me = f"node-a@host/{os.getpid()}"
    assert _run_died_here(f"node-a@host/{child.pid}", me)  # its pool child is gone
    assert not _run_died_here(f"node-b@host/{child.pid}", me)  # another node: keep its lease
    assert not _run_died_here(f"node-a@host/{os.getppid()}", me)  # alive
    assert not _run_died_here(f"node-a@host/{os.getpid()}", me)  # this very process
    assert not _run_died_here(None, me)
