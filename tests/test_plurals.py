"""Issue #26 friction "1 attempts": server texts with a count put an English noun in the right
number (the engine's missing-part suggestion, the clinical report's summary); the page's own
texts are tested in tests/web."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from vocalborn.analysis import suggest
from vocalborn.i18n import count_en
from vocalborn.reports.data import Attempt, Report, ReviewRow


def test_count_en() -> None:
    assert count_en(1, "attempt") == "1 attempt"
    assert count_en(0, "attempt") == "0 attempts"
    assert count_en(2, "day") == "2 days"
    assert count_en(1, "child", "children") == "1 child" and count_en(3, "child", "children") == "3 children"


def test_the_missing_part_of_one_syllable_is_one_syllable() -> None:
    t = suggest._TEXT["en"]
    one = [{"kind": "missing", "ref_start": 2.0, "syllables": [7]}]
    [(_, text, _)] = suggest._missing_items(one, t)
    assert "about 1 syllable)" in text and "1 syllables" not in text
    two = [{"kind": "missing", "ref_start": 2.0, "syllables": [7, 8]}]
    assert "about 2 syllables)" in suggest._missing_items(two, t)[0][1]
    zh = suggest._missing_items(one, suggest._TEXT["zh"])[0][1]
    assert "約 1 個音節" in zh


def test_the_reports_summary_in_the_right_number() -> None:
    from vocalborn.reports.pdf import summary

    at = datetime(2026, 12, 7, 10, tzinfo=UTC)
    scores = {"overall_score": 80.0, "pronunciation_accuracy": 80.0, "fluency_score": 80.0, "rhythm_score": 80.0}
    attempt = Attempt(uuid.uuid4(), at, at, uuid.uuid4(), "你好", 60.0, True, None, scores, None)
    review = ReviewRow(uuid.uuid4(), at, uuid.uuid4(), "T", "你好", scores, 80.0, [], None)
    report = Report(uuid.uuid4(), "L", date(2026, 12, 1), date(2026, 12, 7), at, [], [attempt], [], {}, [review], False)
    english = summary(report, "en")
    assert "1 day;" in english and "1 therapist review." in english and "Attempts that count: 1 " in english
    assert "1 days" not in english and "1 therapist reviews" not in english
    report.attempts.append(Attempt(uuid.uuid4(), at, at, uuid.uuid4(), "你好", 60.0, True, None, scores, None))
    assert "Attempts that count: 2 " in summary(report, "en") and "1 day;" in summary(report, "en")
    assert "計入的練習 1 次" in summary(Report(**{**report.__dict__, "attempts": [attempt]}), "zh-TW")


def test_the_new_errors_of_issue_26_have_a_zh_tw_text() -> None:
    from vocalborn.i18n import translate

    for message in (
        "the report is for the learner and their linked therapist",
        "only the therapist who made the sentence can change or delete it",
        "sentence not found (it was deleted)",
        "not one of this learner's suggested drills",
        "record the reference first: the learner's attempts are compared with your voice",
    ):
        zh = translate(message, "zh-TW")
        assert zh != message and not zh.isascii(), message
        assert translate(message, "en") == message
