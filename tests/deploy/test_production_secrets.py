"""No secret has a working production default: with ENVIRONMENT=production the processes refuse
the example values of .env.production.example, and say which one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import production_example, real_secrets
from vocalborn.config_secrets import EXAMPLE_SECRETS, secret_problem

SECRETS = (
    "SECRET_KEY",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "FLOWER_BASIC_AUTH",
    "METRICS_TOKEN",
    "RABBITMQ_DEFAULT_PASS",
)


def production_env(tmp_path: Path, values: dict[str, str]) -> dict[str, str]:
    """What compose gives a vocalborn container, built from ``values`` (as in .env)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(
        ENVIRONMENT="production",
        DATA_DIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
        SECRET_KEY=values["SECRET_KEY"],
        # unreachable on purpose: a refusing process must not get as far as connecting
        DATABASE_URL=f"postgresql://vocalborn:{values['POSTGRES_PASSWORD']}@127.0.0.1:9/vocalborn",
        CELERY_BROKER_URL=f"redis://:{values['REDIS_PASSWORD']}@127.0.0.1:9/0",
        FLOWER_BASIC_AUTH=values["FLOWER_BASIC_AUTH"],
        METRICS_TOKEN=values["METRICS_TOKEN"],
        STORAGE_ENCRYPTION_KEYS=values["STORAGE_ENCRYPTION_KEYS"],
    )
    return env


def vocalborn(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    # the terminal renderer wraps long lines; compare the words
    done.stderr = " ".join(done.stderr.split())
    return done


def test_a_refusal_prints_no_part_of_the_real_secrets(tmp_path: Path) -> None:
    values = {**real_secrets(), "POSTGRES_PASSWORD": production_example()["POSTGRES_PASSWORD"]}
    done = vocalborn(["api", "--port", "9"], production_env(tmp_path, values))
    assert done.returncode != 0 and "refusing to start in production" in done.stderr
    for name in ("SECRET_KEY", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH", "METRICS_TOKEN"):
        assert values[name][-8:] not in done.stderr, name


def test_every_example_secret_is_one_the_processes_refuse() -> None:
    example = production_example()
    for name in SECRETS:
        value = example[name]
        assert value in EXAMPLE_SECRETS or value.split(":", 1)[-1] in EXAMPLE_SECRETS, name


@pytest.mark.parametrize("command", [["api", "--port", "9"], ["worker"], ["beat"], ["migrate"], ["flower"]])
def test_a_process_refuses_the_example_secret_key(command: list[str], tmp_path: Path) -> None:
    values = {**real_secrets(), "SECRET_KEY": production_example()["SECRET_KEY"]}
    done = vocalborn(command, production_env(tmp_path, values))
    assert done.returncode != 0
    assert "refusing to start in production" in done.stderr and "SECRET_KEY" in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize("secret", ["POSTGRES_PASSWORD", "REDIS_PASSWORD"])
def test_the_api_refuses_an_example_password_in_a_service_url(secret: str, tmp_path: Path) -> None:
    values = {**real_secrets(), secret: production_example()[secret]}
    done = vocalborn(["api", "--port", "9"], production_env(tmp_path, values))
    assert done.returncode != 0
    assert "an example password is still in" in done.stderr, done.stderr[-2000:]
    assert f":{values[secret]}@" not in done.stderr  # the URL in the message is redacted


def test_the_api_refuses_an_example_rabbitmq_password(tmp_path: Path) -> None:
    env = production_env(tmp_path, real_secrets())
    env["CELERY_BROKER_URL"] = f"amqp://vocalborn:{production_example()['RABBITMQ_DEFAULT_PASS']}@127.0.0.1:9/vb"
    env["REDIS_URL"] = f"redis://:{real_secrets()['REDIS_PASSWORD']}@127.0.0.1:9/0"
    done = vocalborn(["api", "--port", "9"], env)
    assert done.returncode != 0
    assert "an example password is still in amqp://vocalborn:***@" in done.stderr, done.stderr[-2000:]


def test_flower_refuses_the_example_password(tmp_path: Path) -> None:
    values = {**real_secrets(), "FLOWER_BASIC_AUTH": production_example()["FLOWER_BASIC_AUTH"]}
    done = vocalborn(["flower"], production_env(tmp_path, values))
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH still holds an example password" in done.stderr, done.stderr[-2000:]


def test_flower_refuses_to_run_without_credentials_in_production(tmp_path: Path) -> None:
    env = production_env(tmp_path, real_secrets())
    del env["FLOWER_BASIC_AUTH"]
    done = vocalborn(["flower"], env)
    assert done.returncode != 0
    assert "Flower needs FLOWER_BASIC_AUTH" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "flower_credentials").exists()  # no generated password outside local


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("SECRET_KEY", "a" * 57, "SECRET_KEY does not look random"),
        ("SECRET_KEY", "abc123" * 8, "SECRET_KEY does not look random"),
        ("SECRET_KEY", "abcdefghijklmnopqrstuvwxyz0123456789", "SECRET_KEY does not look random"),
        ("SECRET_KEY", "Zq9-8sL2_k", "SECRET_KEY is 10 characters, at least 32"),
        ("SECRET_KEY", "password", "SECRET_KEY is a known example value"),
        ("METRICS_TOKEN", "changeme", "METRICS_TOKEN is a known example value"),
        ("METRICS_TOKEN", "", "METRICS_TOKEN must be set"),
    ],
)
def test_the_api_refuses_a_weak_secret_with_one_clear_line(name: str, value: str, reason: str, tmp_path: Path) -> None:
    env = production_env(tmp_path, real_secrets())
    env[name] = value
    done = vocalborn(["api", "--port", "9"], env)
    assert done.returncode != 0
    assert "refusing to start in production" in done.stderr and reason in done.stderr, done.stderr[-2000:]
    # one problem, one line (no list), and only the weak one is named: every other secret passed
    assert " - " not in done.stderr and done.stderr.count("refusing") == 1, done.stderr[-2000:]


