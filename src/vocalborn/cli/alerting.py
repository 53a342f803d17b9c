"""`vocalborn up --with-alerting`: Prometheus and Alertmanager beside the app, when their binaries
are installed (Debian: `apt-get install prometheus prometheus-alertmanager`).

Prometheus scrapes the API and the worker (bearer METRICS_TOKEN), evaluates monitoring/alerts.yml
and sends to Alertmanager; Alertmanager routes as monitoring/alertmanager.yml (critical: webhook
and email at once; warnings: email), rendered with monitoring/alertmanager-render.sh from the
SMTP_* and ALERT_* settings. Both listen on loopback; their data live in DATA_DIR/alerting.
Without the flag `up` needs neither.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from vocalborn.cli.common import fail

MONITORING = Path(__file__).resolve().parents[3] / "monitoring"
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager (or put them on PATH)"


def binaries() -> dict[str, str]:
    found = {
        "prometheus": shutil.which("prometheus"),
        "alertmanager": shutil.which("alertmanager") or shutil.which("prometheus-alertmanager"),
    }
    missing = [name for name, path in found.items() if path is None]
    if missing:
        fail(f"--with-alerting needs {' and '.join(missing)}, not found: {INSTALL_HINT}")
    return {k: str(v) for k, v in found.items()}


def _render_alertmanager(env: dict[str, str]) -> str:
    template = MONITORING / "alertmanager.yml"
    if not template.exists():
        fail(f"--with-alerting needs {template} (run it from a checkout of the project)")
    done = subprocess.run(
        ["sh", str(MONITORING / "alertmanager-render.sh"), str(template)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        fail(f"--with-alerting: {done.stderr.strip()} (SMTP_* and ALERT_* in .env: docs/DEPLOYMENT.md#alerting)")
    return done.stdout


def plan(
    settings: Any,
    env: dict[str, str],
    data: Path,
    api: tuple[str, int],
    worker_port: int,
    prometheus_port: int,
    alertmanager_port: int,
) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The two children (name, argv) and the banner's lines."""
    found = binaries()
    folder = data / "alerting"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    am_config = folder / "alertmanager.yml"
    am_config.write_text(_render_alertmanager(env))
    am_config.chmod(0o600)  # it holds the SMTP password
    token = settings.effective_metrics_token()
    auth: dict[str, Any] = {}
    if token:
        token_file = folder / "metrics_token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        auth = {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
    api_host = "127.0.0.1" if api[0] in ("0.0.0.0", "::") else api[0]
    scrape = [
        {
            "job_name": "vocalborn-api",
            "metrics_path": "/metrics",
            **auth,
            "static_configs": [{"targets": [f"{api_host}:{api[1]}"]}],
        }
    ]
    if worker_port > 0:
        whost = settings.worker_metrics_host
        whost = "127.0.0.1" if whost in ("0.0.0.0", "::", "") else whost
        scrape.append(
            {
                "job_name": "vocalborn-worker",
                "metrics_path": "/metrics",
                **auth,
                "static_configs": [{"targets": [f"{whost}:{worker_port}"]}],
            }
        )
    prom_config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": [str(MONITORING / "alerts.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": scrape,
    }
    prom_path = folder / "prometheus.yml"
    prom_path.write_text(yaml.safe_dump(prom_config, sort_keys=False))
    children = [
        (
            "alertmanager",
            [
                found["alertmanager"],
                f"--config.file={am_config}",
                f"--storage.path={folder / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{alertmanager_port}",
                "--cluster.listen-address=",  # one instance: no gossip port
            ],
        ),
        (
            "prometheus",
            [
                found["prometheus"],
                f"--config.file={prom_path}",
                f"--storage.tsdb.path={folder / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
        ),
    ]
    lines = [
        f"Alerting:  Prometheus http://127.0.0.1:{prometheus_port} (rules monitoring/alerts.yml), "
        f"Alertmanager http://127.0.0.1:{alertmanager_port} (email to {env.get('ALERT_EMAIL_TO', '?')}, "
        f"webhook {env.get('ALERT_WEBHOOK_URL', '?')})"
    ]
    return children, lines
