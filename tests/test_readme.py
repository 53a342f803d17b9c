"""The README's promises, executed: the first command serves the product on the embedded default,
and the walkthrough, pasted as-is, ends with a scored result."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import wait_until
from vocalborn.embedded import free_port

pytestmark = pytest.mark.worker

ROOT = Path(__file__).resolve().parents[1]
# Everything the suite configures; the embedded default must work without any of it.
SUITE_KEYS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "REDIS_URL",
    "DATA_DIR",
    "TASK_QUEUE",
    "MAINTENANCE_QUEUE",
    "REDIS_KEY_PREFIX",
    "SECRET_KEY",
    "ENVIRONMENT",
)


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```bash\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README lost its walkthrough block"
    return block.group(1)


def practice_block() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- practice:start -->\s*```bash\n(.*?)```\s*<!-- practice:end -->", text, re.S)
    assert block, "README lost its practice block (invite, practise, progress, review)"
    return block.group(1)


MARK = "=====practice====="


def check_practice(lines: list[str]) -> None:
    """The practice block's answers: link, assignment, history, progress, goals, dashboard, review."""
    accepted, assigned, history, progress, goals, dashboard, saved, read = (json.loads(line) for line in lines[-8:])
    assert accepted["therapist"]["name"] == "Dr. Lin", accepted
    assert assigned["sentence_text"] and assigned["attempts"] >= 1, assigned
    assert (assigned["target_attempts_per_week"], assigned["days_per_week"]) == (5, 3), assigned
    (goal,) = goals["items"]
    assert goal["target_attempts_per_week"] == 5 and goal["attempts_this_week"] >= 1, goals
    assert goals["dose_met_percent"] == min(100.0, round(100 * goal["attempts_this_week"] / 5, 1)), goals
    assert history["items"] and all(i["user_id"] == accepted["learner"]["user_id"] for i in history["items"])
    (sentence,) = progress["sentences"]
    assert sentence["attempts"] >= 2 and len(sentence["points"]) == sentence["attempts"], sentence
    assert sentence["trend"]["overall_score"]["last_n_mean"] is not None
    (row,) = [d for d in dashboard if d["user_id"] == accepted["learner"]["user_id"]]
    assert row["dose_met_percent"] == goals["dose_met_percent"], (row, goals)
    assert saved["overall_score"] == 80 and saved["comment"] == "Slow down at the comma.", saved
    assert read["engine"]["overall_score"] is not None and read["reviews"][0]["overall_score"] == 80, read


AUDIO_HEADERS = (b"RIFF", b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2", b"OggS", b"fLaC", b"\x1aE\xdf\xa3")


def check_data_folder_is_private(data: Path, banner: str) -> None:
    """Issue 23, from outside: after the walkthrough no file under the data folder is readable
    (or writable) by another user, no recording starts with an audio header, the SQLite file is
    0600; the bundled Redis answers NOAUTH without the password `up` named the path of."""
    import socket
    import stat

    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    assert stat.S_IMODE((data / "vocalborn.sqlite3").stat().st_mode) == 0o600
    stored = [p for p in (data / "storage").rglob("*") if p.is_file()]
    assert any("recordings" in p.parts for p in stored) and any("references" in p.parts for p in stored)
    for path in stored:
        head = path.read_bytes()[:16]
        assert not head.startswith(AUDIO_HEADERS) and b"ftyp" not in head, f"{path} starts with {head!r}"
        assert head.startswith(b"VBENC1"), path
    password_file = data / "redis" / "password"
    assert f"password in {password_file}" in banner and password_file.read_text().strip() not in banner
    with socket.create_connection(("127.0.0.1", int((data / "redis" / "port").read_text())), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(100).startswith(b"-NOAUTH"), "the bundled Redis answered without its password"


@pytest.mark.skipif(shutil.which("uv") is None, reason="the walkthrough calls uv, which this machine lacks")
def test_vocalborn_up_serves_the_walkthrough_on_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    metrics_port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SUITE_KEYS and not k.startswith(("TASK_", "RETRY_", "REPUBLISH_", "REAPER_", "BROKER_"))
    }
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vocalborn.cli",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "var"),
            "--no-flower",
            "--worker-metrics-port",
            str(metrics_port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def serving() -> bool:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(serving, 90, 0.3, "vocalborn up to serve /docs")
        assert (
            "sqlite" in (tmp_path / "up.log").read_text()
            and "bundled redis-server" in (tmp_path / "up.log").read_text()
        )
        script = tmp_path / "walkthrough.sh"
        script.write_text("set -e\n" + walkthrough() + f"echo {MARK}\n" + practice_block())
        done = subprocess.run(
            ["bash", str(script)],
            cwd=ROOT,
            env=dict(env, VOCALBORN_URL=f"http://127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        first, _, practice = done.stdout.partition(MARK)
        check_practice(practice.strip().splitlines())
        result = json.loads(first.strip().splitlines()[-1])
        for score in ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score"):
            assert 0 <= result[score] <= 100, result
        assert result["detailed_analysis"]
        events = json.loads(first.strip().splitlines()[-2])
        assert [e["event_type"] for e in events][0] == "submitted" and events[-1]["event_type"] == "succeeded"
        # `up` printed the worker metrics URL it really bound, and it answers with the generated token
        # (whose path `up` printed, not its value); without the token API and worker answer 401
        bound = f"http://127.0.0.1:{metrics_port}/metrics (worker, bound)"
        wait_until(lambda: bound in (tmp_path / "up.log").read_text(), 60, 0.3, "the bound worker metrics URL")
        banner = (tmp_path / "up.log").read_text()
        token_file = tmp_path / "var" / "metrics_token"
        token = token_file.read_text().strip()
        assert f"token in {token_file}" in banner and token not in banner
        bearer = {"Authorization": f"Bearer {token}"}
        for url in (f"http://127.0.0.1:{metrics_port}/metrics", f"http://127.0.0.1:{port}/metrics"):
            assert httpx.get(url, timeout=5).status_code == 401, url
            assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401, url
            assert httpx.get(url, headers=bearer, timeout=5).status_code == 200, url
        check_data_folder_is_private(tmp_path / "var", banner)
    finally:
        up.terminate()  # SIGTERM: `up` stops its children and the bundled Redis
        try:
            up.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, 9)
            up.wait()
        log.close()
    assert up.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
    assert "stopped." in (tmp_path / "up.log").read_text()


def test_alembic_finds_no_drift_between_models_and_migrations(migrated: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr


def test_alembic_finds_no_drift_on_sqlite_either(tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'drift.sqlite3'}", DATA_DIR=str(tmp_path))
    for args in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "No new upgrade operations detected" in done.stdout + done.stderr
