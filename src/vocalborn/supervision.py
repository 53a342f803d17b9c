"""How `vocalborn up` keeps its children from outliving it: one way to start every child.

Every process `up` starts (API, worker, Beat, Flower, the bundled redis-server, any server the
embedded default gains later) goes through :func:`spawn`. In the child, before it execs, the
kernel is told to send it ``SIGTERM`` when its parent dies (Linux ``PR_SET_PDEATHSIG``): SIGTERM,
so that a worker still makes its warm shutdown (an analysis in flight finishes, or its message is
redelivered after the worker is gone: ``task_acks_late``), Redis flushes its append-only file, and
the API closes its connections. The signal fires when the *thread* that forked the child dies, so
`up` forks from its main thread only.

Python children also call :func:`watch_supervisor` at start: a thread that notices when the
supervisor is gone (its parent pid changes), sends the SIGTERM itself where the kernel has no
parent-death signal, and ends the process after :data:`STOP_BUDGET_SECONDS` if the graceful stop
has not ended it by then (a worker finishing a long analysis: that analysis is redelivered).

The pool children a worker forks get SIGKILL when the worker's main process dies (Celery's
prefork pool sets that itself on Linux; :func:`pool_child_dies_with_worker` watches elsewhere):
nothing could acknowledge their result or enforce their time limit any more, and
``task_reject_on_worker_lost`` and the reaper give the task to the next worker.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# `up` waits this long for its children to stop gracefully (the worker's warm shutdown) before it
# kills them; an orphaned child gives itself as long; `vocalborn stop` waits for it and a margin.
STOP_BUDGET_SECONDS = 20.0
# Set in every child's environment: who supervises it (the pid of `up`).
SUPERVISOR_PID_ENV = "VOCALBORN_SUPERVISOR_PID"

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        prctl: Callable[..., int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


# Loaded once, in the parent: the forked child only calls it (no dlopen between fork and exec).
_prctl = _load_prctl()
PDEATHSIG_AVAILABLE = _prctl is not None


def die_with_parent(sig: int, parent_pid: int | None = None) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies. If the parent is
    already gone (it died between the fork and this call), send it now. False where the kernel
    cannot (then :func:`watch_supervisor` does the watching)."""
    if _prctl is None or _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
    return True


def _preexec(parent_pid: int) -> Callable[[], None]:
    def set_in_child() -> None:  # runs in the forked child, before exec
        die_with_parent(signal.SIGTERM, parent_pid)

    return set_in_child


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start a child of this supervisor: its own session (a Ctrl-C in the terminal reaches `up`
    only, which then stops the children in order), the parent-death signal, the supervisor's pid in
    its environment, and ``pass_fds`` (the data folder's lock: held until the last child exits).
    Call it from the main thread (the parent-death signal follows the forking thread)."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("spawn() must run in the main thread: PR_SET_PDEATHSIG follows the forking thread")
    child_env = dict(os.environ if env is None else env)
    child_env[SUPERVISOR_PID_ENV] = str(os.getpid())
    return subprocess.Popen(
        list(argv),
        env=child_env,
        start_new_session=True,
        preexec_fn=_preexec(os.getpid()),  # noqa: PLW1509 - `up` forks from its main thread only
        pass_fds=tuple(pass_fds),
        **popen,
    )


def watch_supervisor(budget: float = STOP_BUDGET_SECONDS, poll: float = 0.5) -> bool:
    """In a child of `up` (its environment names the supervisor): watch the parent. When it is
    gone, SIGTERM this process (unless the kernel already did), and if it still runs ``budget``
    seconds later, SIGKILL it. False when this process has no supervisor."""
    raw = os.environ.get(SUPERVISOR_PID_ENV)
    if not raw or not raw.isdigit():
        return False
    supervisor = int(raw)
    if os.getppid() != supervisor:  # started by a child of `up` (e.g. a shell), not by `up` itself
        return False

    def watch() -> None:
        while os.getppid() == supervisor:
            time.sleep(poll)
        if not PDEATHSIG_AVAILABLE:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(budget)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="vocalborn-supervisor-watch", daemon=True).start()
    return True


def pool_child_dies_with_worker() -> None:
    """In a worker's pool child, right after the fork: die with the worker's main process.
    Celery's prefork pool already asks for that on Linux (``process_initializer`` sets
    PR_SET_PDEATHSIG to SIGKILL in each child; the pool forks from the worker's main thread).
    Where the kernel has no parent-death signal, a thread watches the parent pid instead."""
    if PDEATHSIG_AVAILABLE:
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="vocalborn-pool-watch", daemon=True).start()


def descendants(pid: int) -> set[int]:
    """The pids below ``pid`` (children, their children ...), from /proc (Linux)."""
    parents: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def listener_of(port: int) -> int | None:
    """The pid of a process of ours listening on TCP ``port`` (from /proc/net/tcp{,6} and the
    processes' open sockets), or None (not Linux, nobody, or another user's process)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") in wanted:
                    return int(entry)
            except OSError:
                continue
    return None


def process_facts(pid: int) -> tuple[str, dict[str, str]]:
    """A process's command line and environment (empty where /proc cannot tell)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        with open(f"/proc/{pid}/environ", "rb") as f:
            pairs = [item.partition(b"=") for item in f.read().split(b"\0") if item]
        return cmdline, {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}
    except OSError:
        return "", {}


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie counts as gone). The one liveness check of the project: `up`,
    `status`/`stop`, the key rotation's resumption and the worker metrics' folder use it."""
    if pid <= 0:  # os.kill(0, ...) would ask about this process group
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 :].split()[0] != b"Z"
    except OSError:
        return True
