"""One engine and one session factory per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlmodel import Session

from vocalborn import models  # noqa: F401 - registers every table on the metadata
from vocalborn.config import Settings, get_settings

_engine: Engine | None = None


@cache
def deadline_connection_class() -> Any:
    """A psycopg connection whose every wait on the server has a deadline.

    ``statement_timeout`` is enforced by the server, so a server that cannot answer at all
    (SIGSTOP, a partition: the kernel still acknowledges our packets, so TCP timeouts never fire)
    would leave a query, or the pool's pre-ping, waiting forever. Here each round trip gives up
    after ``io_timeout`` seconds, the connection is closed (it is in an unknown state) and a
    ``psycopg.OperationalError`` says so: the API turns it into 503, workers retry."""
    import psycopg
    from psycopg import errors

    class DeadlineConnection(psycopg.Connection):
        io_timeout: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            limit = timeout if timeout is not None else self.io_timeout
            try:
                return super().wait(gen, interval=interval, timeout=limit)
            except errors._WaitTimeout:
                self.pgconn.finish()
                raise psycopg.OperationalError(f"the database did not answer within {limit:g} s") from None

    return DeadlineConnection


def make_engine(settings: Settings, *, for_migrations: bool = False) -> Engine:
    """The process's engine. ``for_migrations``: no statement deadline (DDL may take long)."""
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the API read while a worker writes; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    statement_ms = 0 if for_migrations else int(settings.database_statement_timeout * 1000)
    engine = create_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=settings.database_pool_timeout,
        connect_args={
            "connect_timeout": settings.database_connect_timeout,
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
        },
    )
    if url.startswith("postgresql+psycopg") and not for_migrations:
        connection_class = deadline_connection_class()
        io_timeout = settings.database_statement_timeout + 0.5

        @event.listens_for(engine, "do_connect")
        def _connect_with_deadline(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            conn = connection_class.connect(*cargs, **cparams)
            conn.io_timeout = io_timeout
            return conn

    return engine


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = make_engine(get_settings())
    return _engine


def reset_engine() -> None:
    """Forget the engine (after fork, or when tests change settings)."""
    global _engine
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None


@contextmanager
def open_session() -> Iterator[Session]:
    """A session that is closed on exit. It neither commits nor rolls back: the caller commits
    what it means to keep (a transaction left open is rolled back by the close)."""
    with Session(get_engine(), expire_on_commit=False) as session:
        yield session


def get_db() -> Iterator[Session]:
    """FastAPI dependency: one session per request (the same as ``open_session``)."""
    with open_session() as session:
        yield session
