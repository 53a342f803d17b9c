"""Regression tests for what a new user tripped over (issue 10, "new-user friction")."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import Api
from tests.test_readme import ROOT, SUITE_KEYS
from vocalborn.analysis.decode import encode_audio


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SUITE_KEYS}
    env.update(extra)
    return env


@pytest.mark.worker  # runs `vocalborn` processes (they refuse before starting anything)
def test_up_with_rabbitmq_and_no_redis_url_refuses_in_one_line_before_the_banner(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "up", "--data-dir", str(tmp_path), "--no-flower"],
        env=_clean_env(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "is starting" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "REDIS_URL" in lines[0], done.stderr


@pytest.mark.worker  # runs `vocalborn` processes (they refuse before starting anything)
def test_the_worker_commands_refuse_the_same_way(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "worker"],
        env=_clean_env(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//", DATA_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        line for line in done.stderr.splitlines() if "REDIS_URL" in line
    ]


@pytest.mark.worker  # runs `vocalborn` processes (they refuse before starting anything)
def test_up_refuses_a_busy_worker_metrics_port_and_names_the_flag(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "up", "--data-dir", str(tmp_path), "--no-flower"]
            + ["--worker-metrics-port", str(port)],
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert f"port {port}" in done.stderr and "--worker-metrics-port" in done.stderr
    assert "is starting" not in done.stdout


def test_readme_says_users_create_asks_for_a_password() -> None:
    text = (ROOT / "README.md").read_text()
    line = next(line for line in text.splitlines() if "users create" in line and "admin" in line)
    assert re.search(r"asks for (its|the) password", line) and "VOCALBORN_PASSWORD" in line, line


def _silence(seconds: float = 2.0) -> bytes:
    return encode_audio(np.zeros(int(16000 * seconds), dtype=np.float32), 16000, "wav")


def test_a_silent_recording_is_refused_at_upload(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> None:
    from tests.support import recording

    sentence = api.sentence(therapist, recording())
    session = api.session(learner)
    r = api.record(learner, session["practice_session_id"], sentence["sentence_id"], _silence())
    assert r.status_code == 422, r.text
    assert "silent" in r.json()["message"], r.text
    listed = api.client.get(
        f"/api/v1/practice/sessions/{session['practice_session_id']}/records", headers=learner["headers"]
    )
    assert listed.json() == []  # nothing stored
    r = api.client.post(
        "/api/v1/practice/sentences",
        headers={**therapist["headers"], "Accept-Language": "zh-TW"},
        data={"text": "安靜"},
        files={"reference_audio": ("ref.wav", _silence())},
    )
    assert r.status_code == 422 and "聽不到聲音" in r.json()["message"], r.text
    assert r.json()["detail"][0]["loc"] == ["body", "reference_audio"]
