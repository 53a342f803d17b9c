"""Worker throughput: Celery's raw no-op consume against our whole pipeline, in the same run.

    uv run python bench/worker_pipeline.py [--tasks 400] [--concurrency 2]

Baseline: a bare Celery app (prefork, acks_late, prefetch 1) draining N no-op tasks.
Ours: `vocalborn worker` draining N real analysis tasks (claim, five progress reports, a real
analysis of a short synthesized pair, result + status + record in one commit, events on pub/sub),
on the local PostgreSQL and Redis, in a database and queues of its own that it removes.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import redis
from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def drain_noop(n: int, concurrency: int, run: str) -> float:
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
        _noop_app.noop.apply_async(args=[i])
    client = redis.Redis.from_url(REDIS)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "_noop_app",
            "worker",
            "-c",
            str(concurrency),
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
            "-Q",
            env["BENCH_QUEUE"],
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while int(client.get(env["BENCH_COUNTER"]) or 0) == 0:
            time.sleep(0.005)
        started = time.perf_counter()  # from the first completion: excludes worker start-up
        while int(client.get(env["BENCH_COUNTER"]) or 0) < n:
            time.sleep(0.005)
        return (n - 1) / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(30)


def drain_ours(n: int, concurrency: int, run: str) -> tuple[float, float]:
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    db_name = f"vb_bench_{run}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{db_name}"'))
    data_dir = Path(f"/tmp/vb-bench-{run}")
    env = dict(
        os.environ,
        DATABASE_URL=PG.rsplit("/", 1)[0] + "/" + db_name,
        CELERY_BROKER_URL=REDIS,
        REDIS_URL=REDIS,
        DATA_DIR=str(data_dir),
        TASK_QUEUE=f"bench_{run}",
        MAINTENANCE_QUEUE=f"bench_m_{run}",
        REDIS_KEY_PREFIX=f"vbbench-{run}:",
        SECRET_KEY="bench-" + run * 8,
        LOG_LEVEL="WARNING",
        ENVIRONMENT="test",
        PROGRESS_WRITE_INTERVAL="0.5",
    )
    os.environ.update(env)
    worker = None
    try:
        subprocess.run([sys.executable, "-m", "vocalborn.cli", "migrate"], env=env, check=True, capture_output=True)
        from vocalborn.analysis.synth import synthesize
        from vocalborn.auth.models import Role
        from vocalborn.db import open_session
        from vocalborn.models import PracticeRecord, PracticeSession, Sentence, User
        from vocalborn.storage import get_storage
        from vocalborn.tasks import service
        from vocalborn.tasks.models import AIAnalysisTask

        storage = get_storage()
        ref_key = storage.save("references", synthesize("你好嗎", "zh", "Female1"), "wav")
        att_key = storage.save("recordings", synthesize("你好嗎", "zh", "Male1"), "wav")
        with open_session() as db:
            user = User(email="bench@example.com", name="Bench", role=Role.LEARNER.value, password_hash="-")
            db.add(user)
            db.flush()
            sentence = Sentence(
                text="你好嗎",
                reference_audio_key=ref_key,
                reference_audio_format="wav",
                reference_duration_seconds=1.0,
                created_by=user.user_id,
            )
            session = PracticeSession(user_id=user.user_id)
            db.add_all([sentence, session])
            db.flush()
            records = [
                PracticeRecord(
                    practice_session_id=session.practice_session_id,
                    sentence_id=sentence.sentence_id,
                    user_id=user.user_id,
                    audio_key=att_key,
                    audio_format="wav",
                    audio_size_bytes=1,
                    audio_duration_seconds=1.0,
                )
                for _ in range(n)
            ]
            db.add_all(records)
            db.commit()
            for r in records:
                service.submit_analysis(db, user, r.practice_record_id, {})
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vocalborn.cli",
                "worker",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"bench-{run}@%h",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        engine = create_engine(env["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://"))

        def done() -> int:
            with engine.connect() as c:
                return int(
                    c.execute(
                        select(func.count())
                        .select_from(AIAnalysisTask.__table__)
                        .where(AIAnalysisTask.__table__.c.status == "success")
                    ).scalar_one()
                )

        while done() == 0:
            time.sleep(0.01)
        started = time.perf_counter()
        first = done()
        while (count := done()) < n:
            time.sleep(0.02)
        rate = (count - first) / (time.perf_counter() - started)
        with engine.connect() as c:
            mean = c.execute(text("SELECT avg(processing_time_seconds) FROM ai_analysis_results")).scalar_one()
        engine.dispose()
        return rate, float(mean)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        from vocalborn.db import reset_engine

        reset_engine()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    run = secrets.token_hex(4)
    try:
        raw = drain_noop(args.tasks * 2, args.concurrency, run)
        print(f"celery no-op consume (prefork {args.concurrency}, acks_late): {raw:8.0f} tasks/s")
        ours, mean = drain_ours(args.tasks, args.concurrency, run)
        print(
            f"vocalborn pipeline with a real 1 s analysis:       {ours:8.1f} tasks/s "
            f"(mean processing {mean * 1000:.0f} ms per task)"
        )
        wall = args.concurrency / ours
        print(
            f"per task per process: {wall * 1000:.0f} ms wall, of which {mean * 1000:.0f} ms between claim and result "
            f"(analysis + progress reports); the rest, {max(0.0, wall - mean) * 1000:.0f} ms, is Celery delivery, "
            "the claim and the final commit"
        )
        print(f"ratio ours / raw: {ours / raw:.3f}")
    finally:
        client = redis.Redis.from_url(REDIS)
        for key in list(client.scan_iter(match=f"*{run}*")):
            client.delete(key)


if __name__ == "__main__":
    main()
