"""`vocalborn up --with-alerting`: Prometheus and Alertmanager start beside the app (real binaries,
Debian's prometheus and prometheus-alertmanager), Prometheus scrapes the API and the worker with
the metrics token and knows the Alertmanager; without the binaries `up` says so in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import wait_until
from tests.test_supervisor import CLI, _embedded_env
from vocalborn.embedded import free_port

pytestmark = pytest.mark.worker

ALERTING_ENV = {
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "2525",
    "SMTP_FROM": "alerts@vocalborn.test",
    "SMTP_REQUIRE_TLS": "false",
    "ALERT_EMAIL_TO": "oncall@vocalborn.test",
    "ALERT_WEBHOOK_URL": "http://127.0.0.1:9/hook",
}


def _binaries_installed() -> bool:
    import shutil

    return bool(
        shutil.which("prometheus") and (shutil.which("alertmanager") or shutil.which("prometheus-alertmanager"))
    )


def test_up_with_alerting_starts_prometheus_and_alertmanager_and_prometheus_scrapes_the_app(tmp_path: Path) -> None:
    if not _binaries_installed():
        pytest.skip("needs prometheus and prometheus-alertmanager (apt-get install prometheus prometheus-alertmanager)")
    port, wport, prom, am = free_port(), free_port(), free_port(), free_port()
    log_path = tmp_path / f"up-{uuid.uuid4().hex[:6]}.log"
    argv = [
        *CLI, "up", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--no-flower",
        "--worker-metrics-port", str(wport), "--concurrency", "1",
        "--with-alerting", "--prometheus-port", str(prom), "--alertmanager-port", str(am),
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv, env=_embedded_env(**ALERTING_ENV), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:

        def text() -> str:
            return log_path.read_text(errors="replace")

        def targets_up() -> bool:
            assert proc.poll() is None, text()[-3000:]
            try:
                active = httpx.get(f"http://127.0.0.1:{prom}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
            except (httpx.HTTPError, ValueError):
                return False
            health = {t["labels"]["job"]: t["health"] for t in active}
            return health == {"vocalborn-api": "up", "vocalborn-worker": "up"}

        wait_until(targets_up, 120, 1.0, "Prometheus to scrape the API and the worker")
        # the banner names both
        assert f"Prometheus http://127.0.0.1:{prom}" in text() and f"Alertmanager http://127.0.0.1:{am}" in text()
        # Alertmanager runs with the routes of monitoring/alertmanager.yml, and Prometheus sends to it
        assert httpx.get(f"http://127.0.0.1:{am}/-/ready", timeout=2).status_code == 200
        status = httpx.get(f"http://127.0.0.1:{am}/api/v2/status", timeout=2).json()
        assert "oncall@vocalborn.test" in status["config"]["original"]
        assert "http://127.0.0.1:9/hook" in status["config"]["original"]
        ams = httpx.get(f"http://127.0.0.1:{prom}/api/v1/alertmanagers", timeout=2).json()["data"]
        assert [a["url"] for a in ams["activeAlertmanagers"]] == [f"http://127.0.0.1:{am}/api/v2/alerts"]
        # the project's rules are loaded
        rules = httpx.get(f"http://127.0.0.1:{prom}/api/v1/rules", timeout=2).json()["data"]["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        assert {"CeleryWorkerDown", "VocalbornApiDown"} <= names
        # a real scrape: the API's request counter is in Prometheus
        q = httpx.get(f"http://127.0.0.1:{prom}/api/v1/query", params={"query": 'up{job="vocalborn-api"}'}, timeout=2)
        assert q.json()["data"]["result"][0]["value"][1] == "1"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not _listening(prom) and not _listening(am), "Prometheus or Alertmanager outlived up"


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_with_alerting_says_what_is_missing(tmp_path: Path) -> None:
    env = _embedded_env(**ALERTING_ENV, PATH=str(Path(sys.executable).parent))  # no prometheus on PATH
    done = subprocess.run(
        [*CLI, "up", "--data-dir", str(tmp_path), "--port", str(free_port()), "--no-flower", "--with-alerting"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--with-alerting needs prometheus and alertmanager" in done.stderr, done.stderr
    assert "apt-get install prometheus prometheus-alertmanager" in done.stderr
