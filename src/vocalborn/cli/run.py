"""One process at a time: `vocalborn migrate`, `api`, `worker`, `beat` and `flower`."""

from __future__ import annotations

import os
import secrets
from typing import Annotated

import typer

from vocalborn.cli.common import fail, load_settings, run_migrations, wait_for_database
from vocalborn.config import redact_url
from vocalborn.config_secrets import EXAMPLE_SECRETS, secret_problem
from vocalborn.events import consumer as event_consumer
from vocalborn.events import relay as event_relay
from vocalborn.logs import setup_logging
from vocalborn.supervision import watch_supervisor


def migrate(
    wait: Annotated[
        float,
        typer.Option(
            help="seconds to keep retrying until the database answers (0: one try); "
            "for a container started before its database"
        ),
    ] = 60,
) -> None:
    """Bring the database schema up to date (alembic upgrade head)."""

    settings = load_settings()
    url = settings.effective_database_url
    if wait < 0:
        fail("--wait must be 0 or more seconds")
    wait_for_database(settings, wait)
    typer.echo(f"migrating {redact_url(url)} ...")
    run_migrations()
    typer.echo("database is up to date")


def api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the HTTP API (uvicorn)."""
    settings = load_settings(need_broker=True)
    watch_supervisor()  # started by `vocalborn up`: stop when it is gone
    import uvicorn

    setup_logging(settings.log_level, settings.log_format)
    # X-Forwarded-For / -Proto are believed only from FORWARDED_ALLOW_IPS (empty: from nobody).
    # uvicorn's own default trusts 127.0.0.1, which on one machine is every local client: anyone
    # could then pick the address the rate limits count and the access log records.
    trusted = settings.forwarded_allow_ips.strip()
    uvicorn.run(
        "vocalborn.main:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        timeout_graceful_shutdown=10,
    )


def worker(
    concurrency: Annotated[int | None, typer.Option(help="pool processes (default CELERY_WORKER_CONCURRENCY)")] = None,
    hostname: Annotated[str | None, typer.Option(help="node name, e.g. worker-1@%h")] = None,
    pool: Annotated[str, typer.Option(help="prefork (default) or solo")] = "prefork",
    queues: Annotated[
        str, typer.Option(help="both (default), analysis, or maintenance (a small dedicated worker for Beat's jobs)")
    ] = "both",
) -> None:
    """Run a Celery worker on the analysis queue (and Beat's maintenance queue)."""
    settings = load_settings(need_broker=True)
    watch_supervisor()  # started by `vocalborn up`: warm shutdown when it is gone
    from vocalborn.celery_app import celery_app  # reason: Celery: worker, beat, flower only
    from vocalborn.tasks.worker import tasks as _tasks  # noqa: F401  # reason: Celery: worker only

    chosen = {
        "both": [settings.task_queue, settings.maintenance_queue],
        "analysis": [settings.task_queue],
        "maintenance": [settings.maintenance_queue],
    }.get(queues)
    if chosen is None:
        fail(f"--queues must be both, analysis or maintenance, not {queues!r}")
    assert chosen is not None
    if pool == "solo":
        typer.secho(
            "warning: the solo pool applies no time limits; a hung analysis is only stopped by a forced cancel",
            fg=typer.colors.YELLOW,
            err=True,
        )
    argv = [
        "worker",
        f"--queues={','.join(chosen)}",
        f"--concurrency={concurrency or settings.celery_worker_concurrency}",
        f"--loglevel={settings.log_level}",
        f"--pool={pool}",
        "--without-mingle",
        "--without-gossip",
    ]
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery_app.worker_main(argv)


def relay() -> None:
    """Publish the outbox's integration events to NATS JetStream (NATS_URL); docs/EVENTS.md.
    Run one: a second waits as a standby (PostgreSQL) and takes over when the first stops."""
    settings = load_settings()
    if not settings.nats_url:
        fail("NATS_URL is not set: point it at a NATS server with JetStream (vocalborn up runs one itself)")

    setup_logging(settings.log_level, settings.log_format)
    event_relay.run_forever(settings, settings.nats_url)


def consume(
    names: Annotated[list[str] | None, typer.Argument(help="the consumers to run (default: every one)")] = None,
) -> None:
    """Run event consumers (durable JetStream pull consumers on NATS_URL); docs/EVENTS.md. Run as
    many processes as you like: they share each consumer's messages."""
    settings = load_settings()
    if not settings.nats_url:
        fail("NATS_URL is not set: point it at a NATS server with JetStream (vocalborn up runs one itself)")
    watch_supervisor()

    known = event_consumer.load_consumers()
    chosen = list(names or known)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        fail(f"no consumer named {', '.join(unknown)}; there are: {', '.join(sorted(known)) or 'none'}")
    if not chosen:
        fail("no consumers are registered")
    setup_logging(settings.log_level, settings.log_format)
    event_consumer.run_forever(chosen, settings, settings.nats_url)


def beat() -> None:
    """Run Celery beat: republisher, reaper, cleanup, health check. Only the one holding a lease
    in Redis schedules; another on the same broker waits and takes over if it lapses."""
    settings = load_settings(need_broker=True)
    watch_supervisor()
    from vocalborn.celery_app import celery_app  # reason: Celery: worker, beat, flower only

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.data_dir / "celerybeat-schedule"
    celery_app.start(["beat", f"--schedule={schedule}", f"--loglevel={settings.log_level}"])


def flower_auth(settings) -> str | None:
    """FLOWER_BASIC_AUTH, or locally a generated one kept under the data directory."""
    if settings.flower_basic_auth:
        return str(settings.flower_basic_auth)
    if settings.environment == "local":
        path = settings.data_dir / "flower_credentials"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"admin:{secrets.token_urlsafe(12)}")
            path.chmod(0o600)
        return path.read_text().strip()
    return None


