"""Submit throughput and latency of the running API, against a bare async endpoint in the same run.

    uv run python bench/submit_throughput.py [--requests 3000] [--concurrency 64] [--api-workers 2] [--seconds 10]

With `wrk` on the PATH (Debian package `wrk`) the load comes from wrk, which is light enough not to
be the bottleneck (a Lua script gives every submit a record of its own); otherwise from an asyncio
httpx client, which on this machine saturates near 300-400 req/s itself.

Uses the local PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL; defaults below), in a
database and a queue of its own that it removes afterwards. Starts `vocalborn api` as a
subprocess; no worker consumes, so only the submit path is measured. The load generator runs on
the same 2-core machine and competes with the server for CPU: the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


async def load(
    url: str, requests: list[tuple[str, str, dict | None]], concurrency: int, headers: dict
) -> tuple[float, list[float], dict[int, int]]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while True:
                try:
                    method, path, body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                r = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - t0)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, codes


WRK_SCRIPT = """
local ids = {%s}
local token = "%s"
local created = 0
setup = function(thread) thread:set("tid", created); created = created + 1 end
init = function(args) n = tid end
request = function()
  n = n + 2  -- two wrk threads: each walks its own half of the records
  local id = ids[(n %% #ids) + 1]
  return wrk.format("POST", "/api/v1/tasks/analysis/submit",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token},
    '{"practice_record_id":"' .. id .. '"}')
end
"""


def wrk_run(url: str, seconds: int, concurrency: int, script: str | None) -> tuple[float, dict[str, str], int]:
    import re
    import shutil
    import tempfile

    assert shutil.which("wrk")
    threads = 2
    args = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds}s", "--latency"]
    if script:
        path = Path(tempfile.mkdtemp()) / "submit.lua"
        path.write_text(script)
        args += ["-s", str(path)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct, int(errors.group(1)) if errors else 0


def report(name: str, n: int, elapsed: float, lat: list[float], codes: dict[int, int]) -> float:
    rps = n / elapsed
    print(
        f"{name:<28} {rps:8.0f} req/s   p50 {statistics.median(lat) * 1000:6.1f} ms   "
        f"p99 {percentile(lat, 0.99) * 1000:6.1f} ms   codes {codes}"
    )
    return rps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--api-workers", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    args = ap.parse_args()
    import shutil

    use_wrk = shutil.which("wrk") is not None

    run = secrets.token_hex(4)
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    db_name = f"vb_bench_{run}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{db_name}"'))
    db_url = PG.rsplit("/", 1)[0] + "/" + db_name
    data_dir = Path(f"/tmp/vb-bench-{run}")
    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=REDIS,
        REDIS_URL=REDIS,
        DATA_DIR=str(data_dir),
        TASK_QUEUE=f"bench_{run}",
        REDIS_KEY_PREFIX=f"vbbench-{run}:",
        SECRET_KEY="bench-" + run * 8,
        LOG_LEVEL="WARNING",
        ENVIRONMENT="test",
    )
    api = None
    try:
        subprocess.run([sys.executable, "-m", "vocalborn.cli", "migrate"], env=env, check=True, capture_output=True)
        os.environ.update(env)
        from vocalborn.auth.models import Role
        from vocalborn.auth.security import create_access_token, hash_password
        from vocalborn.db import open_session
        from vocalborn.models import PracticeRecord, PracticeSession, Sentence, User

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
            db.flush()
            records = [
                PracticeRecord(
                    practice_session_id=session.practice_session_id,
                    sentence_id=sentence.sentence_id,
                    user_id=user.user_id,
                    audio_key="recordings/00/" + uuid.uuid4().hex + ".wav",
                    audio_format="wav",
                    audio_size_bytes=1,
                    audio_duration_seconds=4.0,
                )
                for _ in range(args.requests)
            ]
            db.add_all(records)
            db.commit()
            token, _ = create_access_token(user.user_id, user.role)
            record_ids = [str(r.practice_record_id) for r in records]

        port = 18000 + int(run[:2], 16)
        api = subprocess.Popen(
            [sys.executable, "-m", "vocalborn.cli", "api", "--port", str(port), "--workers", str(args.api_workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        print(
            f"api workers {args.api_workers}, concurrency {args.concurrency}, "
            f"{'wrk ' + str(args.seconds) + ' s per run' if use_wrk else str(args.requests) + ' requests each'}, "
            f"{os.cpu_count()} cores shared with the load generator"
        )
        if use_wrk:
            wrk_run(url + "/health", 2, args.concurrency, None)  # warm-up
            base, bp, be = wrk_run(url + "/health", args.seconds, args.concurrency, None)
            print(
                f"{'GET /health (bare async)':<28} {base:8.0f} req/s   p50 {bp.get('50')}   p90 {bp.get('90')}   p99 {bp.get('99')}   non-2xx {be}"
            )
            script = WRK_SCRIPT % (",".join(f'"{r}"' for r in record_ids), token)
            sub, sp, se = wrk_run(url, args.seconds, args.concurrency, script)
            print(
                f"{'POST submit':<28} {sub:8.0f} req/s   p50 {sp.get('50')}   p90 {sp.get('90')}   p99 {sp.get('99')}   non-2xx {se}"
            )
            if sub * args.seconds > len(record_ids):
                print(
                    f"note: {int(sub * args.seconds)} submits for {len(record_ids)} records: some hit an active task (cheaper)"
                )
        else:
            warm = [("GET", "/health", None)] * 300
            asyncio.run(load(url, warm, args.concurrency, headers))
            base = report(
                "GET /health (bare async)",
                args.requests,
                *asyncio.run(load(url, [("GET", "/health", None)] * args.requests, args.concurrency, headers)),
            )
            submits = [("POST", "/api/v1/tasks/analysis/submit", {"practice_record_id": rid}) for rid in record_ids]
            sub = report("POST submit", len(submits), *asyncio.run(load(url, submits, args.concurrency, headers)))
        print(f"submit / bare ratio: {sub / base:.3f}")
    finally:
        if api is not None:
            api.terminate()
            api.wait(20)
        import redis

        client = redis.Redis.from_url(REDIS)
        for key in list(client.scan_iter(match=f"*{run}*")):
            client.delete(key)
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
