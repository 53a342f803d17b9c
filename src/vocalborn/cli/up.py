"""`vocalborn up`: the API, a worker, Beat, the events relay and Flower together, with a bundled
Redis and nats-server if none is configured; stops them all when one exits, on Ctrl-C, SIGTERM,
SIGHUP (a closed terminal) or SIGQUIT. One per data folder (cli/control.py holds the lock); no child
outlives it (vocalborn.supervision)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from vocalborn.cli import control
from vocalborn.cli.common import fail, load_settings, need_redis_for_events
from vocalborn.cli.run import flower_auth
from vocalborn.cli.up_stack import GRACEFUL_SIGNALS, Stack
from vocalborn.config import get_settings, redact_url
from vocalborn.embedded import free_port
from vocalborn.events.consumer import load_consumers
from vocalborn.logs import setup_logging
from vocalborn.redis_connect import describe
from vocalborn.security import datadir

WORKER_METRICS_STATUS_ENV = "VOCALBORN_WORKER_METRICS_STATUS_FILE"


def _metrics_line(settings, api_host: str, api_port: int, worker_port: int | None = None) -> str:
    if not settings.prometheus_enabled:
        return "Metrics:   off (PROMETHEUS_ENABLED=false)"
    line = f"Metrics:   http://{api_host}:{api_port}/metrics (API)"
    wport = settings.worker_metrics_port if worker_port is None else worker_port
    if wport > 0:
        line += f"; worker on port {wport}: its URL is printed once the worker has bound it"
    else:
        line += "; worker metrics off (--worker-metrics-port 0)"
    return line


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _check_ports(
    settings, host: str, port: int, no_flower: bool, flower_port: int | None, wport: int, data: Path, mail_port: int = 0
) -> None:
    """Refuse in one line, before anything starts, if a port we would bind is taken (and by whom,
    above all when it is a process of an earlier run)."""
    wanted = [("API", host, port, "--port")]
    if not no_flower:
        wanted.append(("Flower", "127.0.0.1", flower_port or settings.flower_port, "--flower-port"))
    if wport > 0 and settings.prometheus_enabled:
        wanted.append(("worker metrics", settings.worker_metrics_host, wport, "--worker-metrics-port"))
    if mail_port and not settings.smtp_host:
        wanted.append(("mail outbox", "127.0.0.1", mail_port, "--mail-port"))
    for what, bind_host, bind_port, option in wanted:
        if not _port_free(bind_host, bind_port):
            holder = control.port_holder(data, bind_port)
            fail(
                f"port {bind_port} is already in use{f' ({holder})' if holder else ''}, so the {what} "
                f"cannot start there; choose another with {option}"
            )


def _plan(
    settings, host: str, port: int, concurrency: int | None, no_flower: bool, flower_port: int | None
) -> tuple[list[tuple[str, list[str]]], str]:
    """The child processes to start (name, argv), and the banner's Flower line."""
    me = [sys.executable, "-m", "vocalborn.cli"]
    plan: list[tuple[str, list[str]]] = [
        ("api", [*me, "api", "--host", host, "--port", str(port)]),
        (
            "worker",
            [*me, "worker", "--hostname", "worker@%h", *(["--concurrency", str(concurrency)] if concurrency else [])],
        ),
        ("beat", [*me, "beat"]),
        ("relay", [*me, "relay"]),  # the outbox's events to NATS JetStream (docs/EVENTS.md)
    ]

    if load_consumers():
        plan.append(("consumers", [*me, "consume"]))  # every registered event consumer, one process
    if no_flower:
        return plan, "Flower:    not started (--no-flower)"
    try:
        import flower as _flower  # noqa: F401
    except ImportError:
        return plan, "Flower:    not installed"
    fport = flower_port or settings.flower_port
    plan.append(("flower", [*me, "flower", "--port", str(fport)]))
    auth = flower_auth(settings) or "?:?"
    user, _, password = auth.partition(":")
    return plan, f"Flower:    http://127.0.0.1:{fport}  (user {user}, password {password})"


def _banner(settings, stack: Stack, host: str, port: int, wport: int, flower_line: str, data: Path) -> None:
    public = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.secho("\nVocalBorn Tasks is starting", bold=True)
    typer.echo(f"API:       http://{public}:{port}   (docs: http://{public}:{port}/docs)")
    typer.echo(flower_line)
    typer.echo(_metrics_line(settings, public, port, wport))
    typer.echo(f"Database:  {redact_url(settings.effective_database_url)}")

    bundled = "  (bundled redis-server)" if stack.redis_server else ""
    via = f"  ({describe(settings)})" if settings.redis_sentinels else ""
    broker = stack.env.get("CELERY_BROKER_URL") or settings.effective_broker_url
    typer.echo(f"Broker:    {redact_url(broker)}{bundled}{via}")
    typer.echo(f"Results:   {redact_url(get_settings().effective_result_backend)}  (Celery result backend)")
    nats_bundled = "  (bundled nats-server, JetStream)" if stack.nats_server else ""
    typer.echo(
        f"Events:    {redact_url(stack.env.get('NATS_URL', ''))}{nats_bundled}  (stream {settings.events_stream})"
    )
    if "mail" in stack.ports:
        typer.echo(
            f"Mail:      smtp://127.0.0.1:{stack.ports['mail']}  (local mail outbox: {data / 'mail'};"
            " vocalborn mail list)"
        )
    else:
        typer.echo(f"Mail:      smtp://{settings.smtp_host}:{settings.smtp_port}  (SMTP_HOST)")
    typer.echo(f"Data:      {data}")
    password_file = stack.redis_server.password_file if stack.redis_server else None
    for line in datadir.secrets_lines(settings, data, password_file, f"http://{public}:{port}"):
        typer.echo(line)
    if settings.therapists_may_self_register:
        typer.echo("Accounts:  open registration: anyone may register as a therapist (production: by invitation only)")
    else:
        typer.echo("Accounts:  learners self-register; therapists need an admin's invitation code")
    typer.echo(f"Press Ctrl-C to stop (or, from another terminal: vocalborn stop --data-dir {data}).\n")


