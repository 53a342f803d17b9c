"""Where the tests find PostgreSQL and Redis.

URLs come from TEST_DATABASE_URL / TEST_REDIS_URL, defaulting to the local servers. When one is
unreachable and CI is unset, the tests fall back to the embedded default (SQLite, the bundled
redis-server) so a fresh laptop still passes. In CI a missing service is a failure.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"


class ServiceMissing(RuntimeError):
    pass


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@dataclass
class ServicesUnderTest:
    run_id: str
    data_dir: Path
    database_url: str
    database_kind: str
    redis_url: str  # with the db index
    redis_kind: str
    _pg_admin_url: str | None = None
    _pg_db: str | None = None
    _embedded: object | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """Environment for every process of this test run (in-process settings and children)."""
        return {
            "ENVIRONMENT": "test",
            "DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.redis_url,
            "CELERY_RESULT_BACKEND": self.redis_url,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": f"vbtest-{self.run_id}:",
            "TASK_QUEUE": f"ai_analysis_{self.run_id}",
            "MAINTENANCE_QUEUE": f"maintenance_{self.run_id}",
            "SECRET_KEY": "test-secret-" + self.run_id * 4,
            # Every in-process request comes from one address ("testclient"): the per-address limits
            # would count the whole suite. Tests of those limits set their own (tests/security).
            "RATE_LIMIT_REGISTER_PER_ADDRESS": "0",
            "RATE_LIMIT_LOGIN_PER_ADDRESS": "0",
            "RATE_LIMIT_LINK_ACCEPTS_PER_ADDRESS": "0",
            "RATE_LIMIT_PASSWORD_RESET_PER_ADDRESS": "0",
            "TASK_MAX_RETRIES": "3",
            "RETRY_BACKOFF_BASE": "0.2",
            "RETRY_BACKOFF_MAX": "1",
            "TASK_HEARTBEAT_SECONDS": "0.5",
            "TASK_LEASE_SECONDS": "3",
            "TASK_SOFT_TIME_LIMIT": "20",
            "TASK_TIME_LIMIT": "25",
            "BROKER_VISIBILITY_TIMEOUT": "30",
            "PROGRESS_WRITE_INTERVAL": "0",
            "REPUBLISH_AFTER_SECONDS": "1",
            "REPUBLISH_INTERVAL_SECONDS": "1",
            "REAPER_INTERVAL_SECONDS": "1",
            # A Beat killed with its lease must not hold up the next test's Beat for long.
            "BEAT_LEASE_SECONDS": "3",
            "LOG_LEVEL": "INFO",
            # Workers of different tests must not fight over the default metrics port; tests
            # that scrape a worker give it a port of its own.
            "WORKER_METRICS_PORT": "0",
        }

    def cleanup(self) -> None:
        try:
            client = redis.Redis.from_url(self.redis_url)
            env = self.env
            patterns = [f"{env['REDIS_KEY_PREFIX']}*", f"*{self.run_id}*"]
            for pattern in patterns:
                for key in client.scan_iter(match=pattern, count=500):
                    client.delete(key)
            client.close()
        except redis.RedisError:
            pass
        if self._pg_admin_url and self._pg_db:
            engine = create_engine(self._pg_admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_db}" WITH (FORCE)'))
            engine.dispose()
        if self._embedded is not None:
            self._embedded.stop()  # type: ignore[attr-defined]


def _postgres(run_id: str) -> tuple[str, str, str] | None:
    admin_url = os.environ.get("TEST_DATABASE_URL", DEFAULT_PG)
    url = make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    if not url.drivername.startswith("postgresql"):
        return None
    admin = create_engine(url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            name = f"vb_test_{run_id}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise ServiceMissing(f"PostgreSQL at {url.render_as_string(hide_password=True)}: {exc}") from exc
    finally:
        admin.dispose()
    return url.render_as_string(hide_password=False), name, url.set(database=name).render_as_string(hide_password=False)


def discover() -> ServicesUnderTest:
    run_id = secrets.token_hex(4)
    data_dir = Path(tempfile.mkdtemp(prefix=f"vbtest-{run_id}-"))
    notes: list[str] = []

    pg_admin = pg_db = None
    try:
        got = _postgres(run_id)
        if got is None:
            database_url, database_kind = os.environ["TEST_DATABASE_URL"], "custom"
        else:
            pg_admin, pg_db, database_url = got
            database_kind = "postgresql"
    except ServiceMissing as exc:
        if in_ci():
            raise
        notes.append(f"{exc}; using SQLite")
        database_url, database_kind = f"sqlite:///{data_dir / 'test.sqlite3'}", "sqlite"

    redis_url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS)
    embedded = None
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        client.ping()
        client.close()
        redis_kind = "redis"
    except redis.RedisError as exc:
        if in_ci():
            raise ServiceMissing(f"Redis at {redis_url}: {exc}") from exc
        from vocalborn.embedded import EmbeddedRedis

        embedded = EmbeddedRedis(data_dir)
        embedded.start()
        notes.append(f"Redis at {redis_url} unreachable ({exc}); using the bundled redis-server")
        redis_url, redis_kind = f"{embedded.url}/0", "embedded"

    return ServicesUnderTest(
        run_id, data_dir, database_url, database_kind, redis_url, redis_kind, pg_admin, pg_db, embedded, notes
    )
