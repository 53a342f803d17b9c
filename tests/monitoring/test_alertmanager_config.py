"""monitoring/alertmanager.yml: rendered from the environment as the container does, valid for
amtool, routed by severity (critical pages, warnings go to the batched email), and the renderer
refuses to produce a config that would send alerts nowhere."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.services import in_ci

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
ALERTING_ENV = {
    "SMTP_HOST": "mail.internal.example",
    "SMTP_PORT": "587",
    "SMTP_FROM": "alerts@example.org",
    "ALERT_EMAIL_TO": "oncall@example.org",
    "ALERT_WEBHOOK_URL": "https://pager.example.org/hook",
}


def render(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    return subprocess.run(
        ["sh", str(MONITORING / "alertmanager-render.sh"), str(MONITORING / "alertmanager.yml")],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture(scope="module")
def amtool() -> str:
    found = shutil.which("amtool")
    if found is None:
        message = "amtool is not installed (apt-get install prometheus-alertmanager)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    done = render({**ALERTING_ENV, "SMTP_PASSWORD": "it's a secret"})
    assert done.returncode == 0, done.stderr
    path = tmp_path / "alertmanager.yml"
    path.write_text(done.stdout)
    return path


def test_the_rendered_config_carries_the_settings(rendered: Path) -> None:
    config = yaml.safe_load(rendered.read_text())
    assert config["global"]["smtp_smarthost"] == "mail.internal.example:587"
    assert config["global"]["smtp_auth_password"] == "it's a secret"  # a quote survives the YAML
    assert config["global"]["smtp_require_tls"] is True  # the default
    page = next(r for r in config["receivers"] if r["name"] == "ops-page")
    assert page["webhook_configs"][0]["url"] == "https://pager.example.org/hook"
    assert page["webhook_configs"][0]["send_resolved"] is True
    assert "${" not in rendered.read_text()


def test_the_rendered_config_is_valid(amtool: str, rendered: Path) -> None:
    done = subprocess.run([amtool, "check-config", str(rendered)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=CeleryWorkerDown", "severity=critical", "job=vocalborn-worker"], "ops-page"),
        (["alertname=VocalbornApiDown", "severity=critical"], "ops-page"),
        (["alertname=CeleryQueueBacklog", "severity=warning"], "ops-email"),
        (["alertname=Unknown"], "ops-email"),
    ],
)
def test_critical_pages_and_warnings_are_emailed(amtool: str, rendered: Path, labels: list[str], receiver: str) -> None:
    done = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={rendered}", *labels],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == receiver, done.stdout + done.stderr


def test_a_warning_is_muted_while_a_critical_alert_of_its_instance_fires(rendered: Path) -> None:
    rules = yaml.safe_load(rendered.read_text())["inhibit_rules"]
    same_instance = [r for r in rules if r.get("equal")]
    assert same_instance and set(same_instance[0]["equal"]) == {"job", "instance"}
    assert same_instance[0]["source_matchers"] == ['severity="critical"']
    assert same_instance[0]["target_matchers"] == ['severity="warning"']
    # the source of an inhibition must never be a warning (a warning would mute a page)
    assert all("warning" not in " ".join(r["source_matchers"]) for r in rules)


@pytest.mark.parametrize("missing", sorted(ALERTING_ENV))
def test_the_renderer_refuses_when_alerts_would_go_nowhere(missing: str) -> None:
    env = {k: v for k, v in ALERTING_ENV.items() if k != missing}
    done = render(env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert missing in done.stderr and done.stderr.count("\n") == 1


def test_the_renderer_warns_about_the_example_values() -> None:
    done = render({**ALERTING_ENV, "ALERT_EMAIL_TO": "oncall@example.com"})
    assert done.returncode == 0  # a warning: CI and the image check run on the example file
    assert "ALERT_EMAIL_TO is the example value" in done.stderr
    assert "alerts reach nobody" in done.stderr
