"""From measures to the four 0..100 scores, the detailed analysis and the deviations.

Design rules (see docs/ANALYSIS.md):

* Pronunciation = mean per-syllable segmental score, scaled down by tone mismatch.
* Fluency (pauses, speech rate) and rhythm (durations, nPVI, loudness envelope) are
  multiplied by a *gate* on the segmental score: when the sounds show the learner said
  a different sentence, good timing means nothing and must not lift the score.
* Overall = 0.5 pronunciation + 0.25 fluency + 0.25 rhythm.

The fluency and rhythm measures themselves are in :mod:`vocalborn.analysis.timing`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vocalborn.analysis import compare, dsp, phonetic, timing
from vocalborn.analysis.features import RecordingFeatures
from vocalborn.analysis.timing import EXTRA_PAUSE_MIN

WEIGHTS = {"pronunciation": 0.5, "fluency": 0.25, "rhythm": 0.25}
TONE_WEIGHT = 0.3  # share of pronunciation that depends on the tones
# Content distance (phonetic.ContentAlignment.distance) -> segmental score and gate.
# Fitted on real speech (docs/ANALYSIS.md): same sentence read by another speaker
# 1.1..2.5, another sentence 3.1..6.6, reversed copies >= 3.7. Round numbers with margins.
DIST_FULL, DIST_ZERO = 2.0, 3.2  # segmental 100 at or below FULL, 0 at or above ZERO
GATE_FULL, GATE_ZERO = 2.6, 3.0  # timing counts fully at or below FULL, not at all above ZERO
MAX_CONTOUR_POINTS = 200


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def _r(x: float | None, nd: int = 3) -> float | None:
    """Round for the report (and for bit-for-bit stable JSON)."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


def syllable_score(rho: float) -> float:
    """0..1 segmental score of one syllable from its cost ratio."""
    return _clip01((compare.RHO_BAD - rho) / (compare.RHO_BAD - compare.RHO_GOOD))


@dataclass
class Scores:
    overall: float
    pronunciation: float
    fluency: float
    rhythm: float
    segmental: float
    tone: float | None
    gate: float
    fluency_raw: float
    rhythm_raw: float


@dataclass
class Analysis:
    """Everything computed for one pair: the scores, the report's details, and the facts
    the suggestion writer needs."""

    scores: Scores
    detailed: dict[str, Any]
    deviations: list[dict[str, Any]]
    facts: dict[str, Any] = field(default_factory=dict)


def segmental_from_distance(distance: float) -> float:
    """0..100 segmental score from the content distance."""
    return 100.0 * _clip01((DIST_ZERO - distance) / (DIST_ZERO - DIST_FULL))


def gate_from_distance(distance: float) -> float:
    """0..1: how far the sounds show the same sentence (timing only counts that far)."""
    return _clip01((GATE_ZERO - distance) / (GATE_ZERO - GATE_FULL))


def evaluate(
    ref: RecordingFeatures,
    att: RecordingFeatures,
    ref_ph: phonetic.PhoneticFeatures,
    att_ph: phonetic.PhoneticFeatures,
    segments: list[tuple[int, int]] | None = None,
) -> Analysis:
    """Align, measure and score an attempt against its reference.

    ``segments`` are the reference's syllables (10 ms frames) when the sentence text
    located them (one per character); without, syllables are found acoustically."""
    al, content = compare.align_phonetic(ref, att, ref_ph, att_ph)
    syllables = compare.syllables_from_spans(al, segments) if segments else compare.reference_syllables(ref, al)
    pitch = compare.compare_pitch(ref, att, al)
    compare.tone_by_syllable(pitch, syllables, al.ref_span[0])

    # --- pronunciation -----------------------------------------------------------------
    segmental = segmental_from_distance(content.distance)
    tone = _tone_score(pitch)
    gate = gate_from_distance(content.distance)
    # The tone term only counts as far as the sounds match: another sentence's tones
    # are meaningless.
    tone_factor = 1.0 if tone is None else 1.0 - TONE_WEIGHT + TONE_WEIGHT * (gate * tone / 100.0)
    pronunciation = segmental * tone_factor

    # --- fluency and rhythm ------------------------------------------------------------
    flu = timing.measure_fluency(ref, att, al)
    ref_d, att_d = timing.syllable_durations(syllables, flu.inserted)
    rhythm_facts = timing.rhythm(ref, att, al, ref_d, att_d)
    rhythm_raw = rhythm_facts.pop("score")

    fluency = flu.score * gate
    rhythm = rhythm_raw * gate
    overall = WEIGHTS["pronunciation"] * pronunciation + WEIGHTS["fluency"] * fluency + WEIGHTS["rhythm"] * rhythm
    scores = Scores(
        overall=round(overall, 2),
        pronunciation=round(pronunciation, 2),
        fluency=round(fluency, 2),
        rhythm=round(rhythm, 2),
        segmental=segmental,
        tone=tone,
        gate=gate,
        fluency_raw=flu.score,
        rhythm_raw=rhythm_raw,
    )

    deviations = _deviations(syllables, flu.pauses, al, att, gate, rhythm_facts)
    detailed = {
        "phoneme_analysis": _phoneme_report(syllables),
        "timing_analysis": _timing_report(ref, att, flu, rhythm_facts, len(segments) if segments else None),
        "pitch_analysis": _pitch_report(pitch),
        "voice_quality": {
            "reference": _voice(ref),
            "attempt": _voice(att),
        },
        "deviations": deviations,
        "alignment": _alignment_report(al, content, segmental, tone, gate),
    }
    facts = {
        "rate_ratio": flu.rate_ratio,
        "extra_pauses": flu.extra,
        "syllables": syllables,
        "pitch": pitch,
        "rhythm": rhythm_facts,
        "ratio": al.ratio,
        "content": content,
        "alignment": al,
    }
    return Analysis(scores, detailed, deviations, facts)


