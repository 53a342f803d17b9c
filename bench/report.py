"""The clinical report's speed (issue #26: 500 attempts in <= 2 s on one core), in one run:

    uv run python bench/report.py [--attempts 500] [--repeat 5] [--json OUT]

Pinned to one core. A database of its own on the local PostgreSQL (BENCH_DATABASE_URL), migrated
by `vocalborn migrate`, one learner with ``--attempts`` analysed attempts (tests/reports/seed.py:
per-character verdicts and a pitch contour of a real result's size), then, median of ``--repeat``:

* baseline: the progress endpoint's computation on the same attempts (learning/progress.py);
* csv: gathering the report and writing the CSV;
* pdf: gathering the report and drawing the PDF (warm: reportlab imported, font registered);
* pdf cold: the first PDF of the process (reportlab's import and the font's registration), once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    name = f"vb_bench_report_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG).set(database=name).render_as_string(hide_password=False)
    try:
        env = dict(os.environ, DATABASE_URL=url)
        subprocess.run([sys.executable, "-m", "vocalborn.cli", "migrate"], env=env, check=True, capture_output=True)
        os.environ["DATABASE_URL"] = url
        figures = measure(args.attempts, args.repeat)
    finally:
        from vocalborn.db import get_engine

        get_engine().dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


def measure(n: int, repeat: int) -> dict[str, Any]:
    from tests import seeding
    from tests.reports import seed

    from vocalborn.auth.models import Role
    from vocalborn.auth.service import create_user
    from vocalborn.db import open_session
    from vocalborn.learning import progress
    from vocalborn.practice.models import PracticeSession
    from vocalborn.reports import data
    from vocalborn.reports.csvfile import render_csv

    now = datetime.now(UTC)
    with open_session() as db:
        therapist = create_user(db, email="t@example.com", password="x" * 12, name="T", role=Role.THERAPIST)
        learner = create_user(db, email="l@example.com", password="x" * 12, name="L", role=Role.LEARNER)
        learner.therapist_id = therapist.user_id
        sentence = seeding.sentence(db, "今天天氣很好，我們去公園散步。", therapist.user_id)
        session = PracticeSession(user_id=learner.user_id)
        db.add(session)
        db.flush()
        seed.attempts(db, learner.user_id, session.practice_session_id, sentence.sentence_id, n, now)
        learner_id, therapist_id = learner.user_id, therapist.user_id
    first, last = (now - timedelta(days=60)).date(), now.date()

    def timed(fn: Any) -> float:
        with open_session() as db:
            from vocalborn.auth.models import User

            reader, who = db.get(User, therapist_id), db.get(User, learner_id)
            assert reader is not None and who is not None
            started = time.perf_counter()
            fn(db, reader, who)
            return time.perf_counter() - started

    def pdf(db: Any, reader: Any, who: Any) -> None:
        from vocalborn.reports.pdf import render_pdf

        render_pdf(data.gather(db, reader, who, first, last), "zh-TW")

    cold = timed(pdf)
    out: dict[str, Any] = {"attempts": n, "one_core": True, "pdf_cold_s": round(cold, 3)}
    runs: dict[str, list[float]] = {"baseline_progress_s": [], "csv_s": [], "pdf_s": []}
    for _ in range(repeat):  # interleaved, so load on the machine falls on all alike
        runs["baseline_progress_s"].append(timed(lambda db, r, w: progress.progress(db, r, w.user_id, None, None)))
        runs["csv_s"].append(timed(lambda db, r, w: render_csv(data.gather(db, r, w, first, last))))
        runs["pdf_s"].append(timed(pdf))
    for key, values in runs.items():
        out[key] = round(statistics.median(values), 3)
        out[key.replace("_s", "_max_s")] = round(max(values), 3)
    return out


if __name__ == "__main__":
    main()
