"""Deployment files, proved without a Docker engine: compose is validated by `docker-compose
config`, the Dockerfiles are parsed and their build steps run outside Docker."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.services import in_ci

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_RABBITMQ = ROOT / "docker-compose.rabbitmq.yml"
COMPOSE_SENTINEL = ROOT / "docker-compose.sentinel.yml"
PRODUCTION_EXAMPLE = ROOT / ".env.production.example"
DEPLOYMENT_DOC = ROOT / "docs" / "DEPLOYMENT.md"

# Secrets compose must refuse to start without.
REQUIRED_SECRETS = (
    "SECRET_KEY",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "FLOWER_BASIC_AUTH",
    "METRICS_TOKEN",
    "GRAFANA_ADMIN_PASSWORD",
    "STORAGE_ENCRYPTION_KEYS",
)
REQUIRED_SECRETS_RABBITMQ = (*REQUIRED_SECRETS, "RABBITMQ_DEFAULT_PASS")
# Not secrets, but required all the same: alerts must reach someone (monitoring/alertmanager.yml).
REQUIRED_ALERTING = ("SMTP_HOST", "SMTP_FROM", "ALERT_EMAIL_TO", "ALERT_WEBHOOK_URL")


def production_example() -> dict[str, str]:
    values = {}
    for line in PRODUCTION_EXAMPLE.read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def real_secrets() -> dict[str, str]:
    """What an operator puts in .env: random, URL-safe values."""
    return {
        "SECRET_KEY": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        "REDIS_PASSWORD": secrets.token_hex(16),
        "FLOWER_BASIC_AUTH": f"ops:{secrets.token_hex(12)}",
        "METRICS_TOKEN": secrets.token_hex(32),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(12),
        "RABBITMQ_DEFAULT_PASS": secrets.token_hex(16),
        "STORAGE_ENCRYPTION_KEYS": f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
        # and where alerts go
        "SMTP_HOST": "mail.internal.example",
        "SMTP_FROM": "alerts@example.org",
        "ALERT_EMAIL_TO": "oncall@example.org",
        "ALERT_WEBHOOK_URL": "https://pager.example.org/hook",
    }


@dataclass
class Compose:
    binary: str
    workdir: Path
    calls: list[list[str]] = field(default_factory=list)

    def config(
        self, env_file: dict[str, str], rabbitmq: bool = False, *extra: str, sentinel: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """`docker-compose config` with only ``env_file`` as input: a clean process environment,
        so nothing from the test run (which sets SECRET_KEY, DATABASE_URL...) leaks in."""
        path = self.workdir / f"env-{secrets.token_hex(3)}"
        path.write_text("".join(f"{k}={v}\n" for k, v in env_file.items()))
        files = ["-f", str(COMPOSE)] + (["-f", str(COMPOSE_RABBITMQ)] if rabbitmq else [])
        files += ["-f", str(COMPOSE_SENTINEL)] if sentinel else []
        argv = [self.binary, "--project-directory", str(ROOT), "--env-file", str(path), *files, "config", *extra]
        self.calls.append(argv)
        clean = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean, cwd=self.workdir)


@pytest.fixture(scope="session")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    binary = shutil.which("docker-compose")
    if binary is None:
        message = "docker-compose is not installed (apt-get install docker-compose); it validates the compose files"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return Compose(binary, tmp_path_factory.mktemp("compose"))