def _phoneme_report(syllables: list[compare.Syllable]) -> list[dict[str, Any]]:
    return [
        {
            "index": k,
            "ref_start": _r(s.ref[0] * dsp.HOP, 2),
            "ref_end": _r(s.ref[1] * dsp.HOP, 2),
            "start": _r(s.att[0] * dsp.HOP, 2),
            "end": _r(s.att[1] * dsp.HOP, 2),
            "cost": _r(s.rho),
            "score": round(100.0 * syllable_score(s.rho), 2),
            "tone_match": s.tone_ok,
            "status": "deviates" if s.rho >= compare.RHO_DEVIATES else "ok",
        }
        for k, s in enumerate(syllables)
    ]


def _timing_report(
    ref: RecordingFeatures,
    att: RecordingFeatures,
    flu: timing.Fluency,
    rhythm_facts: dict[str, Any],
    text_syllables: int | None = None,
) -> dict[str, Any]:
    ref_phon, att_phon = flu.ref_speech_time, flu.att_speech_time
    # Both recordings say the same sentence: one syllable count for both, the text's when it is
    # known (one per character), else the reference's acoustic nuclei. Counting each recording's
    # own nuclei undercounts real voices (11 of 15) and could call the shorter attempt the slower
    # one, against speech_rate_ratio (issue #26). The acoustic counts stay as *_nuclei.
    n = text_syllables if text_syllables else int(len(ref.nuclei))
    return {
        "reference_duration": _r(ref.duration, 2),
        "attempt_duration": _r(att.duration, 2),
        "reference_speech_span": [_r(x * dsp.HOP, 2) for x in ref.segmentation.span],
        "attempt_speech_span": [_r(x * dsp.HOP, 2) for x in att.segmentation.span],
        "reference_speech_time": _r(ref_phon, 2),
        "attempt_speech_time": _r(att_phon, 2),
        "reference_syllables": n,
        "attempt_syllables": n,
        "reference_nuclei": int(len(ref.nuclei)),
        "attempt_nuclei": int(len(att.nuclei)),
        "reference_speech_rate": _r(n / ref_phon, 2),
        "attempt_speech_rate": _r(n / att_phon, 2),
        "speech_rate_ratio": _r(flu.rate_ratio),
        "reference_pauses": [
            {"start": _r(p0 * dsp.HOP, 2), "end": _r(p1 * dsp.HOP, 2)} for p0, p1 in timing.pauses_of(ref)
        ],
        "attempt_pauses": [
            {
                "start": _r(p["start"], 2),
                "end": _r(p["end"], 2),
                "ref_position": _r(p["ref_position"], 2),
                "expected": p["extra"] < EXTRA_PAUSE_MIN,
            }
            for p in flu.pauses
        ],
        "extra_pause_time": _r(sum(p["extra"] for p in flu.extra), 2),
        "npvi_reference": _r(rhythm_facts["npvi_reference"], 1),
        "npvi_attempt": _r(rhythm_facts["npvi_attempt"], 1),
        "syllable_duration_deviation": _r(rhythm_facts["duration_deviation"]),
        "loudness_envelope_correlation": _r(rhythm_facts["envelope_correlation"]),
    }


def _alignment_report(
    al: compare.Alignment, content: phonetic.ContentAlignment, segmental: float, tone: float | None, gate: float
) -> dict[str, Any]:
    return {
        "method": "phone-posterior DTW",
        "content_distance": _r(content.distance),
        "content_cost": _r(content.cost),
        "order_ratio": _r(content.ratio),
        "reference_phone_frames": content.n_ref,
        "attempt_phone_frames": content.n_att,
        "bandwidth_hz": round(al.fmax),
        "segmental_score": round(segmental, 2),
        "tone_score": _r(tone, 2),
        "sentence_match": _r(gate),
    }