def up(
    port: Annotated[int, typer.Option(help="API port")] = 8000,
    host: Annotated[str, typer.Option(help="API address")] = "127.0.0.1",
    data_dir: Annotated[Path | None, typer.Option(help="where the embedded data lives (default ./var)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="worker pool processes")] = None,
    no_flower: Annotated[bool, typer.Option("--no-flower", help="do not start Flower")] = False,
    flower_port: Annotated[int | None, typer.Option(help="Flower port")] = None,
    worker_metrics_port: Annotated[
        int | None, typer.Option(help="worker Prometheus port (default WORKER_METRICS_PORT; 0: off)")
    ] = None,
    with_alerting: Annotated[
        bool,
        typer.Option(
            "--with-alerting",
            help="also run Prometheus and Alertmanager (their binaries installed; SMTP_* and ALERT_* set)",
        ),
    ] = False,
    prometheus_port: Annotated[int, typer.Option(help="Prometheus port (--with-alerting)")] = 9090,
    alertmanager_port: Annotated[int, typer.Option(help="Alertmanager port (--with-alerting)")] = 9093,
    mail_port: Annotated[
        int, typer.Option(help="the local mail outbox's SMTP port (without SMTP_HOST; 0: a free one)")
    ] = 0,
) -> None:
    """Run API, worker, beat, the events relay and Flower together. With no configuration: SQLite,
    a bundled Redis and a bundled nats-server under ./var. With DATABASE_URL / CELERY_BROKER_URL /
    NATS_URL set, those are used instead. --with-alerting adds Prometheus and Alertmanager."""
    if data_dir is not None:
        os.environ["DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    settings = load_settings()
    need_redis_for_events(settings)  # before the banner: one line, nothing started
    setup_logging(settings.log_level, settings.log_format)
    os.umask(0o077)
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    # One `up` per data folder: the lock comes before anything is started or touched.
    try:
        lock_fd = control.lock_folder(data)
    except control.FolderBusy as busy:
        fail(control.refusal(data, busy.state))
    datadir.prepare(settings)  # umask 077, private folder, generated storage key and metrics token
    env = dict(os.environ, DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    wport = settings.worker_metrics_port if worker_metrics_port is None else worker_metrics_port
    env["WORKER_METRICS_PORT"] = str(wport)
    metrics_status = data / "worker-metrics.status"
    metrics_status.unlink(missing_ok=True)
    env[WORKER_METRICS_STATUS_ENV] = str(metrics_status)
    _check_ports(settings, host, port, no_flower, flower_port, wport, data, mail_port)
    alerting_children: list[tuple[str, list[str]]] = []
    alerting_lines: list[str] = []
    if with_alerting:
        from vocalborn.cli import alerting  # reason: yaml, for --with-alerting only

        if not settings.prometheus_enabled:
            fail("--with-alerting needs PROMETHEUS_ENABLED=true (there would be nothing to scrape)")
        for what, bind_port, option in (
            ("Prometheus", prometheus_port, "--prometheus-port"),
            ("Alertmanager", alertmanager_port, "--alertmanager-port"),
        ):
            if not _port_free("127.0.0.1", bind_port):
                fail(f"port {bind_port} is already in use, so {what} cannot start there; choose another with {option}")
        alerting_children, alerting_lines = alerting.plan(
            settings, env, data, (host, port), wport, prometheus_port, alertmanager_port
        )
    ports = {"api": port}
    if not no_flower:
        ports["flower"] = flower_port or settings.flower_port
    if wport > 0 and settings.prometheus_enabled:
        ports["worker"] = wport
    if with_alerting:
        ports |= {"prometheus": prometheus_port, "alertmanager": alertmanager_port}
    state: dict[str, object] = {
        "pid": os.getpid(),
        "started_at": time.time(),
        "data_dir": str(data),
        "api_host": host,
        "ports": ports,
        "children": [],
    }
    control.write_state(data, state)

    stack = Stack(env, lock_fd, state, data)
    stack.ports = ports
    for sig in GRACEFUL_SIGNALS:
        signal.signal(sig, stack.on_signal)
    if not settings.celery_broker_url and not settings.redis_sentinels:
        stack.start_redis(data)
    if not settings.nats_url:
        stack.start_nats(data)
    stack.prepare_database()
    if not settings.smtp_host:
        stack.start_mail(mail_port or free_port())
    if "PUBLIC_URL" not in os.environ:
        public = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        env["PUBLIC_URL"] = f"http://{public}:{port}"
    plan, flower_line = _plan(settings, host, port, concurrency, no_flower, flower_port)
    stack.start(plan + alerting_children)
    _banner(settings, stack, host, port, wport, flower_line, data)
    for line in alerting_lines:
        typer.echo(line)
    stack.supervise(metrics_status, metrics_reported=wport <= 0 or not settings.prometheus_enabled)
