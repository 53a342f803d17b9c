"""docker-compose.yml (and the RabbitMQ override): valid, complete, no secret in it, the
services run real `vocalborn` commands with real settings, Redis configured as a broker must be."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    COMPOSE,
    COMPOSE_RABBITMQ,
    DEPLOYMENT_DOC,
    PRODUCTION_EXAMPLE,
    REQUIRED_ALERTING,
    REQUIRED_SECRETS,
    REQUIRED_SECRETS_RABBITMQ,
    ROOT,
    Compose,
    production_example,
    real_secrets,
)
from vocalborn.cli import app
from vocalborn.config import Settings
from vocalborn.healthcheck import main as healthcheck

APP_SERVICES = {"migrate", "api", "worker", "beat", "relay", "consumers", "flower"}


def resolved(compose: Compose, rabbitmq: bool = False) -> dict[str, Any]:
    done = compose.config(real_secrets(), rabbitmq)
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout))


def volumes_of(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume, in either of compose's output forms."""
    out = []
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out.append((str(v["source"]), str(v["target"])))
        else:
            source, target = str(v).split(":")[:2]
            out.append((source, target))
    return out


def published_ips(service: dict[str, Any]) -> list[str]:
    ips = []
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            ips.append(str(p.get("host_ip", "0.0.0.0")))
        else:
            parts = str(p).split(":")
            ips.append(parts[0] if len(parts) == 3 else "0.0.0.0")
    return ips


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


@pytest.mark.parametrize("rabbitmq", [False, True], ids=["redis", "rabbitmq"])
def test_the_compose_files_validate_with_real_secrets(compose: Compose, rabbitmq: bool) -> None:
    config = resolved(compose, rabbitmq)
    services = config["services"]
    assert {"postgres", "redis", "prometheus", "grafana", *APP_SERVICES} <= services.keys()
    broker = services["worker"]["environment"]["CELERY_BROKER_URL"]
    assert broker.startswith("amqp://" if rabbitmq else "redis://")
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"] == broker, name
        assert env["REDIS_URL"].startswith("redis://:"), name  # pub/sub and registry stay on Redis
        assert env["ENVIRONMENT"] == "production", name
    if rabbitmq:
        assert services["worker"]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


@pytest.mark.parametrize("rabbitmq", [False, True], ids=["redis", "rabbitmq"])
def test_compose_refuses_to_start_without_each_secret(compose: Compose, rabbitmq: bool) -> None:
    required = REQUIRED_SECRETS_RABBITMQ if rabbitmq else REQUIRED_SECRETS
    for name in required:
        env = real_secrets()
        del env[name]
        done = compose.config(env, rabbitmq)
        assert done.returncode != 0, f"compose started without {name}"
        assert f"set {name}" in done.stderr, done.stderr


def test_every_service_runs_a_real_vocalborn_command(compose: Compose) -> None:
    import typer.main

    cli = typer.main.get_command(app)
    ctx = cli.make_context("vocalborn", ["--help"], resilient_parsing=True)
    services = resolved(compose)["services"]
    runs = {}
    for name, service in services.items():
        argv = command_of(service)
        if not argv or argv[0] != "vocalborn":
            continue
        sub = cli.get_command(ctx, argv[1])  # type: ignore[attr-defined]  # the lazy ones too (cli/lazy.py)
        assert sub is not None, f"{name}: no `vocalborn {argv[1]}` command"
        sub.make_context(argv[1], argv[2:])  # raises on an unknown option or a bad value
        runs[name] = argv[1]
    assert runs == {
        "migrate": "migrate",
        "api": "api",
        "worker": "worker",
        "beat": "beat",
        "relay": "relay",
        "consumers": "consume",
        "flower": "flower",
    }


def test_every_healthcheck_is_a_real_check(compose: Compose) -> None:
    services = resolved(compose)["services"]
    for name in APP_SERVICES - {"migrate"}:
        test = services[name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "vocalborn.healthcheck"], (name, test)
        with pytest.raises(SystemExit) as exited:
            healthcheck([*test[4:], "--help"])  # parses: the kind and its options exist
        assert exited.value.code == 0
    assert "inspect" not in str(services["worker"]["healthcheck"])  # no broker round trip
    for name in ("postgres", "redis", "nats"):
        assert services[name]["healthcheck"]["test"], name
    assert services["consumers"]["healthcheck"]["test"][4] == "consumers"


def test_app_services_set_only_real_settings_and_infra_only_documented_variables(compose: Compose) -> None:
    fields = {f.upper() for f in Settings.model_fields}
    doc = DEPLOYMENT_DOC.read_text()
    for rabbitmq in (False, True):
        for name, service in resolved(compose, rabbitmq)["services"].items():
            env = service.get("environment") or {}
            if name in APP_SERVICES:
                unknown = set(env) - fields
                assert not unknown, f"{name} sets variables that are no setting: {unknown}"
            else:
                undocumented = {k for k in env if k not in doc}
                assert not undocumented, f"{name}: document {undocumented} in docs/DEPLOYMENT.md"


def test_every_interpolated_variable_is_in_the_production_example() -> None:
    example = production_example()
    for path in (COMPOSE, COMPOSE_RABBITMQ):
        used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", path.read_text()))
        missing = used - example.keys()
        assert not missing, f"{path.name} uses {missing}; add them to {PRODUCTION_EXAMPLE.name}"