def _tone_score(pc: compare.PitchComparison) -> float | None:
    """0..100 from contour correlation, direction agreement and kept pitch range."""
    if not pc.measurable or pc.correlation is None:
        return None
    corr = max(0.0, pc.correlation)
    direction = pc.direction_agreement if pc.direction_agreement is not None else corr
    kept = _clip01((pc.range_ratio or 0.0) / 0.7)
    return 100.0 * (0.5 * corr + 0.3 * direction + 0.2 * kept)


def _voice(f: RecordingFeatures) -> dict[str, Any]:
    return {
        "hnr_db": _r(f.voice.hnr_db, 2),
        "jitter_local": _r(f.voice.jitter_local, 4),
        "shimmer_local": _r(f.voice.shimmer_local, 4),
        "median_f0_hz": _r(f.median_f0, 1),
        "pitch_floor_hz": _r(f.pitch_floor, 1),
        "pitch_ceiling_hz": _r(f.pitch_ceiling, 1),
    }


def _pitch_report(pc: compare.PitchComparison) -> dict[str, Any]:
    n = len(pc.time)
    step = max(1, math.ceil(n / MAX_CONTOUR_POINTS))
    idx = np.arange(0, n, step)

    def pts(v: np.ndarray) -> list[float | None]:
        return [None if np.isnan(x) else round(float(x), 2) for x in v[idx]]

    return {
        "unit": "semitones re speaker median",
        "time_axis": "reference seconds (attempt aligned by DTW)",
        "time": [round(float(t), 2) for t in pc.time[idx]],
        "reference": pts(pc.ref_st),
        "attempt": pts(pc.att_st),
        "correlation": _r(pc.correlation),
        "direction_agreement": _r(pc.direction_agreement),
        "range_ratio": _r(pc.range_ratio),
        "reference_range_st": _r(pc.ref_range, 2),
        "measurable": pc.measurable,
    }


def _deviations(
    syllables: list[compare.Syllable],
    pauses: list[dict[str, Any]],
    al: compare.Alignment,
    att: RecordingFeatures,
    gate: float,
    rhythm: dict[str, Any],
) -> list[dict[str, Any]]:
    """Spans of the attempt that stand out, most severe first within each kind."""
    out: list[dict[str, Any]] = []
    log_ratio = rhythm["log_duration_ratio"]
    for k, s in enumerate(syllables):
        span = {
            "start": _r(s.att[0] * dsp.HOP, 2),
            "end": _r(s.att[1] * dsp.HOP, 2),
            "ref_start": _r(s.ref[0] * dsp.HOP, 2),
            "ref_end": _r(s.ref[1] * dsp.HOP, 2),
            "syllables": [k],
        }
        ref_len = s.ref[1] - s.ref[0]
        if s.rho >= compare.RHO_DEVIATES:
            a, b = compare.expand_deviation(al, s.att[0], s.att[1])
            squashed = (b - a) <= max(2, 0.25 * ref_len)
            kind = "missing" if squashed else "pronunciation"
            sev = _clip01((s.rho - compare.RHO_GOOD) / (1.0 - compare.RHO_GOOD))
            span["start"], span["end"] = _r(a * dsp.HOP, 2), _r(b * dsp.HOP, 2)
            out.append({**span, "kind": kind, "severity": round(sev, 2)})
        elif gate > 0.5 and s.tone_ok is False:
            detail = s.tone_detail
            sev = _clip01(1.0 - max(0.0, detail.get("correlation", 0.0)))
            out.append({**span, "kind": "tone", "severity": round(max(sev, 0.3), 2)})
        elif gate > 0.5 and k < len(log_ratio) and abs(float(log_ratio[k])) >= math.log(2.0):
            kind = "too_long" if log_ratio[k] > 0 else "too_short"
            sev = _clip01(abs(float(log_ratio[k])) / math.log(4.0))
            out.append({**span, "kind": kind, "severity": round(sev, 2)})
    if gate > 0.0:
        for p in pauses:
            if p["extra"] >= EXTRA_PAUSE_MIN:
                out.append(
                    {
                        "start": _r(p["start"], 2),
                        "end": _r(p["end"], 2),
                        "ref_start": _r(p["ref_start"], 2),
                        "ref_end": _r(p["ref_end"], 2),
                        "syllables": [],
                        "kind": "pause",
                        "severity": round(_clip01(p["extra"] / 1.0), 2),
                    }
                )
    out.sort(key=lambda d: (d["start"], d["kind"]))
    return _merge(out)


def _merge(devs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge overlapping or touching deviations of the same kind into one span."""
    merged: list[dict[str, Any]] = []
    for d in devs:
        last = next((m for m in reversed(merged) if m["kind"] == d["kind"]), None)
        if last is not None and d["start"] <= last["end"] + 0.011 and d["kind"] != "pause":
            last["end"] = max(last["end"], d["end"])
            last["ref_start"] = min(last["ref_start"], d["ref_start"])
            last["ref_end"] = max(last["ref_end"], d["ref_end"])
            last["severity"] = max(last["severity"], d["severity"])
            last["syllables"] = [*last["syllables"], *d["syllables"]]
        else:
            merged.append(d)
    return merged
