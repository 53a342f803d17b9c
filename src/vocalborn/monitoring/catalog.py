"""Every Prometheus metric VocalBorn exposes: name, type, labels, meaning and who serves it.

The metric objects in ``monitoring.http_metrics``, ``monitoring.api`` and
``monitoring.worker_metrics`` are built from this table, the Grafana dashboard and the alert rules
may only name metrics listed here (a test checks it), and ``docs/OPERATIONS.md`` documents each one.
Imports nothing (not even prometheus_client), so the worker can read it before it decides how
prometheus_client stores values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "gauge", "histogram"]
Where = Literal["api", "worker"]

# Seconds. An analysis takes a few seconds on a laptop; the soft time limit is 300 s.
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# Seconds from publish (or from the ETA of a delayed retry) to a worker starting the task.
QUEUE_WAIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # as exposed; counters end in _total
    kind: Kind
    labels: tuple[str, ...]
    help: str
    where: Where

    @property
    def base_name(self) -> str:
        """The name prometheus_client wants (it appends ``_total`` to counters itself)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def exposed_names(self) -> set[str]:
        """Every sample name this metric produces in the text format."""
        if self.kind == "histogram":
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        return {self.name}


TASK_STATUSES = ("started", "success", "failure", "retry", "cancelled", "skipped", "lost")