def _protect_flower_metrics() -> None:
    """Flower 2.2 serves /metrics (task counts, worker host names) without asking for its basic
    auth: only handlers marked ``authenticated`` check it. Mark that one too."""
    import tornado.web
    from flower.views import monitor

    if not getattr(monitor.Metrics.get, "_vocalborn_protected", False):
        protected = tornado.web.authenticated(monitor.Metrics.get)
        protected._vocalborn_protected = True  # type: ignore[attr-defined]  # marks the patched method, so it is patched once
        monitor.Metrics.get = protected


def flower(
    port: Annotated[int | None, typer.Option(help="port (default FLOWER_PORT)")] = None,
    address: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
) -> None:
    """Run Flower behind basic auth (FLOWER_BASIC_AUTH=user:password)."""
    settings = load_settings(need_broker=True)
    watch_supervisor()
    from vocalborn.celery_app import celery_app  # reason: Celery: worker, beat, flower only

    auth = flower_auth(settings)
    if not auth or ":" not in auth:
        fail("Flower needs FLOWER_BASIC_AUTH=user:password (refusing to serve task data without auth)")
    assert auth is not None
    if settings.environment == "production":
        if auth.lower() in EXAMPLE_SECRETS or auth.split(":", 1)[1].lower() in EXAMPLE_SECRETS:
            fail("FLOWER_BASIC_AUTH still holds an example password; refusing to start in production")
        problem = secret_problem("FLOWER_BASIC_AUTH", auth, 16)
        if problem:
            fail(f"refusing to start in production: {problem}")
    # Through the environment (Flower reads FLOWER_* variables), not argv: argv shows in `ps`.
    os.environ["FLOWER_BASIC_AUTH"] = auth
    _protect_flower_metrics()
    celery_app.start(
        [
            "flower",
            f"--port={port or settings.flower_port}",
            f"--address={address}",
            "--persistent=False",
            "--purge_offline_workers=300",
        ]
    )
