"""Alerts reach someone: a real Prometheus scrapes a real Celery worker, the worker is stopped,
`CeleryWorkerDown` fires, a real Alertmanager running the project's own routing
(monitoring/alertmanager.yml, rendered by monitoring/alertmanager-render.sh) sends it to a webhook
receiver and by email to an SMTP sink, both on loopback, and once the worker is back both get the
resolved message.

The rule is the real one from monitoring/alerts.yml with a short ``for`` (its real ``for`` is
unit-tested by promtool in test_alert_rules.py); the routing, grouping and timings are the real
file's. Everything listens on free loopback ports and stops with the test."""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.services import ServicesUnderTest, in_ci
from tests.support import WorkerProcess, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
SHORT_FOR = "5s"


def _binary(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def binaries() -> dict[str, str]:
    found = {
        "prometheus": _binary("prometheus"),
        "alertmanager": _binary("alertmanager", "prometheus-alertmanager"),
    }
    missing = [k for k, v in found.items() if v is None]
    if missing:
        message = f"the alerting test runs real {missing} (apt-get install prometheus prometheus-alertmanager)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return {k: v for k, v in found.items() if v}


class Receiver:
    """A webhook receiver on loopback: keeps every JSON body Alertmanager posts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str) -> list[dict[str, Any]]:
        return [
            alert
            for body in self.bodies
            if body.get("status") == status
            for alert in body["alerts"]
            if alert["labels"].get("alertname") == "CeleryWorkerDown"
        ]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailSink:
    """A loopback SMTP server that keeps each message (enough of the protocol for Alertmanager:
    EHLO without extensions, MAIL, RCPT, DATA, QUIT)."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        messages = self.messages

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 sink ready\r\n")
                while line := self.rfile.readline():
                    verb = line.strip().split(b" ", 1)[0].upper()
                    if verb == b"DATA":
                        self.wfile.write(b"354 go on\r\n")
                        body = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                            body.append(chunk.decode(errors="replace"))
                        messages.append("".join(body))
                        self.wfile.write(b"250 kept\r\n")
                    elif verb == b"QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:  # EHLO/HELO, MAIL, RCPT, RSET, NOOP
                        self.wfile.write(b"250 ok\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def subjects(self) -> list[str]:
        return [line for m in self.messages for line in m.splitlines() if line.lower().startswith("subject:")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _serve(argv: list[str], log: Path, ready_url: str) -> subprocess.Popen[bytes]:
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    proc._vb_log = out  # type: ignore[attr-defined]

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{argv[0]} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(ready_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 60, 0.3, f"{Path(argv[0]).name} ready")
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    proc._vb_log.close()  # type: ignore[attr-defined]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def mail() -> Iterator[MailSink]:
    m = MailSink()
    try:
        yield m
    finally:
        m.close()


def _rules_with_short_for(tmp: Path) -> Path:
    doc = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"] if rule.get("alert") == "CeleryWorkerDown"]
    assert len(rules) == 1 and rules[0]["labels"]["severity"] == "critical"
    rule = dict(rules[0], **{"for": SHORT_FOR})
    path = tmp / "alerts-short.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "e2e", "interval": "1s", "rules": [rule]}]}))
    return path


def _alertmanager_config(tmp: Path, webhook: str, smtp_port: int) -> Path:
    env = dict(
        os.environ,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_FROM="alerts@example.org",
        SMTP_REQUIRE_TLS="false",
        ALERT_EMAIL_TO="oncall@example.org",
        ALERT_WEBHOOK_URL=webhook,
    )
    done = subprocess.run(
        ["sh", str(MONITORING / "alertmanager-render.sh"), str(MONITORING / "alertmanager.yml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    path = tmp / "alertmanager.yml"
    path.write_text(done.stdout)
    return path


def test_a_stopped_worker_pages_through_alertmanager_and_resolves(
    binaries: dict[str, str], receiver: Receiver, mail: MailSink, migrated: ServicesUnderTest, tmp_path: Path
) -> None:
    from vocalborn.embedded import free_port

    am_port, prom_port, metrics_port = free_port(), free_port(), free_port()
    token = uuid.uuid4().hex * 2
    (tmp_path / "token").write_text(token)
    am_config = _alertmanager_config(tmp_path, receiver.url, mail.port)
    am = _serve(
        [
            binaries["alertmanager"],
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # no gossip port: one instance
        ],
        tmp_path / "alertmanager.log",
        f"http://127.0.0.1:{am_port}/-/ready",
    )
    worker_env = {
        "WORKER_METRICS_PORT": str(metrics_port),
        "WORKER_METRICS_HOST": "127.0.0.1",
        "METRICS_TOKEN": token,
    }
    worker: WorkerProcess | None = WorkerProcess(f"alerting{uuid.uuid4().hex[:6]}", migrated.data_dir, env=worker_env)
    prom = None
    try:
        worker.start()
        wait_until(
            lambda: (
                httpx.get(
                    f"http://127.0.0.1:{metrics_port}/metrics", headers={"Authorization": f"Bearer {token}"}
                ).status_code
                == 200
            ),
            30,
            0.3,
            "worker metrics",
        )
        prom_config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(_rules_with_short_for(tmp_path))],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [
                {
                    "job_name": "vocalborn-worker",
                    "authorization": {"type": "Bearer", "credentials_file": str(tmp_path / "token")},
                    "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                }
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))
        prom = _serve(
            [
                binaries["prometheus"],
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            tmp_path / "prometheus.log",
            f"http://127.0.0.1:{prom_port}/-/ready",
        )
        api = f"http://127.0.0.1:{prom_port}/api/v1"

        def worker_target_up() -> bool:
            targets = httpx.get(f"{api}/targets").json()["data"]["activeTargets"]
            return any(t["health"] == "up" for t in targets)

        wait_until(worker_target_up, 30, 0.5, "Prometheus scraping the worker")
        time.sleep(3)  # a few healthy evaluations: nothing may fire while the worker runs
        assert receiver.alerts("firing") == []

        worker.stop()  # warm shutdown of a real worker: its metrics endpoint goes away
        worker = None
        stopped = time.monotonic()
        wait_until(lambda: receiver.alerts("firing"), 5 + 60, 0.5, "CeleryWorkerDown to reach the webhook")
        fired_after = time.monotonic() - stopped
        # the critical route also mails the on-call address at once
        wait_until(
            lambda: any("FIRING" in s and "CeleryWorkerDown" in s for s in mail.subjects()), 30, 0.5, "the email"
        )
        (alert,) = receiver.alerts("firing")[:1]
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["job"] == "vocalborn-worker"
        assert alert["labels"]["instance"] == f"127.0.0.1:{metrics_port}"
        assert "docs/OPERATIONS.md" in alert["annotations"]["description"]
        body = next(b for b in receiver.bodies if b["status"] == "firing")
        assert body["receiver"] == "ops-page"  # the critical route, not the batched warning email

        worker = WorkerProcess(f"alerting{uuid.uuid4().hex[:6]}", migrated.data_dir, env=worker_env).start()
        back = time.monotonic()
        # resolved once Prometheus scrapes it again; Alertmanager sends it at the group's next
        # flush (group_interval 1m of the critical route)
        wait_until(lambda: receiver.alerts("resolved"), 60 + 30, 0.5, "the resolved message")
        resolved_after = time.monotonic() - back
        wait_until(lambda: any("RESOLVED" in s for s in mail.subjects()), 30, 0.5, "the resolved email")
        (resolved,) = receiver.alerts("resolved")[:1]
        assert resolved["labels"]["instance"] == alert["labels"]["instance"]
        assert resolved["endsAt"] >= resolved["startsAt"]
        print(f"fired {fired_after:.1f} s after the stop, resolved {resolved_after:.1f} s after the restart")
    finally:
        if worker is not None:
            worker.stop()
        if prom is not None:
            _stop(prom)
        _stop(am)