METRICS: tuple[MetricSpec, ...] = (
    # --- worker: counted where it happens (pool children write their own files) ----------------
    MetricSpec(
        "celery_tasks_total",
        "counter",
        ("task_name", "status"),
        "Task runs by outcome: started when a run begins; then success, failure, retry (a retry was "
        "scheduled), cancelled, skipped (duplicate or early delivery, nothing done) or lost (the pool "
        "child died or hit the hard time limit).",
        "worker",
    ),
    MetricSpec(
        "celery_task_duration_seconds",
        "histogram",
        ("task_name",),
        "Wall time of one run, from prerun to postrun, for every run that did work (not skipped ones).",
        "worker",
    ),
    MetricSpec(
        "celery_task_errors_total",
        "counter",
        ("task_name", "error_type"),
        "Runs that ended in an error. error_type: permanent (the analysis failed for good), transient "
        "(a retry was scheduled), or the exception class for a task that raised or was lost.",
        "worker",
    ),
    MetricSpec(
        "celery_task_queue_wait_seconds",
        "histogram",
        ("task_name",),
        "Seconds from publish (or a delayed retry's ETA) to a worker starting the task.",
        "worker",
    ),
    MetricSpec(
        "celery_active_tasks",
        "gauge",
        (),
        "Tasks this worker is running now (read from the worker's main process at scrape time).",
        "worker",
    ),
    MetricSpec(
        "celery_worker_up",
        "gauge",
        ("hostname",),
        "1 while this worker's consumer is running and connected to the broker, else 0.",
        "worker",
    ),
    MetricSpec(
        "vocalborn_reaped_tasks_total",
        "counter",
        ("action",),
        "Stalled tasks the reaper handled: action requeued or failed (their worker stopped heartbeating).",
        "worker",
    ),
    MetricSpec(
        "vocalborn_republished_tasks_total",
        "counter",
        (),
        "Stranded tasks the republisher published again (the message never reached, or was lost by, the broker).",
        "worker",
    ),
    # --- api: HTTP ----------------------------------------------------------------------------
    MetricSpec(
        "http_requests_total",
        "counter",
        ("method", "route", "status"),
        "HTTP requests answered, by method, route template (unmatched for no route) and status code.",
        "api",
    ),
    MetricSpec(
        "http_request_duration_seconds",
        "histogram",
        ("method", "route"),
        "HTTP request latency by method and route template.",
        "api",
    ),
    # --- api: computed at scrape time ----------------------------------------------------------
    MetricSpec(
        "celery_queue_size",
        "gauge",
        ("queue_name",),
        "Messages waiting in the broker queue (delayed retries held by a worker are not counted).",
        "api",
    ),
    MetricSpec(
        "vocalborn_tasks",
        "gauge",
        ("status",),
        "Analysis tasks in the database, by status.",
        "api",
    ),
    MetricSpec(
        "vocalborn_tasks_stalled",
        "gauge",
        (),
        "Tasks processing whose heartbeat is older than TASK_LEASE_SECONDS (the reaper should requeue them).",
        "api",
    ),
    MetricSpec(
        "vocalborn_oldest_pending_task_age_seconds",
        "gauge",
        (),
        "Seconds the oldest pending task has waited since it was (re)queued; 0 when none is pending.",
        "api",
    ),
    MetricSpec(
        "vocalborn_oldest_processing_task_age_seconds",
        "gauge",
        (),
        "Seconds since the oldest running task's current attempt started; 0 when none is running.",
        "api",
    ),
    MetricSpec(
        "vocalborn_workers_online",
        "gauge",
        (),
        "Workers whose main process refreshed its registry key in Redis within the last 30 s.",
        "api",
    ),
    MetricSpec(
        "vocalborn_worker_slots",
        "gauge",
        (),
        "Pool processes of the workers online (how many analyses can run at once).",
        "api",
    ),
    MetricSpec(
        "vocalborn_health_check_timestamp_seconds",
        "gauge",
        (),
        "Unix time of the last Beat health check a worker completed: proves beat runs and a worker consumes.",
        "api",
    ),
    MetricSpec(
        "vocalborn_dependency_up",
        "gauge",
        ("dependency",),
        "1 when the dependency (database, broker, redis, nats) answered this scrape, else 0.",
        "api",
    ),
    MetricSpec(
        "vocalborn_websocket_connections",
        "gauge",
        (),
        "Authorised WebSocket progress streams open in this API process.",
        "api",
    ),
    # --- integration events (docs/EVENTS.md, "Metrics"): read at scrape time --------------------
    MetricSpec(
        "vocalborn_outbox_unsent",
        "gauge",
        (),
        "Outbox rows the relay has not published yet.",
        "api",
    ),
    MetricSpec(
        "vocalborn_outbox_oldest_unsent_age_seconds",
        "gauge",
        (),
        "Age of the oldest unpublished outbox row (0 when none): the relay's lag.",
        "api",
    ),
    MetricSpec(
        "vocalborn_events_stream_messages",
        "gauge",
        (),
        "Messages the JetStream stream VOCALBORN holds.",
        "api",
    ),
    MetricSpec(
        "vocalborn_events_stream_bytes",
        "gauge",
        (),
        "Bytes the JetStream stream VOCALBORN holds (its limit: EVENTS_MAX_BYTES).",
        "api",
    ),
    MetricSpec(
        "vocalborn_events_consumer_pending",
        "gauge",
        ("consumer",),
        "Messages of the stream a durable consumer has not been delivered yet.",
        "api",
    ),
    MetricSpec(
        "vocalborn_events_consumer_ack_pending",
        "gauge",
        ("consumer",),
        "Messages delivered to a durable consumer and not acknowledged yet.",
        "api",
    ),
    MetricSpec(
        "vocalborn_events_consumer_redelivered",
        "gauge",
        ("consumer",),
        "Messages a durable consumer has now that were delivered more than once.",
        "api",
    ),
    MetricSpec(
        "vocalborn_event_dead_letters",
        "gauge",
        ("consumer",),
        "Dead letters not replayed yet, per consumer.",
        "api",
    ),
    MetricSpec(
        "vocalborn_webhook_deliveries",
        "gauge",
        ("status",),
        "Webhook deliveries by status: pending, failing (pending after a failed attempt), dead.",
        "api",
    ),
    MetricSpec(
        "vocalborn_webhook_endpoints_disabled",
        "gauge",
        (),
        "Webhook endpoints that are disabled (automatically after repeated failure, or by an admin).",
        "api",
    ),
)

BY_NAME: dict[str, MetricSpec] = {m.name: m for m in METRICS}


def exposed_names(where: Where | None = None) -> set[str]:
    """All sample names (with _bucket/_sum/_count) of the metrics served by ``where``."""
    out: set[str] = set()
    for m in METRICS:
        if where is None or m.where == where:
            out |= m.exposed_names
    return out
