"""Throughput of N worker nodes on the real services, and what each task costs in storage.

    uv run python scripts/scale_benchmark.py [--tasks 60] [--workers 2] [--concurrency 1]
                                             [--broker redis|rabbitmq] [--seconds 4]

Starts `vocalborn api` and N `vocalborn worker` processes against the local PostgreSQL and Redis
(BENCH_DATABASE_URL, BENCH_REDIS_URL) and, with --broker rabbitmq, RabbitMQ (BENCH_RABBITMQ_URL,
in a vhost of its own made with rabbitmqctl). Uploads one reference and --tasks learner recordings
(Praat-synthesized speech, about --seconds long), submits them all, and waits until every task
succeeded. Everything it creates (database, Redis keys, vhost) is removed at the end.

Prints: tasks/s from the first submit to the last success, per-task processing time and queue
wait, tasks per worker node, bytes per recording, database bytes per task.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine, text

PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
RABBITMQ = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
TEXT = "今天天氣很好，我們去公園散步。"
LONG_TEXT = "今天天氣很好，我們去公園散步，然後在湖邊坐下來看書，傍晚再一起回家吃晚飯。"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis")
    parser.add_argument("--seconds", type=float, default=4.0, help="rough length of each recording (4 or 8)")
    args = parser.parse_args()

    run = secrets.token_hex(4)
    db_name = f"vb_bench_{run}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    db_url = PG.rsplit("/", 1)[0] + f"/{db_name}"
    data = Path(tempfile.mkdtemp(prefix=f"vb-bench-{run}-"))
    prefix = f"vbbench-{run}:"
    env = dict(
        os.environ,
        ENVIRONMENT="test",
        DATA_DIR=str(data),
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=REDIS,
        CELERY_RESULT_BACKEND=REDIS,
        REDIS_URL=REDIS,
        REDIS_KEY_PREFIX=prefix,
        TASK_QUEUE=f"ai_analysis_bench_{run}",
        MAINTENANCE_QUEUE=f"maintenance_bench_{run}",
        SECRET_KEY="bench-" + run * 8,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    vhost = None
    if args.broker == "rabbitmq":
        vhost = f"vbbench-{run}"
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True)
        env["CELERY_BROKER_URL"] = f"{RABBITMQ}/{vhost}"

    me = [sys.executable, "-m", "vocalborn.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = data / "logs"
    logs.mkdir()

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        p = subprocess.Popen([*me, *argv], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        return p

    r = redis.Redis.from_url(REDIS)
    try:
        subprocess.run([*me, "migrate"], env=env, check=True, capture_output=True)
        port = free_port()
        start("api", ["api", "--port", str(port)])
        for i in range(args.workers):
            start(f"worker-{i}", ["worker", "--hostname", f"bench{i}@%h", "--concurrency", str(args.concurrency)])
        deadline = time.monotonic() + 90
        while len(list(r.scan_iter(match=f"{prefix}workers:*"))) < args.workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"workers did not come up; see {logs}")
            time.sleep(0.2)
        base = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)

        from vocalborn.analysis.synth import synthesize

        sentence_text = LONG_TEXT if args.seconds > 6 else TEXT
        reference = synthesize(sentence_text, "zh", "Female1", fmt="wav")
        attempt = synthesize(sentence_text, "zh", "Male1", fmt="m4a")
        c = httpx.Client(base_url=base, timeout=60)
        heads = {}
        for role in ("therapist", "learner"):
            email = f"{role}-{run}@example.com"
            c.post(
                "/api/v1/auth/register",
                json={"email": email, "password": "bench-pass-1", "name": role, "role": role},
            ).raise_for_status()
            token = c.post("/api/v1/auth/login", data={"username": email, "password": "bench-pass-1"}).json()[
                "access_token"
            ]
            heads[role] = {"Authorization": f"Bearer {token}"}
        sentence = c.post(
            "/api/v1/practice/sentences",
            headers=heads["therapist"],
            data={"text": sentence_text},
            files={"reference_audio": ("ref.wav", reference)},
        ).json()["sentence_id"]
        session = c.post("/api/v1/practice/sessions", headers=heads["learner"], json={"title": "bench"}).json()[
            "practice_session_id"
        ]
        records = []
        for _ in range(args.tasks):
            rec = c.post(
                f"/api/v1/practice/sessions/{session}/records",
                headers=heads["learner"],
                data={"sentence_id": sentence},
                files={"audio": ("try.m4a", attempt)},
            )
            rec.raise_for_status()
            records.append(rec.json()["practice_record_id"])

        t0 = time.monotonic()
        for rid in records:
            c.post(
                "/api/v1/tasks/analysis/submit",
                headers=heads["learner"],
                json={"practice_record_id": rid, "parameters": {}},
            ).raise_for_status()
        engine = create_engine(db_url)
        deadline = time.monotonic() + 600
        while True:
            with engine.connect() as conn:
                done = conn.execute(
                    text("SELECT count(*) FROM ai_analysis_tasks WHERE status IN ('success', 'failure')")
                ).scalar_one()
            if done >= args.tasks:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"only {done} of {args.tasks} finished; see {logs}")
            time.sleep(0.05)
        elapsed = time.monotonic() - t0

        with engine.connect() as conn:
            failed = conn.execute(text("SELECT count(*) FROM ai_analysis_tasks WHERE status = 'failure'")).scalar_one()
            processing = [
                float(v) for (v,) in conn.execute(text("SELECT processing_time_seconds FROM ai_analysis_results")).all()
            ]
            waits = [
                float(v)
                for (v,) in conn.execute(
                    text("SELECT extract(epoch FROM started_at - created_at) FROM ai_analysis_tasks")
                ).all()
            ]
            per_worker = conn.execute(
                text("SELECT split_part(worker_name, '@', 1), count(*) FROM ai_analysis_tasks GROUP BY 1 ORDER BY 1")
            ).all()
            audio = conn.execute(
                text("SELECT avg(audio_size_bytes), avg(audio_duration_seconds) FROM practice_records")
            ).one()
            db_bytes = {
                t: conn.execute(text(f"SELECT pg_total_relation_size('{t}')")).scalar_one()
                for t in ("ai_analysis_tasks", "ai_analysis_results", "ai_analysis_task_events")
            }
            events = conn.execute(text("SELECT count(*) FROM ai_analysis_task_events")).scalar_one()
        engine.dispose()
        n = args.tasks
        print(
            f"broker={args.broker} workers={args.workers}x{args.concurrency} tasks={n} failed={failed} "
            f"cpus={os.cpu_count()}"
        )
        print(f"throughput: {n / elapsed:.2f} tasks/s ({elapsed:.1f} s from first submit to last result)")
        print(
            f"processing time per task: p50 {statistics.median(processing):.3f} s, "
            f"p95 {pct(processing, 0.95):.3f} s (attempt {audio[1]:.1f} s of audio)"
        )
        print(f"queue wait: p50 {statistics.median(waits):.2f} s, max {max(waits):.2f} s")
        print("tasks per node: " + ", ".join(f"{w}={k}" for w, k in per_worker))
        print(f"recording: {audio[0] / 1024:.1f} KiB per {audio[1]:.1f} s attempt (m4a/AAC as a phone sends it)")
        print(
            "database per task (table+index+toast): "
            + ", ".join(f"{t.removeprefix('ai_analysis_')}={b / n / 1024:.1f} KiB" for t, b in db_bytes.items())
            + f"; {events / n:.1f} events per task"
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        for pattern in (f"{prefix}*", f"*_bench_{run}*"):  # ours, and kombu's bindings of our queues
            for key in r.scan_iter(match=pattern):
                r.delete(key)
        for q in (env["TASK_QUEUE"], env["MAINTENANCE_QUEUE"]):
            r.delete(q)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        if vhost:
            subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
