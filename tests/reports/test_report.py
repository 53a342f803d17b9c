"""Issue #26, the clinical report: GET /api/v1/learners/{id}/report?format=pdf|csv&from&to.

500 analysed attempts written straight to the database (tests/reports/seed.py) plus two made
through the runner this week; the CSV's numbers are the goals' and progress' (the API's), the PDF
is rendered to PNG pages with pdftoppm (kept in test-artifacts/report-*.png, looked at), its text
(pdftotext) holds the Chinese sentence in both languages' reports, both come within a generous
bound of the 2 s target, only the learner and the linked therapist may download it, and the
therapist's download is in the learner's access log."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.learning.test_counted import GOOD, _attempt, _linked, _report
from tests.reports import seed
from tests.support import SENTENCE, Api, recording

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
N = 500


@pytest.fixture(scope="module")
def world(api: Api) -> dict[str, Any]:
    from vocalborn.db import open_session

    therapist, learner = _linked(api)
    uid = learner["user"]["user_id"]
    sid = api.sentence(therapist, recording(), shared=False)["sentence_id"]
    r = api.client.post(
        f"/api/v1/learners/{uid}/assignments",
        headers=therapist["headers"],
        json={"sentence_id": sid, "target_attempts_per_week": 20, "target_minutes_per_week": 10},
    )
    assert r.status_code == 201, r.text
    session = api.session(learner)["practice_session_id"]
    now = datetime.now(UTC)
    with open_session() as db:
        seed.attempts(db, uuid.UUID(uid), uuid.UUID(session), uuid.UUID(sid), N, now - timedelta(days=8))
    done = [_attempt(api, learner, session, sid, _report(77.0, GOOD)) for _ in range(2)]
    review = api.client.put(
        f"/api/v1/tasks/analysis/{done[0]['task_id']}/review",
        headers=therapist["headers"],
        json={
            "overall_score": 70,
            "comment": "氣 的聲調再往下",
            "characters": [{"index": 3, "char": "氣", "deviating": True}],
        },
    )
    assert review.status_code == 201, review.text
    first = (now - timedelta(days=70)).date()
    return {"therapist": therapist, "learner": learner, "uid": uid, "sid": sid, "first": first, "last": now.date()}


def _get(api: Api, who: dict[str, Any], uid: str, query: str) -> Any:
    return api.client.get(f"/api/v1/learners/{uid}/report?{query}", headers=who["headers"])


def _sections(body: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    header: list[str] = []
    for cells in csv.reader(io.StringIO(body.lstrip("\ufeff"))):
        if not cells:
            continue
        if cells[0] == "section":
            header = cells
            continue
        out.setdefault(cells[0], []).append(dict(zip(header, cells, strict=True)))
    return out


def test_csv_numbers_are_the_apis(api: Api, world: dict[str, Any]) -> None:
    uid, learner = world["uid"], world["learner"]
    query = f"format=csv&from={world['first']}&to={world['last']}"
    started = time.perf_counter()
    r = _get(api, world["therapist"], uid, query)
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    assert elapsed < 6.0, f"CSV of {N} attempts took {elapsed:.2f} s (target 2 s on one core)"
    s = _sections(r.text)
    goals = api.client.get(f"/api/v1/learners/{uid}/goals", headers=learner["headers"]).json()
    [this_week] = [w for w in s["weeks"] if w["week_start"] == goals["week_start"]]
    assert int(this_week["attempts"]) == goals["attempts_this_week"] == 2
    assert float(this_week["minutes"]) == goals["minutes_this_week"]
    assert float(this_week["dose_met_percent"]) == goals["dose_met_percent"]
    assert sum(int(w["attempts"]) for w in s["weeks"]) == N - N // 10 + 2
    assert sum(int(w["not_counted"]) for w in s["weeks"]) == N // 10
    # every attempt's scores and date are progress' points, attempts that do not count aside
    progress = api.client.get(f"/api/v1/learners/{uid}/progress", headers=learner["headers"]).json()
    [sentence] = progress["sentences"]
    rows = {row["task_id"]: row for row in s["attempts"]}
    assert len(rows) == N + 2 and sentence["attempts"] == N - N // 10 + 2
    for point in sentence["points"]:
        row = rows[point["task_id"]]
        assert row["counted"] == "true"
        for field in ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score"):
            assert float(row[field]) == point[field]
        assert datetime.fromisoformat(row["at"]) == datetime.fromisoformat(point["at"].replace("Z", "+00:00"))
    assert sum(1 for row in rows.values() if row["counted"] == "false") == sentence["not_counted_attempts"]
    # characters: each one's errors are progress' deviating count (the same attempts, the same rule)
    deviating: dict[str, int] = {}  # progress counts per position (天 twice), the report per character
    for c in sentence["characters"]:
        deviating[c["char"]] = deviating.get(c["char"], 0) + c["deviating_count"]
    per_char: dict[str, int] = {}
    for row in s["characters"]:
        per_char[row["char"]] = per_char.get(row["char"], 0) + int(row["errors"])
    assert per_char == {c: n for c, n in deviating.items() if n or c in per_char}
    assert "，" not in per_char and "。" not in per_char  # punctuation is never judged
    # the tone matrix: tone errors are off the diagonal, and every judged, said tone is in it
    tones = {int(row["expected_tone"]): row for row in s["tones"]}
    off = sum(int(v) for t, row in tones.items() for k, v in row.items() if k.startswith("heard_") and k != f"heard_{t}"
              and k != "heard_unknown")  # fmt: skip
    assert off > 0 and int(tones[4]["heard_4"]) > 0
    [review] = s["reviews"]
    assert review["comment"] == "氣 的聲調再往下" and review["characters"] == "氣"
    assert float(review["therapist_overall_score"]) == 70.0 and float(review["engine_overall_score"]) == 77.0


def test_pdf_in_both_languages_rendered_to_png(api: Api, world: dict[str, Any]) -> None:
    assert shutil.which("pdftoppm") and shutil.which("pdftotext"), "poppler-utils is needed (.ci/run installs it)"
    ARTIFACTS.mkdir(exist_ok=True)
    for lang in ("zh-TW", "en"):
        query = f"format=pdf&from={world['first']}&to={world['last']}&lang={lang}"
        started = time.perf_counter()
        r = _get(api, world["learner"], world["uid"], query)
        elapsed = time.perf_counter() - started
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
        assert elapsed < 8.0, f"PDF of {N} attempts took {elapsed:.2f} s (target 2 s on one core)"
        pdf = ARTIFACTS / f"report-{lang}.pdf"
        pdf.write_bytes(r.content)
        for old in ARTIFACTS.glob(f"report-{lang}-*.png"):
            old.unlink()
        subprocess.run(["pdftoppm", "-r", "80", "-png", str(pdf), str(ARTIFACTS / f"report-{lang}")], check=True)
        pages = sorted(ARTIFACTS.glob(f"report-{lang}-*.png"))
        assert 2 <= len(pages) <= 12, pages
        from PIL import Image

        with Image.open(pages[0]) as image:  # not blank: text and charts drawn
            extrema = image.convert("L").getextrema()
            assert extrema[0] < 80 and extrema[1] > 200
        words = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
        flat = words.stdout.replace(" ", "")
        assert SENTENCE in flat  # the Chinese sentence, legible (embedded font with its Unicode map)
        if lang == "en":
            assert "Practice report" in words.stdout and "Tone confusion matrix" in words.stdout
            assert "練習報告" not in flat
        else:
            assert "練習報告" in flat and "聲調混淆矩陣" in flat
        assert "氣的聲調再往下" in flat  # the therapist's review


def test_only_the_learner_and_the_linked_therapist_download_it_and_it_is_logged(
    api: Api, world: dict[str, Any]
) -> None:
    uid = world["uid"]
    query = f"format=csv&from={world['last']}&to={world['last']}"
    for who, expected in (
        (api.register("therapist"), 404),
        (api.register("learner"), 404),
        (api.admin(), 403),
        (world["learner"], 200),
        (world["therapist"], 200),
    ):
        assert _get(api, who, uid, query).status_code == expected
    assert api.client.get(f"/api/v1/learners/{uid}/report?format=csv").status_code == 401
    zh = _get(api, api.admin(), uid, query + "&lang=zh-TW")
    assert zh.status_code == 403 and zh.json()["detail"] == "報告只提供給學員本人與其連結的治療師"
    log = api.client.get("/api/v1/me/access-log", headers=world["learner"]["headers"]).json()
    entries = log["items"] if isinstance(log, dict) else log
    assert any(e["what"] == "report" and e["reader_id"] == world["therapist"]["user"]["user_id"] for e in entries)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("format=pdf&from=2026-12-07&to=2026-12-01", "first day is after the last day"),
        ("format=csv&from=2020-01-01&to=2026-12-01", "at most"),
        ("format=doc", "format"),
        ("format=csv&from=yesterday", "from"),
    ],
)
def test_bad_parameters_are_422_with_the_field(api: Api, world: dict[str, Any], query: str, message: str) -> None:
    r = _get(api, world["learner"], world["uid"], query)
    assert r.status_code == 422, r.text
    assert message in r.text


@pytest.mark.worker  # starts an API process
def test_the_cli_downloads_the_report_and_lists_drills(
    api: Api, world: dict[str, Any], migrated: Any, tmp_path: Path
) -> None:
    import os
    import sys

    from tests.support import api_process
    from vocalborn.embedded import free_port

    port = free_port()
    proc = api_process(port, migrated.data_dir)
    try:
        env = dict(os.environ, VOCALBORN_PASSWORD="correct-horse-1")
        base = [sys.executable, "-m", "vocalborn.cli"]
        common = ["--url", f"http://127.0.0.1:{port}", "--email", world["therapist"]["email"]]
        out = tmp_path / "r.csv"
        done = subprocess.run(
            [*base, "report", *common, "--learner", world["uid"], "--format", "csv", "--from", str(world["first"]),
             "--to", str(world["last"]), "-o", str(out)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert str(out) in done.stdout
        api_csv = _get(api, world["therapist"], world["uid"], f"format=csv&from={world['first']}&to={world['last']}")
        assert _sections(out.read_text(encoding="utf-8"))["weeks"] == _sections(api_csv.text)["weeks"]
        pdf = tmp_path / "r.pdf"
        done = subprocess.run(
            [*base, "report", *common, "--learner", world["uid"], "--lang", "zh-TW", "-o", str(pdf)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0 and pdf.read_bytes().startswith(b"%PDF"), done.stderr
        refused = subprocess.run(
            [*base, "report", "--url", f"http://127.0.0.1:{port}", "--email", api.register("therapist")["email"],
             "--learner", world["uid"], "-o", str(tmp_path / "x.pdf")],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert refused.returncode == 5 and "404" in refused.stderr and not (tmp_path / "x.pdf").exists()
        drills = subprocess.run(
            [*base, "drills", *common, "--learner", world["uid"]], env=env, capture_output=True, text=True, timeout=120
        )
        assert drills.returncode == 0, drills.stderr
        assert "tone_contrast" in drills.stdout and "reference recording" in drills.stdout
    finally:
        proc.stop()
