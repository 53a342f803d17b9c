"""Worker pipeline: Celery's raw no-op consume against our bookkeeping, and the two latencies
learners feel, all in the same run on the same services.

    uv run python bench/worker_pipeline.py [--tasks 400] [--concurrency 2] [--samples 200] [--json PATH]

(a) raw: a bare Celery app (prefork, acks_late, prefetch 1, same concurrency) draining 2N no-op
    tasks from the same Redis broker.
(b) ours: `vocalborn worker` with the `noop` engine (AI_ENGINE=noop: the five progress reports and
    a minimal report, no analysis) draining N tasks submitted beforehand through the service:
    claim, progress, result + status + record + event in one commit, events on pub/sub.
(c) submit -> worker start, with that worker idle: one task at a time through
    `service.submit_analysis` (the API's own service path: insert, commit, publish); measured
    from the return of the submit (the message is in the broker) to the `started` event's
    timestamp (taken by the worker in its claim transaction); also from the start of the submit.
(d) progress event -> WebSocket client: a real `vocalborn api` (uvicorn) process, a real
    `websockets` client watching a task, and throttled progress messages published the way the
    worker publishes them (`events.publish_live(events.progress_message(...))`); measured from just
    before the publish to the client's receipt, one message in flight at a time.

Everything runs in a database, queues and Redis keys of its own, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

# Starts `vocalborn worker` with AI_ENGINE=noop even where the settings do not accept that value
# yet: the cached settings object is changed before the worker forks its pool.
NOOP_WORKER = """
import sys
from vocalborn.config import get_settings
settings = get_settings()
if settings.ai_engine != "noop":
    object.__setattr__(settings, "ai_engine", "noop")
from vocalborn.cli import main
sys.argv = ["vocalborn", *sys.argv[1:]]
main()
"""


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49] * 1000, 2), "p99_ms": round(cuts[98] * 1000, 2), "n": len(samples)}


# --------------------------------------------------------------------------------------------
# (a) raw Celery
# --------------------------------------------------------------------------------------------
def drain_noop(n: int, concurrency: int, run: str, events: bool = False) -> float:
    """Tasks per second; ``events``: with Celery's task events on (``-E``), as our worker sends them."""
    run = f"{run}e" if events else run
    env = dict(
        os.environ,
        BENCH_BROKER=REDIS,
        BENCH_QUEUE=f"noop_{run}",
        BENCH_COUNTER=f"noop-done-{run}",
        PYTHONPATH=str(ROOT / "bench"),
    )
    os.environ.update({k: env[k] for k in ("BENCH_BROKER", "BENCH_QUEUE", "BENCH_COUNTER")})
    sys.path.insert(0, str(ROOT / "bench"))
    import _noop_app

    for i in range(n):
        _noop_app.noop.apply_async(args=[i], queue=env["BENCH_QUEUE"])
    client = redis.Redis.from_url(REDIS)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "_noop_app", "worker", "-c", str(concurrency)]
        + ["--loglevel=WARNING", "--without-mingle", "--without-gossip", "-Q", env["BENCH_QUEUE"]]
        + (["-E"] if events else []),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while int(client.get(env["BENCH_COUNTER"]) or 0) == 0:
            time.sleep(0.005)
        started = time.perf_counter()  # from the first completion: excludes worker start-up
        first = int(client.get(env["BENCH_COUNTER"]) or 0)
        while (count := int(client.get(env["BENCH_COUNTER"]) or 0)) < n:
            time.sleep(0.005)
        return (count - first) / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(30)


