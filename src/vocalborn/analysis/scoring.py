"""From measures to the four 0..100 scores, the detailed analysis and the deviations.

Design rules (see docs/ANALYSIS.md):

* Pronunciation = mean per-syllable segmental score, scaled down by tone mismatch.
* Fluency (pauses, speech rate) and rhythm (durations, nPVI, loudness envelope) are
  multiplied by a *gate* on the segmental score: when the sounds show the learner said
  a different sentence, good timing means nothing and must not lift the score.
* Overall = 0.5 pronunciation + 0.25 fluency + 0.25 rhythm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vocalborn.analysis import compare, dsp, phonetic
from vocalborn.analysis.features import RecordingFeatures

WEIGHTS = {"pronunciation": 0.5, "fluency": 0.25, "rhythm": 0.25}
TONE_WEIGHT = 0.3  # share of pronunciation that depends on the tones
# Content distance (phonetic.ContentAlignment.distance) -> segmental score and gate.
# Fitted on real speech (docs/ANALYSIS.md): same sentence read by another speaker
# 1.1..2.5, another sentence 3.1..6.6, reversed copies >= 3.7. Round numbers with margins.
DIST_FULL, DIST_ZERO = 2.0, 3.2  # segmental 100 at or below FULL, 0 at or above ZERO
GATE_FULL, GATE_ZERO = 2.6, 3.0  # timing counts fully at or below FULL, not at all above ZERO
RATE_TOLERANCE = math.log(1.15)  # +-15 % speaking rate costs nothing
RATE_PENALTY = 80.0  # points per unit of |ln(rate ratio)| beyond the tolerance
PAUSE_PENALTY_PER_SECOND = 40.0
PAUSE_PENALTY_EACH = 5.0
EXTRA_PAUSE_MIN = 0.2  # seconds of pause beyond the reference's that count as a deviation
MAX_CONTOUR_POINTS = 200
# Rhythm maps, refitted on real speech (engine 2.0): two people reading the same sentence
# differ by ~0.24-0.29 mean |ln| in tempo-normalised syllable durations and correlate
# ~0.55 in loudness envelope; the synthetic-speech maps (0.05..0.50, 0.2..0.9) called
# that poor rhythm.
DUR_DEV_FREE, DUR_DEV_ZERO = 0.10, 0.60
ENV_CORR_ZERO, ENV_CORR_FULL = 0.10, 0.70


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


def _pauses(f: RecordingFeatures) -> list[tuple[int, int]]:
    return list(f.segmentation.pauses)


def _phonation_time(f: RecordingFeatures) -> float:
    """Speech span less its pauses, seconds."""
    a, b = f.segmentation.span
    return max((b - a) - sum(p1 - p0 for p0, p1 in f.segmentation.pauses), 1) * dsp.HOP


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

    # --- fluency -----------------------------------------------------------------------
    silent, _ = _silence_masks(ref, att, al)
    ref_phon = _phonation_time(ref)
    a0, a1 = att.segmentation.span
    att_phon = max(a1 - a0 - int(silent[a0:a1].sum()), 1) * dsp.HOP
    rate_ratio = ref_phon / att_phon  # > 1: the attempt is faster
    rate_pen = RATE_PENALTY * max(0.0, abs(math.log(rate_ratio)) - RATE_TOLERANCE)
    pauses = _compare_pauses(ref, att, al, silent)
    inserted = _extra_pause_mask(att, silent, pauses)
    extra = [p for p in pauses if p["extra"] >= EXTRA_PAUSE_MIN]
    pause_pen = min(
        60.0,
        PAUSE_PENALTY_PER_SECOND * sum(p["extra"] for p in extra) + PAUSE_PENALTY_EACH * len(extra),
    )
    fluency_raw = max(0.0, 100.0 - rate_pen - pause_pen)

    # --- rhythm ------------------------------------------------------------------------
    ref_d = np.array([(s.ref[1] - s.ref[0]) * dsp.HOP for s in syllables])
    # Pause frames inside a syllable's aligned span are the pause's, not the syllable's.
    paused = np.concatenate([[0], np.cumsum(inserted.astype(np.int64))])
    att_d = np.array([max(s.att[1] - s.att[0] - (paused[s.att[1]] - paused[s.att[0]]), 1) * dsp.HOP for s in syllables])
    rhythm_facts = _rhythm(ref, att, al, ref_d, att_d)
    rhythm_raw = rhythm_facts.pop("score")

    fluency = fluency_raw * gate
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
        fluency_raw=fluency_raw,
        rhythm_raw=rhythm_raw,
    )

    deviations = _deviations(syllables, pauses, al, att, gate, rhythm_facts)
    phoneme = [
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
    timing = {
        "reference_duration": _r(ref.duration, 2),
        "attempt_duration": _r(att.duration, 2),
        "reference_speech_span": [_r(x * dsp.HOP, 2) for x in ref.segmentation.span],
        "attempt_speech_span": [_r(x * dsp.HOP, 2) for x in att.segmentation.span],
        "reference_speech_time": _r(ref_phon, 2),
        "attempt_speech_time": _r(att_phon, 2),
        "reference_syllables": int(len(ref.nuclei)),
        "attempt_syllables": int(len(att.nuclei)),
        "reference_speech_rate": _r(len(ref.nuclei) / ref_phon, 2),
        "attempt_speech_rate": _r(len(att.nuclei) / att_phon, 2),
        "speech_rate_ratio": _r(rate_ratio),
        "reference_pauses": [{"start": _r(p0 * dsp.HOP, 2), "end": _r(p1 * dsp.HOP, 2)} for p0, p1 in _pauses(ref)],
        "attempt_pauses": [
            {
                "start": _r(p["start"], 2),
                "end": _r(p["end"], 2),
                "ref_position": _r(p["ref_position"], 2),
                "expected": p["extra"] < EXTRA_PAUSE_MIN,
            }
            for p in pauses
        ],
        "extra_pause_time": _r(sum(p["extra"] for p in extra), 2),
        "npvi_reference": _r(rhythm_facts["npvi_reference"], 1),
        "npvi_attempt": _r(rhythm_facts["npvi_attempt"], 1),
        "syllable_duration_deviation": _r(rhythm_facts["duration_deviation"]),
        "loudness_envelope_correlation": _r(rhythm_facts["envelope_correlation"]),
    }
    detailed = {
        "phoneme_analysis": phoneme,
        "timing_analysis": timing,
        "pitch_analysis": _pitch_report(pitch),
        "voice_quality": {
            "reference": _voice(ref),
            "attempt": _voice(att),
        },
        "deviations": deviations,
        "alignment": {
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
        },
    }
    facts = {
        "rate_ratio": rate_ratio,
        "extra_pauses": extra,
        "syllables": syllables,
        "pitch": pitch,
        "rhythm": rhythm_facts,
        "ratio": al.ratio,
        "content": content,
        "alignment": al,
    }
    return Analysis(scores, detailed, deviations, facts)


def _tone_score(pc: compare.PitchComparison) -> float | None:
    """0..100 from contour correlation, direction agreement and kept pitch range."""
    if not pc.measurable or pc.correlation is None:
        return None
    corr = max(0.0, pc.correlation)
    direction = pc.direction_agreement if pc.direction_agreement is not None else corr
    kept = _clip01((pc.range_ratio or 0.0) / 0.7)
    return 100.0 * (0.5 * corr + 0.3 * direction + 0.2 * kept)


INSERTED_SILENCE_DB = 10.0  # attempt this much quieter (re its own peak) than the reference


def _silence_masks(
    ref: RecordingFeatures, att: RecordingFeatures, al: compare.Alignment
) -> tuple[np.ndarray, np.ndarray]:
    """Per attempt frame: ``silent`` (a real silence: inside a pause, and either the
    reference is silent at the aligned place too or the attempt is much quieter there)
    and ``inserted`` (silent where the reference speaks loudly).

    Comparing levels relative to each recording's peak, instead of trusting each
    recording's own speech/silence threshold, keeps weak consonants masked by noise, or
    softened by a codec, from counting as pauses.
    """
    n = att.n_frames
    rows = np.bincount(al.path[:, 1], al.path[:, 0], minlength=n)
    count = np.bincount(al.path[:, 1], minlength=n)
    ref_at = np.full(n, -1)
    has = count > 0
    ref_at[has] = np.rint(rows[has] / count[has]).astype(np.int64)
    in_pause = np.zeros(n, dtype=bool)
    for p0, p1 in att.segmentation.pauses:
        in_pause[p0:p1] = True
    ref_top = float(np.quantile(ref.intensity_db, 0.99))
    att_top = float(np.quantile(att.intensity_db, 0.99))
    ref_level = np.where(ref_at >= 0, ref.intensity_db[np.maximum(ref_at, 0)] - ref_top, -200.0)
    ref_speaks = np.where(ref_at >= 0, ref.segmentation.speech[np.maximum(ref_at, 0)], False)
    deficit = ref_level - (att.intensity_db - att_top)
    inserted = in_pause & ref_speaks & (deficit >= INSERTED_SILENCE_DB)
    silent = in_pause & (~ref_speaks | inserted)
    return silent, inserted


def _extra_pause_mask(att: RecordingFeatures, silent: np.ndarray, pauses: list[dict[str, Any]]) -> np.ndarray:
    """Attempt frames belonging to pauses the reference does not have (or has shorter)."""
    mask = np.zeros(att.n_frames, dtype=bool)
    for p in pauses:
        if p["extra"] >= EXTRA_PAUSE_MIN:
            a, b = int(round(p["start"] / dsp.HOP)), int(round(p["end"] / dsp.HOP))
            mask[a:b] = silent[a:b]
    return mask


def _compare_pauses(
    ref: RecordingFeatures, att: RecordingFeatures, al: compare.Alignment, silent: np.ndarray
) -> list[dict[str, Any]]:
    """Each attempt pause, with its silence beyond the reference's silence at the aligned
    place (``extra``)."""
    out = []
    for p0, p1 in att.segmentation.pauses:
        r0, r1 = compare.reference_range(al, p0, p1)
        ref_silence = int((~ref.segmentation.speech[r0:r1]).sum())
        extra = max(0, int(silent[p0:p1].sum()) - ref_silence)
        out.append(
            {
                "start": p0 * dsp.HOP,
                "end": p1 * dsp.HOP,
                "ref_start": r0 * dsp.HOP,
                "ref_end": r1 * dsp.HOP,
                "ref_position": (r0 + r1) / 2 * dsp.HOP,
                "duration": (p1 - p0) * dsp.HOP,
                "extra": extra * dsp.HOP,
            }
        )
    return out


def _rhythm(
    ref: RecordingFeatures,
    att: RecordingFeatures,
    al: compare.Alignment,
    ref_d: np.ndarray,
    att_d: np.ndarray,
) -> dict[str, Any]:
    """Duration pattern, nPVI and loudness-envelope agreement, and the raw rhythm score."""
    if ref_d.size:
        ref_n = ref_d / ref_d.sum()
        att_n = att_d / att_d.sum()
        log_ratio = np.log(att_n / ref_n)
        dur_dev = float(np.mean(np.abs(log_ratio)))
    else:
        log_ratio = np.zeros(0)
        dur_dev = 1.0
    dur_sim = _clip01(1.0 - (dur_dev - DUR_DEV_FREE) / (DUR_DEV_ZERO - DUR_DEV_FREE))
    npvi_ref = compare.npvi(ref_d)
    npvi_att = compare.npvi(att_d)
    npvi_sim = 1.0 if npvi_ref is None or npvi_att is None else _clip01(1.0 - abs(npvi_att - npvi_ref) / 40.0)
    a, b = al.ref_span
    floor_r = ref.segmentation.threshold_db
    floor_a = att.segmentation.threshold_db
    env_r = np.maximum(ref.intensity_db[a:b], floor_r)
    env_a = compare.map_to_reference(np.maximum(att.intensity_db, floor_a), al)
    ok = ~np.isnan(env_a)
    env_corr = 0.0
    if ok.sum() >= 10 and np.std(env_r[ok]) > 1e-6 and np.std(env_a[ok]) > 1e-6:
        env_corr = float(np.corrcoef(env_r[ok], env_a[ok])[0, 1])
    env_sim = _clip01((env_corr - ENV_CORR_ZERO) / (ENV_CORR_FULL - ENV_CORR_ZERO))
    score = 100.0 * (0.45 * dur_sim + 0.2 * npvi_sim + 0.35 * env_sim)
    return {
        "score": score,
        "duration_deviation": dur_dev,
        "log_duration_ratio": log_ratio,
        "npvi_reference": npvi_ref,
        "npvi_attempt": npvi_att,
        "envelope_correlation": env_corr,
    }


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
