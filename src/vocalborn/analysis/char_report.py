"""The per-character verdicts as the report lists them (part of
:mod:`vocalborn.analysis.characters`): the rows of unsaid characters, the listing of every
character of the text, the summary, the insertions and the deviations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vocalborn.analysis import dsp, sentence

# A judged character's error_type: one of these, the most important first.
ERROR_TYPES = ("omission", "mispronunciation", "tone", "none")
INSERT_MIN_SECONDS = 0.12  # an added attempt stretch shorter than this is no syllable


@dataclass
class CharacterResult:
    characters: list[dict[str, Any]]
    summary: dict[str, Any]
    extra: list[dict[str, Any]] = field(default_factory=list)
    deviations: list[dict[str, Any]] = field(default_factory=list)  # report format, per character


def rnd(x: float | None, nd: int = 2) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


def insertions(
    added: list[tuple[float, float, float]],
    rows: list[dict[str, Any]],
    ref_sec: list[tuple[float, float]],
    omitted: np.ndarray,
) -> list[dict[str, Any]]:
    """The added attempt stretches long enough for a syllable, and after which said
    character each was said (the one whose reference span holds the stretch's reference
    time, or its predecessor when that time is in the span's first half). A stretch at a
    mispronounced character is that character's new sound, not an insertion."""
    out = []
    for a0, a1, t in added:
        if a1 - a0 < INSERT_MIN_SECONDS:
            continue
        after = -1
        for k, (r0, r1) in enumerate(ref_sec):
            if r0 <= t:
                after = k if t >= (r0 + r1) / 2.0 else k - 1
        near = [k for k in (after, after + 1) if 0 <= k < len(rows)]
        if any(rows[k]["error_type"] == "mispronunciation" for k in near):
            continue
        while after >= 0 and omitted[after]:
            after -= 1
        out.append(
            {
                "start": rnd(a0),
                "end": rnd(a1),
                "after_index": rows[after]["index"] if after >= 0 else None,
                "after_char": rows[after]["char"] if after >= 0 else None,
            }
        )
    return out


def completeness(rows: list[dict[str, Any]]) -> float | None:
    """0..100: the share of the judged characters the attempt said (not omitted)."""
    judged = [r for r in rows if r.get("error_type") is not None]
    if not judged:
        return None
    return round(100.0 * sum(1 for r in judged if r["error_type"] != "omission") / len(judged), 2)


def unsaid(c: sentence.CharSyllable, ref_span: tuple[float, float]) -> dict[str, Any]:
    """A character outside the reference stretch the attempt said: an omission."""
    return {
        "index": c.index,
        "char": c.char,
        "pinyin": c.pinyin_tone,
        "pinyin_marks": c.pinyin_marks,
        "expected_tone": c.tone,
        "accepted_tones": list(c.accepted_tones),
        "reference_heard_tone": None,
        "heard_tone": None,
        "tone_match": None,
        "tone_confidence": None,
        "status": "missing",
        "error_type": "omission",
        "issues": ["missing"],
        "confidence": None,
        "cost": None,
        "phone_evidence_drop": None,
        "score": 0.0,
        "ref_start": rnd(ref_span[0]),
        "ref_end": rnd(ref_span[1]),
        "start": None,
        "end": None,
        "tone_contour_difference": None,
    }


def listing(chars: list[sentence.CharSyllable], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every character of the text in order: non-Han characters (punctuation, digits,
    Latin) are listed, not judged."""
    by_index = {r["index"]: r for r in rows}
    full = []
    for c in chars:
        if c.index in by_index:
            full.append(by_index[c.index])
        else:
            full.append({"index": c.index, "char": c.char, "status": "not_judged", "error_type": None})
    return full


def summary(rows: list[dict[str, Any]], extra: list[dict[str, Any]], limit: float, forced: bool) -> dict[str, Any]:
    deviating = [r for r in rows if r["status"] != "matched"]
    return {
        "judged": len(rows),
        "matched": len(rows) - len(deviating),
        "deviating": sum(1 for r in rows if r["status"] == "deviating"),
        "missing": sum(1 for r in rows if r["status"] == "missing"),
        "tone_errors": sum(1 for r in rows if r["tone_match"] is False),
        "error_types": {t: sum(1 for r in rows if r["error_type"] == t) for t in ERROR_TYPES},
        "completeness": completeness(rows),
        "extra_syllables": extra,
        "cost_limit": rnd(limit, 3),
        "alignment": "forced" if forced else "uniform",
    }


def char_deviations(
    rows: list[dict[str, Any]], att_spans: dict[int, tuple[int, int, int, int]]
) -> list[dict[str, Any]]:
    """The characters' issues in the report's deviation format (``att_spans`` by judged
    position; an unsaid character sits where the attempt's speech stops or starts)."""
    devs: list[dict[str, Any]] = []
    said = sorted(att_spans)
    for k, r in enumerate(rows):
        if k in att_spans:
            a0, a1 = att_spans[k][2], att_spans[k][3]
        elif said:
            near = att_spans[said[0]] if k < said[0] else att_spans[said[-1]]
            a0 = a1 = near[2] if k < said[0] else near[3]
        else:
            a0 = a1 = 0
        span = {
            "start": rnd(a0 * dsp.HOP),
            "end": rnd(max(a1, a0 + 1) * dsp.HOP),
            "ref_start": r["ref_start"],
            "ref_end": r["ref_end"],
            "syllables": [k],
            "char": r["char"],
            "index": r["index"],
        }
        for issue in r["issues"]:
            sev = r["confidence"] if issue != "tone" else (r["confidence"] or 0.5)
            devs.append({**span, "kind": issue, "severity": round(float(sev or 0.5), 2)})
    return devs
