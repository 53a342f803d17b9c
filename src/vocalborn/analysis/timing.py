"""Fluency and rhythm measures of an aligned pair (used by :mod:`vocalborn.analysis.scoring`).

Fluency: speech time less real pauses, the speaking rate against the reference's, and
each attempt pause with its silence beyond the reference's at the aligned place. Rhythm:
tempo-normalised syllable durations, nPVI and the loudness envelope's agreement. Both
give raw 0..100 scores that scoring gates by how far the sounds match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vocalborn.analysis import compare, dsp
from vocalborn.analysis.features import RecordingFeatures

RATE_TOLERANCE = math.log(1.15)  # +-15 % speaking rate costs nothing
RATE_PENALTY = 80.0  # points per unit of |ln(rate ratio)| beyond the tolerance
PAUSE_PENALTY_PER_SECOND = 40.0
PAUSE_PENALTY_EACH = 5.0
EXTRA_PAUSE_MIN = 0.2  # seconds of pause beyond the reference's that count as a deviation
# Rhythm maps, refitted on real speech (engine 2.0): two people reading the same sentence
# differ by ~0.24-0.29 mean |ln| in tempo-normalised syllable durations and correlate
# ~0.55 in loudness envelope; the synthetic-speech maps (0.05..0.50, 0.2..0.9) called
# that poor rhythm.
DUR_DEV_FREE, DUR_DEV_ZERO = 0.10, 0.60
ENV_CORR_ZERO, ENV_CORR_FULL = 0.10, 0.70
INSERTED_SILENCE_DB = 10.0  # attempt this much quieter (re its own peak) than the reference


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


@dataclass
class Fluency:
    """The fluency measures of one pair and its raw (ungated) 0..100 score."""

    score: float
    rate_ratio: float  # > 1: the attempt is faster
    ref_speech_time: float  # seconds of speech less pauses
    att_speech_time: float
    pauses: list[dict[str, Any]]  # every attempt pause (:func:`compare_pauses`)
    extra: list[dict[str, Any]]  # the pauses with at least EXTRA_PAUSE_MIN of extra silence
    inserted: np.ndarray  # per attempt frame: inside an extra pause


def pauses_of(f: RecordingFeatures) -> list[tuple[int, int]]:
    return list(f.segmentation.pauses)


def phonation_time(f: RecordingFeatures) -> float:
    """Speech span less its pauses, seconds."""
    a, b = f.segmentation.span
    return max((b - a) - sum(p1 - p0 for p0, p1 in f.segmentation.pauses), 1) * dsp.HOP


def measure_fluency(ref: RecordingFeatures, att: RecordingFeatures, al: compare.Alignment) -> Fluency:
    """Speaking rate and extra pauses, and the raw fluency score they cost."""
    silent, _ = silence_masks(ref, att, al)
    ref_phon = phonation_time(ref)
    a0, a1 = att.segmentation.span
    att_phon = max(a1 - a0 - int(silent[a0:a1].sum()), 1) * dsp.HOP
    rate_ratio = ref_phon / att_phon  # > 1: the attempt is faster
    rate_pen = RATE_PENALTY * max(0.0, abs(math.log(rate_ratio)) - RATE_TOLERANCE)
    pauses = compare_pauses(ref, att, al, silent)
    inserted = extra_pause_mask(att, silent, pauses)
    extra = [p for p in pauses if p["extra"] >= EXTRA_PAUSE_MIN]
    pause_pen = min(
        60.0,
        PAUSE_PENALTY_PER_SECOND * sum(p["extra"] for p in extra) + PAUSE_PENALTY_EACH * len(extra),
    )
    fluency_raw = max(0.0, 100.0 - rate_pen - pause_pen)
    return Fluency(fluency_raw, rate_ratio, ref_phon, att_phon, pauses, extra, inserted)


def syllable_durations(syllables: list[compare.Syllable], inserted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per syllable in the reference and in the attempt."""
    ref_d = np.array([(s.ref[1] - s.ref[0]) * dsp.HOP for s in syllables])
    # Pause frames inside a syllable's aligned span are the pause's, not the syllable's.
    paused = np.concatenate([[0], np.cumsum(inserted.astype(np.int64))])
    att_d = np.array([max(s.att[1] - s.att[0] - (paused[s.att[1]] - paused[s.att[0]]), 1) * dsp.HOP for s in syllables])
    return ref_d, att_d


def silence_masks(
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


def extra_pause_mask(att: RecordingFeatures, silent: np.ndarray, pauses: list[dict[str, Any]]) -> np.ndarray:
    """Attempt frames belonging to pauses the reference does not have (or has shorter)."""
    mask = np.zeros(att.n_frames, dtype=bool)
    for p in pauses:
        if p["extra"] >= EXTRA_PAUSE_MIN:
            a, b = int(round(p["start"] / dsp.HOP)), int(round(p["end"] / dsp.HOP))
            mask[a:b] = silent[a:b]
    return mask


def compare_pauses(
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


def rhythm(
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
