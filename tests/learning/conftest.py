"""Two stacks for the practice product's round trip: the suite's own database (PostgreSQL
when it is reachable) in-process, and the embedded default (SQLite) in real API and worker
processes. Both with a real Celery worker."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, api_process
from vocalborn.embedded import free_port
from vocalborn.main import app


@dataclass
class Stack:
    kind: str
    api: Api
    env: dict[str, str]
    url: str | None = None  # an API process other processes (the CLI) can reach

    def admin(self) -> dict[str, Any]:
        """An admin made the only way admins are made: the CLI."""
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        done = subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "users", "create", "--email", email, "--name", "Ops"]
            + ["--role", "admin"],
            env=dict(os.environ, VOCALBORN_PASSWORD="admin-password-1", **self.env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        token = self.api.login(email, "admin-password-1")
        return {"email": email, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture(scope="module", params=["suite-database", "embedded-sqlite"])
def stack(request: pytest.FixtureRequest, migrated: ServicesUnderTest) -> Iterator[Stack]:
    if request.param == "suite-database":
        from fastapi.testclient import TestClient

        worker = WorkerProcess("learning", migrated.data_dir).start()
        try:
            with TestClient(app) as client:
                yield Stack(migrated.database_kind, Api(client), {})
        finally:
            worker.stop()
        return

    run = uuid.uuid4().hex[:6]
    data = migrated.data_dir / f"sqlite-{run}"
    data.mkdir()
    env = {
        "DATABASE_URL": f"sqlite:///{data / 'vocalborn.sqlite3'}",
        "DATA_DIR": str(data),
        "TASK_QUEUE": f"ai_analysis_sqlite_{run}_{migrated.run_id}",
        "MAINTENANCE_QUEUE": f"maintenance_sqlite_{run}_{migrated.run_id}",
        "REDIS_KEY_PREFIX": f"vbtest-{migrated.run_id}-sqlite-{run}:",
    }
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "migrate"],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    port = free_port()
    proc = api_process(port, migrated.data_dir, env)
    worker = WorkerProcess("learning-sqlite", migrated.data_dir, env=env).start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        yield Stack("sqlite", Api(client), env, f"http://127.0.0.1:{port}")
    finally:
        client.close()
        worker.stop()
        proc.stop()
