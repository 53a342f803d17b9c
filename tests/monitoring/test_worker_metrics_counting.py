"""Which process counts what: the receivers of the worker metrics, driven by hand."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vocalborn.monitoring import queue_wait, worker_metrics
from vocalborn.monitoring.worker_metrics import REAP_TASK, REPUBLISH_TASK, WorkerMetrics
from vocalborn.tasks.worker.runner import Outcome

ANALYZE = "vocalborn.analyze_audio"


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> WorkerMetrics:
    m = WorkerMetrics(tmp_path, "unit@host")
    monkeypatch.setattr(worker_metrics, "_metrics", m)
    return m


def _task(name: str, **request: Any) -> Any:
    return SimpleNamespace(name=name, request=SimpleNamespace(eta=None, headers=None, **request))


def _runs(m: WorkerMetrics, name: str, status: str) -> float:
    return float(m.tasks.labels(task_name=name, status=status)._value.get())


def _errors(m: WorkerMetrics, name: str, error_type: str) -> float:
    return float(m.errors.labels(task_name=name, error_type=error_type)._value.get())


def _durations(m: WorkerMetrics, name: str) -> float:
    return sum(b.get() for b in m.duration.labels(task_name=name)._buckets)


def test_a_run_that_raises_is_counted_once_by_the_process_that_ran_it(metrics: WorkerMetrics) -> None:
    task = _task("vocalborn.maintenance.health_check")
    error = ConnectionError("redis went away")
    worker_metrics._prerun(task_id="t1", task=task)
    # in the pool child, Celery sends task_failure and then task_postrun for the same run
    worker_metrics._failure(sender=task, task_id="t1", exception=error)
    worker_metrics._postrun(task_id="t1", task=task, retval=error, state="FAILURE")
    assert _runs(metrics, task.name, "started") == 1
    assert _runs(metrics, task.name, "failure") == 1
    assert _runs(metrics, task.name, "lost") == 0
    assert _errors(metrics, task.name, "ConnectionError") == 1
    assert _durations(metrics, task.name) == 1


def test_a_run_lost_with_its_pool_child_is_counted_by_the_main_process(metrics: WorkerMetrics) -> None:
    from billiard.exceptions import WorkerLostError
    from celery.exceptions import TimeLimitExceeded

    task = _task(ANALYZE)
    # the main process never saw prerun (the child did) and reports what the child could not
    worker_metrics._failure(sender=task, task_id="t2", exception=WorkerLostError("signal 9"))
    worker_metrics._failure(sender=task, task_id="t3", exception=TimeLimitExceeded(360))
    assert _runs(metrics, ANALYZE, "lost") == 2
    assert _runs(metrics, ANALYZE, "failure") == 0
    assert _errors(metrics, ANALYZE, "WorkerLostError") == 1
    assert _errors(metrics, ANALYZE, "TimeLimitExceeded") == 1


@pytest.mark.parametrize(
    ("outcome", "status", "error_type", "timed"),
    [
        (Outcome.SUCCEEDED, "success", None, True),
        (Outcome.FAILED, "failure", "permanent", True),
        (Outcome.RETRY_SCHEDULED, "retry", "transient", True),
        (Outcome.CANCELLED, "cancelled", None, True),
        (Outcome.SKIPPED, "skipped", None, False),
    ],
)
def test_each_analysis_outcome_is_counted_under_its_status(
    metrics: WorkerMetrics, outcome: Outcome, status: str, error_type: str | None, timed: bool
) -> None:
    task = _task(ANALYZE)
    worker_metrics._prerun(task_id="t4", task=task)
    # the runner handles its own errors: Celery sees a normal return of the outcome's value
    worker_metrics._postrun(task_id="t4", task=task, retval=outcome.value, state="SUCCESS")
    assert _runs(metrics, ANALYZE, status) == 1
    assert sum(_runs(metrics, ANALYZE, s) for s in ("success", "failure", "retry", "cancelled", "skipped")) == 1
    assert sum(_errors(metrics, ANALYZE, e) for e in ("permanent", "transient")) == (1 if error_type else 0)
    if error_type:
        assert _errors(metrics, ANALYZE, error_type) == 1
    assert _durations(metrics, ANALYZE) == (1 if timed else 0)


def test_reaper_and_republisher_results_are_counted(metrics: WorkerMetrics) -> None:
    reap, republish = _task(REAP_TASK), _task(REPUBLISH_TASK)
    for task, retval in ((reap, {"requeued": 2, "failed": 1}), (republish, 3), (republish, 0)):
        worker_metrics._prerun(task_id="t5", task=task)
        worker_metrics._postrun(task_id="t5", task=task, retval=retval, state="SUCCESS")
    assert metrics.reaped.labels(action="requeued")._value.get() == 2
    assert metrics.reaped.labels(action="failed")._value.get() == 1
    assert metrics.republished._value.get() == 3


def test_queue_wait_is_measured_from_publish_or_from_a_delayed_retrys_eta(metrics: WorkerMetrics) -> None:
    stamp = queue_wait.PUBLISHED_AT_HEADER
    assert queue_wait.queue_wait_seconds(SimpleNamespace(**{stamp: 100.0}, eta=None), now=250.0) == 150.0
    eta = "1970-01-01T00:03:20+00:00"  # 200 s after the epoch: the retry was due then
    assert queue_wait.queue_wait_seconds(SimpleNamespace(**{stamp: 100.0}, eta=eta), now=250.0) == 50.0
    assert queue_wait.queue_wait_seconds(SimpleNamespace(headers={stamp: 100.0}, eta=None), now=250.0) == 150.0
    assert queue_wait.queue_wait_seconds(SimpleNamespace(**{stamp: 300.0}, eta=None), now=250.0) == 0.0  # clock skew
    assert queue_wait.queue_wait_seconds(SimpleNamespace(eta=None, headers=None), now=250.0) is None

    task = _task(ANALYZE, **{stamp: 1.0})
    worker_metrics._prerun(task_id="t6", task=task)
    assert metrics.queue_wait.labels(task_name=ANALYZE)._sum.get() > 0


def test_a_publish_stamp_already_in_the_headers_is_not_overwritten() -> None:
    headers: dict[str, Any] = {}
    queue_wait._stamp_publish_time(headers=headers)
    first = headers[queue_wait.PUBLISHED_AT_HEADER]
    queue_wait._stamp_publish_time(headers=headers)
    assert headers[queue_wait.PUBLISHED_AT_HEADER] == first
