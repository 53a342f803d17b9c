"""`vocalborn migrate --wait`: a migration started before its database (a container without
health-gated ordering) keeps trying until a real PostgreSQL answers, and gives up in one line when
none ever does."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.services import in_ci

pytestmark = pytest.mark.worker


def _have_postgres() -> bool:
    return all(glob.glob(f"/usr/lib/postgresql/*/bin/{b}") or shutil.which(b) for b in ("initdb", "pg_ctl"))


@pytest.fixture
def late_postgres() -> Iterator[object]:
    if not _have_postgres():
        message = "this test starts its own PostgreSQL; initdb/pg_ctl are not installed"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from tests.faults.harness import OwnPostgres
    from vocalborn.embedded import free_port

    pg = OwnPostgres(free_port())  # initdb only: nothing listens on the port yet
    try:
        yield pg
    finally:
        pg.destroy()


def _migrate(database_url: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "CELERY_", "REDIS_"))}
    env.update(DATABASE_URL=database_url, DATA_DIR=str(tmp_path), ENVIRONMENT="local")
    return subprocess.Popen(
        [sys.executable, "-m", "vocalborn.cli", "migrate", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_migrate_waits_for_a_database_that_starts_late(late_postgres: object, tmp_path: Path) -> None:
    pg = late_postgres
    started = time.monotonic()
    proc = _migrate(pg.url, tmp_path, "--wait", "60")  # type: ignore[attr-defined]
    try:
        # two refused attempts first (read as they come: start-up time varies on a busy machine)
        early = [proc.stderr.readline() for _ in range(2)]  # type: ignore[union-attr]
        assert proc.poll() is None, f"migrate gave up before its --wait ran out: {early}"
        pg.start()  # type: ignore[attr-defined]
        out, rest = proc.communicate(timeout=90)
        err = "".join(early) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert "database is up to date" in out
    retries = [line for line in err.splitlines() if line.startswith("waiting for the database at")]
    assert len(retries) >= 2, err  # one clear line per failed attempt
    assert all("Connection refused" in line and "retrying in" in line for line in retries), retries
    assert time.monotonic() - started < 60
    # the schema really is there
    engine = create_engine(pg.url)  # type: ignore[attr-defined]
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()


def test_migrate_gives_up_in_one_line_when_the_database_never_answers(late_postgres: object, tmp_path: Path) -> None:
    pg = late_postgres
    started = time.monotonic()
    proc = _migrate(pg.url, tmp_path, "--wait", "3")  # type: ignore[attr-defined]
    out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1
    assert "database is up to date" not in out
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: the database at postgresql+psycopg://postgres") and "did not answer within" in last
    assert "Traceback" not in err
    assert 3 <= elapsed < 30  # bounded: the wait plus start-up, not a hang


def test_migrate_wait_zero_tries_once(late_postgres: object, tmp_path: Path) -> None:
    proc = _migrate(late_postgres.url, tmp_path, "--wait", "0")  # type: ignore[attr-defined]
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "(1 attempt)" in err and "waiting for the database" not in err
