from __future__ import annotations

import pytest
from pydantic import ValidationError

from vocalborn.config import Settings, normalise_database_url, redact_url


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test run's own settings live in the environment; these tests build Settings from scratch.
    for key in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "SECRET_KEY", "ENVIRONMENT"):
        monkeypatch.delenv(key, raising=False)


def test_production_refuses_to_start_with_example_or_missing_secrets() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(
            environment="production",
            secret_key="change-me-to-a-long-random-string",
            database_url="postgresql://u:p@db/x",
            celery_broker_url="redis://r:6379/0",
            _env_file=None,
        )
    with pytest.raises(ValidationError, match="example password"):
        Settings(
            environment="production",
            secret_key="x" * 40,
            database_url="postgresql://vocalborn:secure_password@db/x",
            celery_broker_url="redis://r:6379/0",
            _env_file=None,
        )
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(environment="production", secret_key="x" * 40, celery_broker_url="redis://r:6379/0", _env_file=None)


def test_production_starts_with_real_secrets() -> None:
    import base64
    import secrets

    password = secrets.token_hex(16)
    s = Settings(
        environment="production",
        secret_key=secrets.token_urlsafe(48),
        metrics_token=secrets.token_hex(32),
        storage_encryption_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        database_url=f"postgresql://vb:{password}@db/vb",
        celery_broker_url=f"redis://:{password}@redis:6379/0",
        _env_file=None,
    )
    # the result backend follows the broker's database (not a fixed db 1)
    assert s.effective_result_backend == f"redis://:{password}@redis:6379/0"
    assert s.effective_database_url.startswith("postgresql+psycopg://")


def test_a_non_redis_broker_needs_redis_for_progress_events() -> None:
    s = Settings(celery_broker_url="amqp://guest:guest@127.0.0.1:5672//", _env_file=None)
    with pytest.raises(ValueError, match="REDIS_URL"):
        _ = s.effective_redis_url
    s = Settings(
        celery_broker_url="amqp://guest:guest@127.0.0.1:5672//", redis_url="redis://127.0.0.1:6379/3", _env_file=None
    )
    assert s.effective_result_backend == "redis://127.0.0.1:6379/3"


def test_the_result_backend_follows_the_brokers_database() -> None:
    s = Settings(celery_broker_url="redis://127.0.0.1:6379/5", _env_file=None)
    assert s.effective_result_backend == "redis://127.0.0.1:6379/5"
    s = Settings(
        celery_broker_url="redis://127.0.0.1:6379/5", celery_result_backend="redis://other:6379/2", _env_file=None
    )
    assert s.effective_result_backend == "redis://other:6379/2"


def test_urls_are_normalised_and_redacted() -> None:
    assert normalise_database_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert redact_url("redis://:hunter2@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / ".env.example").read_text()
    documented = {m.group(1).lower() for m in re.finditer(r"^#?\s?([A-Z][A-Z0-9_]+)=", text, re.M)}
    fields = set(Settings.model_fields)
    assert documented == fields, {"undocumented": fields - documented, "unknown": documented - fields}


def test_production_never_opens_therapist_self_registration() -> None:
    """Issue 12: in production self-registration makes learners only, even if
    OPEN_THERAPIST_REGISTRATION=true is left in the environment; elsewhere it is open by default."""
    import base64
    import secrets

    password = secrets.token_hex(16)
    real = dict(
        secret_key=secrets.token_hex(32),
        metrics_token=secrets.token_hex(32),
        storage_encryption_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        database_url=f"postgresql://vb:{password}@db/vb",
        celery_broker_url=f"redis://:{password}@redis:6379/0",
        _env_file=None,
    )
    assert Settings(environment="production", **real).therapists_may_self_register is False
    opened = Settings(environment="production", open_therapist_registration=True, **real)
    assert opened.therapists_may_self_register is False
    assert Settings(_env_file=None).therapists_may_self_register is True
    assert Settings(open_therapist_registration=False, _env_file=None).therapists_may_self_register is False
