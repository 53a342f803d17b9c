"""The clinical report as CSV: one file, one section after the other, each with its own header
row whose first cell is ``section`` and each of its rows naming the section in the first cell
(so a spreadsheet filter on the first column shows one section). Sections: ``weeks``,
``attempts``, ``characters``, ``tones``, ``reviews``. Column names are English (machine
readable); numbers are the API's (tests/reports)."""

from __future__ import annotations

import csv
import io
from typing import Any

from vocalborn.learning.models import SCORE_FIELDS
from vocalborn.reports.data import TONES, Report


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A spreadsheet must not run a comment or a sentence as a formula.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def render_csv(report: Report) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")

    def row(*cells: Any) -> None:
        out.writerow([_cell(c) for c in cells])

    row("section", "learner_id", "learner_name", "from", "to", "generated_at")
    row("report", report.learner_id, report.learner_name, report.first_day, report.last_day,
        report.generated_at.isoformat(timespec="seconds"))  # fmt: skip
    out.writerow([])
    row("section", "week_start", "attempts", "not_counted", "minutes", "days_practised", "dose_met_percent")
    for w in report.weeks:
        row("weeks", w.week_start, w.attempts, w.not_counted, w.minutes, len(w.days), w.dose_met_percent)
    out.writerow([])
    row("section", "at", "task_id", "sentence_id", "sentence_text", *SCORE_FIELDS, "completeness_score",
        "counted", "not_counted_reason", "duration_seconds")  # fmt: skip
    for a in report.attempts:
        row("attempts", a.at.isoformat(), a.task_id, a.sentence_id, a.sentence_text,
            *(a.scores[f] for f in SCORE_FIELDS), a.completeness_score, a.counted, a.not_counted_reason,
            round(a.duration_seconds, 3))  # fmt: skip
    out.writerow([])
    weeks = [w.week_start for w in report.weeks]
    row("section", "char", "pinyin", "judged", "errors", "tone", "mispronunciation", "omission",
        *(f"errors_week_{d.isoformat()}" for d in weeks))  # fmt: skip
    for c in report.characters:
        row("characters", c.char, c.pinyin, c.judged, c.error_count, c.errors["tone"], c.errors["mispronunciation"],
            c.errors["omission"], *(c.by_week.get(d, [0, 0])[1] for d in weeks))  # fmt: skip
    out.writerow([])
    row("section", "expected_tone", *(f"heard_{t}" for t in TONES), "heard_unknown")
    for expected in TONES:
        row("tones", expected, *(report.tone_matrix.get((expected, h), 0) for h in (*TONES, None)))
    out.writerow([])
    row("section", "updated_at", "task_id", "therapist_id", "therapist_name", "sentence_text",
        *(f"therapist_{f}" for f in SCORE_FIELDS), "engine_overall_score", "characters", "comment")  # fmt: skip
    for r in report.reviews:
        row("reviews", r.at.isoformat(), r.task_id, r.therapist_id, r.therapist_name, r.sentence_text,
            *(r.scores[f] for f in SCORE_FIELDS), r.engine_overall, " ".join(r.characters), r.comment)  # fmt: skip
    return buf.getvalue()
