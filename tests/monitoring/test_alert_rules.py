"""The alert rules and Prometheus config are valid, and every rule passes its promtool unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.monitoring.promql import BUILTIN_METRICS, metric_names, promtool
from vocalborn.monitoring import catalog

MONITORING = Path(__file__).parents[2] / "monitoring"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=MONITORING)


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_valid() -> None:
    done = _run("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_prometheus_config_and_its_rule_files_are_valid(tmp_path: Path) -> None:
    # promtool insists the token file exists; in the container the compose service writes it
    config = (MONITORING / "prometheus.yml").read_text()
    assert config.count("credentials_file: /prometheus/metrics_token") == 2  # API and worker jobs
    (tmp_path / "metrics_token").write_text("t" * 40)
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/prometheus/metrics_token", str(tmp_path / "metrics_token"))
    )
    (tmp_path / "alerts.yml").write_text((MONITORING / "alerts.yml").read_text())
    done = subprocess.run(
        [promtool(), "check", "config", "prometheus.yml"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


def test_the_alert_rules_pass_their_unit_tests() -> None:
    done = _run("test", "rules", "alerts.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts - fires == set(), "alerts never tested firing"
    assert alerts - silent == set(), "alerts never tested staying silent"


def test_the_worker_down_alert_does_not_use_active_tasks() -> None:
    worker_down = next(rule for rule in _rules() if rule["alert"] == "CeleryWorkerDown")
    assert "celery_active_tasks" not in worker_down["expr"]


def test_the_alert_rules_only_use_metrics_we_expose() -> None:
    known = catalog.exposed_names() | BUILTIN_METRICS
    for rule in _rules():
        assert metric_names(rule["expr"]) <= known, (rule["alert"], metric_names(rule["expr"]) - known)


def test_the_local_prometheus_config_reads_the_token_vocalborn_up_generates(tmp_path: Path) -> None:
    """monitoring/prometheus-local.yml scrapes `vocalborn up` with the token file `up` writes
    into the default data folder (./var/metrics_token, relative to the config's folder)."""
    from vocalborn.config import Settings
    from vocalborn.config_files import METRICS_TOKEN_FILE

    text = (MONITORING / "prometheus-local.yml").read_text()
    config = yaml.safe_load(text)
    default_data = Settings.model_fields["data_dir"].default
    for job in config["scrape_configs"]:
        auth = job["authorization"]
        assert auth["type"] == "Bearer"
        resolved = (MONITORING / auth["credentials_file"]).resolve()
        assert resolved == (MONITORING.parent / default_data / METRICS_TOKEN_FILE).resolve(), job["job_name"]
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {"127.0.0.1:8000", f"127.0.0.1:{Settings.model_fields['worker_metrics_port'].default}"}
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / METRICS_TOKEN_FILE).write_text("t" * 64)
    (tmp_path / "monitoring" / "prometheus-local.yml").write_text(text)
    (tmp_path / "monitoring" / "alerts.yml").write_text((MONITORING / "alerts.yml").read_text())
    done = subprocess.run(
        [promtool(), "check", "config", "prometheus-local.yml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path / "monitoring",
    )
    assert done.returncode == 0, done.stdout + done.stderr
