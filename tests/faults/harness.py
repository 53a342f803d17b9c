"""Fault drills on processes of our own: a PostgreSQL cluster and a redis-server started on free
ports (so they can be killed, stopped and frozen without touching the machine's services), an
API process, workers with the drill engine, and Beat. Used by tests/faults (short versions, CI)
and bench/faults.py (long versions).

Every scenario ends with a tally read from the database: each accepted task must be terminal
(success, or a failure with a reason), have at most one result (exactly one when it succeeded),
and no request may have answered a 5xx other than the documented 503 with Retry-After.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from tests.support import Api, ServiceProcess, WorkerProcess, api_process, recording, wait_until


# --------------------------------------------------------------------------------------------
# backing services of our own
# --------------------------------------------------------------------------------------------
def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found (install postgresql)")
    return path


def _children(pid: int) -> list[int]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(Path(stat).parent.name))
    return out


class OwnPostgres:
    """A throw-away cluster: initdb in a temp dir, trust auth, loopback only, fsync off.

    initdb refuses to run as root: then the cluster belongs to the ``postgres`` user (runuser)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="vb-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout, check=check)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        self.thaw()
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def _pids(self) -> list[int]:
        pidfile = self.data / "postmaster.pid"
        if not pidfile.exists():
            return []
        main = int(pidfile.read_text().split()[0])
        return [main, *_children(main)]

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: a database that hangs, as in a partition."""
        for pid in self._pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class OwnRedis:
    """A redis-server as a broker should run: AOF (everysec), noeviction, loopback only."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="vb-faults-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            from vocalborn.embedded import redis_server_binary

            binary = redis_server_binary()
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(up, 15, 0.05, "redis-server to answer")
        client.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# the product on top of them
# --------------------------------------------------------------------------------------------
@dataclass
class Tally:
    scenario: str
    submitted: int = 0
    accepted: int = 0
    succeeded: int = 0
    failed: dict[str, int] = field(default_factory=dict)  # reason -> count
    lost: int = 0  # accepted but not terminal at the end
    duplicate_results: int = 0
    server_errors: int = 0  # 5xx other than 503 JSON with Retry-After
    unavailable: int = 0  # 503 JSON with Retry-After (documented, expected during outages)
    dropped: int = 0  # requests with no answer at all (connection dropped, or past the client's timeout)
    refused: list[str] = field(default_factory=list)  # submits answered with neither 200 nor 202
    heal_seconds: float | None = None  # from the end of the fault to every task terminal

    def row(self) -> list[str]:
        failed = ", ".join(f"{n} {r}" for r, n in sorted(self.failed.items())) or "0"
        heal = f"{self.heal_seconds:.1f} s" if self.heal_seconds is not None else "-"
        return [
            self.scenario,
            str(self.submitted),
            str(self.accepted),
            str(self.succeeded),
            failed,
            str(self.lost),
            str(self.duplicate_results),
            str(self.server_errors),
            heal,
        ]


TABLE_HEADER = [
    "scenario",
    "submitted",
    "accepted",
    "succeeded",
    "failed (reason)",
    "lost",
    "dup. results",
    "5xx",
    "time to heal",
]


def markdown_table(tallies: list[Tally]) -> str:
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(t.row()) + " |" for t in tallies]
    return "\n".join(lines)


