"""The one Celery application, with the reliability settings named and explained.

The API imports this module only to publish (``send_task``); it never imports the worker module.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from vocalborn.config import Settings, get_settings
from vocalborn.redis_connect import celery_transport_options, celery_url, use_safe_sentinel_transport

ANALYZE_TASK = "vocalborn.analyze_audio"
# Beat's jobs (tasks/worker/tasks.py registers them; routed to the maintenance queue by their prefix).
MAINTENANCE_PREFIX = "vocalborn.maintenance."
REPUBLISH_TASK = MAINTENANCE_PREFIX + "republish_stranded_tasks"
REAP_TASK = MAINTENANCE_PREFIX + "reap_stalled_tasks"
CLEANUP_TASK = MAINTENANCE_PREFIX + "cleanup_expired_tasks"
PURGE_RECORDINGS_TASK = MAINTENANCE_PREFIX + "purge_old_recordings"
HEALTH_CHECK_TASK = MAINTENANCE_PREFIX + "health_check"
REMINDERS_TASK = MAINTENANCE_PREFIX + "write_practice_reminders"  # registered by notify/reminders.py
REMINDERS_EVERY_SECONDS = 300.0  # reminders are per local hour: every 5 minutes is on time


def _is_amqp(url: str) -> bool:
    return url.startswith(("amqp", "pyamqp"))


def _queues(settings: Settings, amqp: bool) -> tuple[Queue, ...]:
    names = (settings.task_queue, settings.maintenance_queue)
    if not amqp:
        return tuple(Queue(name, routing_key=name, durable=True) for name in names)
    # RabbitMQ: quorum queues (replicated, durable, poison-message aware) behind one topic exchange.
    # Topic, not direct, because a publish with a countdown (our retries) then goes through
    # Celery's native delayed delivery (TTL queues inside RabbitMQ). Behind a direct exchange the
    # worker would hold the delayed message in a prefetch slot until it is due: quorum queues have
    # no global QoS, so that slot is lost to the pool meanwhile. docs/DEPLOYMENT.md has the test.
    exchange = Exchange(settings.task_queue, type="topic", durable=True)
    return tuple(
        Queue(name, exchange, routing_key=name, durable=True, queue_arguments={"x-queue-type": "quorum"})
        for name in names
    )


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery's settings, derived from ours."""
    broker = settings.effective_broker_url
    amqp = _is_amqp(broker)
    backend = settings.effective_result_backend
    # Redis: one visibility timeout for broker and results alike (above the hard time limit: Redis
    # redelivers an unacknowledged message after it, even one still running). With Sentinel
    # (REDIS_SENTINELS) both go through the `sentinel://` transports with the master's name.
    visibility = {"visibility_timeout": settings.broker_visibility_timeout}
    return dict(
        broker_url=celery_url(broker, settings),
        result_backend=celery_url(backend, settings),
        # JSON only: no pickle from the network.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        # One FIFO queue for analyses (the plan's ai_analysis) and a small one for Beat's jobs,
        # so a backlog of analyses cannot delay the jobs that heal it.
        task_queues=_queues(settings, amqp),
        task_default_queue=settings.task_queue,
        task_default_exchange=settings.task_queue,
        task_default_exchange_type="topic" if amqp else "direct",
        # Quorum queues cannot take a global QoS; Celery detects them and uses per-consumer QoS.
        worker_detect_quorum_queues=True,
        task_routes={
            ANALYZE_TASK: {"queue": settings.task_queue, "routing_key": settings.task_queue},
            MAINTENANCE_PREFIX + "*": {"queue": settings.maintenance_queue, "routing_key": settings.maintenance_queue},
        },
        # At-least-once: acknowledge after the task ran, and requeue when the pool child dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Long tasks: a worker takes one at a time instead of hoarding four.
        worker_prefetch_multiplier=settings.celery_worker_prefetch_multiplier,
        worker_concurrency=settings.celery_worker_concurrency,
        worker_max_tasks_per_child=settings.celery_worker_max_tasks_per_child,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        broker_transport_options=celery_transport_options(broker, visibility, settings),
        result_backend_transport_options=celery_transport_options(backend, visibility, settings),
        # A lost broker connection would otherwise let running tasks finish and be run again.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # Those tasks' pool children are replaced at once: a new child imports the analysis
        # engine before it reports ready, which on a busy host takes longer than Celery's 4 s,
        # and a child killed for it is replaced by another that is killed again (seen after a
        # Redis failover on a loaded two-core machine: the pool stayed empty for minutes).
        worker_proc_alive_timeout=60.0,
        broker_connection_retry_on_startup=True,
        # A publish during a broker outage gives up quickly: the task is safe in the database.
        broker_connection_timeout=3,
        # The database is the source of truth for status and results: no task stores a Celery
        # result (a task that ever does expires it after a day).
        result_expires=timedelta(days=1),
        task_ignore_result=True,
        # Flower sees tasks only with events on.
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        beat_schedule=_beat_schedule(settings),
        imports=("vocalborn.notify.reminders",),  # the reminders' Beat job (outside tasks/)
        # Only the Beat holding a lease in Redis schedules: a second one on the broker waits.
        beat_scheduler="vocalborn.beat:LeasedScheduler",
    )


def _beat_schedule(settings: Settings) -> dict[str, dict[str, object]]:
    def entry(task: str, every: float) -> dict[str, object]:
        # Jobs share the pool with analyses, so one may wait for a slot as long as an analysis
        # runs: it expires only after that, and copies never pile up beyond a few intervals.
        expires = max(3 * every, float(settings.task_soft_time_limit))
        return {"task": task, "schedule": every, "options": {"expires": expires}}

    return {
        "republish-stranded-tasks": entry(REPUBLISH_TASK, settings.republish_interval_seconds),
        "reap-stalled-tasks": entry(REAP_TASK, settings.reaper_interval_seconds),
        "cleanup-expired-tasks": entry(CLEANUP_TASK, settings.cleanup_interval_seconds),
        "purge-old-recordings": entry(PURGE_RECORDINGS_TASK, settings.cleanup_interval_seconds),
        "health-check": entry(HEALTH_CHECK_TASK, settings.health_check_interval_seconds),
        "practice-reminders": entry(REMINDERS_TASK, REMINDERS_EVERY_SECONDS),
    }


class VocalbornCelery(Celery):
    """A Celery app that reads our settings when it is first used, not when it is imported.

    Importing ``vocalborn.main`` (or this module) therefore needs no configuration at all;
    publishing, inspecting or running a worker reads the settings of that moment.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__("vocalborn", set_as_current=True)
        self._explicit_settings = settings

    def on_configure(self) -> None:  # Celery calls a plain method here too
        # Celery calls this once, right before it builds ``conf`` on first access.
        settings = self._explicit_settings or get_settings()
        config = celery_config(settings)
        if settings.redis_sentinels:
            # Celery prefers the CELERY_BROKER_URL and CELERY_RESULT_BACKEND variables to the
            # configuration, and with Sentinel they hold the `redis://` URL that names only the
            # database and password. The read/write URLs and the backend given to the app come
            # before those variables, so every connection takes the `sentinel://` ones.
            config["broker_read_url"] = config["broker_write_url"] = config["broker_url"]
            use_safe_sentinel_transport()  # kombu's, with a close that survives a failover
            self.backend_cls = config["result_backend"]
        self.config_from_object(config)


def create_celery_app(settings: Settings | None = None) -> Celery:
    return VocalbornCelery(settings)


celery_app = create_celery_app()
app = celery_app  # `celery -A vocalborn.celery_app` finds it