def test_the_api_refuses_a_weak_password_in_a_service_url(tmp_path: Path) -> None:
    env = production_env(tmp_path, {**real_secrets(), "POSTGRES_PASSWORD": "short1"})
    done = vocalborn(["api", "--port", "9"], env)
    assert done.returncode != 0
    assert "the password in postgresql://vocalborn:***@" in done.stderr and "short1" not in done.stderr


@pytest.mark.parametrize("auth", ["admin:admin", "ops:password", "ops:aaaaaaaaaaaaaaaaaaaaaa", "ops:Zq9-8sL2"])
def test_flower_refuses_weak_or_example_credentials(auth: str, tmp_path: Path) -> None:
    done = vocalborn(["flower"], production_env(tmp_path, {**real_secrets(), "FLOWER_BASIC_AUTH": auth}))
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH" in done.stderr and "refusing to start in production" in done.stderr, done.stderr


def test_real_random_secrets_pass_the_guard() -> None:
    import secrets

    for _ in range(500):
        assert secret_problem("SECRET_KEY", secrets.token_hex(32), min_bytes=32) is None
        assert secret_problem("SECRET_KEY", secrets.token_urlsafe(32), min_bytes=32) is None
        assert secret_problem("METRICS_TOKEN", secrets.token_hex(16)) is None
        assert secret_problem("password", secrets.token_hex(8), 16) is None


def test_a_secret_key_of_16_random_bytes_is_refused_in_production() -> None:
    """The issue: refuse SECRET_KEY under 32 random bytes. 32 hex digits pass the length check
    (32 characters) but carry 16 bytes."""
    import secrets

    from vocalborn.config_secrets import random_bytes, secret_problem

    short = secrets.token_hex(16)
    problem = secret_problem("SECRET_KEY", short, min_bytes=32)
    assert problem is not None and "16 random bytes" in problem
    assert random_bytes(secrets.token_hex(32)) == 32
    assert random_bytes(secrets.token_urlsafe(32)) >= 32
