"""Mandarin tone recognition from the pitch contour of one syllable.

Pitch track (:func:`tone_track`): Praat's autocorrelation pitch (the speaker-adaptive
second pass of :mod:`vocalborn.analysis.features`), kept on every voiced run that touches
the intensity-based speech (a syllable's quiet tail, where tone 3 rises and tone 4 ends,
often lies below the speech threshold), with octave jumps folded back towards the local
median and isolated outliers dropped. Unvoiced frames stay NaN: a voicing break inside a
syllable is evidence of creak (tone 3).

Normalisation (:class:`PitchNorm`): semitones re the speaker's median F0 and, for the
level, in units of the speaker's pitch spread (standard deviation in semitones). The
speaker's figures come from the whole recording when it has enough voiced speech
(``LEVEL_MIN_VOICED`` seconds); otherwise from a baseline of the same speaker's earlier
recordings when one is given, and otherwise the level is unknown and only the shape
counts.

Classification (:func:`classify`): phonetic descriptions of the four tones (Chao's 55,
35, 214, 51; Xu 1997; Shih 1988), written as evidence in semitones:

* tone 1: level and high; little movement (range under ~2 semitones);
* tone 2: rises, after at most a small, early dip (turning point in the first half);
* tone 3: low; dips with its minimum late and deep (citation: falls then rises), or
  stays low and falls slightly (the "half third" inside sentences), often creaky
  (voicing breaks or very low F0 in the middle);
* tone 4: falls from a high start, the fall taking most of the syllable.

Each tone gets a score; the best one is the heard tone and the margin over the second
gives the confidence (0..1). Below ``CONFIDENT`` the heard tone is withheld (None). The
thresholds are round numbers from published tone descriptions, not fitted to the
evaluation clips (docs/ANALYSIS.md, "Tones").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A recording with at least this much voiced speech gives its own level reference.
LEVEL_MIN_VOICED = 1.2  # seconds (about four syllables)
SPREAD_MIN, SPREAD_MAX, SPREAD_DEFAULT = 1.5, 6.0, 3.0  # semitones
OCTAVE_JUMP = 8.0  # semitones from the local median: an octave error to fold back
OUTLIER = 6.0  # semitones from the local median after folding: dropped
MIN_VOICED_FRAMES = 5  # a syllable with fewer voiced frames is not classified
CONFIDENT = 0.5  # below this confidence the heard tone is withheld
N_POINTS = 10  # the contour's resampled length


@dataclass(frozen=True)
class PitchNorm:
    """The speaker's pitch reference: median F0 (Hz) and spread (semitones)."""

    median_hz: float
    spread: float
    level_known: bool  # False: the level (high/low) is not interpretable, shape only


@dataclass(frozen=True)
class ToneVerdict:
    tone: int | None  # 1-4, None when not confident or too little voicing
    best: int | None  # the best-scoring tone even when not confident
    confidence: float  # 0..1
    contour: np.ndarray | None  # N_POINTS semitones re the speaker's median (NaN-free)
    scores: dict[int, float]


def tone_track(f0: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """F0 (Hz, 0 unvoiced) for tone analysis: voiced runs touching speech, octave-repaired.

    ``f0`` is Praat's track on the 10 ms grid before any speech masking, ``speech`` the
    intensity-based speech frames."""
    f = np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0).astype(np.float64)
    n = len(f)
    voiced = f > 0
    keep = np.zeros(n, dtype=bool)
    near = _dilate(speech[:n], 3) if n else speech[:n]
    for a, b in _runs(voiced):
        if near[a:b].any():
            keep[a:b] = True
    f[~keep] = 0.0
    idx = np.flatnonzero(f > 0)
    if idx.size < 3:
        return f
    st = 12.0 * np.log2(f[idx] / float(np.median(f[idx])))
    med = _running_median(st, 15)
    d = st - med
    st = np.where(d > OCTAVE_JUMP, st - 12.0, np.where(d < -OCTAVE_JUMP, st + 12.0, st))
    med = _running_median(st, 15)
    bad = np.abs(st - med) > OUTLIER
    out = np.zeros(n)
    ref_hz = float(np.median(f[idx]))
    out[idx] = ref_hz * 2.0 ** (st / 12.0)
    out[idx[bad]] = 0.0
    return out


