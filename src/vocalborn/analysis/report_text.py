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
        "completeness": "完整度",
        "characters": "逐字（[ ] 需要加強，+ 多念的音節）",
        "error_type": {"none": "正確", "omission": "漏念", "mispronunciation": "發音不對", "tone": "聲調不對"},
        "heard": "聽到第 {t} 聲",
        "heard_neutral": "聽到輕聲",
        "insertions": "多念的音節：",
        "insertion": "+ {a}–{b} 秒，在「{c}」之後",
        "insertion_first": "+ {a}–{b} 秒，在第一個字之前",
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
        "completeness": "Completeness",
        "characters": "Characters ([ ] needs work, + extra syllable)",
        "error_type": {"none": "ok", "omission": "omitted", "mispronunciation": "mispronounced", "tone": "wrong tone"},
        "heard": "heard tone {t}",
        "heard_neutral": "heard neutral tone",
        "insertions": "Extra syllables:",
        "insertion": "+ {a}-{b} s, after {c}",
        "insertion_first": "+ {a}-{b} s, before the first character",
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


ERROR_TYPES = ("none", "omission", "mispronunciation", "tone")


def error_type(c: dict[str, Any]) -> str | None:
    """A character's verdict: ``error_type`` when the engine wrote one (issue #22), else read from
    an older result's status and issues; None for a character never judged (punctuation)."""
    if "error_type" in c:
        value = c["error_type"]
        return value if value in ERROR_TYPES else None
    status, issues = c.get("status"), c.get("issues") or []
    if status == "matched":
        return "none"
    if status == "missing":
        return "omission"
    if status == "deviating":
        return "mispronunciation" if "pronunciation" in issues or "tone" not in issues else "tone"
    return None


def _insertions_after(insertions: Any) -> dict[int | None, int]:
    """How many extra syllables were said after each character index (None: before the first)."""
    out: dict[int | None, int] = {}
    for ins in insertions if isinstance(insertions, list) else []:
        if isinstance(ins, dict):
            after = ins.get("after_index")
            key = after if isinstance(after, int) else None
            out[key] = out.get(key, 0) + 1
    return out


def format_characters(characters: list[dict[str, Any]], insertions: Any = None) -> str:
    """The sentence on one line, characters that need work in brackets and a ``+`` where an extra
    syllable was said: 今天天[氣]很好，我們去+[公][園]散步。"""
    extra = _insertions_after(insertions)
    out = ["+" * extra.get(None, 0)]
    for c in characters:
        ch = str(c.get("char", ""))
        kind = error_type(c)
        out.append(f"[{ch}]" if kind is not None and kind != "none" else ch)
        index = c.get("index")
        if isinstance(index, int):
            out.append("+" * extra.get(index, 0))
    return "".join(out)


def _heard(t: dict[str, Any], tone: Any) -> str:
    if not isinstance(tone, int) or isinstance(tone, bool):
        return ""
    return str(t["heard_neutral"]) if tone == 5 else str(t["heard"]).format(t=tone)


def _shown_tone(c: dict[str, Any], kind: str) -> Any:
    """The heard tone worth printing: a tone error's, or one that agrees with the text. A heard tone
    the engine did not claim as an error would read as "ok, heard tone 2"."""
    heard = c.get("heard_tone")
    accepted = c.get("accepted_tones") or [c.get("expected_tone")]
    return heard if kind == "tone" or heard in accepted else None


def _character_lines(t: dict[str, Any], da: dict[str, Any]) -> list[str]:
    """The sentence, then one line per judged character: pinyin with tone marks, the verdict, the
    heard tone when the engine is sure of one; then the extra syllables."""
    characters = [c for c in da.get("characters") or [] if isinstance(c, dict)]
    judged = [c for c in characters if error_type(c) is not None]
    if not judged:
        return []
    insertions = [i for i in da.get("insertions") or [] if isinstance(i, dict)]
    lines = ["", str(t["characters"]), "  " + format_characters(characters, insertions)]
    for c in judged:
        kind = error_type(c) or ""
        pinyin = c.get("pinyin_marks") or c.get("pinyin") or ""
        lines.append(
            f"  {c.get('char', '')}  {_pad(str(pinyin), 8)} {_pad(t['error_type'][kind], 14)} "
            f"{_heard(t, _shown_tone(c, kind))}".rstrip()
        )
    if insertions:
        lines.append(f"  {t['insertions']}")
        for ins in insertions:
            after = ins.get("after_char")
            template = t["insertion"] if isinstance(after, str) and after else t["insertion_first"]
            lines.append("    " + str(template).format(a=_fmt(ins.get("start")), b=_fmt(ins.get("end")), c=after))
    return lines


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
    if report.completeness_score is not None:
        value = float(report.completeness_score)
        lines.append(f"{_pad(t['completeness'], w)} {value:6.2f}  {_bar(value)}")
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
    lines += _character_lines(t, da)
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
