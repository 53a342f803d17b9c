"""Helpers for integration tests: real worker processes, an API client, recordings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

SENTENCE = "今天天氣很好，我們去公園散步。"

# Markers of slow tests (pyproject.toml registers them). The fast loop deselects them:
#   uv run pytest -m "not worker and not broker and not browser and not faults"
SLOW_MARKERS = frozenset({"worker", "broker", "browser", "faults"})
# The markers of the test being set up, kept up to date by the root conftest.
current_test_markers: set[str] = set()


def require_slow_marker(what: str) -> None:
    """Fail a test that starts real processes without saying so with a marker."""
    if not current_test_markers & SLOW_MARKERS:
        raise AssertionError(
            f"this test starts {what}: mark it (pytest.mark.worker, broker, browser or faults) "
            "so that the fast loop leaves it out"
        )


@lru_cache(maxsize=32)
def recording(text: str = SENTENCE, voice: str = "Female1", fmt: str = "wav", language: str = "zh") -> bytes:
    from vocalborn.analysis.synth import synthesize

    return synthesize(text, language, voice, fmt=fmt)


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def stop_process_group(proc: subprocess.Popen[bytes] | None, log: Any, timeout: float) -> None:
    """SIGTERM, a grace period, then SIGKILL to the whole group (main process and its children)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    log.close()


def redis_of(env: dict[str, str]) -> Any:
    """A client of the Redis that ``env`` names (REDIS_URL, through REDIS_SENTINELS when set)."""
    from vocalborn.config import Settings
    from vocalborn.redis_connect import client

    chosen = Settings(
        redis_sentinels=env.get("REDIS_SENTINELS") or None,
        redis_sentinel_master=env.get("REDIS_SENTINEL_MASTER") or "mymaster",
    )
    return client(env["REDIS_URL"], settings=chosen)


class WorkerProcess:
    """A real `vocalborn worker` (Celery prefork) in its own process group."""

    def __init__(
        self,
        name: str,
        log_dir: Path,
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        module: str = "vocalborn.cli",  # tests.faults.drill: the same CLI with the drill engine
    ) -> None:
        self.name = name
        self.concurrency = concurrency
        self.extra_env = env or {}
        self.module = module
        self.log_path = log_dir / f"worker-{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        require_slow_marker(f"a worker process ({self.name})")

        env = dict(os.environ, **self.extra_env)
        # the worker announces itself in the Redis it was given, which may not be the suite's
        client = redis_of(env)
        pattern = f"{env['REDIS_KEY_PREFIX']}workers:{self.name}@*"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                self.module,
                "worker",
                "--hostname",
                f"{self.name}@%h",
                "--concurrency",
                str(self.concurrency),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker {self.name} exited: {self.log()[-3000:]}")
            return any(True for _ in client.scan_iter(match=pattern))

        try:
            wait_until(ready, timeout, 0.2, f"worker {self.name} to come online")
        except BaseException:
            self.stop(timeout=5)  # never leave a half-started worker behind
            raise
        finally:
            client.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker: main process and pool children."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self, timeout: float = 30) -> None:
        stop_process_group(self.proc, self._log, timeout)


