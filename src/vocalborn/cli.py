"""The `vocalborn` command: run the stack or any one process, migrate, manage users, analyse."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="VocalBorn Tasks: asynchronous speech-practice analysis.", no_args_is_help=True, add_completion=False
)
users_app = typer.Typer(help="Manage accounts (admins are created here only).", no_args_is_help=True)
app.add_typer(users_app, name="users")
storage_app = typer.Typer(help="Stored recordings: encryption at rest.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")


@storage_app.command("rotate")
def storage_rotate() -> None:
    """Re-encrypt every stored recording not written with the current key (STORAGE_ENCRYPTION_KEY_ID,
    default the last of STORAGE_ENCRYPTION_KEYS), plain files included. Safe to run again."""
    from vocalborn.storage import MissingKey, get_storage

    settings = _settings()
    try:
        report = get_storage().rotate()
    except MissingKey as exc:
        _fail(str(exc))
    typer.echo(
        f"{settings.storage_dir}: re-encrypted {report.reencrypted}, already current {report.already_current}, "
        f"failed {report.failed}"
    )
    if report.failed:
        raise typer.Exit(1)


def _settings(need_broker: bool = False):
    from pydantic import ValidationError

    from vocalborn.config import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:  # e.g. production refusing an example secret: say so, no traceback
        reasons = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())
        _fail(f"invalid configuration: {reasons}")
    if need_broker:
        try:
            _ = settings.effective_broker_url
        except RuntimeError as exc:  # nothing configured and no embedded Redis running
            _fail(str(exc))
        _need_redis_for_events(settings)
    return settings


def _need_redis_for_events(settings) -> None:
    """A broker that is not Redis (RabbitMQ) still needs a Redis for progress events: refuse
    at once, in one line, before anything starts."""
    broker = settings.celery_broker_url
    if broker and not broker.startswith(("redis", "rediss")) and not settings.redis_url:
        _fail(
            "CELERY_BROKER_URL is not Redis, so REDIS_URL must name a Redis for progress events "
            "(e.g. REDIS_URL=redis://127.0.0.1:6379/0)"
        )


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "alembic.ini").exists():
            return parent
    return Path.cwd()


# --- database ----------------------------------------------------------------------------------
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


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (alembic upgrade head)."""
    from vocalborn.config import redact_url

    url = _settings().effective_database_url
    typer.echo(f"migrating {redact_url(url)} ...")
    run_migrations()
    typer.echo("database is up to date")


# --- single processes ----------------------------------------------------------------------------
@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to serve on")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the HTTP API (uvicorn)."""
    settings = _settings(need_broker=True)
    import uvicorn

    from vocalborn.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "vocalborn.main:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="pool processes (default CELERY_WORKER_CONCURRENCY)")] = None,
    hostname: Annotated[str | None, typer.Option(help="node name, e.g. worker-1@%h")] = None,
    pool: Annotated[str, typer.Option(help="prefork (default) or solo")] = "prefork",
    queues: Annotated[
        str, typer.Option(help="both (default), analysis, or maintenance (a small dedicated worker for Beat's jobs)")
    ] = "both",
) -> None:
    """Run a Celery worker on the analysis queue (and Beat's maintenance queue)."""
    settings = _settings(need_broker=True)
    from vocalborn.celery_app import celery_app
    from vocalborn.tasks import worker as _tasks  # noqa: F401 - registers the tasks

    chosen = {
        "both": [settings.task_queue, settings.maintenance_queue],
        "analysis": [settings.task_queue],
        "maintenance": [settings.maintenance_queue],
    }.get(queues)
    if chosen is None:
        _fail(f"--queues must be both, analysis or maintenance, not {queues!r}")
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


@app.command()
def beat() -> None:
    """Run Celery beat: republisher, reaper, cleanup, health check. Run exactly one."""
    settings = _settings(need_broker=True)
    from vocalborn.celery_app import celery_app

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schedule = settings.data_dir / "celerybeat-schedule"
    celery_app.start(["beat", f"--schedule={schedule}", f"--loglevel={settings.log_level}"])


def _flower_auth(settings) -> str | None:
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


