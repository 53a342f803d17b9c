"""One `vocalborn up` per data folder, and `vocalborn status` / `vocalborn stop` for it.

`up` holds an OS lock (``flock``) on ``DATA_DIR/up.lock`` for its whole life, and its children
inherit it, so the folder stays locked until the last process of that run has exited; the kernel
releases it on any death, so a crash leaves no stale lock. ``DATA_DIR/up.json`` (mode 0600) says
who holds it: the pid of `up`, when it started, and each child's pid and port.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from vocalborn.cli.common import load_settings
from vocalborn.config import get_settings
from vocalborn.supervision import STOP_BUDGET_SECONDS, alive, listener_of, process_facts

LOCK_FILE = "up.lock"
STATE_FILE = "up.json"


class FolderBusy(Exception):
    """Another `up` (or the last processes of an earlier one) holds the data folder."""

    def __init__(self, state: dict[str, Any] | None) -> None:
        super().__init__("data folder locked")
        self.state = state


def read_state(data: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((data / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def write_state(data: Path, state: dict[str, Any]) -> None:
    """Atomically, readable by the owner only (it names ports and pids, nothing secret, but it is
    the run's own business)."""
    tmp = data / f".{STATE_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, data / STATE_FILE)


def _try_lock(fd: int, how: int) -> bool:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_folder(data: Path, wait_for_leftovers: float = STOP_BUDGET_SECONDS + 5) -> int:
    """Take the folder's lock for this process; its fd (to pass to the children). Raises
    FolderBusy if a live `up` holds it. If the holder's `up` is gone but its last children still
    stop (a warm shutdown after `up` was killed), wait up to ``wait_for_leftovers`` for them."""
    fd = os.open(data / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait_for_leftovers
    told = False
    while not _try_lock(fd, fcntl.LOCK_EX):
        state = read_state(data)
        holder = state.get("pid") if state else None
        if isinstance(holder, int) and alive(holder) and holder != os.getpid():
            os.close(fd)
            raise FolderBusy(state)
        # No live `up`: the leftovers of a killed one (or `status` peeking for a moment).
        if time.monotonic() > deadline:
            os.close(fd)
            raise FolderBusy(state)
        if not told and state is not None:
            typer.echo(f"waiting for the processes of an earlier run in {data} to stop ...", err=True)
            told = True
        time.sleep(0.2)
    return fd


def folder_in_use(data: Path) -> bool:
    """True while an `up` (or what is left of one) holds the folder's lock."""
    try:
        fd = os.open(data / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if _try_lock(fd, fcntl.LOCK_SH):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        return True
    finally:
        os.close(fd)


def _started(state: dict[str, Any]) -> str:
    try:
        return datetime.fromtimestamp(float(state["started_at"]), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (KeyError, TypeError, ValueError):
        return "at an unknown time"


def ports_text(state: dict[str, Any]) -> str:
    ports = state.get("ports") or {}
    return ", ".join(f"{name} {port}" for name, port in ports.items()) or "none recorded yet"


def refusal(data: Path, state: dict[str, Any] | None) -> str:
    if not state:
        return f"another vocalborn up is starting in {data} (its lock is held); use another --data-dir"
    pid = state.get("pid")
    who = (
        f"vocalborn up (pid {pid}"
        if alive(int(pid or 0))
        else f"the processes of an earlier vocalborn up (pid {pid}, gone"
    )
    return (
        f"{who}, started {_started(state)}, ports: {ports_text(state)}) already runs in {data}; "
        f"stop it with `vocalborn stop --data-dir {data}` or choose another --data-dir"
    )


def port_holder(data: Path, port: int) -> str | None:
    """Who holds ``port``, when /proc can tell: above all, a process of an earlier `vocalborn up`
    (on this data folder or another), whose pid the user can stop."""
    pid = listener_of(port)
    if pid is None:
        return None
    cmdline, env = process_facts(pid)
    if "vocalborn" not in cmdline:
        return f"by pid {pid}: {cmdline[:80]}" if cmdline else f"by pid {pid}"
    folder = env.get("DATA_DIR")
    if folder and Path(folder).resolve() == data:
        return f"by pid {pid}, left running by an earlier vocalborn up on this data folder; stop it with `kill {pid}`"
    if folder:
        return f"by pid {pid}, of the vocalborn stack on {folder}; `vocalborn stop --data-dir {folder}` stops it"
    return f"by pid {pid}, a vocalborn process; stop it with `kill {pid}`"


# --------------------------------------------------------------------------------------------
# status
# --------------------------------------------------------------------------------------------
def _http_ok(url: str, timeout: float = 2.0) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URL we built
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _redis_ping(port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
    except OSError:
        return False
    # +PONG, or -NOAUTH when a password is set: either way a live Redis answered.
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def child_health(child: dict[str, Any], state: dict[str, Any]) -> str:
    pid = int(child.get("pid") or 0)
    if not alive(pid):
        return "not running"
    name, port = child.get("name"), child.get("port")
    if name == "api" and port:
        host = state.get("api_host") or "127.0.0.1"
        host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return "healthy (/health)" if _http_ok(f"http://{host}:{port}/health") else "running, /health does not answer"
    if name == "flower" and port:
        return (
            "healthy (/healthcheck)" if _http_ok(f"http://127.0.0.1:{port}/healthcheck") else "running, not answering"
        )
    if name == "redis" and port:
        return "healthy (ping)" if _redis_ping(int(port)) else "running, does not answer ping"
    return "running"


def _data_dir(data_dir: Path | None) -> Path:
    if data_dir is not None:
        os.environ["DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()
    return Path(load_settings().data_dir).resolve()


DataDirOption = Annotated[Path | None, typer.Option(help="the data folder of that `up` (default DATA_DIR or ./var)")]


def status(data_dir: DataDirOption = None) -> None:
    """Whether a `vocalborn up` runs on a data folder: its pid, each child's pid, port and health.
    Exit 0 when it runs and every child is healthy, 1 when none runs, 2 when one is not healthy."""
    data = _data_dir(data_dir)
    if not folder_in_use(data):
        typer.echo(f"no vocalborn up runs in {data}")
        raise typer.Exit(1)
    state = read_state(data) or {}
    pid = state.get("pid")
    up_alive = alive(int(pid or 0))
    typer.echo(
        f"vocalborn up runs in {data}: pid {pid}, started {_started(state)}"
        if up_alive
        else f"vocalborn up (pid {pid}) is gone; its last processes are stopping in {data}"
    )
    healthy = up_alive
    for child in state.get("children", []):
        health = child_health(child, state)
        healthy = healthy and not health.startswith(("not", "running,"))
        port = f"port {child['port']}" if child.get("port") else "no port"
        typer.echo(f"  {child['name']:<8} pid {child.get('pid')!s:<8} {port:<11} {health}")
    raise typer.Exit(0 if healthy else 2)


# --------------------------------------------------------------------------------------------
# stop
# --------------------------------------------------------------------------------------------
def stop(
    data_dir: DataDirOption = None,
    timeout: Annotated[
        float, typer.Option(help="seconds to wait (default: the worker's shutdown budget and a margin)")
    ] = STOP_BUDGET_SECONDS + 10,
) -> None:
    """Stop the `vocalborn up` on a data folder gracefully (as Ctrl-C does: running analyses get
    the worker's shutdown budget to finish, else they are redelivered at the next start) and wait
    until every one of its processes has exited."""
    data = _data_dir(data_dir)
    if not folder_in_use(data):
        typer.echo(f"no vocalborn up runs in {data}; nothing to stop", err=True)
        raise typer.Exit(1)
    state = read_state(data) or {}
    pid = int(state.get("pid") or 0)
    started = time.monotonic()
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        typer.echo(f"sent SIGTERM to vocalborn up (pid {pid}); waiting up to {timeout:.0f} s for it to stop ...")
    else:  # `up` is gone: stop what is left of it
        left = [c for c in state.get("children", []) if alive(int(c.get("pid") or 0))]
        for child in left:
            os.kill(int(child["pid"]), signal.SIGTERM)
        typer.echo(f"vocalborn up (pid {pid}) is gone; sent SIGTERM to its last {len(left)} process(es)")
    while folder_in_use(data):
        if time.monotonic() - started > timeout:
            left = [f"{c['name']} {c['pid']}" for c in state.get("children", []) if alive(int(c.get("pid") or 0))]
            if alive(pid):
                left.insert(0, f"up {pid}")
            typer.secho(
                f"error: still running after {timeout:.0f} s: {', '.join(left) or 'unknown processes'}"
                " (they hold the data folder's lock); `kill -9` them if they must go now",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(1)
        time.sleep(0.2)
    typer.echo(f"stopped: every process of that run has exited ({time.monotonic() - started:.1f} s)")