class Api:
    """The API in-process (real database, real broker), with small helpers for the flow."""

    def __init__(self, client: TestClient | httpx.Client) -> None:
        self.client = client

    def register(
        self, role: str = "learner", email: str | None = None, password: str = "correct-horse-1"
    ) -> dict[str, Any]:
        email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        r = self.client.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "name": role.title(), "role": role}
        )
        assert r.status_code == 202, r.text  # the same answer for new and taken emails
        token = self.login(email, password)
        headers = {"Authorization": f"Bearer {token}"}
        me = self.client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        return {"email": email, "token": token, "user": me.json(), "headers": headers}

    def admin(self) -> dict[str, Any]:
        """An admin account (made in the database, as `vocalborn users create` does), one per Api."""
        if getattr(self, "_admin", None) is None:
            from vocalborn.auth.models import Role
            from vocalborn.auth.service import create_user
            from vocalborn.db import open_session

            email, password = f"admin-{uuid.uuid4().hex[:8]}@example.com", "admin-password-1"
            with open_session() as db:
                create_user(db, email=email, password=password, name="Admin", role=Role.ADMIN)
            token = self.login(email, password)
            self._admin = {"email": email, "token": token, "headers": {"Authorization": f"Bearer {token}"}}
        return dict(self._admin)

    def login(self, email: str, password: str) -> str:
        r = self.client.post("/api/v1/auth/login", data={"username": email, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    def sentence(
        self,
        therapist: dict[str, Any],
        audio: bytes,
        text: str = SENTENCE,
        filename: str = "ref.wav",
        shared: bool = True,
    ) -> dict[str, Any]:
        """A sentence; shared with every learner by default (the tests' learners are not linked)."""
        r = self.client.post(
            "/api/v1/practice/sentences",
            headers=therapist["headers"],
            data={"text": text, "shared": "true" if shared else "false"},
            files={"reference_audio": (filename, audio)},
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def session(self, learner: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post("/api/v1/practice/sessions", headers=learner["headers"], json={"title": "test"})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def record(
        self, learner: dict[str, Any], session_id: str, sentence_id: str, audio: bytes, filename: str = "try.wav"
    ) -> httpx.Response:
        return self.client.post(
            f"/api/v1/practice/sessions/{session_id}/records",
            headers=learner["headers"],
            data={"sentence_id": sentence_id},
            files={"audio": (filename, audio)},
        )

    def submit(self, learner: dict[str, Any], record_id: str, **parameters: Any) -> httpx.Response:
        return self.client.post(
            "/api/v1/tasks/analysis/submit",
            headers=learner["headers"],
            json={"practice_record_id": record_id, "parameters": parameters},
        )

    def status(self, user: dict[str, Any], task_id: str) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/tasks/analysis/{task_id}/status", headers=user["headers"])
        assert r.status_code == 200, r.text
        return dict(r.json())

    def events(self, user: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
        r = self.client.get(f"/api/v1/tasks/analysis/{task_id}/events", headers=user["headers"])
        assert r.status_code == 200, r.text
        return list(r.json())

    def wait_for(self, user: dict[str, Any], task_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            s = self.status(user, task_id)
            return s if s["status"] in statuses else None

        return dict(wait_until(check, timeout, 0.2, f"task {task_id} to reach {statuses}"))

    def ready_record(
        self, therapist: dict[str, Any], learner: dict[str, Any], attempt: bytes | None = None
    ) -> dict[str, Any]:
        """A sentence with a reference, a session, and one recorded attempt."""
        sentence = self.sentence(therapist, recording())
        session = self.session(learner)
        r = self.record(
            learner,
            session["practice_session_id"],
            sentence["sentence_id"],
            attempt or recording(voice="Male1", fmt="mp3"),
            "try.mp3",
        )
        assert r.status_code == 201, r.text
        return {"sentence": sentence, "session": session, "record": r.json()}


class ServiceProcess:
    """Any other `vocalborn` process (api, beat) in its own process group, stopped by PID."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.extra_env = env or {}
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool] | None = None, timeout: float = 60) -> ServiceProcess:
        require_slow_marker(f"a {self.name} process")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vocalborn.cli", *self.args],
            env=dict(os.environ, **self.extra_env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if ready is not None:

            def check() -> bool:
                if self.proc is not None and self.proc.poll() is not None:
                    raise AssertionError(f"{self.name} exited: {self.log()[-3000:]}")
                return ready()

            try:
                wait_until(check, timeout, 0.2, f"{self.name} to be ready")
            except BaseException:
                self.stop(timeout=5)
                raise
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        stop_process_group(self.proc, self._log, timeout)


def api_process(port: int, log_dir: Path, env: dict[str, str] | None = None) -> ServiceProcess:
    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return ServiceProcess(f"api-{port}", ["api", "--port", str(port)], log_dir, env).start(ready)