@app.command()
def flower(
    port: Annotated[int | None, typer.Option(help="port (default FLOWER_PORT)")] = None,
    address: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
) -> None:
    """Run Flower behind basic auth (FLOWER_BASIC_AUTH=user:password)."""
    settings = _settings(need_broker=True)
    from vocalborn.celery_app import celery_app
    from vocalborn.config import EXAMPLE_SECRETS, secret_problem

    auth = _flower_auth(settings)
    if not auth or ":" not in auth:
        _fail("Flower needs FLOWER_BASIC_AUTH=user:password (refusing to serve task data without auth)")
    assert auth is not None
    if settings.environment == "production":
        if auth.lower() in EXAMPLE_SECRETS or auth.split(":", 1)[1].lower() in EXAMPLE_SECRETS:
            _fail("FLOWER_BASIC_AUTH still holds an example password; refusing to start in production")
        problem = secret_problem("FLOWER_BASIC_AUTH", auth, 16)
        if problem:
            _fail(f"refusing to start in production: {problem}")
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


WORKER_METRICS_STATUS_ENV = "VOCALBORN_WORKER_METRICS_STATUS_FILE"


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


# --- everything at once ----------------------------------------------------------------------------
@app.command()
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
) -> None:
    """Run API, worker, beat and Flower together. With no configuration: SQLite and a bundled
    Redis under ./var. With DATABASE_URL / CELERY_BROKER_URL set, those are used instead."""
    from vocalborn.config import get_settings, redact_url
    from vocalborn.embedded import EmbeddedRedis
    from vocalborn.logs import setup_logging

    if data_dir is not None:
        os.environ["DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    settings = _settings()
    _need_redis_for_events(settings)  # before the banner: one line, nothing started
    setup_logging(settings.log_level, settings.log_format)
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATA_DIR=str(data), PYTHONUNBUFFERED="1")
    wport = settings.worker_metrics_port if worker_metrics_port is None else worker_metrics_port
    env["WORKER_METRICS_PORT"] = str(wport)
    metrics_status = data / "worker-metrics.status"
    metrics_status.unlink(missing_ok=True)
    env[WORKER_METRICS_STATUS_ENV] = str(metrics_status)
    wanted = [("API", host, port, "--port")]
    if not no_flower:
        wanted.append(("Flower", "127.0.0.1", flower_port or settings.flower_port, "--flower-port"))
    if wport > 0 and settings.prometheus_enabled:
        wanted.append(("worker metrics", settings.worker_metrics_host, wport, "--worker-metrics-port"))
    for what, bind_host, bind_port, option in wanted:
        if not _port_free(bind_host, bind_port):
            _fail(f"port {bind_port} is already in use, so the {what} cannot start there; choose another with {option}")

    redis_server: EmbeddedRedis | None = None
    if not settings.celery_broker_url:
        redis_server = EmbeddedRedis(data)
        redis_server.start()
        env.update(
            CELERY_BROKER_URL=f"{redis_server.url}/0",
            REDIS_URL=f"{redis_server.url}/0",
        )
    broker_url = env.get("CELERY_BROKER_URL", "")

    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def stop_all(code: int) -> None:
        typer.echo("\nstopping ...", err=True)
        for _name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _name, proc in reversed(children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if redis_server is not None:
            redis_server.stop()
        typer.echo("stopped.", err=True)
        raise typer.Exit(code)

    try:
        os.environ.update({k: env[k] for k in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL") if k in env})
        get_settings.cache_clear()
        from vocalborn.db import reset_engine

        reset_engine()
        run_migrations()
    except Exception as exc:
        if redis_server is not None:
            redis_server.stop()
        _fail(f"could not prepare the database: {exc}")

    me = [sys.executable, "-m", "vocalborn.cli"]
    plan: list[tuple[str, list[str]]] = [
        ("api", [*me, "api", "--host", host, "--port", str(port)]),
        (
            "worker",
            [*me, "worker", "--hostname", "worker@%h", *(["--concurrency", str(concurrency)] if concurrency else [])],
        ),
        ("beat", [*me, "beat"]),
    ]
    flower_line = "Flower:    not started (--no-flower)"
    if not no_flower:
        try:
            import flower as _flower  # noqa: F401

            fport = flower_port or settings.flower_port
            plan.append(("flower", [*me, "flower", "--port", str(fport)]))
            auth = _flower_auth(settings) or "?:?"
            user, _, password = auth.partition(":")
            flower_line = f"Flower:    http://127.0.0.1:{fport}  (user {user}, password {password})"
        except ImportError:
            flower_line = "Flower:    not installed"

    for name, argv in plan:
        children.append((name, subprocess.Popen(argv, env=env, start_new_session=True)))

    signal.signal(signal.SIGTERM, lambda *_: stop_all(0))
    public = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.secho("\nVocalBorn Tasks is starting", bold=True)
    typer.echo(f"API:       http://{public}:{port}   (docs: http://{public}:{port}/docs)")
    typer.echo(flower_line)
    typer.echo(_metrics_line(settings, public, port, wport))
    typer.echo(f"Database:  {redact_url(settings.effective_database_url)}")
    typer.echo(f"Broker:    {redact_url(broker_url)}{'  (bundled redis-server)' if redis_server else ''}")
    typer.echo(f"Results:   {redact_url(get_settings().effective_result_backend)}  (Celery result backend)")
    typer.echo(f"Data:      {data}")
    if settings.therapists_may_self_register:
        typer.echo("Accounts:  open registration: anyone may register as a therapist (production: by invitation only)")
    else:
        typer.echo("Accounts:  learners self-register; therapists need an admin's invitation code")
    typer.echo("Press Ctrl-C to stop.\n")
    try:
        watched = list(children)
        if redis_server is not None and redis_server.process is not None:
            watched.append(("the bundled redis-server", redis_server.process))
        metrics_reported = wport <= 0 or not settings.prometheus_enabled
        while True:
            if not metrics_reported:
                metrics_reported = _report_worker_metrics(metrics_status)
            for name, proc in watched:
                if proc.poll() is not None:
                    typer.secho(
                        f"{name} exited with code {proc.returncode}; stopping the rest", fg=typer.colors.RED, err=True
                    )
                    stop_all(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop_all(0)


# --- users -----------------------------------------------------------------------------------------
@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="login email")],
    name: Annotated[str, typer.Option(help="display name")],
    role: Annotated[str, typer.Option(help="learner, therapist or admin")] = "admin",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="VOCALBORN_PASSWORD",
            help="or set VOCALBORN_PASSWORD",
        ),
    ] = "",
) -> None:
    """Create an account; the only way to make an admin."""
    from vocalborn.auth import service
    from vocalborn.auth.models import Role
    from vocalborn.db import open_session

    if role not in {r.value for r in Role}:
        _fail(f"role must be learner, therapist or admin, not {role!r}")
    if len(password) < 8:
        _fail("the password needs at least 8 characters")
    with open_session() as db:
        try:
            user = service.create_user(db, email=email, password=password, name=name, role=Role(role))
        except service.EmailTaken:
            _fail(f"an account with email {email} already exists")
    typer.echo(f"created {role} {user.email} ({user.user_id})")