# --------------------------------------------------------------------------------------------
# our stack: a database of its own, a learner, recordings
# --------------------------------------------------------------------------------------------
class Stack:
    def __init__(self, run: str) -> None:
        self.run = run
        self.db_name = f"vb_bench_{run}"
        self.admin = create_engine(PG, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        self.env = dict(
            os.environ,
            DATABASE_URL=PG.rsplit("/", 1)[0] + "/" + self.db_name,
            CELERY_BROKER_URL=REDIS,
            REDIS_URL=REDIS,
            DATA_DIR=f"/tmp/vb-bench-{run}",
            TASK_QUEUE=f"bench_{run}",
            MAINTENANCE_QUEUE=f"bench_m_{run}",
            REDIS_KEY_PREFIX=f"vbbench-{run}:",
            SECRET_KEY="bench-" + run * 8,
            LOG_LEVEL="WARNING",
            ENVIRONMENT="test",
            PROGRESS_WRITE_INTERVAL="0.5",
            MAX_ACTIVE_TASKS_PER_LEARNER="100000",
        )
        os.environ.update(self.env)
        subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "migrate"], env=self.env, check=True, capture_output=True
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self._seed()

    def _seed(self) -> None:
        from vocalborn.analysis.synth import synthesize
        from vocalborn.auth.models import Role
        from vocalborn.db import open_session
        from vocalborn.models import PracticeSession, Sentence, User
        from vocalborn.storage import get_storage

        storage = get_storage()
        self.ref_key = storage.save("references", synthesize("你好嗎", "zh", "Female1"), "wav")
        self.att_key = storage.save("recordings", synthesize("你好嗎", "zh", "Male1"), "wav")
        with open_session() as db:
            user = User(email="bench@example.com", name="Bench", role=Role.LEARNER.value, password_hash="-")
            db.add(user)
            db.flush()
            sentence = Sentence(
                text="你好嗎",
                reference_audio_key=self.ref_key,
                reference_audio_format="wav",
                reference_duration_seconds=1.0,
                created_by=user.user_id,
            )
            session = PracticeSession(user_id=user.user_id)
            db.add_all([sentence, session])
            db.commit()
            self.user_id, self.sentence_id = user.user_id, sentence.sentence_id
            self.session_id = session.practice_session_id

    def records(self, n: int) -> list[uuid.UUID]:
        from vocalborn.db import open_session
        from vocalborn.models import PracticeRecord

        with open_session() as db:
            rows = [
                PracticeRecord(
                    practice_session_id=self.session_id,
                    sentence_id=self.sentence_id,
                    user_id=self.user_id,
                    audio_key=self.att_key,
                    audio_format="wav",
                    audio_size_bytes=1,
                    audio_duration_seconds=1.0,
                )
                for _ in range(n)
            ]
            db.add_all(rows)
            db.commit()
            return [r.practice_record_id for r in rows]

    def submit(self, record_id: uuid.UUID) -> str:
        from vocalborn.db import open_session
        from vocalborn.models import User
        from vocalborn.tasks.submission import ordinary

        with open_session() as db:
            user = db.get(User, self.user_id)
            assert user is not None
            return str(ordinary.submit_analysis(db, user, record_id, {}).task.task_id)

    def start(self, args: list[str], code: str | None = None) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "vocalborn.cli", *args]
        proc = subprocess.Popen(
            argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.stop(proc)
        from vocalborn.db import reset_engine

        reset_engine()
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        self.admin.dispose()


def successes(stack: Stack) -> int:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisTask

    with open_session() as db:
        return int(
            db.execute(
                select(func.count()).select_from(AIAnalysisTask).where(AIAnalysisTask.status == "success")
            ).scalar_one()
        )


# --------------------------------------------------------------------------------------------
# (b) our pipeline with the noop engine, then (c) with the same worker idle
# --------------------------------------------------------------------------------------------
def drain_ours(stack: Stack, n: int, concurrency: int) -> tuple[float, float]:
    for record_id in stack.records(n):
        stack.submit(record_id)
    args = ["worker", "--concurrency", str(concurrency), "--hostname", f"bench-{stack.run}@%h", "--queues", "analysis"]
    stack.start(args, code=NOOP_WORKER)
    while successes(stack) == 0:
        time.sleep(0.01)
    started = time.perf_counter()
    first = successes(stack)
    while (count := successes(stack)) < n:
        time.sleep(0.02)
    rate = (count - first) / (time.perf_counter() - started)
    from vocalborn.db import open_session

    with open_session() as db:
        mean = db.execute(text("SELECT avg(processing_time_seconds) FROM ai_analysis_results")).scalar_one()
    return rate, float(mean)


class Listener:
    """Every task event on the bench's channel, with the time it arrived."""

    def __init__(self) -> None:
        from vocalborn.tasks import events

        self.pubsub = redis.Redis.from_url(REDIS).pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(events.channel_name())
        self.seen: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for raw in self.pubsub.listen():
            message = json.loads(raw["data"])
            with self.cond:
                self.seen[(message["task_id"], message["event_type"])] = (time.time(), message)
                self.cond.notify_all()

    def wait(self, task_id: str, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        with self.cond:
            if not self.cond.wait_for(lambda: (task_id, event_type) in self.seen, timeout):
                raise TimeoutError(f"no {event_type} event for task {task_id}")
            return self.seen[(task_id, event_type)][1]


def start_latency(stack: Stack, samples: int) -> tuple[list[float], list[float]]:
    listener = Listener()
    from_return: list[float] = []
    from_call: list[float] = []
    for record_id in stack.records(samples + 5):
        time.sleep(0.05)  # the worker is idle: nothing queued, nothing running
        called = time.time()
        task_id = stack.submit(record_id)
        returned = time.time()
        started = listener.wait(task_id, "started")
        at = datetime.fromisoformat(started["timestamp"].replace("Z", "+00:00")).timestamp()
        from_return.append(at - returned)
        from_call.append(at - called)
        listener.wait(task_id, "succeeded")
    return from_return[5:], from_call[5:]  # the first few warm the pool processes up


# --------------------------------------------------------------------------------------------
# (d) progress event -> WebSocket client
# --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def progress_message(task_id: str, i: int) -> Any:
    """A throttled progress report, built as the worker builds it."""
    from vocalborn.tasks import events

    return events.progress_message(
        task_id=task_id, progress=i % 100, current_step=f"bench {i}", attempt=1, worker_name="b"
    )


def ws_latency(stack: Stack, samples: int) -> list[float]:
    import httpx
    import websockets

    from vocalborn.auth.models import User
    from vocalborn.auth.sessions import token_for
    from vocalborn.db import open_session
    from vocalborn.tasks import events

    port = free_port()
    stack.start(["api", "--port", str(port)])
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.1)
    task_id = stack.submit(stack.records(1)[0])  # stays pending: no worker consumes now
    with open_session() as db:
        learner = db.get(User, stack.user_id)
        assert learner is not None
        token = token_for(db, learner)

    async def measure() -> list[float]:
        out: list[float] = []
        url = f"ws://127.0.0.1:{port}/api/v1/tasks/ws/task/{task_id}?token={token}"
        async with websockets.connect(url) as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot["event_type"] == "snapshot", snapshot
            for _ in range(3):  # replay of the pending task's stored events
                try:
                    await asyncio.wait_for(ws.recv(), 0.3)
                except TimeoutError:
                    break
            for i in range(samples + 10):
                await asyncio.sleep(0.005)
                sent = time.perf_counter()
                events.publish_live(progress_message(task_id, i))
                got = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert got["current_step"] == f"bench {i}", got
                out.append(time.perf_counter() - sent)
        return out[10:]

    return asyncio.run(measure())


# --------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    run = secrets.token_hex(4)
    stack: Stack | None = None
    out: dict[str, Any] = {"tasks": args.tasks, "concurrency": args.concurrency, "load": os.getloadavg()}
    try:
        out["raw_celery_tasks_per_s"] = round(drain_noop(args.tasks * 2, args.concurrency, run), 1)
        out["raw_celery_events_tasks_per_s"] = round(drain_noop(args.tasks * 2, args.concurrency, run, events=True), 1)
        stack = Stack(run)
        ours, mean = drain_ours(stack, args.tasks, args.concurrency)
        out["pipeline_noop_tasks_per_s"] = round(ours, 1)
        out["pipeline_mean_claim_to_result_ms"] = round(mean * 1000, 2)
        out["ratio_pipeline_over_raw"] = round(ours / out["raw_celery_tasks_per_s"], 3)
        out["ratio_pipeline_over_raw_events"] = round(ours / out["raw_celery_events_tasks_per_s"], 3)
        from_return, from_call = start_latency(stack, max(args.samples // 2, 20))
        out["submit_to_start"] = percentiles(from_return)
        out["submit_call_to_start"] = percentiles(from_call)
        for proc in list(stack.procs):
            stack.stop(proc)
        out["progress_to_websocket"] = percentiles(ws_latency(stack, args.samples))
    finally:
        if stack is not None:
            stack.close()
        client = redis.Redis.from_url(REDIS)
        for key in list(client.scan_iter(match=f"*{run}*")):
            client.delete(key)
    rows = [
        ("(a) raw Celery no-op consume", f"{out['raw_celery_tasks_per_s']:,.0f} tasks/s", ""),
        ("    the same with task events (-E)", f"{out['raw_celery_events_tasks_per_s']:,.0f} tasks/s", ""),
        (
            "(b) our pipeline, noop engine",
            f"{out['pipeline_noop_tasks_per_s']:,.0f} tasks/s",
            f"{out['ratio_pipeline_over_raw']:.2f} x (a); target >= 0.5"
            f" ({out['ratio_pipeline_over_raw_events']:.2f} x (a) with events)",
        ),
        (
            "(c) submit returned -> worker start",
            f"p50 {out['submit_to_start']['p50_ms']} ms, p99 {out['submit_to_start']['p99_ms']} ms",
            "target p99 <= 15 ms",
        ),
        (
            "    submit called -> worker start",
            f"p50 {out['submit_call_to_start']['p50_ms']} ms, p99 {out['submit_call_to_start']['p99_ms']} ms",
            "",
        ),
        (
            "(d) progress publish -> WebSocket client",
            f"p50 {out['progress_to_websocket']['p50_ms']} ms, p99 {out['progress_to_websocket']['p99_ms']} ms",
            "target p99 <= 20 ms",
        ),
    ]
    print(f"concurrency {args.concurrency}, {args.tasks} tasks, load {out['load'][0]:.1f}")
    for row in rows:
        print(f"{row[0]:<42} {row[1]:<32} {row[2]}")
    print(f"mean claim -> result inside a task (noop engine): {out['pipeline_mean_claim_to_result_ms']} ms")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
