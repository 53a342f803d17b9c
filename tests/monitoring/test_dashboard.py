"""The Grafana dashboard parses, has the panels operators need, and only asks for metrics we expose."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.promql import BUILTIN_METRICS, metric_names, promtool
from vocalborn.monitoring import catalog

pytestmark = pytest.mark.worker

DASHBOARD = Path(__file__).parents[2] / "monitoring" / "grafana" / "vocalborn-dashboard.json"


def _panels() -> list[dict[str, Any]]:
    return list(json.loads(DASHBOARD.read_text())["panels"])


def _exprs() -> list[str]:
    return [t["expr"] for p in _panels() for t in p.get("targets", [])]


def test_the_dashboard_has_the_panels_operators_need() -> None:
    uses = {p["title"]: set().union(*(metric_names(t["expr"]) for t in p["targets"])) for p in _panels()}
    needed = {
        "queue size": "celery_queue_size",
        "throughput": "celery_tasks_total",
        "failure rate": "celery_tasks_total",
        "duration": "celery_task_duration_seconds_bucket",
        "queue wait": "celery_task_queue_wait_seconds_bucket",
        "workers": "celery_worker_up",
        "websockets": "vocalborn_websocket_connections",
    }
    for words, metric in needed.items():
        panels = [title for title, names in uses.items() if words in title.lower()]
        assert panels, f"no panel titled with {words!r}"
        assert any(metric in uses[t] for t in panels), (words, metric)
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids))


def test_the_dashboard_only_asks_for_metrics_we_expose() -> None:
    known = catalog.exposed_names() | BUILTIN_METRICS
    for expr in _exprs():
        assert metric_names(expr) <= known, (expr, metric_names(expr) - known)


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files: one recording rule per query.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
        for i, expr in enumerate(_exprs())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_metric_name_reader_finds_names_and_skips_functions_labels_and_keywords() -> None:
    expr = 'sum by (le) (rate(x_bucket{le="+Inf", a=~"b|c"}[$__rate_interval])) / on() y and time() - z offset 5m > 0'
    assert metric_names(expr) == {"x_bucket", "y", "z"}