@users_app.command("link")
def users_link(
    learner: Annotated[str, typer.Argument(help="learner's email")],
    therapist: Annotated[str, typer.Argument(help="therapist's email")],
) -> None:
    """Let a therapist read a learner's analyses."""
    from vocalborn.auth import service
    from vocalborn.db import open_session

    with open_session() as db:
        lrn = service.get_user_by_email(db, learner)
        thr = service.get_user_by_email(db, therapist)
        if lrn is None or thr is None:
            _fail("both accounts must exist")
        assert lrn is not None and thr is not None
        try:
            service.link_therapist(db, lrn, thr)
        except ValueError as exc:
            _fail(str(exc))
    typer.echo(f"{learner} is now linked to therapist {therapist}")


# --- analysis without a server ---------------------------------------------------------------------
@app.command()
def analyze(
    reference: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the therapist's recording")],
    attempt: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the learner's recording")],
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
    language: Annotated[str, typer.Option("--lang", "--language", help="zh-TW or en")] = "zh-TW",
    text: Annotated[
        str | None, typer.Option("--text", help="the sentence both recordings say: judges every character")
    ] = None,
) -> None:
    """Compare two recordings and print the report, without any server."""
    from vocalborn.analysis.engine import analyze as run
    from vocalborn.analysis.types import AnalysisInputError

    try:
        report = run(reference, attempt, {"language": language, **({"text": text} if text else {})})
    except AnalysisInputError as exc:
        _fail(str(exc), code=2)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        from vocalborn.analysis.report_text import format_report

        typer.echo(format_report(report, lang=language))


