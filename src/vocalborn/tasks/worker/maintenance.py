"""Beat's jobs: republish stranded tasks, reap stalled ones, check health (the retention jobs
are ``retention``'s).

Each job is idempotent and works in bounded batches, so running it twice, late or concurrently
does no harm.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlmodel import col

from vocalborn.celery_app import celery_app
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.kit.redis import get_redis
from vocalborn.redis_connect import client as redis_client
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import service, unit_of_work
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import EventType, TaskStatus
from vocalborn.tasks.worker import registry

log = logging.getLogger(__name__)
BATCH = 500


# --------------------------------------------------------------------------------------------
def _message_task_id(item: bytes | str) -> str | None:
    try:
        message = json.loads(item)
        if isinstance(message, list):  # unacked entries are [message, exchange, routing_key]
            message = message[0]
        task_id = message.get("headers", {}).get("id")
    except (ValueError, AttributeError, IndexError):
        return None
    return str(task_id) if task_id else None


def queued_task_ids() -> tuple[set[str], set[str]] | None:
    """Celery ids in the Redis broker: (waiting in the queue, reserved by a live-looking worker).

    None when we cannot look (another broker). Tells a task that waits in a long queue from one
    whose message was lost. A reservation older than the hard time limit is not trusted: its
    worker was killed, and Redis would only hand the message back after the visibility timeout.
    """
    settings = get_settings()
    broker = settings.effective_broker_url
    if not broker.startswith("redis"):
        return None

    client = redis_client(broker, socket_timeout=5)
    try:
        waiting_raw = client.lrange(settings.task_queue, 0, -1)
        fresh_tags: list[Any] = client.zrangebyscore("unacked_index", time.time() - settings.task_time_limit, "+inf")
        reserved_raw = [v for v in client.hmget("unacked", fresh_tags) if v] if fresh_tags else []
    finally:
        client.close()
    waiting = {t for t in map(_message_task_id, waiting_raw) if t}
    reserved = {t for t in map(_message_task_id, reserved_raw) if t}
    return waiting, reserved


def _reservation_holders(task_ids: list[str]) -> tuple[dict[str, str | None], set[str] | None]:
    """Which worker took each message (as the worker noted it), and which workers are online;
    ({}, None) when Redis cannot tell."""

    try:
        return registry.reserved_by(task_ids), {w["hostname"] for w in registry.online_workers()}
    except Exception as exc:
        log.warning("cannot read reservations or the worker registry: %s", exc)
        return {}, None


def republish_stranded_tasks(now: datetime | None = None) -> int:
    """Publish pending tasks whose message never reached the broker (or was lost with it), and
    overdue retries whose delayed message is gone."""
    settings = get_settings()
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.republish_after_seconds)
    with open_session() as db:
        candidates = list(
            db.scalars(
                select(AIAnalysisTask)
                .where(
                    or_(
                        (col(AIAnalysisTask.status) == TaskStatus.PENDING.value)
                        & (col(AIAnalysisTask.updated_at) < cutoff),
                        (col(AIAnalysisTask.status) == TaskStatus.RETRY.value)
                        & (col(AIAnalysisTask.next_attempt_at) < cutoff),
                    )
                )
                .order_by(col(AIAnalysisTask.created_at))
                .limit(BATCH)
            )
        )
        if not candidates:
            return 0
        try:
            in_broker = queued_task_ids()
        except Exception as exc:
            log.warning("cannot inspect the broker (%s); republishing nothing this round", exc)
            return 0
        holders, alive = _reservation_holders([t.celery_task_id for t in candidates])
        count = 0
        for task in candidates:
            if in_broker is not None:
                waiting, reserved = in_broker
                if task.celery_task_id in waiting:
                    continue  # still waiting its turn
                holder = holders.get(task.celery_task_id)
                held_by_the_dead = holder is not None and alive is not None and holder not in alive
                if task.status == TaskStatus.PENDING and task.celery_task_id in reserved and not held_by_the_dead:
                    continue  # a worker holds it and is about to start it
                # A worker that was killed left it reserved: Redis would hand it back only after
                # the visibility timeout. (A duplicate, should that worker live, is harmless: the
                # claim takes a task once.)
                # An overdue retry held by a worker is not trusted: its countdown has long passed.
            event = unit_of_work.transition(
                db,
                task,
                EventType.QUEUED,
                values={"publish_count": task.publish_count + 1},
                message="republished: its message was not in the broker",
            )
            if event is None:
                continue
            if service.send_task_message(task):
                count += 1
        if count:
            log.info("republished %d stranded task(s)", count)
        return count


def reap_stalled_tasks(now: datetime | None = None) -> dict[str, int]:
    """Tasks 'processing' whose worker stopped heartbeating: requeue them, or fail them once they
    have used up their deliveries."""
    settings = get_settings()
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.task_lease_seconds)
    requeued = failed = cancelled = 0
    with open_session() as db:
        stalled = list(
            db.scalars(
                select(AIAnalysisTask)
                .where(col(AIAnalysisTask.status) == TaskStatus.PROCESSING.value)
                .where(or_(col(AIAnalysisTask.heartbeat_at) < cutoff, col(AIAnalysisTask.heartbeat_at).is_(None)))
                .where(col(AIAnalysisTask.updated_at) < cutoff)
                .limit(BATCH)
            )
        )
        for task in stalled:
            event_type, values, message = _reaper_verdict(task, now, settings.task_max_deliveries)
            event = unit_of_work.transition(
                db, task, event_type, expect_attempt=task.attempt, values=values, message=message
            )
            if event is None:
                continue
            if event_type == EventType.CANCELLED:
                cancelled += 1
            elif event_type == EventType.FAILED:
                failed += 1
            else:
                requeued += 1
                service.send_task_message(task)
    cancelled += _force_overdue_cancels(now)
    if requeued or failed or cancelled:
        log.warning("reaper: %d stalled task(s) requeued, %d failed, %d cancelled", requeued, failed, cancelled)
    return {"requeued": requeued, "failed": failed, "cancelled": cancelled}


def _reaper_verdict(task: AIAnalysisTask, now: datetime, max_deliveries: int) -> tuple[EventType, dict[str, Any], str]:
    """What the reaper does with a task whose worker stopped heartbeating. The messages name no
    worker: learners read them; the event's ``worker_name`` (shown to admins only) says which."""
    if task.cancel_requested_at is not None:  # its worker died before it could stop
        return (
            EventType.CANCELLED,
            {"completed_at": now, "heartbeat_at": None},
            "cancelled; its worker had stopped",
        )
    if task.deliveries >= max_deliveries:
        return (
            EventType.FAILED,
            {
                "completed_at": now,
                "error_message": f"gave up after {task.deliveries} deliveries: the worker stopped every time",
            },
            "its worker stopped; no deliveries left",
        )
    return (
        EventType.QUEUED,
        {"publish_count": task.publish_count + 1, "heartbeat_at": None},
        "its worker stopped heartbeating; requeued",
    )


