"""The processes `vocalborn up` runs (cli/up.py decides which): starting the bundled redis-server,
nats-server and mail outbox, migrating, spawning the children with the data folder's lock, noting them
in the state file, watching them, and stopping them all (on a signal, or when one exits)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import NoReturn

import typer

from vocalborn.cli import control
from vocalborn.cli.common import fail, run_migrations
from vocalborn.config import get_settings
from vocalborn.db import reset_engine
from vocalborn.embedded import EmbeddedRedis
from vocalborn.embedded_nats import EmbeddedNats
from vocalborn.supervision import STOP_BUDGET_SECONDS, spawn


def report_worker_metrics(path: Path) -> bool:
    """Print what the worker really bound (it writes the file when its endpoint is up or failed)."""
    if not path.exists():
        return False
    status = path.read_text().strip()
    if status.startswith("http"):
        typer.echo(f"Metrics:   {status} (worker, bound)")
    else:
        typer.secho(f"Metrics:   worker endpoint not started: {status}", fg=typer.colors.YELLOW, err=True)
    return True


class Stack:
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

        self.redis_server = EmbeddedRedis(data)
        self.redis_server.start(pass_fds=(self.lock_fd,))
        self.env.update(
            CELERY_BROKER_URL=f"{self.redis_server.url}/0",
            REDIS_URL=f"{self.redis_server.url}/0",
        )

    def start_nats(self, data: Path) -> None:

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
        try:
            os.environ.update(
                {k: self.env[k] for k in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL") if k in self.env}
            )
            get_settings.cache_clear()

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
        say(f"\nstopping{f' ({why})' if why else ''} ...")
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
                say(f"{name} did not stop within {STOP_BUDGET_SECONDS:.0f} s; killing it")
                proc.kill()
                proc.wait()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.nats_server is not None:
            self.nats_server.stop()
        with suppress(OSError):
            (self.data / control.STATE_FILE).unlink()
        say("stopped.")
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
                    metrics_reported = report_worker_metrics(metrics_status)
                for name, proc in watched:
                    if proc.poll() is not None and not self.stopping:
                        say(f"{name} exited with code {proc.returncode}; stopping the rest", typer.colors.RED)
                        self.stop_all(1)
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stop_all(0)


def say(message: str, color: str | None = None) -> None:
    """A line on stderr; after SIGHUP the terminal may be gone, and stopping must go on anyway."""
    with suppress(OSError):
        typer.secho(message, fg=color, err=True)


GRACEFUL_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
