"""Plain-text rendering of an :class:`AnalysisReport` for a terminal (``vocalborn analyze``)."""

from __future__ import annotations

import unicodedata
from typing import Any

from vocalborn.analysis.types import AnalysisReport

_LABELS: dict[str, dict[str, Any]] = {
    "zh": {
        "title": "發音分析結果",
        "overall": "總分",
        "pronunciation": "發音準確度",
        "fluency": "流暢度",
        "rhythm": "節奏",
        "timing": "時間",
        "ref": "示範",
        "att": "你的錄音",
        "speech_time": "說話時間 (秒)",
        "rate": "語速 (音節/秒)",
        "pauses": "停頓次數",
        "npvi": "nPVI",
        "pitch": "音高相關 / 走向一致",
        "deviations": "偏差位置",
        "none": "（無）",
        "kind": {
            "pronunciation": "發音",
            "missing": "缺漏",
            "tone": "聲調",
            "pause": "停頓",
            "too_long": "過長",
            "too_short": "過短",
        },
        "suggestions": "建議",
        "areas": "需要加強",
        "version": "分析版本",
    },
    "en": {
        "title": "Speech analysis",
        "overall": "Overall",
        "pronunciation": "Pronunciation",
        "fluency": "Fluency",
        "rhythm": "Rhythm",
        "timing": "Timing",
        "ref": "Reference",
        "att": "Attempt",
        "speech_time": "Speech time (s)",
        "rate": "Rate (syll/s)",
        "pauses": "Pauses",
        "npvi": "nPVI",
        "pitch": "Pitch corr. / direction",
        "deviations": "Deviations",
        "none": "(none)",
        "kind": {},
        "suggestions": "Suggestions",
        "areas": "To improve",
        "version": "Engine version",
    },
}


def _width(s: str) -> int:
    """Display width: East Asian wide characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, width: int) -> str:
    return s + " " * max(0, width - _width(s))


def _bar(score: float, width: int = 20) -> str:
    filled = int(round(max(0.0, min(100.0, score)) / 100.0 * width))
    return "#" * filled + "." * (width - filled)


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def format_report(report: AnalysisReport, lang: str = "zh-TW") -> str:
    """A readable table of scores, timing, deviations and suggestions."""
    t = _LABELS["en" if lang.lower().startswith("en") else "zh"]
    lines: list[str] = [t["title"], "=" * 44]
    w = 14
    for key, value in (
        ("overall", report.overall_score),
        ("pronunciation", report.pronunciation_accuracy),
        ("fluency", report.fluency_score),
        ("rhythm", report.rhythm_score),
    ):
        lines.append(f"{_pad(t[key], w)} {value:6.2f}  {_bar(value)}")
    da = report.detailed_analysis or {}
    timing = da.get("timing_analysis", {})
    pitch = da.get("pitch_analysis", {})
    if timing:
        lines += ["", f"{_pad(t['timing'], 24)} {_pad(t['ref'], 12)} {t['att']}"]
        rows = [
            (t["speech_time"], timing.get("reference_speech_time"), timing.get("attempt_speech_time")),
            (t["rate"], timing.get("reference_speech_rate"), timing.get("attempt_speech_rate")),
            (t["pauses"], len(timing.get("reference_pauses", [])), len(timing.get("attempt_pauses", []))),
            (t["npvi"], timing.get("npvi_reference"), timing.get("npvi_attempt")),
        ]
        for label, ref, att in rows:
            lines.append(f"{_pad(label, 24)} {_pad(_fmt(ref), 12)} {_fmt(att)}")
    if pitch:
        lines.append(
            f"{_pad(t['pitch'], 24)} {_fmt(pitch.get('correlation'))} / {_fmt(pitch.get('direction_agreement'))}"
        )
    devs = da.get("deviations", [])
    lines += ["", t["deviations"]]
    if not devs:
        lines.append("  " + t["none"])
    for d in devs[:12]:
        kind = t["kind"].get(d.get("kind"), d.get("kind"))
        lines.append(
            f"  {_pad(str(kind), 10)} {_fmt(d.get('start'))}-{_fmt(d.get('end'))} s"
            f"  (ref {_fmt(d.get('ref_start'))}-{_fmt(d.get('ref_end'))} s)  {_fmt(d.get('severity'))}"
        )
    if report.suggestions:
        lines += ["", t["suggestions"], "  " + report.suggestions]
    if report.improvement_areas:
        lines += ["", t["areas"]] + [f"  - {a}" for a in report.improvement_areas]
    if report.analysis_model_version:
        lines += ["", f"{t['version']}: {report.analysis_model_version}"]
    return "\n".join(lines)