def _force_overdue_cancels(now: datetime) -> int:
    """A cancel is honoured at the next step boundary. A run stuck inside one step (a hung remote
    call, say) never gets there while its heartbeat keeps the lease: after a grace period the task
    is cancelled here, which fences off every later write of that run, and the run is terminated
    (Celery's revoke with terminate, the documented last resort) to free its pool slot."""
    grace = timedelta(seconds=2 * get_settings().task_lease_seconds)
    done = 0
    with open_session() as db:
        overdue = list(
            db.scalars(
                select(AIAnalysisTask)
                .where(col(AIAnalysisTask.status) == TaskStatus.PROCESSING.value)
                .where(col(AIAnalysisTask.cancel_requested_at) < now - grace)
                .limit(BATCH)
            )
        )
        for task in overdue:
            event = unit_of_work.transition(
                db,
                task,
                EventType.CANCELLED,
                expect_attempt=task.attempt,
                values={"completed_at": now, "heartbeat_at": None},
                message=f"cancelled by force: its worker did not stop within {grace.seconds} s",
            )
            if event is None:
                continue
            done += 1
            try:
                celery_app.control.revoke(task.celery_task_id, terminate=True, signal="SIGTERM")
            except Exception as exc:  # the database already says cancelled; this only frees the slot
                log.warning("could not revoke task %s: %s", task.task_id, exc)
    return done


# --------------------------------------------------------------------------------------------
def health_check() -> dict[str, Any]:
    """The plan's health_check, made to check something: the database and Redis answer."""
    started = time.perf_counter()
    with open_session() as db:
        db.execute(text("SELECT 1"))
        active = db.scalars(
            select(func.count())
            .select_from(AIAnalysisTask)
            .where(col(AIAnalysisTask.status).in_(["pending", "processing", "retry"]))
        ).one()
    get_redis().ping()
    result = {
        "status": "healthy",
        "active_tasks": int(active),
        "checked_in_ms": round((time.perf_counter() - started) * 1000, 1),
        "timestamp": utcnow().isoformat(),
    }
    get_redis().set(f"{get_settings().redis_key_prefix}health:last", json.dumps(result), ex=3600)
    return result