def test_secrets_are_never_written_into_the_compose_files() -> None:
    secretish = re.compile(r"PASS|SECRET|AUTH|TOKEN")
    for path in (COMPOSE, COMPOSE_RABBITMQ):
        raw = path.read_text()
        assert "vocalborn2024" not in raw
        assert not re.search(r"basic[_-]auth\s*=", raw)
        for line in raw.splitlines():
            m = re.match(r"^\s*-?\s*([A-Z][A-Z0-9_]*)\s*[:=]\s*(.*)$", line)
            # optional by nature: a remote engine without a key, a mail relay without auth
            if m and secretish.search(m.group(1)) and m.group(1) not in ("AI_SERVICE_API_KEY", "SMTP_PASSWORD"):
                assert re.match(r"\$\{[A-Z0-9_]+:\?", m.group(2)), (
                    f"{path.name}: {m.group(1)} is not a required variable"
                )
        for name in REQUIRED_SECRETS_RABBITMQ:
            for m in re.finditer(r"\$\{" + name + r"(\W)", raw):
                assert raw[m.end(1) - 1 : m.end(1) + 1] == ":?", f"{path.name}: ${{{name}}} must be required (:?)"


def test_redis_is_configured_as_a_broker_and_not_published(compose: Compose) -> None:
    redis = resolved(compose)["services"]["redis"]
    cmd = " ".join(command_of(redis))
    assert "--maxmemory-policy noeviction" in cmd
    assert "allkeys-lru" not in cmd
    assert "--appendonly yes" in cmd and "--appendfsync everysec" in cmd
    assert "--requirepass" in cmd
    assert not redis.get("ports"), "Redis must not be published on the host"


def test_one_beat_scalable_workers_and_flower_behind_auth(compose: Compose) -> None:
    services = resolved(compose)["services"]
    beats = [n for n, s in services.items() if command_of(s)[:2] == ["vocalborn", "beat"]]
    assert beats == ["beat"]
    assert (services["beat"].get("deploy") or {}).get("replicas", 1) == 1
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N works
    assert any(a.startswith("--hostname") for a in command_of(worker)) and "%h" in " ".join(command_of(worker))
    flower = services["flower"]
    assert ":" in flower["environment"]["FLOWER_BASIC_AUTH"]
    assert not any("auth" in a for a in command_of(flower))
    assert published_ips(flower) == ["127.0.0.1"]


def test_everything_waits_for_a_healthy_database_and_the_migration(compose: Compose) -> None:
    services = resolved(compose)["services"]
    assert services["postgres"]["volumes"] and services["postgres"]["healthcheck"]
    assert services["migrate"]["restart"] == "no"
    for name in APP_SERVICES - {"migrate"}:
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
    # api and workers share the recordings volume
    assert ("app_data", "/data") in volumes_of(services["api"])
    assert volumes_of(services["api"]) == volumes_of(services["worker"])


def test_a_worker_is_given_longer_to_stop_than_an_analysis_may_run(compose: Compose) -> None:
    worker = resolved(compose)["services"]["worker"]
    grace = worker["stop_grace_period"]
    seconds = int(re.fullmatch(r"(\d+)s", grace).group(1))  # type: ignore[union-attr]
    hard_limit = int(worker["environment"]["TASK_TIME_LIMIT"])
    assert hard_limit == Settings.model_fields["task_time_limit"].default
    assert seconds > hard_limit
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"  # Celery's warm shutdown


def test_prometheus_and_grafana_mount_the_monitoring_directory(compose: Compose) -> None:
    services = resolved(compose)["services"]
    prom = services["prometheus"]
    assert any(s.endswith("/monitoring") and t == "/etc/prometheus" for s, t in volumes_of(prom))
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    grafana = services["grafana"]
    assert grafana["profiles"] == ["grafana"]
    assert any(s.endswith("/monitoring/grafana") for s, _ in volumes_of(grafana))


def test_compose_refuses_to_start_without_somewhere_to_send_alerts(compose: Compose) -> None:
    for name in REQUIRED_ALERTING:
        env = real_secrets()
        del env[name]
        done = compose.config(env)
        assert done.returncode != 0, f"compose started without {name}"
        assert f"set {name}" in done.stderr, done.stderr


def test_prometheus_sends_alerts_to_the_stacks_alertmanager(compose: Compose) -> None:
    services = resolved(compose)["services"]
    am = services["alertmanager"]
    assert any(s.endswith("/monitoring") and t == "/etc/alertmanager" for s, t in volumes_of(am))
    entry = " ".join(am["entrypoint"])
    assert "alertmanager-render.sh /etc/alertmanager/alertmanager.yml" in entry
    assert "--config.file=/alertmanager/alertmanager.yml" in entry
    assert am["environment"]["ALERT_WEBHOOK_URL"] == "https://pager.example.org/hook"
    assert '"${ALERTMANAGER_BIND:-127.0.0.1}:${ALERTMANAGER_HOST_PORT:-9093}:9093"' in COMPOSE.read_text()
    assert "alertmanager" in services["prometheus"]["depends_on"]
    prom = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = [
        t for am_cfg in prom["alerting"]["alertmanagers"] for sc in am_cfg["static_configs"] for t in sc["targets"]
    ]
    assert targets == ["alertmanager:9093"]


def test_nats_keeps_jetstream_on_a_volume_and_every_app_service_points_at_it(compose: Compose) -> None:
    services = resolved(compose)["services"]
    nats = services["nats"]
    assert nats["image"].startswith("nats:2.")
    command = command_of(nats)
    assert "-js" in command and command[command.index("-sd") + 1] == "/data"
    assert ("nats_data", "/data") in volumes_of(nats)
    assert "healthz" in " ".join(nats["healthcheck"]["test"])
    assert not nats.get("ports")  # only the stack talks to it
    for name in APP_SERVICES:
        assert services[name]["environment"]["NATS_URL"] == "nats://nats:4222", name
        if name != "migrate":  # the migration needs only the database
            assert services[name]["depends_on"]["nats"]["condition"] == "service_healthy", name
