"""The same scenarios on each broker: Redis (the default) and RabbitMQ.

Each broker kind gets its own API process and worker processes started with that broker's
environment; the suite's PostgreSQL and Redis (results, progress pub/sub, worker registry) stay
the same. RabbitMQ runs in a vhost of this test run's own, deleted at the end. Without a reachable
RabbitMQ the rabbitmq cases skip on a laptop and fail in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from tests.services import ServicesUnderTest, in_ci
from tests.support import Api, ServiceProcess, WorkerProcess, api_process
from vocalborn.embedded import free_port

DEFAULT_RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
BROKERS = ("redis", "rabbitmq")


@dataclass
class RabbitVhost:
    base_url: str
    vhost: str
    created: bool  # by rabbitmqctl; otherwise the default vhost with this run's queue names

    @property
    def url(self) -> str:
        netloc_end = self.base_url.find("/", self.base_url.index("://") + 3)
        head = self.base_url if netloc_end < 0 else self.base_url[:netloc_end]
        return f"{head}/{quote(self.vhost, safe='')}"

    def queues(self) -> dict[str, dict[str, str]]:
        """name -> {type, arguments...} as RabbitMQ reports them (needs rabbitmqctl)."""
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", self.vhost, "name", "type", "messages"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        rows = [line.split("\t") for line in out.splitlines()[1:] if line.strip()]
        return {r[0]: {"type": r[1], "messages": r[2]} for r in rows if len(r) >= 3}


def _rabbitmq_reachable(url: str) -> str | None:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return None
    except Exception as exc:  # kombu raises several kinds
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def rabbitmq(services: ServicesUnderTest) -> Iterator[RabbitVhost]:
    base = os.environ.get("TEST_RABBITMQ_URL", DEFAULT_RABBITMQ)
    problem = _rabbitmq_reachable(base)
    if problem is not None:
        message = f"RabbitMQ at {base.split('@')[-1]} is unreachable ({problem}); start it: rabbitmq-server -detached"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    vhost = f"vbtest-{services.run_id}"
    ctl = shutil.which("rabbitmqctl")
    created = False
    if ctl:
        try:
            subprocess.run([ctl, "-q", "add_vhost", vhost], check=True, capture_output=True, timeout=30)
            user = base.split("://", 1)[1].split(":", 1)[0] or "guest"
            subprocess.run(
                [ctl, "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                check=True,
                capture_output=True,
                timeout=30,
            )
            created = True
        except (subprocess.SubprocessError, OSError):
            created = False
    if not created:
        vhost = unquote(base.split("://", 1)[1].partition("/")[2]) or "/"
    rv = RabbitVhost(base, vhost, created)
    yield rv
    if created:
        subprocess.run([ctl or "rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
    else:
        _delete_queues(rv.url, services)


def _delete_queues(url: str, services: ServicesUnderTest) -> None:
    from kombu import Connection, Queue

    env = services.env
    with Connection(url, connect_timeout=3) as conn:
        channel = conn.channel()
        for name in (env["TASK_QUEUE"], env["MAINTENANCE_QUEUE"]):
            try:
                Queue(name, channel=channel).delete()
            except Exception:
                channel = conn.channel()


def broker_env(kind: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment that points a process at this broker kind (empty for the suite's Redis)."""
    if kind == "redis":
        return {}
    rabbit: RabbitVhost = request.getfixturevalue("rabbitmq")
    # Redis keeps the result backend, the progress pub/sub and the worker registry.
    return {"CELERY_BROKER_URL": rabbit.url}


@dataclass
class Stack:
    """An API process and helpers to start workers and beat, all on one broker kind."""

    kind: str
    env: dict[str, str]
    log_dir: Path
    api: Api
    processes: list[Any] = field(default_factory=list)

    def worker(self, name: str, concurrency: int = 1, **env: str) -> WorkerProcess:
        w = WorkerProcess(f"{name}-{uuid.uuid4().hex[:4]}", self.log_dir, concurrency, {**self.env, **env})
        self.processes.append(w)
        return w.start()

    def beat(self, **env: str) -> ServiceProcess:
        b = ServiceProcess(f"beat-{self.kind}", ["beat"], self.log_dir, {**self.env, **env})
        self.processes.append(b)
        return b.start()

    def api_process(self, **env: str) -> ServiceProcess:
        port = free_port()
        p = api_process(port, self.log_dir, {**self.env, **env})
        p.port = port  # type: ignore[attr-defined]
        self.processes.append(p)
        return p

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()


@pytest.fixture(scope="module", params=BROKERS)
def stack(request: pytest.FixtureRequest, migrated: ServicesUnderTest) -> Iterator[Stack]:
    kind = request.param
    env = broker_env(kind, request)
    log_dir = migrated.data_dir / f"broker-{kind}"
    log_dir.mkdir(exist_ok=True)

    port = free_port()
    api_proc = api_process(port, log_dir, env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    s = Stack(kind, env, log_dir, Api(client), [api_proc])
    try:
        yield s
    finally:
        s.stop_all()
        client.close()


@pytest.fixture
def therapist(stack: Stack) -> dict[str, Any]:
    return stack.api.register("therapist")


@pytest.fixture
def learner(stack: Stack) -> dict[str, Any]:
    return stack.api.register("learner")


@pytest.fixture
def workers(stack: Stack) -> Iterator[Stack]:
    """Processes a test starts through ``stack`` (other than the API) are stopped after it."""
    keep = list(stack.processes)
    yield stack
    for proc in reversed(stack.processes):
        if proc not in keep:
            proc.stop()
    stack.processes[:] = keep
