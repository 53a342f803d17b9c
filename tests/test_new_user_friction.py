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


@pytest.mark.worker  # runs `vocalborn up` (it refuses before starting anything)
def test_up_refuses_a_busy_flower_port_in_one_line_naming_the_flag(tmp_path: Path) -> None:
    """Issue #26: `up` printed a traceback when Flower's port was taken."""
    from vocalborn.embedded import free_port

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "up", "--data-dir", str(tmp_path), "--port", str(free_port())]
            + ["--flower-port", str(port)],
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--flower-port" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and "is starting" not in done.stdout
    assert "`--flower-port`" in (ROOT / "README.md").read_text()  # the README's option list names it


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


def test_every_api_route_is_labelled_with_its_whole_path_in_the_metrics(api: Api) -> None:
    """Issue #26: routes of nested routers were labelled "/links/invitations", without /api/v1."""
    import uuid

    from vocalborn.main import app
    from vocalborn.monitoring.api import route_template

    some = str(uuid.uuid4())
    for path in (
        "/api/v1/links/invitations",
        f"/api/v1/learners/{some}/assignments",
        f"/api/v1/tasks/analysis/{some}/review",
        "/api/v1/reviews/export",
        "/api/v1/therapists/me/learners",
    ):
        api.client.get(path)
    text = api.client.get("/metrics").text
    labels = set(re.findall(r'http_requests_total\{[^}]*route="([^"]+)"', text))
    assert {"/api/v1/links/invitations", "/api/v1/reviews/export", "/api/v1/tasks/analysis/{task_id}/review"} <= labels
    assert all(
        label.startswith(("/api/v1/", "/health", "/docs", "/metrics", "/openapi", "/redoc", "/asyncapi.json"))
        or label
        in (
            "/",
            "unmatched",
        )
        for label in labels
    ), labels
    # and every route of the app, not only these: each one's label is its whole template
    from tests.test_authorization_matrix import app_routes

    whole = {r.split(" ", 1)[1] for r in app_routes() if not r.startswith("WS ")}
    seen = set()
    for route in _all_routes(app.routes):
        seen.add(route_template({"route": route, "app": app}))
    assert whole <= seen, sorted(whole - seen)


def _all_routes(routes: Any) -> list[Any]:
    out = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        out += _all_routes(inner.routes) if inner is not None else [route]
    return out


def test_a_new_sentence_is_private_unless_the_therapist_shares_it(api: Api) -> None:
    """Issue #26: "every learner may practise it" was ticked on the page by default, so the
    therapist's voice went to every learner."""
    from tests.support import recording

    page = api.client.get("/").text
    [box] = re.findall(r'<input id="sentence-shared"[^>]*>', page)
    assert "checked" not in box, box
    therapist, stranger = api.register("therapist"), api.register("learner")
    r = api.client.post(
        "/api/v1/practice/sentences",
        headers=therapist["headers"],
        data={"text": "你好。"},
        files={"reference_audio": ("ref.wav", recording())},
    )
    assert r.status_code == 201 and r.json()["shared"] is False, r.text
    sid = r.json()["sentence_id"]
    assert api.client.get(f"/api/v1/practice/sentences/{sid}", headers=stranger["headers"]).status_code == 404
    listed = api.client.get("/api/v1/practice/sentences?limit=200", headers=stranger["headers"]).json()
    assert sid not in [s["sentence_id"] for s in listed]


def test_an_invitation_comes_with_a_link_beside_the_code(api: Api) -> None:
    """Issue #26: a 10-character code typed on a phone; now a link to send as well."""
    therapist = api.register("therapist")
    inv = api.client.post("/api/v1/links/invitations", headers=therapist["headers"], json={})
    assert inv.status_code == 201, inv.text
    body = inv.json()
    base = str(api.client.base_url).rstrip("/")
    assert body["url"] == f"{base}/?invite={body['code']}"
    assert api.client.get(body["url"].removeprefix(base)).status_code == 200  # the page
    listed = api.client.get("/api/v1/links/invitations", headers=therapist["headers"]).json()
    # codes are stored hashed (issue #23): the listing shows neither the code nor its link again
    assert [(i["code"], i["url"]) for i in listed if i["invitation_id"] == body["invitation_id"]] == [(None, None)]


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", *args],
        env=_clean_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_and_mail_commands_take_data_dir_and_say_one_line_without_a_database(tmp_path: Path) -> None:
    """`users create` without DATA_DIR printed "no such table: users" in a traceback and left an
    empty ./var/vocalborn.sqlite3; `mail list` said "No mail" about the wrong folder."""
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    data = tmp_path / "data"
    create = ("users", "create", "--email", "ops@example.com", "--name", "Ops", "--role", "admin")
    password = {"VOCALBORN_PASSWORD": "a-long-unusual-horse-battery-42"}
    done = _cli(*create, cwd=elsewhere, **password)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "vocalborn migrate" in lines[0] and "--data-dir" in lines[0] and "Traceback" not in done.stderr
    assert not (elsewhere / "var" / "vocalborn.sqlite3").exists()  # no empty database left behind
    # a database file without tables (what the old command left): the same one line
    (elsewhere / "var").mkdir()
    (elsewhere / "var" / "vocalborn.sqlite3").touch()
    done = _cli(*create, cwd=elsewhere, **password)
    assert done.returncode == 1 and "has no tables" in done.stderr and "Traceback" not in done.stderr, done.stderr
    # the folder `up` uses, migrated: --data-dir finds it from anywhere
    migrated = _cli("migrate", cwd=elsewhere, DATA_DIR=str(data))
    assert migrated.returncode == 0, migrated.stderr
    done = _cli(*create, "--data-dir", str(data), cwd=elsewhere, **password)
    assert done.returncode == 0 and "created admin ops@example.com" in done.stdout, done.stderr
    done = _cli("users", "set-role", "ops@example.com", "therapist", "--data-dir", str(data), cwd=elsewhere)
    assert done.returncode == 0 and "is now therapist" in done.stdout, done.stderr
    # mail: the wrong folder is named, not "no mail"
    done = _cli("mail", "list", cwd=elsewhere)
    assert done.returncode == 1 and "no mail outbox at" in done.stderr and "--data-dir" in done.stderr, done.stderr
    (data / "mail").mkdir(exist_ok=True)
    done = _cli("mail", "list", "--data-dir", str(data), cwd=elsewhere)
    assert done.returncode == 0 and f"no mail in {data.resolve() / 'mail'}" in done.stdout, done.stderr
