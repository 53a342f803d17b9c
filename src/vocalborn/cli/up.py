"""`vocalborn up`: the API, a worker, Beat, the events relay and Flower together, with a bundled
Redis and nats-server if none is configured; stops them all when one exits, on Ctrl-C, SIGTERM,
SIGHUP (a closed terminal) or SIGQUIT. One per data folder (cli/control.py holds the lock); no child
outlives it (vocalborn.supervision)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from vocalborn.cli import control
from vocalborn.cli.common import fail, load_settings, need_redis_for_events, run_migrations
from vocalborn.cli.run import flower_auth
from vocalborn.supervision import STOP_BUDGET_SECONDS, spawn

if TYPE_CHECKING:
    from vocalborn.embedded import EmbeddedRedis
    from vocalborn.embedded_nats import EmbeddedNats

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


def _report_worker_metrics(path: Path) -> bool:
    """Print what the worker really bound (it writes the file when its endpoint is up or failed)."""
    if not path.exists():
        return False
    status = path.read_text().strip()
    if status.startswith("http"):
        typer.echo(f"Metrics:   {status} (worker, bound)")
    else:
        typer.secho(f"Metrics:   worker endpoint not started: {status}", fg=typer.colors.YELLOW, err=True)
    return True


def _port_free(host: str, port: int) -> bool:
    import socket

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
    from vocalborn.events.consumer import load_consumers

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


class _Stack:
    """The processes `up` started, and the bundled redis-server if it started one."""

    def __init__(self, env: dict[str, str], lock_fd: int, state: dict[str, object], data: Path) -> None:
        self.env = env
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.redis_server: EmbeddedRedis | None = None
        # The data folder's lock: every child inherits it, so the folder stays locked until the
        # last process of this run has exited.
        self.lock_fd = lock_fd
        self.state = state
        self.data = data
        self.ports: dict[str, int] = {}
        self.stopping = False
        self.nats_server: EmbeddedNats | None = None

    def start_redis(self, data: Path) -> None:
        from vocalborn.embedded import EmbeddedRedis

        self.redis_server = EmbeddedRedis(data)
        self.redis_server.start(pass_fds=(self.lock_fd,))
        self.env.update(
            CELERY_BROKER_URL=f"{self.redis_server.url}/0",
            REDIS_URL=f"{self.redis_server.url}/0",
        )

    def start_nats(self, data: Path) -> None:
        from vocalborn.embedded_nats import EmbeddedNats

        self.nats_server = EmbeddedNats(data)
        try:
            self.nats_server.start(pass_fds=(self.lock_fd,))
        except RuntimeError as exc:
            if self.redis_server is not None:
                self.redis_server.stop()
            fail(str(exc))
        self.env.update(NATS_URL=self.nats_server.url)

    def start_mail(self, port: int) -> None:
        """The local mail outbox (`vocalborn mail serve`): SMTP on loopback, mail kept under the
        data folder. A child like the others (stopped with them)."""
        me = [sys.executable, "-m", "vocalborn.cli"]
        self.children.append(
            ("mail", spawn([*me, "mail", "serve", "--port", str(port)], env=self.env, pass_fds=(self.lock_fd,)))
        )
        self.ports["mail"] = port
        self.env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_STARTTLS="false")
        self.env.pop("SMTP_USERNAME", None)
        self.env.pop("SMTP_PASSWORD", None)

    def prepare_database(self) -> None:
        """Point this process at the chosen broker and database, and migrate."""
        from vocalborn.config import get_settings

        try:
            os.environ.update(
                {k: self.env[k] for k in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL") if k in self.env}
            )
            get_settings.cache_clear()
            from vocalborn.db import reset_engine

            reset_engine()
            run_migrations()
        except typer.Exit:  # a stop signal meanwhile (stop_all did the stopping)
            raise
        except Exception as exc:
            if self.redis_server is not None:
                self.redis_server.stop()
            if self.nats_server is not None:
                self.nats_server.stop()
            fail(f"could not prepare the database: {exc}")

    def start(self, plan: list[tuple[str, list[str]]]) -> None:
        for name, argv in plan:
            self.children.append((name, spawn(argv, env=self.env, pass_fds=(self.lock_fd,))))
        self.record_children()

    def record_children(self) -> None:
        """Note each child's pid and port in the data folder's state file (for status and stop)."""
        children = [{"name": name, "pid": proc.pid, "port": self.ports.get(name)} for name, proc in self.children]
        if self.redis_server is not None and self.redis_server.process is not None:
            children.append({"name": "redis", "pid": self.redis_server.process.pid, "port": self.redis_server.port})
        if self.nats_server is not None and self.nats_server.process is not None:
            children.append({"name": "nats", "pid": self.nats_server.process.pid, "port": self.nats_server.port})
        self.state["children"] = children
        self.state["ports"] = {c["name"]: c["port"] for c in children if c["port"]}
        control.write_state(self.data, self.state)

    def stop_all(self, code: int, why: str = "") -> NoReturn:
        self.stopping = True
        _say(f"\nstopping{f' ({why})' if why else ''} ...")
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        # The worker's warm shutdown: running analyses may finish within the budget; one still
        # running after it is killed, and its task is redelivered at the next start.
        deadline = time.monotonic() + STOP_BUDGET_SECONDS
        for name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"{name} did not stop within {STOP_BUDGET_SECONDS:.0f} s; killing it")
                proc.kill()
                proc.wait()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.nats_server is not None:
            self.nats_server.stop()
        with suppress(OSError):
            (self.data / control.STATE_FILE).unlink()
        _say("stopped.")
        raise typer.Exit(code)

    def on_signal(self, signum: int, _frame: object) -> None:
        """SIGTERM, SIGINT (Ctrl-C), SIGHUP (a closed terminal, a dropped SSH session) and
        SIGQUIT all mean the same graceful stop; a second one while stopping changes nothing."""
        if not self.stopping:
            self.stop_all(0, signal.Signals(signum).name)

    def supervise(self, metrics_status: Path, metrics_reported: bool) -> NoReturn:
        """Until one process exits (stop the rest, exit 1) or Ctrl-C (stop all, exit 0)."""
        try:
            watched = list(self.children)
            if self.redis_server is not None and self.redis_server.process is not None:
                watched.append(("the bundled redis-server", self.redis_server.process))
            if self.nats_server is not None and self.nats_server.process is not None:
                watched.append(("the bundled nats-server", self.nats_server.process))
            while True:
                if not metrics_reported:
                    metrics_reported = _report_worker_metrics(metrics_status)
                for name, proc in watched:
                    if proc.poll() is not None and not self.stopping:
                        _say(f"{name} exited with code {proc.returncode}; stopping the rest", typer.colors.RED)
                        self.stop_all(1)
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stop_all(0)


def _say(message: str, color: str | None = None) -> None:
    """A line on stderr; after SIGHUP the terminal may be gone, and stopping must go on anyway."""
    with suppress(OSError):
        typer.secho(message, fg=color, err=True)


_GRACEFUL_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)


def _banner(settings, stack: _Stack, host: str, port: int, wport: int, flower_line: str, data: Path) -> None:
    from vocalborn.config import get_settings, redact_url

    public = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.secho("\nVocalBorn Tasks is starting", bold=True)
    typer.echo(f"API:       http://{public}:{port}   (docs: http://{public}:{port}/docs)")
    typer.echo(flower_line)
    typer.echo(_metrics_line(settings, public, port, wport))
    typer.echo(f"Database:  {redact_url(settings.effective_database_url)}")
    from vocalborn.redis_connect import describe

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
    from vocalborn.security.datadir import secrets_lines

    password_file = stack.redis_server.password_file if stack.redis_server else None
    for line in secrets_lines(settings, data, password_file, f"http://{public}:{port}"):
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
    from vocalborn.config import get_settings
    from vocalborn.logs import setup_logging

    if data_dir is not None:
        os.environ["DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    settings = load_settings()
    need_redis_for_events(settings)  # before the banner: one line, nothing started
    setup_logging(settings.log_level, settings.log_format)
    from vocalborn.security import datadir

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
        from vocalborn.cli import alerting

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

    stack = _Stack(env, lock_fd, state, data)
    stack.ports = ports
    for sig in _GRACEFUL_SIGNALS:
        signal.signal(sig, stack.on_signal)
    if not settings.celery_broker_url and not settings.redis_sentinels:
        stack.start_redis(data)
    if not settings.nats_url:
        stack.start_nats(data)
    stack.prepare_database()
    if not settings.smtp_host:
        from vocalborn.embedded import free_port

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
