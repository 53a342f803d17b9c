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


@pytest.mark.skipif(shutil.which("uv") is None, reason="the walkthrough calls uv, which this machine lacks")
def test_vocalborn_up_serves_the_walkthrough_on_the_embedded_default(tmp_path: Path) -> None:
    from vocalborn.embedded import free_port

    port = free_port()
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
        script.write_text("set -e\n" + walkthrough())
        done = subprocess.run(
            ["bash", str(script)],
            cwd=ROOT,
            env=dict(env, VOCALBORN_URL=f"http://127.0.0.1:{port}"),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr + done.stdout
        result = json.loads(done.stdout.strip().splitlines()[-1])
        for score in ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score"):
            assert 0 <= result[score] <= 100, result
        assert result["detailed_analysis"]
        events = json.loads(done.stdout.strip().splitlines()[-2])
        assert [e["event_type"] for e in events][0] == "submitted" and events[-1]["event_type"] == "succeeded"
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
