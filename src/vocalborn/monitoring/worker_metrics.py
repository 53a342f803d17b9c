"""Worker metrics that survive prefork: counted where they happen, served by the main process.

A Celery prefork worker runs tasks in pool children that come and go (max_tasks_per_child, a
killed child). So every process writes its counters and histograms to its own memory-mapped file
in one directory (prometheus_client's multiprocess mode), and a small HTTP endpoint in the main
process adds them up at scrape time. Nothing is counted twice: a task run is counted by the one
process that ran it, and only the main process counts a run it had to give up (the child died
or hit the hard time limit), which the child could not report.

The directory is chosen, set in ``PROMETHEUS_MULTIPROC_DIR`` and emptied at ``worker_init``, in
the main process before the pool forks, and before anything here imports prometheus_client.
Gauges that describe the worker as a whole (active tasks, consumer up) are read live from the
main process at scrape time instead of being written to files, so a killed child cannot leave a
stale value behind.

Importing this module only connects signal receivers; they do nothing outside a worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import signals

from vocalborn.celery_app import ANALYZE_TASK, REAP_TASK, REPUBLISH_TASK
from vocalborn.config import Settings, get_settings
from vocalborn.monitoring import catalog
from vocalborn.monitoring.queue_wait import queue_wait_seconds
from vocalborn.security.metrics_auth import start_metrics_server
from vocalborn.supervision import alive

log = logging.getLogger(__name__)


# What an analysis run returned (runner.Outcome values) -> the status label.
OUTCOME_STATUS = {
    "succeeded": "success",
    "failed": "failure",
    "retry_scheduled": "retry",
    "cancelled": "cancelled",
    "skipped": "skipped",
}
OUTCOME_ERROR_TYPE = {"failed": "permanent", "retry_scheduled": "transient"}
ENV = "PROMETHEUS_MULTIPROC_DIR"


# --------------------------------------------------------------------------------------------
# the directory
# --------------------------------------------------------------------------------------------
def prepare_multiprocess_dir(settings: Settings) -> Path:
    """Set PROMETHEUS_MULTIPROC_DIR for this worker and its future pool children, and empty it.

    An operator's own PROMETHEUS_MULTIPROC_DIR is respected (only its ``*.db`` files are removed).
    Otherwise: ``DATA_DIR/metrics/worker-<host>-<pid>``; directories of dead workers of this host
    are removed, so restarts do not pile them up.
    """
    given = os.environ.get(ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink(missing_ok=True)
        return path
    host = socket.gethostname().replace("/", "_")
    root = settings.data_dir.resolve() / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    prefix = f"worker-{host}-"
    for old in root.glob(f"{prefix}*"):
        pid = old.name.removeprefix(prefix)
        if pid.isdigit() and not alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = root / f"{prefix}{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[ENV] = str(path)
    return path


def _use_multiprocess_values() -> None:
    """prometheus_client picks its value store when first imported. If something imported it
    before worker_init (it should not have), switch the store now, before any metric exists."""
    values: Any = sys.modules.get("prometheus_client.values")
    if values is not None and values.ValueClass.__name__ != "MmapedValue":
        log.warning("prometheus_client was imported before the worker set %s; switching it to multiprocess", ENV)
        values.ValueClass = values.MultiProcessValue()


# --------------------------------------------------------------------------------------------
# the metrics
# --------------------------------------------------------------------------------------------
class WorkerMetrics:
    def __init__(self, path: Path, hostname: str, owned: bool = False) -> None:
        from prometheus_client import Counter, Histogram

        def spec(name: str) -> catalog.MetricSpec:
            return catalog.BY_NAME[name]

        def counter(name: str) -> Any:
            s = spec(name)
            return Counter(s.base_name, s.help, s.labels, registry=None)

        def histogram(name: str, buckets: tuple[float, ...]) -> Any:
            s = spec(name)
            return Histogram(s.base_name, s.help, s.labels, buckets=buckets, registry=None)

        self.path = path
        self.owned = owned
        self.hostname = hostname
        self.consumer: Any = None
        self.server: Any = None
        self.tasks = counter("celery_tasks_total")
        self.errors = counter("celery_task_errors_total")
        self.reaped = counter("vocalborn_reaped_tasks_total")
        self.republished = counter("vocalborn_republished_tasks_total")
        self.duration = histogram("celery_task_duration_seconds", catalog.DURATION_BUCKETS)
        self.queue_wait = histogram("celery_task_queue_wait_seconds", catalog.QUEUE_WAIT_BUCKETS)
        # Series that exist from the start (at 0), so increase() sees their first event.
        for status in catalog.TASK_STATUSES:
            self.tasks.labels(task_name=ANALYZE_TASK, status=status)
        for error_type in OUTCOME_ERROR_TYPE.values():
            self.errors.labels(task_name=ANALYZE_TASK, error_type=error_type)
        for action in ("requeued", "failed"):
            self.reaped.labels(action=action)
        self.duration.labels(task_name=ANALYZE_TASK)
        self.queue_wait.labels(task_name=ANALYZE_TASK)
        # Runs this process is executing: task id -> start time (perf_counter).
        self.running: dict[str, float] = {}

    # --- the endpoint, in the main process ---------------------------------------------------
    def serve(self, host: str, port: int) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.path))
        registry.register(_LiveWorkerCollector(self))
        try:
            self.server, _thread = start_metrics_server(port, host, registry, get_settings().effective_metrics_token())
        except OSError as exc:
            log.warning("worker metrics endpoint not started on %s:%s: %s (set WORKER_METRICS_PORT)", host, port, exc)
            _write_status(f"{host}:{port}: {exc}")
            return
        bound = self.server.server_port if self.server is not None else port
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        log.info("worker metrics on http://%s:%s/metrics", shown, bound)
        _write_status(f"http://{shown}:{bound}/metrics")

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.owned:  # our own directory under DATA_DIR; an operator's is left alone
            shutil.rmtree(self.path, ignore_errors=True)

    # --- one run -----------------------------------------------------------------------------
    def started(self, task_id: str, task_name: str, request: Any) -> None:
        self.running[task_id] = time.perf_counter()
        self.tasks.labels(task_name=task_name, status="started").inc()
        wait = queue_wait_seconds(request)
        if wait is not None:
            self.queue_wait.labels(task_name=task_name).observe(wait)

    def finished(self, task_id: str, task_name: str, retval: Any, state: str | None) -> None:
        began = self.running.pop(task_id, None)
        error_type: str | None = None
        if state == "SUCCESS":
            if task_name == ANALYZE_TASK and retval in OUTCOME_STATUS:
                status = OUTCOME_STATUS[retval]
                error_type = OUTCOME_ERROR_TYPE.get(retval)
            else:
                status = "success"
        elif state == "FAILURE":
            # A recorded permanent failure of an analysis is raised as AnalysisFailed on purpose.
            expected = type(retval).__name__ == "AnalysisFailed"
            status, error_type = "failure", "permanent" if expected else type(retval).__name__
        elif state == "RETRY":
            status, error_type = "retry", type(getattr(retval, "exc", None) or retval).__name__
        else:
            status = (state or "unknown").lower()
        self.tasks.labels(task_name=task_name, status=status).inc()
        if error_type:
            self.errors.labels(task_name=task_name, error_type=error_type).inc()
        if began is not None and status != "skipped":
            self.duration.labels(task_name=task_name).observe(time.perf_counter() - began)
        if state == "SUCCESS":
            self._count_maintenance(task_name, retval)

    def lost(self, task_id: str, task_name: str, exception: BaseException | None) -> None:
        """A failure the main process saw for a run the child never finished."""
        from billiard.exceptions import WorkerLostError
        from celery.exceptions import TimeLimitExceeded

        status = "lost" if isinstance(exception, (WorkerLostError, TimeLimitExceeded)) else "failure"
        self.tasks.labels(task_name=task_name, status=status).inc()
        self.errors.labels(task_name=task_name, error_type=type(exception).__name__).inc()

    def _count_maintenance(self, task_name: str, retval: Any) -> None:
        if task_name == REAP_TASK and isinstance(retval, dict):
            for action in ("requeued", "failed"):
                if retval.get(action):
                    self.reaped.labels(action=action).inc(int(retval[action]))
        elif task_name == REPUBLISH_TASK and isinstance(retval, int) and retval > 0:
            self.republished.inc(retval)

    # --- live values, read in the main process -----------------------------------------------
    def consumer_up(self) -> bool:
        consumer = self.consumer
        if consumer is None:
            return False
        try:
            from celery import bootsteps

            if consumer.blueprint is None or consumer.blueprint.state != bootsteps.RUN:
                return False
            connection = consumer.connection
            return bool(connection is not None and connection.connected)
        except Exception:
            return False


class _LiveWorkerCollector:
    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from celery.worker import state
        from prometheus_client.core import GaugeMetricFamily

        active = catalog.BY_NAME["celery_active_tasks"]
        yield GaugeMetricFamily(active.name, active.help, value=len(state.active_requests))
        up = catalog.BY_NAME["celery_worker_up"]
        family = GaugeMetricFamily(up.name, up.help, labels=up.labels)
        family.add_metric([self.metrics.hostname], 1.0 if self.metrics.consumer_up() else 0.0)
        yield family


_metrics: WorkerMetrics | None = None


def _write_status(text: str) -> None:
    """Tell `vocalborn up` what was really bound (it names the file in the environment)."""
    path = os.environ.get("VOCALBORN_WORKER_METRICS_STATUS_FILE")
    if path:
        with contextlib.suppress(OSError):
            Path(path).write_text(text)


def current() -> WorkerMetrics | None:
    return _metrics


# --------------------------------------------------------------------------------------------
# signal receivers (no-ops until worker_init installed the metrics)
# --------------------------------------------------------------------------------------------
@signals.worker_init.connect(weak=False, dispatch_uid="vocalborn-metrics-init")
def _install(sender: Any = None, **_: Any) -> None:
    global _metrics
    settings = get_settings()
    if _metrics is not None or not settings.prometheus_enabled or settings.worker_metrics_port <= 0:
        return
    owned = ENV not in os.environ
    path = prepare_multiprocess_dir(settings)
    _use_multiprocess_values()
    _metrics = WorkerMetrics(path, str(getattr(sender, "hostname", None) or socket.gethostname()), owned)


@signals.worker_ready.connect(weak=False, dispatch_uid="vocalborn-metrics-ready")
def _serve(sender: Any = None, **_: Any) -> None:
    if _metrics is None:
        return
    _metrics.consumer = sender
    settings = get_settings()
    _metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)


@signals.worker_shutdown.connect(weak=False, dispatch_uid="vocalborn-metrics-shutdown")
def _shutdown(**_: Any) -> None:
    if _metrics is not None:
        _metrics.close()


@signals.task_prerun.connect(weak=False, dispatch_uid="vocalborn-metrics-prerun")
def _prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if _metrics is None or task_id is None or task is None:
        return
    with _never_fail("prerun"):
        _metrics.started(task_id, task.name, task.request)


@signals.task_postrun.connect(weak=False, dispatch_uid="vocalborn-metrics-postrun")
def _postrun(
    task_id: str | None = None, task: Any = None, retval: Any = None, state: str | None = None, **_: Any
) -> None:
    if _metrics is None or task_id is None or task is None:
        return
    with _never_fail("postrun"):
        _metrics.finished(task_id, task.name, retval, state)


@signals.task_failure.connect(weak=False, dispatch_uid="vocalborn-metrics-failure")
def _failure(sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any) -> None:
    # In the process that ran the task, postrun counts the failure. Only a failure the main
    # process reports for a run it cannot see finish (worker lost, hard time limit) counts here.
    if _metrics is None or task_id is None or task_id in _metrics.running:
        return
    with _never_fail("failure"):
        _metrics.lost(task_id, getattr(sender, "name", "unknown"), exception)


@contextlib.contextmanager
def _never_fail(where: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # metrics must never break a task
        log.warning("worker metrics (%s) failed: %s", where, exc)
