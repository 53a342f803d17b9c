"""`vocalborn up` on the embedded default runs nats-server from the wheel with JetStream under the
data folder, prints it as nats://127.0.0.1:PORT, and its relay publishes what the API writes
(SQLite outbox -> stream VOCALBORN): a link made through the API arrives at a consumer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.events.support import consume
from tests.events.test_schemas import validate
from tests.support import wait_until
from tests.test_readme import SUITE_KEYS
from vocalborn.embedded import free_port

pytestmark = pytest.mark.worker

PASSWORD = "correct-horse-battery-staple-9"


def _account(base: str, role: str) -> dict[str, str]:
    email = f"{role}-{os.urandom(4).hex()}@example.com"
    r = httpx.post(
        f"{base}/api/v1/auth/register",
        json={"email": email, "password": PASSWORD, "name": role.title(), "role": role},
        timeout=30,
    )
    assert r.status_code == 202, r.text
    token = httpx.post(f"{base}/api/v1/auth/login", data={"username": email, "password": PASSWORD}, timeout=30).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    me = httpx.get(f"{base}/api/v1/auth/me", headers=headers, timeout=30).json()
    return {"id": me["user_id"], "token": token, **headers}


def test_up_runs_nats_and_the_relay_publishes_the_apis_events(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SUITE_KEYS and k != "NATS_URL"}
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "vocalborn.cli", "up", "--port", str(port), "--data-dir", str(tmp_path / "var")]
            + ["--no-flower", "--worker-metrics-port", "0", "--concurrency", "1"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"

            def serving() -> bool:
                assert up.poll() is None, log_path.read_text()
                try:
                    return httpx.get(f"{base}/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(serving, 90, 0.3, "vocalborn up to serve")
            found = re.search(r"Events:\s+(nats://127\.0\.0\.1:(\d+))\s+\(bundled nats-server", log_path.read_text())
            assert found, log_path.read_text()
            nats_url = found.group(1)
            assert (tmp_path / "var" / "nats" / "jetstream").is_dir()  # JetStream's files under the data folder

            therapist, learner = _account(base, "therapist"), _account(base, "learner")
            code = httpx.post(
                f"{base}/api/v1/links/invitations", headers={"Authorization": therapist["Authorization"]}, timeout=30
            ).json()["code"]
            r = httpx.post(
                f"{base}/api/v1/links/accept",
                headers={"Authorization": learner["Authorization"]},
                json={"code": code},
                timeout=30,
            )
            assert r.status_code == 200, r.text

            def linked() -> bool:
                got = consume(nats_url, "test-up", set(), timeout=2)
                for body in got.messages:
                    validate(body)  # written by SQLite's path of the relay
                return any(
                    m["type"] == "link.created"
                    and m["subject"] == {"learner_id": learner["id"], "therapist_id": therapist["id"]}
                    for m in got.messages
                )

            wait_until(linked, 30, 0.5, "link.created to arrive from the bundled nats-server")
        finally:
            up.terminate()  # `up` stops its children, the bundled Redis and nats-server
            try:
                up.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, 9)
                up.wait()
    assert up.returncode == 0, log_path.read_text()[-3000:]
    assert not (tmp_path / "var" / "nats" / "port").exists()  # the nats-server was stopped