@app.command("sample-audio")
def sample_audio(
    directory: Annotated[Path, typer.Argument(help="where to write the recordings")] = Path("samples"),
    text: Annotated[str, typer.Option(help="the sentence")] = "今天天氣很好，我們去公園散步。",
) -> None:
    """Write a sample reference (female voice, WAV) and learner attempt (male voice, MP3) of a
    sentence, made offline with Praat's speech synthesiser, for trying the API."""
    from vocalborn.analysis.synth import synthesize

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "reference.wav").write_bytes(synthesize(text, "zh", "Female1", fmt="wav"))
    (directory / "attempt.mp3").write_bytes(synthesize(text, "zh", "Male1", fmt="mp3"))
    typer.echo(f"wrote {directory / 'reference.wav'} and {directory / 'attempt.mp3'}")


# --- a client of a running API: upload, submit, watch, print ------------------------------------
# Exit codes of `vocalborn submit`.
SUBMIT_OK = 0
SUBMIT_ANALYSIS_FAILED = 1  # failed, cancelled, or not finished within --timeout
SUBMIT_AUTH = 3  # wrong email or password, token refused, not allowed
SUBMIT_UNREACHABLE = 4  # no API at --url, or it answered 5xx
SUBMIT_REJECTED = 5  # the API refused the request: unknown sentence, unusable audio, ...


class _SubmitError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _ApiClient:
    """Just enough of the HTTP API for `vocalborn submit`, with errors in words."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(60.0, connect=5.0))

    def call(self, method: str, path: str, token: str | None = None, **kwargs):
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            r = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise _SubmitError(f"cannot reach the API at {self.url} ({type(exc).__name__}: {exc})", 4) from None
        if r.status_code < 400:
            return r.json()
        try:
            body = r.json()
            detail = body.get("message") or body.get("detail")
        except ValueError:
            detail = r.text[:300]
        if not isinstance(detail, str):
            detail = json.dumps(detail, ensure_ascii=False)
        code = 3 if r.status_code in (401, 403) else 4 if r.status_code >= 500 else 5
        raise _SubmitError(f"{method} {path}: {r.status_code} {detail}", code)

    def login(self, email: str | None, password: str | None, who: str) -> str:
        if not email or not password:
            raise _SubmitError(f"{who} needs an email and a password (options or environment)", 3)
        try:
            body = self.call("POST", "/api/v1/auth/login", data={"username": email, "password": password})
        except _SubmitError as exc:
            if exc.code == 3:
                raise _SubmitError(f"{who} login failed for {email}: wrong email or password", 3) from None
            raise
        return str(body["access_token"])


def _progress_line(message: dict, tty: bool) -> str:
    from vocalborn.analysis.types import STEPS

    progress = int(message.get("progress") or 0)
    width = 30
    filled = round(width * progress / 100)
    step = message.get("current_step") or message.get("status") or ""
    number = next((i + 1 for i, s in enumerate(STEPS) if s[1] == step), None)
    where = f"{step} ({number}/{message.get('total_steps') or len(STEPS)})" if number else step
    line = f"[{'#' * filled}{'.' * (width - filled)}] {progress:3d}%  {where}"
    return ("\r" + line.ljust(72)) if tty else line


def _watch(client: _ApiClient, token: str, task_id: str, deadline: float) -> None:
    """Show a progress bar from the task WebSocket until the terminal event; resume with
    ?after= when the connection drops; fall back to polling the status if sockets fail."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
    from websockets.sync.client import connect

    tty = sys.stderr.isatty()
    last_line = ""
    history_until = 0  # events up to the snapshot's last_event_id are history, not news
    shown = (0, -1)  # (attempt, progress) on screen: the bar never runs backwards within an attempt

    def show(message: dict) -> None:
        nonlocal last_line, history_until, shown
        if message.get("event_type") == "snapshot":
            history_until = int(message.get("last_event_id") or 0)
        elif message.get("event_id") is not None and int(message["event_id"]) <= history_until:
            return
        attempt, progress = int(message.get("attempt") or 0), int(message.get("progress") or 0)
        if message.get("status") == "processing" and attempt == shown[0] and progress < shown[1]:
            return
        shown = (attempt, progress)
        line = _progress_line(message, tty)
        if line != last_line:
            typer.echo(line, err=True, nl=not tty)
            last_line = line

    ws_url = client.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    after, failures = 0, 0
    while time.monotonic() < deadline:
        url = f"{ws_url}/api/v1/tasks/ws/task/{task_id}?after={after}"
        try:
            with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10) as ws:
                failures = 0
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    message = json.loads(ws.recv(timeout=remaining))
                    if message.get("event_id") is not None:
                        after = max(after, int(message["event_id"]))
                    show(message)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code == 1000:
                break
            if code == 1008:
                reason = closed.rcvd.reason if closed.rcvd else ""
                raise _SubmitError(f"the server refused the progress socket: {reason}", 3) from None
            failures += 1  # 1001, 1006, 1011, 1012, 1013: resume after a pause
        except TimeoutError:
            if time.monotonic() >= deadline:
                break
            failures += 1
        except (OSError, InvalidHandshake):
            failures += 1
        if failures >= 3:
            # No sockets through here (a proxy?): poll the status instead.
            while time.monotonic() < deadline:
                status = client.call("GET", f"/api/v1/tasks/analysis/{task_id}/status", token)
                show(status)
                if status["status"] in ("success", "failure", "cancelled"):
                    break
                time.sleep(1.0)
            break
        if failures:
            time.sleep(min(5.0, 0.5 * 2**failures))
    if tty and last_line:
        typer.echo("", err=True)


