"""The API's ``/metrics``: HTTP metrics (monitoring/http_metrics.py), plus numbers read at scrape
time from the places that own them (the database, the broker and NATS through monitoring/sources.py,
the worker registry in Redis, this process's WebSockets).

Reading them at scrape time, rather than keeping counters in the API, means any API process
answers the same numbers, and ``vocalborn_tasks{status}`` is the database's own count.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, or_, select
from sqlmodel import col
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vocalborn.config import Settings, get_settings
from vocalborn.db import open_session
from vocalborn.events.models import EventDeadLetter, EventOutbox
from vocalborn.kit.redis import get_redis
from vocalborn.monitoring import catalog, queue_wait
from vocalborn.monitoring.http_metrics import REGISTRY, HttpMetricsMiddleware
from vocalborn.monitoring.http_metrics import route_template as route_template  # importable from here, as before
from vocalborn.monitoring.sources import jetstream_state, queue_sizes
from vocalborn.security.metrics_auth import token_ok
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import TaskStatus
from vocalborn.tasks.worker import registry
from vocalborn.webhooks.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# read at scrape time
# --------------------------------------------------------------------------------------------
def _gauge(name: str, value: float | None = None) -> GaugeMetricFamily:
    spec = catalog.BY_NAME[name]
    if spec.labels:
        return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, value=value if value is not None else 0.0)


class ScrapeCollector:
    """Each part fails on its own: a down dependency shows as vocalborn_dependency_up 0 and its
    metrics are left out, the rest still answer."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        settings = get_settings()
        up: dict[str, bool] = {}
        yield from self._database(settings, up)
        yield from self._broker(settings, up)
        yield from self._redis(settings, up)
        if up.get("database"):
            yield from self._events_database()
        if settings.nats_url:
            yield from self._nats(settings, up)
        websockets = self._websockets()
        if websockets is not None:
            yield websockets
        family = _gauge("vocalborn_dependency_up")
        for name, ok in up.items():
            family.add_metric([name], 1.0 if ok else 0.0)
        yield family

    def _database(self, settings: Settings, up: dict[str, bool]) -> Iterator[GaugeMetricFamily]:
        task = AIAnalysisTask
        try:
            now = utcnow()
            lease_cutoff = now - timedelta(seconds=settings.task_lease_seconds)
            with open_session() as db:
                counts = dict(db.execute(select(col(task.status), func.count()).group_by(col(task.status))).all())
                stalled = db.execute(
                    select(func.count())
                    .select_from(task)
                    .where(col(task.status) == TaskStatus.PROCESSING.value)
                    .where(
                        or_(col(task.heartbeat_at) < lease_cutoff, col(task.heartbeat_at).is_(None)),
                        col(task.updated_at) < lease_cutoff,
                    )
                ).scalar_one()
                oldest_pending = db.execute(
                    select(func.min(col(task.updated_at))).where(col(task.status) == TaskStatus.PENDING.value)
                ).scalar_one()
                oldest_running = db.execute(
                    select(func.min(col(task.started_at))).where(col(task.status) == TaskStatus.PROCESSING.value)
                ).scalar_one()
        except Exception as exc:
            log.warning("metrics: database unavailable: %s", exc)
            up["database"] = False
            return
        up["database"] = True
        family = _gauge("vocalborn_tasks")
        for status in TaskStatus:
            family.add_metric([status.value], float(counts.get(status.value, 0)))
        yield family
        yield _gauge("vocalborn_tasks_stalled", float(stalled))
        yield _gauge("vocalborn_oldest_pending_task_age_seconds", _age(now, oldest_pending))
        yield _gauge("vocalborn_oldest_processing_task_age_seconds", _age(now, oldest_running))

    def _broker(self, settings: Settings, up: dict[str, bool]) -> Iterator[GaugeMetricFamily]:
        queues = (settings.task_queue, settings.maintenance_queue)
        try:
            sizes = queue_sizes(settings.effective_broker_url, queues)
        except Exception as exc:
            log.warning("metrics: broker unavailable: %s", exc)
            up["broker"] = False
            return
        up["broker"] = True
        family = _gauge("celery_queue_size")
        for name, size in sizes.items():
            family.add_metric([name], float(size))
        yield family

    def _redis(self, settings: Settings, up: dict[str, bool]) -> Iterator[GaugeMetricFamily]:
        try:
            client = get_redis()
            client.ping()
            workers = registry.online_workers()
            health = client.get(f"{settings.redis_key_prefix}health:last")
        except Exception as exc:
            log.warning("metrics: redis unavailable: %s", exc)
            up["redis"] = False
            return
        up["redis"] = True
        yield _gauge("vocalborn_workers_online", float(len(workers)))
        yield _gauge("vocalborn_worker_slots", float(sum(int(w.get("concurrency", 1)) for w in workers)))
        checked_at = _health_timestamp(health)
        if checked_at is not None:
            yield _gauge("vocalborn_health_check_timestamp_seconds", checked_at)

    def _events_database(self) -> Iterator[GaugeMetricFamily]:
        """Outbox lag, dead letters and webhook deliveries (docs/EVENTS.md, "Metrics")."""
        try:
            now = utcnow()
            with open_session() as db:
                unsent, oldest = db.execute(
                    select(func.count(), func.min(col(EventOutbox.occurred_at))).where(
                        col(EventOutbox.sent_at).is_(None)
                    )
                ).one()
                dead = dict(
                    db.execute(
                        select(col(EventDeadLetter.consumer), func.count())
                        .where(col(EventDeadLetter.replayed_at).is_(None))
                        .group_by(col(EventDeadLetter.consumer))
                    ).all()
                )
                hooks = dict(
                    db.execute(
                        select(col(WebhookDelivery.status), func.count())
                        .where(col(WebhookDelivery.status).in_(("pending", "dead")))
                        .group_by(col(WebhookDelivery.status))
                    ).all()
                )
                failing = db.execute(
                    select(func.count()).where(
                        col(WebhookDelivery.status) == "pending", col(WebhookDelivery.attempts) > 0
                    )
                ).scalar_one()
                disabled = db.execute(
                    select(func.count()).select_from(WebhookEndpoint).where(col(WebhookEndpoint.enabled).is_(False))
                ).scalar_one()
        except Exception as exc:
            log.warning("metrics: cannot read the event tables: %s", exc)
            return
        yield _gauge("vocalborn_outbox_unsent", float(unsent))
        yield _gauge("vocalborn_outbox_oldest_unsent_age_seconds", _age(now, oldest))
        family = _gauge("vocalborn_event_dead_letters")
        for consumer, count in sorted(dead.items()):
            family.add_metric([consumer], float(count))
        yield family
        family = _gauge("vocalborn_webhook_deliveries")
        for status, count in (
            ("pending", hooks.get("pending", 0)),
            ("failing", failing),
            ("dead", hooks.get("dead", 0)),
        ):
            family.add_metric([status], float(count))
        yield family
        yield _gauge("vocalborn_webhook_endpoints_disabled", float(disabled))

    def _nats(self, settings: Settings, up: dict[str, bool]) -> Iterator[GaugeMetricFamily]:
        assert settings.nats_url is not None
        try:
            stream, consumers = jetstream_state(settings.nats_url, settings.events_stream)
        except Exception as exc:
            log.warning("metrics: nats unavailable: %s", exc)
            up["nats"] = False
            return
        up["nats"] = True
        if stream is None:  # the relay has not made the stream yet
            return
        yield _gauge("vocalborn_events_stream_messages", float(stream[0]))
        yield _gauge("vocalborn_events_stream_bytes", float(stream[1]))
        pending = _gauge("vocalborn_events_consumer_pending")
        acks = _gauge("vocalborn_events_consumer_ack_pending")
        again = _gauge("vocalborn_events_consumer_redelivered")
        for name, (num_pending, ack_pending, redelivered) in sorted(consumers.items()):
            pending.add_metric([name], float(num_pending))
            acks.add_metric([name], float(ack_pending))
            again.add_metric([name], float(redelivered))
        yield pending
        yield acks
        yield again

    def _websockets(self) -> GaugeMetricFamily | None:
        try:
            count = importlib.import_module("vocalborn.tasks.api.ws").open_socket_count
        except (ImportError, AttributeError):
            return None
        try:
            return _gauge("vocalborn_websocket_connections", float(count()))
        except Exception as exc:
            log.warning("metrics: cannot count websockets: %s", exc)
            return None


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def _health_timestamp(raw: bytes | str | None) -> float | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(json.loads(raw)["timestamp"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


REGISTRY.register(ScrapeCollector())


# --------------------------------------------------------------------------------------------
def render() -> bytes:
    return generate_latest(REGISTRY)


def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format. A plain ``def``: the scrape queries the database in a thread.
    With METRICS_TOKEN set (required in production) or the token `vocalborn up` generated, only for
    ``Authorization: Bearer <token>``."""
    if not token_ok(request.headers.get("authorization")):
        return JSONResponse(
            {"detail": "metrics need 'Authorization: Bearer <METRICS_TOKEN>'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(render(), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Add ``GET /metrics`` and the HTTP metrics middleware (unless PROMETHEUS_ENABLED=false), and
    stamp published tasks with their publish time for the workers' queue-wait histogram."""
    queue_wait.connect()
    if not get_settings().prometheus_enabled:
        return
    app.add_middleware(HttpMetricsMiddleware)
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