class CountingClient(httpx.Client):
    """An httpx client that counts what the API answers: 503s that follow the contract, and any
    other 5xx (a defect)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server_errors: list[str] = []
        self.dropped: list[str] = []
        self.unavailable = 0
        self._lock = threading.Lock()

    def request(self, *args: Any, **kwargs: Any) -> httpx.Response:  # type: ignore[override]
        try:
            r = super().request(*args, **kwargs)
        except httpx.TransportError as exc:
            # A dropped connection or a request past the client's timeout: no answer at all,
            # which the contract never allows (an outage answers 503 JSON at once).
            with self._lock:
                self.dropped.append(f"{args[:2]}: {type(exc).__name__}: {exc}"[:200])
            raise
        if r.status_code >= 500:
            documented = (
                r.status_code == 503
                and r.headers.get("retry-after")
                and r.headers.get("content-type", "").startswith("application/json")
            )
            with self._lock:
                if documented:
                    self.unavailable += 1
                else:
                    self.server_errors.append(
                        f"{r.request.method} {r.request.url.path} -> {r.status_code}: {r.text[:200]}"
                    )
        return r


class Cluster:
    """PostgreSQL + Redis of our own, the API, workers and Beat: everything a drill needs."""

    def __init__(self, log_dir: Path, env: dict[str, str] | None = None) -> None:
        from vocalborn.embedded import free_port

        self.log_dir = log_dir
        self.pg = OwnPostgres(free_port())
        self.redis = OwnRedis(free_port())
        self.extra = env or {}
        self.processes: list[Any] = []
        self.api_proc: ServiceProcess | None = None
        self.client: CountingClient | None = None
        self._engine: Any = None

    @property
    def env(self) -> dict[str, str]:
        run = uuid.uuid4().hex[:6]
        base = {
            "DATABASE_URL": self.pg.url,
            "CELERY_BROKER_URL": f"{self.redis.url}/0",
            "CELERY_RESULT_BACKEND": f"{self.redis.url}/1",
            "REDIS_URL": f"{self.redis.url}/0",
            "DATA_DIR": str(self.log_dir / "data"),
        }
        base.setdefault("REDIS_KEY_PREFIX", f"vbfault-{run}:")
        return {**base, **self.extra}

    def start(self) -> Cluster:
        from vocalborn.embedded import free_port

        self.pg.start()
        self.redis.start()
        self._env = self.env
        subprocess.run(
            [os.sys.executable, "-m", "vocalborn.cli", "migrate"],  # type: ignore[attr-defined]
            env=dict(os.environ, **self._env),
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = free_port()
        self.api_proc = api_process(port, self.log_dir, self._env)
        self.processes.append(self.api_proc)
        self.client = CountingClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.api = Api(self.client)
        return self

    def worker(self, name: str, concurrency: int = 1, **env: str) -> WorkerProcess:
        w = WorkerProcess(name, self.log_dir, concurrency, {**self._env, **env}, module="tests.faults.drill")
        self.processes.append(w)
        return w.start()

    def beat(self, **env: str) -> ServiceProcess:
        b = ServiceProcess("beat", ["beat"], self.log_dir, {**self._env, **env})
        self.processes.append(b)
        return b.start()

    def db(self) -> Any:
        if self._engine is None:
            self._engine = create_engine(self.pg.url, pool_pre_ping=True, connect_args={"connect_timeout": 3})
        return self._engine

    def stop(self) -> None:
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                proc.stop()
        self.processes.clear()
        if self.client is not None:
            self.client.close()
        if self._engine is not None:
            self._engine.dispose()
        self.redis.destroy()
        self.pg.destroy()

    # --- a learner's workload ---------------------------------------------------------------
    def learners(self, n_records: int, poison: int = 0) -> tuple[dict[str, Any], list[str], list[str]]:
        """A therapist's sentence, one learner, ``n_records`` recordings; the last ``poison`` of
        them are a distinct recording (its SHA-256 is returned for DRILL_POISON_SHA256)."""
        import hashlib

        therapist, learner = self.api.register("therapist"), self.api.register("learner")
        sentence = self.api.sentence(therapist, recording())
        session = self.api.session(learner)
        good, bad = recording(voice="Male1", fmt="mp3"), recording(voice="Female1", fmt="wav")
        records = []
        for i in range(n_records):
            data = bad if i >= n_records - poison else good
            r = self.api.record(learner, session["practice_session_id"], sentence["sentence_id"], data)
            assert r.status_code == 201, r.text
            records.append(r.json()["practice_record_id"])
        return learner, records, [hashlib.sha256(bad).hexdigest()] if poison else []

    def submit_all(self, learner: dict[str, Any], records: list[str], tally: Tally) -> list[str]:
        tasks = []
        for record_id in records:
            tally.submitted += 1
            try:
                r = self.api.submit(learner, record_id)
            except httpx.HTTPError:
                continue
            if r.status_code in (200, 202):
                tally.accepted += 1
                tasks.append(r.json()["task_id"])
            else:
                tally.refused.append(f"{r.status_code}: {r.text[:120]}")
        return tasks

    def outcomes(self, task_ids: list[str]) -> dict[str, tuple[str, str | None, int]]:
        """task_id -> (status, error_message, result rows), from the database."""
        if not task_ids:
            return {}
        with self.db().connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT t.task_id::text, t.status, t.error_message, "
                    "(SELECT count(*) FROM ai_analysis_results r WHERE r.task_id = t.task_id) "
                    "FROM ai_analysis_tasks t WHERE t.task_id::text = ANY(:ids)"
                ),
                {"ids": task_ids},
            ).all()
        return {r[0]: (r[1], r[2], int(r[3])) for r in rows}

    def settle(self, task_ids: list[str], fault_ended: float, timeout: float, tally: Tally) -> Tally:
        """Wait until every task is terminal (or ``timeout``), then count."""
        terminal = {"success", "failure", "cancelled"}

        def done() -> bool:
            try:
                got = self.outcomes(task_ids)
            except Exception:
                return False
            return len(got) == len(task_ids) and all(s in terminal for s, _, _ in got.values())

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done():
            time.sleep(0.25)
        if done():
            tally.heal_seconds = max(0.0, time.monotonic() - fault_ended)
        got = self.outcomes(task_ids)
        reasons: Counter[str] = Counter()
        for task_id in task_ids:
            status, error, results = got.get(task_id, ("missing", None, 0))
            if status == "success":
                tally.succeeded += 1
                if results != 1:
                    tally.duplicate_results += max(0, results - 1)
                    tally.lost += results == 0
            elif status == "failure" and error:
                reasons[_reason(error)] += 1
                tally.duplicate_results += results
            else:
                tally.lost += 1
        tally.failed = dict(reasons)
        assert self.client is not None
        tally.server_errors = len(self.client.server_errors)
        tally.dropped = len(self.client.dropped)
        tally.unavailable = self.client.unavailable
        return tally

    def worker_children(self, worker: WorkerProcess) -> list[int]:
        assert worker.proc is not None
        return _children(worker.proc.pid)


def _reason(error: str) -> str:
    if "deliveries" in error:
        return "poison (delivery cap)"
    if "longer than" in error:
        return "time limit"
    return error[:60]


class Poller(threading.Thread):
    """Reads a task's status in a loop while a fault runs: every answer is counted by the client."""

    def __init__(self, cluster: Cluster, user: dict[str, Any], task_ids: list[str], interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.cluster, self.user, self.task_ids, self.interval = cluster, user, task_ids, interval
        self.stop_event = threading.Event()
        self.slowest = 0.0

    def run(self) -> None:
        assert self.cluster.client is not None
        i = 0
        while not self.stop_event.is_set() and self.task_ids:
            task_id = self.task_ids[i % len(self.task_ids)]
            started = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                self.cluster.client.get(f"/api/v1/tasks/analysis/{task_id}/status", headers=self.user["headers"])
            self.slowest = max(self.slowest, time.monotonic() - started)
            i += 1
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
