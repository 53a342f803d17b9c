"""The API's speed beside its baselines, measured in one run on the same services, one process each.

    uv run python bench/api.py [--seconds 8] [--sizes 10000,100000] [--json OUT]

Needs `wrk` (Debian package) and the local PostgreSQL and Redis (BENCH_DATABASE_URL,
BENCH_REDIS_URL; defaults below); it makes a database, a queue and Redis keys of its own and
removes them afterwards. No worker consumes, so only the API is measured. Rows, each against
its baseline:

* `GET /health` of our app against a bare FastAPI `async def` ping;
* our submit at 64 and at 8 connections against a bare `async def` INSERT ... RETURNING on a
  psycopg pool + one publish, and against the plan's naive sync submit (bench/_bare_app.py);
* our status GET with the tasks table grown to each of ``--sizes`` (seeded in SQL) against our
  own `/health`; our history page likewise, so growth shows as p99 against table size.

wrk and the servers share the machine's cores: the figures are a floor, and the ratios (each
row against the baseline measured minutes apart on the same machine) are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

CYCLE_SCRIPT = """
local file = "%s"
local token = "%s"
local method = "%s"
local created = 0
setup = function(thread) thread:set("tid", created); created = created + 1 end
init = function(args)
  n = tid
  paths = {}  -- read from a file: a script holds at most 65,536 constants
  for line in io.lines(file) do
    local tab = line:find("\\t", 1, true)
    paths[#paths + 1] = {path = line:sub(1, tab - 1), body = line:sub(tab + 1)}
  end
end
request = function()
  n = n + 2  -- two wrk threads: each walks its own half of the list
  local p = paths[(n %% #paths) + 1]
  if method == "POST" then
    return wrk.format("POST", p.path, {["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token}, p.body)
  end
  return wrk.format("GET", p.path, {["Authorization"] = "Bearer " .. token})
end
"""


def wrk(url: str, seconds: int, connections: int, script: str | None = None) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        path = Path(tempfile.mkdtemp()) / "bench.lua"
        path.write_text(script)
        args += ["-s", str(path)]
    done = subprocess.run([*args, url], capture_output=True, text=True)
    if done.returncode or done.stderr.strip():  # a script that does not load makes wrk send plain GETs
        raise RuntimeError(f"wrk failed: {done.stderr.strip() or done.returncode}")
    out = done.stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found, out
    pct = {k: _ms(v) for k, v in re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", out, re.M)}
    top = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+\w+)", out, re.M)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(found.group(1)),
        "p50_ms": pct.get("50", 0.0),
        "p90_ms": pct.get("90", 0.0),
        "p99_ms": pct.get("99", 0.0),
        "max_ms": _ms(top.group(1)) if top else 0.0,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group(0))  # type: ignore[union-attr]
    unit = value[len(re.match(r"[\d.]+", value).group(0)) :]  # type: ignore[union-attr]
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cycle(paths: list[tuple[str, str]], token: str, method: str) -> str:
    """A wrk script that walks ``paths`` (path, body) in turn; the list is read from a file."""
    data = Path(tempfile.mkdtemp()) / "paths.tsv"
    data.write_text("".join(f"{p}\t{b}\n" for p, b in paths))
    return CYCLE_SCRIPT % (data, token, method)


class Stack:
    """A database of the run's own, migrated and seeded; the servers under test."""

    def __init__(self) -> None:
        self.run = secrets.token_hex(4)
        self.admin = create_engine(PG, isolation_level="AUTOCOMMIT")
        self.db_name = f"vb_bench_{self.run}"
        self.db_url = PG.rsplit("/", 1)[0] + "/" + self.db_name
        self.env = dict(
            os.environ,
            DATABASE_URL=self.db_url,
            CELERY_BROKER_URL=REDIS,
            REDIS_URL=REDIS,
            DATA_DIR=f"/tmp/vb-bench-{self.run}",
            TASK_QUEUE=f"bench_{self.run}",
            BENCH_QUEUE=f"bench_{self.run}",
            REDIS_KEY_PREFIX=f"vbbench-{self.run}:",
            SECRET_KEY="bench-" + self.run * 8,
            LOG_LEVEL="WARNING",
            ENVIRONMENT="test",
            # The bench measures speed, not the abuse limits: lift them out of the way.
            RATE_LIMIT_SUBMITS_PER_USER="1000000",
            MAX_ACTIVE_TASKS_PER_LEARNER="0",
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def __enter__(self) -> Stack:
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "migrate"], env=self.env, check=True, capture_output=True
        )
        os.environ.update(self.env)
        self.engine = create_engine(self.db_url)
        with self.engine.begin() as c:
            c.execute(
                text(
                    "CREATE TABLE bench_insert (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
                    "record_id uuid NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
                )
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in self.logs:  # what the servers complained about (a non-2xx has its reason here)
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if "WARNING" in ln or "ERROR" in ln]
            if lines:
                print(f"{log}: {len(lines)} warnings/errors, first: {lines[0][:300]}")
            log.unlink()
        import redis

        client = redis.Redis.from_url(REDIS)
        for key in list(client.scan_iter(match=f"*{self.run}*")):
            client.delete(key)
        self.engine.dispose()
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        shutil.rmtree(self.env["DATA_DIR"], ignore_errors=True)

    def seed_learner(self) -> tuple[str, uuid.UUID, uuid.UUID, uuid.UUID]:
        from vocalborn.auth.models import Role, User
        from vocalborn.auth.security import hash_password
        from vocalborn.auth.sessions import token_for
        from vocalborn.db import open_session
        from vocalborn.practice.models import PracticeSession, Sentence

        with open_session() as db:
            user = User(
                email="bench@example.com", name="Bench", role=Role.LEARNER.value, password_hash=hash_password("x" * 12)
            )
            db.add(user)
            db.flush()
            sentence = Sentence(
                text="bench",
                reference_audio_key="references/00/" + "0" * 32 + ".wav",
                reference_audio_format="wav",
                reference_duration_seconds=4.0,
                created_by=user.user_id,
            )
            session = PracticeSession(user_id=user.user_id)
            db.add_all([sentence, session])
            db.commit()
            token = token_for(db, user)
            self.learner_ids = (user.user_id, sentence.sentence_id, session.practice_session_id)
            return token, user.user_id, sentence.sentence_id, session.practice_session_id

    def seed_admin(self) -> str:
        from vocalborn.auth.models import Role, User
        from vocalborn.auth.security import hash_password
        from vocalborn.auth.sessions import token_for
        from vocalborn.db import open_session

        with open_session() as db:
            user = User(
                email="admin@example.com", name="Admin", role=Role.ADMIN.value, password_hash=hash_password("x" * 12)
            )
            db.add(user)
            db.commit()
            return token_for(db, user)

    def records(self, user: uuid.UUID, sentence: uuid.UUID, session: uuid.UUID, n: int) -> list[str]:
        with self.engine.begin() as c:
            rows = c.execute(
                text(
                    "INSERT INTO practice_records (practice_record_id, practice_session_id, sentence_id, user_id, "
                    "audio_key, audio_format, audio_size_bytes, audio_duration_seconds, record_status, created_at, "
                    "updated_at) SELECT gen_random_uuid(), :s, :sen, :u, 'recordings/00/' || md5(g::text) || '.wav', "
                    "'wav', 1, 4.0, 'RECORDED', now(), now() FROM generate_series(1, :n) g RETURNING practice_record_id"
                ),
                {"s": session, "sen": sentence, "u": user, "n": n},
            )
            return [str(r[0]) for r in rows]

    def grow_tasks(self, record: str, total: int, learners: int = 2000) -> None:
        """Grow the tasks table to ``total`` rows of finished analyses of ``learners`` other
        learners (spread over 90 days), so the bench learner's rows are a small part of it."""
        with self.engine.begin() as c:
            have = c.execute(text("SELECT count(*) FROM ai_analysis_tasks")).scalar_one()
            if total <= have:
                return
            others = c.execute(text("SELECT count(*) FROM users WHERE email LIKE 'crowd-%'")).scalar_one()
            if others == 0:
                cols = [
                    r[0]
                    for r in c.execute(
                        text("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
                    )
                ]
                exprs = [
                    "gen_random_uuid()" if n == "user_id" else "'crowd-' || g || '@example.com'" if n == "email" else n
                    for n in cols
                ]
                c.execute(
                    text(
                        f"INSERT INTO users ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM users, "
                        f"generate_series(1, {learners}) g WHERE email = 'bench@example.com'"
                    )
                )
            c.execute(
                text(
                    "INSERT INTO ai_analysis_tasks (task_id, celery_task_id, practice_record_id, user_id, status, "
                    "task_type, progress, retry_count, max_retries, attempt, deliveries, publish_count, created_at, "
                    "updated_at, started_at, completed_at) SELECT id, id::text, :r, u.user_id, 'success', "
                    "'audio_analysis', 100, 0, 3, 1, 1, 1, t, t, t, t + interval '2 seconds' FROM "
                    "(SELECT gen_random_uuid() AS id, now() - (random() * interval '90 days') AS t, "
                    "1 + (g % :k) AS k FROM generate_series(1, :n) g) s "
                    "JOIN (SELECT user_id, row_number() OVER () AS k FROM users WHERE email LIKE 'crowd-%') u "
                    "USING (k)"
                ),
                {"r": record, "n": total - have, "k": learners},
            )
            c.execute(text("ANALYZE ai_analysis_tasks"))

    def serve(self, args: list[str], port: int) -> str:
        log = Path(tempfile.gettempdir()) / f"vb-bench-{self.run}-{port}.log"  # the server's warnings, if any
        with log.open("wb") as out:
            proc = subprocess.Popen(args, env=self.env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True)
        self.logs.append(log)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/openapi.json", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"{args} did not start")


def cleanup_during_submits(
    stack: Stack, n: int, records: list[str], token: str, url: str, rows: dict[str, dict[str, float]]
) -> None:
    """Seed ``n`` failed tasks past their retention, run the retention cleanup (as Beat does) and
    measure submits at 8 connections meanwhile: batches must never hold a submit for long."""
    import threading

    with stack.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO ai_analysis_tasks (task_id, celery_task_id, practice_record_id, user_id, status, "
                "task_type, progress, retry_count, max_retries, attempt, deliveries, publish_count, created_at, "
                "updated_at, started_at, completed_at, error_message) SELECT id, id::text, :r, u.user_id, 'failure', "
                "'audio_analysis', 40, 3, 3, 4, 4, 1, t, t, t, t, 'bench' FROM "
                "(SELECT gen_random_uuid() AS id, now() - interval '200 days' + g * interval '1 second' AS t, "
                "1 + (g % 2000) AS k FROM generate_series(1, :n) g) s "
                "JOIN (SELECT user_id, row_number() OVER () AS k FROM users WHERE email LIKE 'crowd-%') u USING (k)"
            ),
            {"r": records[0], "n": n},
        )
        c.execute(text("ANALYZE ai_analysis_tasks"))
    from vocalborn.tasks.worker.retention import cleanup_expired_tasks

    took: dict[str, float] = {}

    def clean() -> None:
        started = time.perf_counter()
        report = cleanup_expired_tasks()
        took["seconds"], took["deleted"] = time.perf_counter() - started, float(report.tasks_deleted)

    fresh = stack.records(*stack.learner_ids, 40000)  # never submitted: a resubmit takes the slow path
    checkpoints_before = _checkpoints(stack)
    cleaner = threading.Thread(target=clean)
    cleaner.start()
    submit = "/api/v1/tasks/analysis/submit"
    script = cycle([(submit, json.dumps({"practice_record_id": r})) for r in fresh], token, "POST")
    seconds = 20
    r = wrk(url, seconds, 8, script)
    checkpoints = _checkpoints(stack) - checkpoints_before  # while the submits were measured
    cleaner.join()
    rows[f"ours: submit (8) during cleanup of {n:,} rows"] = r
    took["checkpoints_during_submits"] = float(checkpoints)
    rows["cleanup"] = took
    print(
        f"{'ours: submit (8) during cleanup':<44} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 "
        f"{r['p99_ms']:7.1f} ms  max {r['max_ms']:7.1f} ms; cleanup deleted {took['deleted']:,.0f} in "
        f"{took['seconds']:.1f} s (submits measured for the first {seconds} s, PostgreSQL checkpoints "
        f"meanwhile: {checkpoints})",
        flush=True,
    )


def _checkpoints(stack: Stack) -> int:
    """PostgreSQL's checkpoints so far (timed and requested): a checkpoint's writes can hold a
    commit, whoever is committing, so a slow submit during one is the host's, not the API's."""
    with stack.engine.connect() as c:
        version = int(c.execute(text("SHOW server_version_num")).scalar_one())
        view = (  # PostgreSQL 17 moved the counts to a view of their own
            "SELECT num_timed + num_requested FROM pg_stat_checkpointer"
            if version >= 170000
            else "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        )
        return int(c.execute(text(view)).scalar_one())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=8, help="duration of each wrk run")
    ap.add_argument("--sizes", default="10000,100000", help="tasks-table sizes for the status/history rows")
    ap.add_argument("--json", type=Path, help="write the figures here as JSON")
    ap.add_argument(
        "--cleanup", type=int, default=0, help="also: retention cleanup of this many expired tasks during submits"
    )
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    rows: dict[str, dict[str, float]] = {}

    def measure(
        name: str, url: str, connections: int = 64, script: str | None = None, warmup: str | None = None
    ) -> dict[str, float]:
        wrk(url, 2, connections, warmup or script)  # warm-up (submits: records of its own)
        rows[name] = wrk(url, args.seconds, connections, script)
        r = rows[name]
        print(
            f"{name:<44} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms"
            f"  non-2xx {r['non_2xx']:.0f}",
            flush=True,
        )
        return r

    with Stack() as stack:
        token, user, sentence, session = stack.seed_learner()
        admin = stack.seed_admin()
        # Enough records that no submit finds an active task: each submit row's warm-up and its
        # measured run take records of their own (a record submitted twice takes the slow path).
        expected = 5000 * args.seconds
        pools = {k: stack.records(user, sentence, session, expected) for k in ("insert", "naive", "ours64", "ours8")}
        warm = {k: stack.records(user, sentence, session, 10000) for k in ("insert", "naive", "ours64", "ours8")}
        bare = stack.serve(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "_bare_app:app", "--port", str(p := free_port()),
             "--log-level", "warning", "--no-access-log"], p,
        )  # fmt: skip
        ours = stack.serve(
            [sys.executable, "-m", "vocalborn.cli", "api", "--port", str(q := free_port()), "--workers", "1"], q
        )
        print(
            f"one uvicorn process each; wrk -t2, {args.seconds} s per row, on {os.cpu_count()} cores shared with the servers"
        )
        measure("baseline: bare async GET /ping", bare + "/ping")
        measure("ours: GET /health", ours + "/health")

        def body(rid: str) -> str:
            return json.dumps({"practice_record_id": rid})

        measure(
            "baseline: bare async INSERT + publish (64)",
            bare,
            64,
            cycle([("/insert", body(r)) for r in pools["insert"]], token, "POST"),
            cycle([("/insert", body(r)) for r in warm["insert"]], token, "POST"),
        )
        measure(
            "baseline: naive sync submit (64)",
            bare,
            64,
            cycle([("/naive-submit", body(r)) for r in pools["naive"]], token, "POST"),
            cycle([("/naive-submit", body(r)) for r in warm["naive"]], token, "POST"),
        )
        submit = "/api/v1/tasks/analysis/submit"
        measure(
            "ours: submit (64 connections)",
            ours,
            64,
            cycle([(submit, body(r)) for r in pools["ours64"]], token, "POST"),
            cycle([(submit, body(r)) for r in warm["ours64"]], token, "POST"),
        )
        measure(
            "ours: submit (8 connections)",
            ours,
            8,
            cycle([(submit, body(r)) for r in pools["ours8"]], token, "POST"),
            cycle([(submit, body(r)) for r in warm["ours8"]], token, "POST"),
        )
        with stack.engine.begin() as c:
            # A worker would have run most of them: keep a queue of 200 waiting, the rest done.
            c.execute(
                text(
                    "UPDATE ai_analysis_tasks SET status = 'success', completed_at = now() WHERE status = 'pending' "
                    "AND task_id NOT IN (SELECT task_id FROM ai_analysis_tasks WHERE status = 'pending' "
                    "ORDER BY created_at DESC LIMIT 200)"
                )
            )
            live = [
                str(r[0])
                for r in c.execute(
                    text("SELECT task_id FROM ai_analysis_tasks WHERE user_id = :u ORDER BY random() LIMIT 2000"),
                    {"u": user},
                )
            ]
        for size in [int(s) for s in args.sizes.split(",") if s]:
            stack.grow_tasks(pools["insert"][0], size)
            measure(f"ours: GET /health (at {size:,} tasks)", ours + "/health")
            status = [(f"/api/v1/tasks/analysis/{t}/status", "") for t in live]
            measure(f"ours: status GET at {size:,} tasks", ours, 64, cycle(status, token, "GET"))
            history = [("/api/v1/tasks/analysis?limit=20", "")]
            measure(f"ours: history GET at {size:,} tasks", ours, 64, cycle(history, token, "GET"))
            took = []
            for _ in range(5):
                started = time.perf_counter()
                r = httpx.get(
                    ours + "/api/v1/admin/tasks/stats", headers={"Authorization": f"Bearer {admin}"}, timeout=60
                )
                took.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200, r.text
            took.sort()
            rows[f"ours: admin stats at {size:,} tasks"] = {"median_ms": took[2], "max_ms": took[-1]}
            print(
                f"{'ours: admin stats at ' + format(size, ',') + ' tasks':<44} median {took[2]:7.1f} ms  max {took[-1]:7.1f} ms"
            )
        if args.cleanup:
            cleanup_during_submits(stack, args.cleanup, pools["ours8"], token, ours, rows)

    def ratio(a: str, b: str) -> float:
        return rows[a]["rps"] / rows[b]["rps"] if rows[b]["rps"] else float("inf")

    ratios = {
        "health / bare ping (target >= 0.5)": ratio("ours: GET /health", "baseline: bare async GET /ping"),
        "submit 64 / bare INSERT+publish (target >= 1.5)": ratio(
            "ours: submit (64 connections)", "baseline: bare async INSERT + publish (64)"
        ),
        "submit 64 / naive sync submit": ratio("ours: submit (64 connections)", "baseline: naive sync submit (64)"),
    }
    for size in [int(s) for s in args.sizes.split(",") if s]:
        ratios[f"status / health at {size:,} tasks (target >= 0.5)"] = ratio(
            f"ours: status GET at {size:,} tasks", f"ours: GET /health (at {size:,} tasks)"
        )
    print()
    for k, v in ratios.items():
        print(f"{k:<52} {v:6.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
