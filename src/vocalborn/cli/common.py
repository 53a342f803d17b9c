"""What the command families share: settings that fail in one line, and migrations."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from vocalborn.config import get_settings, redact_url


def load_settings(need_broker: bool = False):
    """The settings, or one line on stderr and exit 1 if the configuration is invalid (or, with
    ``need_broker``, names no broker)."""
    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:  # e.g. production refusing an example secret: say so, no traceback
        reasons = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
        fail(f"invalid configuration: {reasons}")
    if settings.environment == "local":
        # The embedded default keeps health data under DATA_DIR: nothing this process (or a child
        # it starts) creates there is readable by another local user.
        os.umask(0o077)
    if need_broker:
        try:
            _ = settings.effective_broker_url
        except RuntimeError as exc:  # nothing configured and no embedded Redis running
            fail(str(exc))
        need_redis_for_events(settings)
    return settings


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="the data folder `vocalborn up` uses (default DATA_DIR, ./var)", show_default=False
    ),
]


def settings_for(data_dir: Path | None):
    """``load_settings`` with ``--data-dir`` (as DATA_DIR) when given."""
    if data_dir is not None:
        os.environ["DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()  # the CLI's configuration check read them before the option
    return load_settings()


def need_database(settings) -> None:
    """One line and exit 1 when the database has no tables (never migrated, or the wrong
    folder), instead of a traceback from the first query. A SQLite file that does not exist is
    not created (opening it would leave an empty database behind)."""
    import sqlite3

    url = settings.effective_database_url
    hint = "run `vocalborn migrate`, or point --data-dir at the folder `vocalborn up` uses"
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1]) if ":///" in url else None
        if path is None or not path.is_file():
            fail(f"no database at {path}: {hint}")
        assert path is not None
        try:
            with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
                found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='users'").fetchone()
        except sqlite3.Error as exc:
            fail(f"the database {path} cannot be read ({exc}): {hint}")
            return
        if found is None:
            fail(f"the database {path} has no tables: {hint}")
        return
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        present = inspect(engine).has_table("users")
    except Exception as exc:
        fail(f"the database cannot be reached: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return
    finally:
        engine.dispose()
    if not present:
        fail(f"the database has no tables: {hint}")


def need_redis_for_events(settings) -> None:
    """A broker that is not Redis (RabbitMQ) still needs a Redis for progress events: refuse
    at once, in one line, before anything starts."""
    broker = settings.celery_broker_url
    if broker and not broker.startswith(("redis", "rediss")) and not settings.redis_url:
        fail(
            "CELERY_BROKER_URL is not Redis, so REDIS_URL must name a Redis for progress events "
            "(e.g. REDIS_URL=redis://127.0.0.1:6379/0)"
        )


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "alembic.ini").exists():
            return parent
    return Path.cwd()


def run_migrations() -> None:
    from alembic import command
    from alembic.config import Config

    root = _repo_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "alembic"))
    cfg.attributes["skip_logging_config"] = True
    import logging

    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # one line per plugin otherwise
    command.upgrade(cfg, "head")


def wait_for_database(settings: Any, seconds: float) -> None:
    """Return once the database answers ``SELECT 1``; retry connection errors for ``seconds``
    (one line on stderr per retry), then exit 1 with one line. Only connecting is retried: an
    error of the migration itself is not a database that is still starting."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from vocalborn.db import make_engine  # reason: cli/__init__ imports common: --help stays cheap

    url = redact_url(settings.effective_database_url)
    started = time.monotonic()
    deadline = started + seconds
    attempt, pause = 0, 0.5
    while True:
        attempt += 1
        engine = make_engine(settings, for_migrations=True)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            if attempt > 1:
                typer.echo(f"database answered after {time.monotonic() - started:.1f} s ({attempt} attempts)")
            return
        except DBAPIError as exc:
            reason = _first_line(exc.orig if exc.orig is not None else exc)
        finally:
            engine.dispose()
        left = deadline - time.monotonic()
        if left <= 0:
            waited = time.monotonic() - started
            fail(
                f"the database at {url} did not answer within {waited:.0f} s ({attempt} attempt{'' if attempt == 1 else 's'}): {reason}"
            )
        pause = min(pause, left)
        typer.echo(
            f"waiting for the database at {url}: attempt {attempt} failed ({reason}); "
            f"retrying in {pause:.1f} s, {left:.1f} s left",
            err=True,
        )
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
