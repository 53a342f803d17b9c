"""Terminal rendering of a report."""

from __future__ import annotations

from typing import Any

from vocalborn.analysis.engine import LocalEngine
from vocalborn.analysis.report_text import format_report


def test_table_shows_scores_deviations_and_feedback_in_both_languages(
    engine: LocalEngine, reference_wav: bytes
) -> None:
    from vocalborn_tools import calibration as cal

    pair = cal.build_pair("inserted_pause", cal.SENTENCES[0], "Female1")
    report = engine.analyze(pair.reference, pair.attempt)
    zh = format_report(report)
    assert "總分" in zh and f"{report.overall_score:6.2f}" in zh and "停頓" in zh
    en = format_report(engine.analyze(pair.reference, pair.attempt, {"language": "en"}), "en")
    assert "Overall" in en and "pause" in en and "Suggestions" in en


def _verdict_report(lang: str = "zh-TW") -> Any:
    from tests import verdicts

    from vocalborn.analysis.types import AnalysisReport

    return AnalysisReport(
        72.5,
        70.0,
        80.0,
        75.0,
        verdicts.verdict_detail({}),
        completeness_score=verdicts.COMPLETENESS,
        analysis_model_version="vocalborn-phonetic-3.0",
    )


def _line(text: str, start: str) -> str:
    (line,) = [x for x in text.splitlines() if x.strip().startswith(start + "  ")]
    return line


def test_the_verdicts_of_issue_22_per_character_in_both_languages() -> None:
    zh = format_report(_verdict_report())
    en = format_report(_verdict_report(), "en")
    # the sentence: the characters that need work in brackets, the extra syllable after 去
    for text in (zh, en):
        assert "今天天[氣]很好，我們去+[公][園]散步。" in text
    assert "完整度" in zh and " 92.31  " in zh and "Completeness" in en and " 92.31  " in en
    # pinyin with tone marks, the verdict, the heard tone only when the engine is sure of one
    assert _line(zh, "氣").split() == ["氣", "qì", "聲調不對", "聽到第", "2", "聲"]
    assert _line(en, "氣").split() == ["氣", "qì", "wrong", "tone", "heard", "tone", "2"]
    assert _line(en, "公").split() == ["公", "gōng", "mispronounced", "heard", "tone", "1"]
    assert _line(en, "園").split() == ["園", "yuán", "omitted"]  # no tone heard: none shown
    assert _line(en, "們").split() == ["們", "men", "ok"]
    assert _line(en, "很").split() == ["很", "hén", "ok", "heard", "tone", "2"]  # sandhi: hén
    assert _line(zh, "今").split() == ["今", "jīn", "正確", "聽到第", "1", "聲"]
    # punctuation is never judged: no line of its own
    assert not [x for x in en.splitlines() if x.strip().startswith(("，", "。"))]
    assert "+ 2.61-2.83 s, after 去" in en and "+ 2.61–2.83 秒，在「去」之後" in zh


def test_an_older_report_without_verdicts_reads_the_status() -> None:
    from vocalborn.analysis.types import AnalysisReport

    old = AnalysisReport(
        60.0,
        60.0,
        60.0,
        60.0,
        {
            "characters": [
                {"index": 0, "char": "媽", "pinyin": "ma1", "status": "deviating", "issues": ["tone"], "heard_tone": 3},
                {"index": 1, "char": "，", "status": "not_judged"},
                {"index": 2, "char": "麻", "pinyin": "ma2", "status": "matched", "issues": [], "heard_tone": None},
            ]
        },
    )
    en = format_report(old, "en")
    assert "Completeness" not in en  # not measured: not shown
    assert "[媽]，麻" in en
    assert _line(en, "媽").split() == ["媽", "ma1", "wrong", "tone", "heard", "tone", "3"]
    assert _line(en, "麻").split() == ["麻", "ma2", "ok"]