def profile(f0: np.ndarray) -> tuple[float, float, float]:
    """(median Hz, spread in semitones, voiced seconds) of a tone track."""
    v = f0[f0 > 0]
    if v.size == 0:
        return 0.0, 0.0, 0.0
    median = float(np.median(v))
    st = 12.0 * np.log2(v / median)
    return median, float(np.std(st)), v.size * 0.01


def norm_for(f0: np.ndarray, baseline: dict | None = None) -> PitchNorm:
    """The speaker reference of a recording (whole recording, else ``baseline``)."""
    median, spread, voiced = profile(f0)
    if voiced >= LEVEL_MIN_VOICED and median > 0:
        return PitchNorm(median, _clip(spread, SPREAD_MIN, SPREAD_MAX), True)
    if baseline:
        try:
            b_med = float(baseline.get("median_hz") or 0.0)
            b_sd = float(baseline.get("spread_semitones") or SPREAD_DEFAULT)
        except (TypeError, ValueError, AttributeError):
            b_med, b_sd = 0.0, SPREAD_DEFAULT
        if 40.0 <= b_med <= 1000.0 and math.isfinite(b_sd):
            return PitchNorm(b_med, _clip(b_sd, SPREAD_MIN, SPREAD_MAX), True)
    return PitchNorm(median if median > 0 else 200.0, SPREAD_DEFAULT, False)


def semitones(f0: np.ndarray, norm: PitchNorm) -> np.ndarray:
    out = np.full(len(f0), np.nan)
    v = f0 > 0
    out[v] = 12.0 * np.log2(f0[v] / norm.median_hz)
    return out


@dataclass(frozen=True)
class Shape:
    """Measures of one syllable's contour (semitones; times as shares of the syllable)."""

    start: float
    end: float
    low: float
    high: float
    t_low: float
    t_high: float
    fall_in: float  # from the highest point before the minimum down to it
    rise_out: float  # from the minimum up to the highest point after it
    slope: float  # least-squares slope, semitones per syllable
    first_half: float  # middle minus start
    second_half: float  # end minus middle
    level: float  # mean, semitones re the speaker's median
    creak: float  # share of the syllable's middle without voicing
    duration: float  # seconds of the voiced extent


