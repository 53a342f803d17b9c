"""Flower sees our workers and tasks, behind basic auth; it refuses to start unprotected in production."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.services import ServicesUnderTest
from tests.support import Api, ServiceProcess, WorkerProcess, wait_until
from vocalborn.embedded import free_port

pytestmark = pytest.mark.worker

USER, PASSWORD = "ops", f"pw-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def flower_worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess(f"flower{uuid.uuid4().hex[:6]}", migrated.data_dir, env={"WORKER_METRICS_PORT": "0"}).start()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def flower(migrated: ServicesUnderTest) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    proc = ServiceProcess(
        "flower", ["flower", "--port", str(port)], migrated.data_dir, env={"FLOWER_BASIC_AUTH": f"{USER}:{PASSWORD}"}
    ).start(ready, timeout=60)
    yield base
    proc.stop()


def test_flower_lists_our_worker_and_tasks_to_its_user_only(
    api: Api, flower_worker: WorkerProcess, flower: str, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    auth = (USER, PASSWORD)

    def worker_listed() -> bool:
        r = httpx.get(f"{flower}/api/workers", params={"refresh": "1"}, auth=auth, timeout=10)
        return r.status_code == 200 and any(name.startswith(f"{flower_worker.name}@") for name in r.json())

    wait_until(worker_listed, 60, 0.5, "Flower to list the worker")

    task_ids = []
    for _ in range(3):
        record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        task_ids.append(api.submit(learner, record_id).json()["task_id"])
    for task_id in task_ids:
        assert api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)["status"] == "success"

    def tasks_listed() -> dict[str, Any] | None:
        r = httpx.get(f"{flower}/api/tasks", auth=auth, timeout=10)
        seen = r.json() if r.status_code == 200 else {}
        done = all(seen.get(t, {}).get("state") == "SUCCESS" for t in task_ids)
        return seen if done else None

    seen = wait_until(tasks_listed, 60, 0.5, "Flower to show the tasks as succeeded")
    for task_id in task_ids:
        assert seen[task_id]["name"] == "vocalborn.analyze_audio"
        assert seen[task_id]["worker"].startswith(f"{flower_worker.name}@")

    # Flower 2.2 serves /metrics (task counts, worker host names) without auth; ours asks for it
    for path in ("/api/workers", "/api/tasks", f"/api/task/info/{task_ids[0]}", "/", "/metrics"):
        assert httpx.get(f"{flower}{path}", timeout=10).status_code == 401, path
        assert httpx.get(f"{flower}{path}", auth=(USER, "wrong"), timeout=10).status_code == 401, path
    metrics = httpx.get(f"{flower}/metrics", auth=auth, timeout=10)
    assert metrics.status_code == 200 and "flower_events_total" in metrics.text
    # what Flower keeps of our tasks' arguments: the task id, nothing about the learner
    for task_id in task_ids:
        info = httpx.get(f"{flower}/api/task/info/{task_id}", auth=auth, timeout=10).json()
        assert info["args"] in (f"['{task_id}']", f"('{task_id}',)"), info["args"]
        assert learner["email"] not in str(info) and learner["user"]["user_id"] not in str(info)


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (None, "FLOWER_BASIC_AUTH"),
        ("admin:vocalborn2024", "example password"),
        ("admin:change-me", "example password"),
    ],
)
def test_flower_refuses_to_start_in_production_without_real_credentials(
    migrated: ServicesUnderTest, credentials: str | None, message: str
) -> None:
    import base64
    import secrets

    env = dict(
        os.environ,
        ENVIRONMENT="production",
        SECRET_KEY=secrets.token_hex(32),
        METRICS_TOKEN=secrets.token_hex(32),
        STORAGE_ENCRYPTION_KEYS=f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
    )
    env.pop("FLOWER_BASIC_AUTH", None)
    if credentials is not None:
        env["FLOWER_BASIC_AUTH"] = credentials
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "flower", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