@app.command()
def submit(
    attempt: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the learner's recording")],
    sentence: Annotated[str | None, typer.Option(help="the id of an existing sentence")] = None,
    reference: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="a reference recording: creates the sentence first"),
    ] = None,
    text: Annotated[str | None, typer.Option(help="the sentence's text with --reference (default: file name)")] = None,
    url: Annotated[str, typer.Option(envvar="VOCALBORN_URL", help="the API")] = "http://127.0.0.1:8000",
    email: Annotated[str | None, typer.Option(envvar="VOCALBORN_EMAIL", help="the learner's login")] = None,
    password: Annotated[str | None, typer.Option(envvar="VOCALBORN_PASSWORD", help="the learner's password")] = None,
    therapist_email: Annotated[
        str | None, typer.Option(envvar="VOCALBORN_THERAPIST_EMAIL", help="for --reference")
    ] = None,
    therapist_password: Annotated[
        str | None, typer.Option(envvar="VOCALBORN_THERAPIST_PASSWORD", help="for --reference")
    ] = None,
    lang: Annotated[str, typer.Option(help="zh-TW or en: the language of the report")] = "zh-TW",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON instead of a table")] = False,
    timeout: Annotated[float, typer.Option(help="give up waiting after this many seconds")] = 600.0,
) -> None:
    """Upload a recording to a running API, submit it, show live progress, print the scores.

    Exit codes: 0 success; 1 the analysis failed, was cancelled or timed out; 2 usage;
    3 wrong email/password or not allowed; 4 the API is unreachable or failed; 5 the API
    refused the request (unknown sentence, unusable audio)."""
    if (sentence is None) == (reference is None):
        _fail("give exactly one of --sentence ID or --reference FILE", code=2)
    client = _ApiClient(url)
    try:
        learner_token = client.login(email, password, "the learner")
        if reference is not None:
            therapist_token = client.login(therapist_email, therapist_password, "--reference (a therapist)")
            words = text or reference.stem
            with reference.open("rb") as f:
                created = client.call(
                    "POST",
                    "/api/v1/practice/sentences",
                    therapist_token,
                    # shared: the learner may not be linked to this therapist
                    data={"text": words, "shared": "true"},
                    files={"reference_audio": (reference.name, f)},
                )
            sentence = str(created["sentence_id"])
            typer.echo(f"created sentence {sentence} ({words})", err=True)
        assert sentence is not None
        try:
            client.call("GET", f"/api/v1/practice/sentences/{sentence}", learner_token)
        except _SubmitError as exc:
            if exc.code == 5:
                raise _SubmitError(f"sentence not found: {sentence}", 5) from None
            raise
        # One session for the CLI's attempts, reused, so the learner's list does not fill up.
        sessions = client.call("GET", "/api/v1/practice/sessions?limit=200", learner_token)
        session = next((x for x in sessions if x.get("title") == "vocalborn submit"), None) or client.call(
            "POST", "/api/v1/practice/sessions", learner_token, json={"title": "vocalborn submit"}
        )
        with attempt.open("rb") as f:
            record = client.call(
                "POST",
                f"/api/v1/practice/sessions/{session['practice_session_id']}/records",
                learner_token,
                data={"sentence_id": sentence},
                files={"audio": (attempt.name, f)},
            )
        submitted = client.call(
            "POST",
            "/api/v1/tasks/analysis/submit",
            learner_token,
            json={"practice_record_id": record["practice_record_id"], "parameters": {"language": lang}},
        )
        task_id = str(submitted["task_id"])
        typer.echo(f"task {task_id} submitted (queue position {submitted.get('queue_position')})", err=True)
        _watch(client, learner_token, task_id, time.monotonic() + timeout)
        status = client.call("GET", f"/api/v1/tasks/analysis/{task_id}/status", learner_token)
        if status["status"] != "success":
            reason = status.get("error_message") or "no reason given"
            if status["status"] in ("failure", "cancelled"):
                raise _SubmitError(f"the analysis ended as {status['status']}: {reason}", 1)
            raise _SubmitError(f"the analysis is still {status['status']} after {timeout:.0f} s", 1)
        result = client.call("GET", f"/api/v1/tasks/analysis/{task_id}/result", learner_token)
    except _SubmitError as exc:
        _fail(str(exc), code=exc.code)
        return
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        from vocalborn.analysis.report_text import format_report
        from vocalborn.analysis.types import AnalysisReport

        typer.echo(format_report(AnalysisReport.from_dict(result), lang=lang))


