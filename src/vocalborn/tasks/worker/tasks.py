"""Celery tasks: thin wrappers around the services. Never imports FastAPI."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

from celery import bootsteps, signals
from celery.app.task import Task

from vocalborn.celery_app import (
    ANALYZE_TASK,
    CLEANUP_TASK,
    HEALTH_CHECK_TASK,
    PURGE_RECORDINGS_TASK,
    REAP_TASK,
    REPUBLISH_TASK,
    celery_app,
)
from vocalborn.config import get_settings
from vocalborn.db import reset_engine
from vocalborn.logs import log_context, setup_logging
from vocalborn.monitoring import queue_wait, worker_metrics  # noqa: F401 - connects the metrics receivers
from vocalborn.process import freeze_startup_objects
from vocalborn.supervision import pool_child_dies_with_worker
from vocalborn.tasks.worker import maintenance, registry, retention, runner

log = logging.getLogger(__name__)
queue_wait.connect()  # retries and republished tasks carry their publish time too


class AnalysisFailed(Exception):
    """Raised after the failure is recorded, so Celery and Flower show FAILURE, not SUCCESS.

    Listed in ``throws``: Celery logs it as expected, without a traceback; the message is
    acknowledged like any finished task (the database already holds the outcome)."""


# acks_late, reject_on_worker_lost and ignore_result come from the app's configuration
# (celery_app.celery_config), for every task alike.
@celery_app.task(name=ANALYZE_TASK, bind=True, throws=(AnalysisFailed,))
def analyze_audio(self: Task, task_id: str) -> str:
    request_id = (self.request.headers or {}).get("vocalborn_request_id") if self.request.headers else None
    worker_name = f"{self.request.hostname}/{os.getpid()}"
    with log_context(task_id=task_id, request_id=request_id or getattr(self.request, "vocalborn_request_id", None)):
        outcome = runner.run_analysis(task_id, worker_name)
    if outcome is runner.Outcome.FAILED:
        raise AnalysisFailed(f"analysis {task_id} failed; see its status and events")
    return outcome.value


# Maintenance jobs send no task events (issue #26): every 30-60 s they filled Flower's list (34 of
# 43 tasks for 9 analyses); Beat publishes them without a task-sent event (beat.LeasedScheduler).
# Their outcome is in the logs and the worker metrics.
@celery_app.task(name=REPUBLISH_TASK, send_events=False)
def republish_stranded_tasks() -> int:
    return maintenance.republish_stranded_tasks()


@celery_app.task(name=REAP_TASK, send_events=False)
def reap_stalled_tasks() -> dict[str, int]:
    return maintenance.reap_stalled_tasks()


@celery_app.task(name=CLEANUP_TASK, send_events=False)
def cleanup_expired_tasks() -> dict[str, int]:
    from dataclasses import asdict

    return asdict(retention.cleanup_expired_tasks())


@celery_app.task(name=PURGE_RECORDINGS_TASK, send_events=False)
def purge_old_recordings() -> int:
    return retention.purge_old_recordings()


@celery_app.task(name=HEALTH_CHECK_TASK, send_events=False)
def health_check() -> dict[str, Any]:
    return maintenance.health_check()


# --- process signals ---------------------------------------------------------------------------
@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)


@signals.task_received.connect
def _note_reserved(request: Any = None, **_: Any) -> None:
    # In the main process, when a message is taken from the broker: who holds it (see registry).
    if request is None or request.name != ANALYZE_TASK:
        return
    try:
        registry.note_reserved(str(request.id), str(request.hostname))
    except Exception as exc:  # Redis down: the republisher falls back to the reservation's age
        log.debug("cannot note the reservation of %s: %s", request.id, exc)


@signals.worker_init.connect
def _before_pool(**_: Any) -> None:
    # In the main process, before the pool forks its children: they inherit the frozen objects,
    # so neither their collections nor the parent's touch (and un-share) those pages.
    freeze_startup_objects()


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # A pool child dies with the worker's main process (a SIGKILLed worker leaves no orphans
    # holding the data folder or running tasks nobody can acknowledge; they are redelivered):
    # Celery does it on Linux, this covers the rest.

    pool_child_dies_with_worker()
    # A forked child must not share its parent's database connections.

    reset_engine()
    _preload_analysis_model()
    freeze_startup_objects()  # what the child made since the fork: the model, its connections


def _preload_analysis_model() -> None:
    """Load the local engine's phone recogniser once per worker process, before the first
    task (never in the API process, which does not import this module). Also for the remote
    engine with AI_ENGINE_FALLBACK=local: the fallback must be ready when the remote circuit opens."""
    settings = get_settings()
    if settings.ai_engine != "local" and settings.ai_engine_fallback != "local":
        return
    try:
        from vocalborn.analysis.phonetic import preload  # reason: numpy on use only

        preload()
    except Exception as exc:  # the first analysis will load it (and report any failure)
        log.warning("could not preload the analysis model: %s", exc)


_announcer_stop = threading.Event()


@signals.worker_ready.connect
def _announce(sender: Any = None, **_: Any) -> None:
    hostname = sender.hostname if sender is not None else "worker"
    concurrency = get_settings().celery_worker_concurrency
    with contextlib.suppress(Exception):  # solo pool, or an unexpected sender
        concurrency = int(sender.pool.num_processes)

    def loop() -> None:
        while True:
            try:
                registry.announce(hostname, concurrency, consumed=0)
            except Exception as exc:
                log.warning("cannot announce worker %s: %s", hostname, exc)
            if _announcer_stop.wait(registry.TTL_SECONDS / 3):
                registry.withdraw(hostname)
                return

    threading.Thread(target=loop, name="vocalborn-announcer", daemon=True).start()
    log.info("worker %s ready: %d process(es) on queue %s", hostname, concurrency, get_settings().task_queue)


@signals.worker_shutting_down.connect
def _withdraw(**_: Any) -> None:
    _announcer_stop.set()


# --------------------------------------------------------------------------------------------
# Task events for Flower, sent in batches
# --------------------------------------------------------------------------------------------
EVENT_FLUSH_DELAY = 0.005  # seconds: how long a task event may wait for others to share its publish


class CoalescedEventFlush(bootsteps.StartStopStep):
    """Celery buffers the task events (``task-received``, ``-started``, ``-succeeded``: what
    Flower shows) and publishes the buffer as one message, but asks for that flush on the event
    loop's next turn, so under load nearly every event is a publish of its own, a Redis round
    trip in the worker's main process (a third of that process's time in bench/worker_pipeline.py:
    docs/BENCHMARKS.md). Here the flush waits up to ``EVENT_FLUSH_DELAY`` for the events of the
    moment to join it; Celery still flushes at once when its buffer is full, and the events keep
    their own timestamps, so Flower shows the same times."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        scheduled = False

        def flush() -> None:
            nonlocal scheduled
            scheduled = False
            parent._flush_events()

        def on_buffered() -> None:
            nonlocal scheduled
            if parent.hub is None:  # no event loop (a solo or thread pool): flush as Celery would
                parent._flush_events()
            elif not scheduled:
                scheduled = True
                parent.hub.call_later(EVENT_FLUSH_DELAY, flush)

        # Read by the Events step each time it (re)connects: set before it starts.
        parent.on_send_event_buffered = on_buffered


celery_app.steps["consumer"].add(CoalescedEventFlush)
