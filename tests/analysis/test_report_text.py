"""Terminal rendering of a report."""

from __future__ import annotations

from vocalborn.analysis.engine import LocalEngine
from vocalborn.analysis.report_text import format_report


def test_table_shows_scores_deviations_and_feedback_in_both_languages(
    engine: LocalEngine, reference_wav: bytes
) -> None:
    from vocalborn.analysis import calibration as cal

    pair = cal.build_pair("inserted_pause", cal.SENTENCES[0], "Female1")
    report = engine.analyze(pair.reference, pair.attempt)
    zh = format_report(report)
    assert "總分" in zh and f"{report.overall_score:6.2f}" in zh and "停頓" in zh
    en = format_report(engine.analyze(pair.reference, pair.attempt, {"language": "en"}), "en")
    assert "Overall" in en and "pause" in en and "Suggestions" in en
