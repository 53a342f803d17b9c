"""Issue #26 friction: Flower's task list was swamped by maintenance jobs (34 of 43 tasks for 9
analyses). Maintenance jobs now send no task events: not the worker's (received, started,
succeeded: ``send_events=False``) and not Beat's task-sent event (``LeasedScheduler.apply_async``),
while analyses keep both. Beat publishes for real to the suite's broker here; the spy only reads
each message's sent event on its way out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.services import ServicesUnderTest


def test_maintenance_jobs_send_no_worker_events_and_analyses_do() -> None:
    from vocalborn.celery_app import ANALYZE_TASK, celery_app
    from vocalborn.notify import reminders  # noqa: F401  (registers its job; the worker: conf.imports)
    from vocalborn.tasks.worker import tasks  # noqa: F401  (registers the tasks)

    schedule = celery_app.conf.beat_schedule
    names = {entry["task"] for entry in schedule.values()}
    assert len(names) == 6
    for name in names:
        assert celery_app.tasks[name].send_events is False, name
    assert celery_app.tasks[ANALYZE_TASK].send_events is True
    assert celery_app.conf.worker_send_task_events is True  # analyses still reach Flower


def test_beat_publishes_maintenance_without_a_task_sent_event(
    migrated: ServicesUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    from vocalborn.beat import LeasedScheduler, last_run_key, lease_key
    from vocalborn.celery_app import celery_app
    from vocalborn.config import get_settings

    monkeypatch.setenv("REDIS_KEY_PREFIX", f"vbtest-quiet-{uuid.uuid4().hex[:8]}:")  # its own lease
    get_settings.cache_clear()
    seen: list[tuple[str, Any]] = []
    amqp = celery_app.amqp
    real = amqp.send_task_message

    def spy(producer: Any, name: str, message: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append((name, message.sent_event))
        return real(producer, name, message, *args, **kwargs)

    monkeypatch.setattr(amqp, "send_task_message", spy)
    scheduler = LeasedScheduler(app=celery_app, schedule_filename=str(tmp_path / "celerybeat-schedule"), lazy=False)
    client = redis.Redis.from_url(get_settings().effective_redis_url)
    try:
        for entry in scheduler.schedule.values():  # every job due now
            entry.last_run_at = entry.default_now() - timedelta(days=1)
        while not scheduler.holding or len(seen) < len(scheduler.schedule):
            scheduler.tick()
            if len(seen) >= len(scheduler.schedule):
                break
        assert {name for name, _ in seen} == {e.task for e in scheduler.schedule.values()}
        assert all(event is None for _, event in seen), seen  # no task-sent event: Flower never lists them
        assert celery_app.conf.task_send_sent_event is True  # restored for everything else
    finally:
        scheduler.close()
        client.delete(lease_key(), last_run_key())
        client.close()
        monkeypatch.undo()
        get_settings.cache_clear()