def main() -> None:
    app()


# --- the practice history, from a terminal (same API as the page) ---------------------------------
def _score(v: float | int | str | None) -> str:
    return "-" if v is None else f"{float(v):.0f}"


@app.command()
def history(
    url: Annotated[str, typer.Option(envvar="VOCALBORN_URL", help="the API")] = "http://127.0.0.1:8000",
    email: Annotated[str | None, typer.Option(envvar="VOCALBORN_EMAIL", help="your login")] = None,
    password: Annotated[str | None, typer.Option(envvar="VOCALBORN_PASSWORD", help="your password")] = None,
    learner: Annotated[str | None, typer.Option(help="a linked learner's user id (therapists, admins)")] = None,
    progress: Annotated[bool, typer.Option("--progress", help="per sentence trend instead of the list")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    lang: Annotated[str, typer.Option(help="zh-TW or en: the language of error messages")] = "en",
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """Your analyses, newest first, with the four scores and the therapist's review; or, with
    --progress, each sentence's trend (first attempt against the mean of the last three)."""
    client = _ApiClient(url)
    client.http.headers["Accept-Language"] = lang
    try:
        token = client.login(email, password, "you")
        if progress:
            who = learner or client.call("GET", "/api/v1/auth/me", token)["user_id"]
            data = client.call("GET", f"/api/v1/learners/{who}/progress", token)
        else:
            params: dict[str, str | int] = {"limit": limit}
            if learner:
                params["user_id"] = learner
            data = client.call("GET", "/api/v1/tasks/analysis", token, params=params)
    except _SubmitError as exc:
        _fail(str(exc), code=exc.code)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if progress:
        for s in data["sentences"]:
            tr = s["trend"]["overall_score"]
            slope = tr["slope_per_attempt"]
            typer.echo(
                f"{s['sentence_text']}  attempts {s['attempts']}  overall first {_score(tr['first'])}"
                f" -> last {s['last_n']} mean {_score(tr['last_n_mean'])}"
                f"  slope {'-' if slope is None else f'{slope:+.1f}'}/attempt"
                + (f"  improved: {' '.join(s['improved_characters'])}" if s["improved_characters"] else "")
            )
        if not data["sentences"]:
            typer.echo("no successful analyses yet")
        return
    typer.echo(f"{'when':<17} {'status':<10} {'overall':>7} {'pron':>5} {'flu':>5} {'rhy':>5} {'review':>6}  sentence")
    for i in data["items"]:
        review = i.get("review") or {}
        typer.echo(
            f"{i['created_at'][:16].replace('T', ' '):<17} {i['status']:<10} {_score(i['overall_score']):>7}"
            f" {_score(i['pronunciation_accuracy']):>5} {_score(i['fluency_score']):>5} {_score(i['rhythm_score']):>5}"
            f" {_score(review.get('overall_score')) if review else '':>6}  {i['sentence_text']}"
        )
    if data.get("next_cursor"):
        typer.echo(f"(more: GET /api/v1/tasks/analysis?cursor={data['next_cursor']})")


if __name__ == "__main__":
    main()