def shape_of(st: np.ndarray) -> tuple[Shape, np.ndarray] | None:
    """The shape of a syllable's contour (semitones, NaN unvoiced); None if too little voicing."""
    idx = np.flatnonzero(~np.isnan(st))
    if idx.size < MIN_VOICED_FRAMES:
        return None
    seg = st[idx[0] : idx[-1] + 1]
    n = len(seg)
    # Creak: voicing breaks in the middle 60 % of the voiced extent.
    mid = seg[int(0.2 * n) : max(int(0.8 * n), int(0.2 * n) + 1)]
    creak = float(np.isnan(mid).mean()) if mid.size else 0.0
    x = np.arange(n, dtype=np.float64)
    ok = ~np.isnan(seg)
    filled = np.interp(x, x[ok], seg[ok])
    smooth = _smooth(filled, 5 if n >= 12 else 3)
    # Drop the first and last ~8 % (consonant perturbation, glottal offset).
    cut = int(round(0.08 * n)) if n >= 15 else 0
    core = smooth[cut : n - cut] if n - 2 * cut >= 5 else smooth
    m = len(core)
    pts = np.interp(np.linspace(0, m - 1, N_POINTS), np.arange(m), core)
    k = max(1, m // 5)
    start = float(core[:k].mean())
    end = float(core[-k:].mean())
    i_low = int(np.argmin(core))
    i_high = int(np.argmax(core))
    low = float(core[i_low])
    fall_in = float(core[: i_low + 1].max()) - low
    rise_out = float(core[i_low:].max()) - low
    middle = float(core[max(0, m // 2 - k // 2) : m // 2 + k // 2 + 1].mean())
    t = np.linspace(0.0, 1.0, m)
    tc = t - t.mean()
    slope = float(tc @ (core - core.mean()) / (tc @ tc)) if m >= 2 else 0.0  # least squares
    s = Shape(
        start=start,
        end=end,
        low=low,
        high=float(core[i_high]),
        t_low=i_low / max(m - 1, 1),
        t_high=i_high / max(m - 1, 1),
        fall_in=fall_in,
        rise_out=rise_out,
        slope=slope,
        first_half=middle - start,
        second_half=end - middle,
        level=float(seg[ok].mean()),
        creak=creak,
        duration=n * 0.01,
    )
    return s, pts


# Level targets (start, end) in units of the speaker's spread, from Chao's five-level tone
# letters (1 = bottom, 5 = top of the range; 55, 35, 21 (the third tone inside a phrase),
# 51), one letter step = LEVEL_STEP spreads around the middle (3).
CHAO = {1: (5, 5), 2: (3, 5), 3: (2, 1), 4: (5, 1)}
LEVEL_STEP = 0.4
LEVEL_WEIGHT = 1.0  # score units per squared spread of distance from the targets


def scores(s: Shape, norm: PitchNorm) -> dict[int, float]:
    """Evidence for each tone (semitone-like units; higher is more likely): the contour's
    shape, plus, when the speaker's range is known, its start and end levels against
    Chao's tone letters."""
    rng = s.high - s.low
    # Movement is judged against what a syllable of this length can do: short syllables
    # inside sentences move less (Xu & Sun 2002: ~ 10 semitones per 100 ms at most).
    scale = _clip(s.duration / 0.25, 0.5, 1.0)
    rise = s.rise_out / scale
    fall = s.fall_in / scale
    net = (s.end - s.start) / scale
    late = s.t_low
    h2 = s.second_half / scale
    # Tone 1: level; an onset rise of a semitone or two (the consonant's perturbation,
    # the voice settling) is normal, movement in the second half is not.
    t1 = 2.0 - 1.5 * abs(h2) - 0.5 * max(0.0, rng / scale - 2.5)
    # Tone 2: a rise out of an early minimum, continuing through the second half, little
    # fall before it.
    t2 = 0.5 * min(rise, 6.0) + min(h2, 4.0) - 1.5 - 1.5 * max(0.0, fall - 1.0) - 4.0 * max(0.0, late - 0.5)
    # Tone 3: a late, deep dip (fall and rise), or creaky.
    dip = min(fall, rise)
    t3 = 1.5 * dip - 3.0 * max(0.0, 0.3 - late) - 1.0 * max(0.0, -h2 - 2.0) + 4.0 * s.creak - 0.5
    # Tone 4: a fall that takes the syllable to its end.
    t4 = min(-net, 8.0) - 2.0 * max(0.0, s.end - s.low - 1.0) - 3.0 * max(0.0, 0.6 - late) - 0.5
    if not norm.level_known:
        return {1: t1, 2: t2, 3: t3, 4: t4}
    return _in_context(s, norm, scale)


def _in_context(s: Shape, norm: PitchNorm, scale: float) -> dict[int, float]:
    """Scores when the speaker's range is known (a sentence, or a baseline): after Xu's
    target approximation, a syllable's start carries the previous syllable's end, so the
    tone shows in where the contour goes: the level of its second half and its movement
    there, against Chao's tone letters (second halves of 55, 35, 21, 51)."""
    sp = norm.spread
    end = s.end / sp
    mid = (s.end - s.second_half) / sp
    level = 0.5 * (mid + end)  # the second half's level
    move = s.second_half / scale / sp  # its movement, in spreads
    fall1 = -s.first_half / scale / sp
    out = {}
    for tone, (a, b) in CHAO.items():
        m_target = ((a + b) / 2 + b) / 2 - 3  # letters: level of the second half, re the middle
        d_target = (b - a) / 2  # letters: movement over the second half
        out[tone] = -(((level - m_target * LEVEL_STEP) / 0.5) ** 2) - (((move - d_target * LEVEL_STEP) / 0.4) ** 2)
    # A rise after a dip in the middle is the second tone's turning point (or a full third
    # tone when deep and low); a fall that levels off low is the half third.
    out[3] += 0.5 * max(0.0, min(fall1 - max(-move, 0.0), 2.0)) * (1.0 if end < 0 else 0.0)
    out[3] += 2.0 * s.creak
    return out


def classify(st: np.ndarray, norm: PitchNorm) -> ToneVerdict:
    """The tone heard in one syllable's contour (semitones re ``norm``'s median)."""
    got = shape_of(st)
    if got is None:
        return ToneVerdict(None, None, 0.0, None, {})
    s, pts = got
    return decide(scores(s, norm), pts)


def decide(sc: dict[int, float], pts: np.ndarray | None) -> ToneVerdict:
    """The best tone of ``sc``; its confidence grows with the margin over the second."""
    order = sorted(sc, key=lambda k: (-sc[k], k))
    best, second = order[0], order[1]
    margin = sc[best] - sc[second]
    conf = _clip(1.0 - math.exp(-margin / 1.5), 0.0, 1.0)
    tone = best if conf >= CONFIDENT else None
    return ToneVerdict(tone, best, round(conf, 3), pts, {k: round(v, 3) for k, v in sc.items()})


# Template: the reference's contour for the same character (a native reading of the
# expected tone in the same context) adds up to TEMPLATE_WEIGHT to the expected tone's
# score, falling to 0 at a distance of TEMPLATE_REACH (RMS, in the speakers' spreads) and
# down to -TEMPLATE_WEIGHT beyond (a contour unlike the template is evidence against it).
TEMPLATE_WEIGHT = 4.0
TEMPLATE_REACH = 1.0
# Inside sentences (both speakers' ranges known) the contour alone identifies a tone far
# less well (coarticulation, intonation, short syllables: ~50 % on native sentences against
# ~97 % on syllables said alone), so the template weighs more there.
TEMPLATE_WEIGHT_IN_CONTEXT = 10.0
TEMPLATE_REACH_IN_CONTEXT = 3.0
ERROR_SHARE = 0.5


def template_distance(att: np.ndarray, att_norm: PitchNorm, ref: np.ndarray, ref_norm: PitchNorm) -> float:
    """RMS distance of two contours in units of each speaker's spread: their shapes (each
    mean removed) and, when both levels are known, half the weight on their levels."""
    a = att / att_norm.spread
    r = ref / ref_norm.spread
    shape = float(np.sqrt(np.mean(((a - a.mean()) - (r - r.mean())) ** 2)))
    if att_norm.level_known and ref_norm.level_known:
        return math.sqrt(shape**2 + 0.5 * float(a.mean() - r.mean()) ** 2)
    return shape


def error_distance(in_context: bool) -> float:
    """An attempt's contour at least this far from the reference's (half the template's
    reach) may be claimed a tone error; nearer, it is too like the template."""
    return ERROR_SHARE * (TEMPLATE_REACH_IN_CONTEXT if in_context else TEMPLATE_REACH)


def with_template(v: ToneVerdict, expected: int, distance: float, in_context: bool = False) -> ToneVerdict:
    """``v`` re-decided with the reference's contour as the template of ``expected``
    (``in_context``: both recordings are sentences, see TEMPLATE_WEIGHT_IN_CONTEXT)."""
    if not v.scores or v.contour is None or expected not in v.scores:
        return v
    weight, reach = (
        (TEMPLATE_WEIGHT_IN_CONTEXT, TEMPLATE_REACH_IN_CONTEXT) if in_context else (TEMPLATE_WEIGHT, TEMPLATE_REACH)
    )
    bonus = weight * max(-1.0, 1.0 - distance / reach)
    sc = dict(v.scores)
    sc[expected] += bonus
    return decide(sc, v.contour)


# --- helpers -------------------------------------------------------------------------------
def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(hi, max(lo, x)))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return [(int(a), int(b)) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)]


def _dilate(mask: np.ndarray, k: int) -> np.ndarray:
    if mask.size == 0:
        return mask.copy()
    c = np.convolve(mask.astype(np.int32), np.ones(2 * k + 1, dtype=np.int32), mode="same")
    return c > 0


def _edge_pad(x: np.ndarray, h: int) -> np.ndarray:
    """``x`` with its first and last value repeated ``h`` times (np.pad "edge", faster)."""
    return np.concatenate([np.full(h, x[0]), x, np.full(h, x[-1])])


def _running_median(x: np.ndarray, width: int) -> np.ndarray:
    n = len(x)
    h = width // 2
    view = np.lib.stride_tricks.sliding_window_view(_edge_pad(x, h), 2 * h + 1)[:n]
    return np.sort(view, axis=1)[:, h]  # the middle of an odd window: its median


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Median then moving-average smoothing (edges repeated)."""
    if len(x) < width:
        return x.copy()
    y = _running_median(x, width)
    return np.convolve(_edge_pad(y, width // 2), np.ones(width) / width, mode="valid")
