"""Comparison of an attempt with its reference: alignment and the measures scored.

Pipeline (all on the 10 ms frame grid):

1. Trim both recordings to their speech span (leading/trailing silence does not count).
2. MFCC + delta features up to the bandwidth both recordings share, cepstral-mean
   normalised. A vocal-tract-length warp of the attempt's filterbank is chosen among a
   few factors (the one that brings the attempt closest along a first alignment), so a
   man imitating a woman's recording is not penalised for his longer vocal tract.
3. DTW (Sakoe & Chiba 1978) gives the alignment and its mean cost. The same cost matrix
   against the attempt's frames in reverse order gives a "chance" cost: same speaker,
   same sounds, wrong order. Their ratio is a speaker- and channel-independent measure
   of how well the sounds follow the reference (0 = identical, ~1 = unrelated).
4. Along the alignment: per-syllable cost (pronunciation), pitch contours in semitones
   re each speaker's median (tones), pauses and speech rate (fluency), aligned syllable
   durations, nPVI and the loudness envelope (rhythm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vocalborn.analysis import dsp, phonetic
from vocalborn.analysis.features import RecordingFeatures

# Candidate vocal-tract-length warp factors for the attempt's filterbank.
WARP_FACTORS = (0.84, 0.88, 0.92, 0.96, 1.0, 1.04, 1.09, 1.14, 1.19)
TRIM_MARGIN = 3  # frames of context kept around the speech span
# Penalty on non-diagonal DTW steps, as a fraction of the cost matrix's mean.
STEP_PENALTY = 0.3

# Per-syllable cost ratio (aligned cost / chance cost): at or below GOOD the syllable
# counts as right, at or above BAD as wrong; DEVIATES flags it in the report.
RHO_GOOD = 0.45
RHO_BAD = 0.90
RHO_DEVIATES = 0.62


@dataclass
class Syllable:
    """One reference syllable and its aligned counterpart in the attempt (frames)."""

    ref: tuple[int, int]
    att: tuple[int, int]
    nucleus: int
    rho: float = 0.0
    tone_ok: bool | None = None
    tone_detail: dict[str, float] = field(default_factory=dict)


@dataclass
class Alignment:
    ref_span: tuple[int, int]
    att_span: tuple[int, int]
    path: np.ndarray  # (L, 2) global frame indices (ref, attempt)
    warp: float
    fmax: float
    cost: float
    chance: float
    rho: np.ndarray  # per reference frame in ref_span: local cost / chance (smoothed)
    rho_att: np.ndarray  # per attempt frame in att_span: local cost / chance (smoothed)

    @property
    def ratio(self) -> float:
        return self.cost / self.chance if self.chance > 0 else 1.0


def _trim(f: RecordingFeatures) -> tuple[int, int]:
    a, b = f.segmentation.span
    if b <= a:
        return 0, f.n_frames
    return max(0, a - TRIM_MARGIN), min(f.n_frames, b + TRIM_MARGIN)


def _cepstra(f: RecordingFeatures, span: tuple[int, int], warp: float, fmax: float) -> np.ndarray:
    a, b = span
    ceps = dsp.mfcc_from_power(f.power[a:b], warp, fmax)
    speech = f.segmentation.speech[a:b]
    ceps = ceps - (ceps[speech].mean(axis=0) if speech.any() else ceps.mean(axis=0))
    return np.hstack([ceps, dsp.deltas(ceps)])


def align(ref: RecordingFeatures, att: RecordingFeatures) -> Alignment:
    """Align the attempt to the reference (see the module docstring)."""
    rs, as_ = _trim(ref), _trim(att)
    fmax = float(np.clip(0.95 * min(ref.bandwidth, att.bandwidth), 3000.0, dsp.MEL_FMAX))
    r = _cepstra(ref, rs, 1.0, fmax)
    a1 = _cepstra(att, as_, 1.0, fmax)

    # Warp choice: align once at half frame rate without warping, then evaluate every
    # warp factor along that path (a cheap maximum-likelihood warp estimate: Lee & Rose
    # 1998) instead of running one DTW per factor.
    _, coarse = dsp.dtw(dsp.pairwise_distance(r[::2], a1[::2]))
    ri = np.minimum(coarse[:, 0] * 2, len(r) - 1)
    ai = np.minimum(coarse[:, 1] * 2, len(a1) - 1)
    best_warp, best_cost, best_feat = 1.0, float(np.linalg.norm(r[ri] - a1[ai], axis=1).mean()), a1
    for warp in WARP_FACTORS:
        if warp == 1.0:
            continue
        aw = _cepstra(att, as_, warp, fmax)
        c = float(np.linalg.norm(r[ri] - aw[ai], axis=1).mean())
        if c < best_cost * 0.98:  # prefer no warp unless a warp clearly helps
            best_warp, best_cost, best_feat = warp, c, aw

    cost_matrix = dsp.pairwise_distance(r, best_feat)
    penalty = STEP_PENALTY * float(cost_matrix.mean())
    cost, path = dsp.dtw(cost_matrix, penalty)
    chance = dsp.dtw_cost_only(np.ascontiguousarray(cost_matrix[:, ::-1]), penalty)
    cells = cost_matrix[path[:, 0], path[:, 1]]
    rho = _local_ratio(path[:, 0], cells, len(r), chance)
    rho_att = _local_ratio(path[:, 1], cells, len(best_feat), chance)
    gpath = path + np.array([rs[0], as_[0]])
    return Alignment(rs, as_, gpath, best_warp, fmax, cost, chance, rho, rho_att)


def _local_ratio(index: np.ndarray, cells: np.ndarray, n: int, chance: float) -> np.ndarray:
    """Mean aligned cost per frame of one side, smoothed over 30 ms, over the chance cost."""
    local = np.bincount(index, cells, minlength=n) / np.maximum(np.bincount(index, minlength=n), 1)
    local = np.convolve(np.pad(local, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    return local / chance if chance > 0 else np.ones(n)


def expand_deviation(al: Alignment, att_a: int, att_b: int, limit: int = 50) -> tuple[int, int]:
    """Grow an attempt span over neighbouring attempt frames that also match badly.

    DTW may collapse a replaced syllable onto one attempt frame and give the new sound's
    frames to a neighbour; those frames still cost a lot, which locates the change.
    """
    rho = al.rho_att
    off = al.att_span[0]
    a, b = att_a - off, att_b - off
    lo = max(0, a - limit)
    while a > lo and a - 1 < len(rho) and rho[a - 1] >= RHO_DEVIATES:
        a -= 1
    hi = min(len(rho), b + limit)
    while b < hi and rho[b] >= RHO_DEVIATES:
        b += 1
    return a + off, max(b, a + 1) + off


def map_to_reference(values: np.ndarray, al: Alignment) -> np.ndarray:
    """Mean of an attempt frame series over the attempt frames aligned to each reference
    frame of ``al.ref_span`` (NaN values ignored; NaN where none is left)."""
    rows = al.path[:, 0] - al.ref_span[0]
    vals = values[al.path[:, 1]]
    ok = ~np.isnan(vals)
    n = al.ref_span[1] - al.ref_span[0]
    total = np.bincount(rows[ok], vals[ok], minlength=n)
    count = np.bincount(rows[ok], minlength=n)
    out = np.full(n, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def attempt_range(al: Alignment, ref_a: int, ref_b: int) -> tuple[int, int]:
    """Attempt frames [start, end) aligned to reference frames [ref_a, ref_b)."""
    sel = (al.path[:, 0] >= ref_a) & (al.path[:, 0] < ref_b)
    cols = al.path[sel, 1]
    if cols.size == 0:
        j = int(al.path[np.searchsorted(al.path[:, 0], ref_a).clip(0, len(al.path) - 1), 1])
        return j, j
    return int(cols.min()), int(cols.max()) + 1


def reference_range(al: Alignment, att_a: int, att_b: int) -> tuple[int, int]:
    """Reference frames [start, end) aligned to attempt frames [att_a, att_b)."""
    sel = (al.path[:, 1] >= att_a) & (al.path[:, 1] < att_b)
    rows = al.path[sel, 0]
    if rows.size == 0:
        return al.ref_span[0], al.ref_span[0]
    return int(rows.min()), int(rows.max()) + 1


def speech_chunks(f: RecordingFeatures) -> list[tuple[int, int]]:
    """The speech span cut at pauses: stretches of continuous speech (frames)."""
    a, b = f.segmentation.span
    chunks = []
    for p0, p1 in f.segmentation.pauses:
        if p0 > a:
            chunks.append((a, p0))
        a = p1
    if b > a:
        chunks.append((a, b))
    return chunks


def reference_syllables(ref: RecordingFeatures, al: Alignment) -> list[Syllable]:
    """Cut the reference into syllables around its nuclei and align each to the attempt.

    Boundaries fall at the intensity minimum between consecutive nuclei of one speech
    chunk, and at chunk edges. Without any nucleus (whispered or unvoiced speech) the
    chunks are cut into ~200 ms pieces so there is still something to locate.
    """
    out: list[Syllable] = []
    nuclei = ref.nuclei
    for c0, c1 in speech_chunks(ref):
        inside = nuclei[(nuclei >= c0) & (nuclei < c1)].tolist()
        if not inside:
            pieces = max(1, round((c1 - c0) * dsp.HOP / 0.2))
            edges = np.linspace(c0, c1, pieces + 1).round().astype(int).tolist()
            centres = [(edges[k] + edges[k + 1]) // 2 for k in range(pieces)]
        else:
            edges = [c0]
            for left, right in zip(inside[:-1], inside[1:], strict=True):
                edges.append(left + int(np.argmin(ref.intensity_db[left:right])))
            edges.append(c1)
            centres = inside
        for k, nucleus in enumerate(centres):
            r0, r1 = edges[k], edges[k + 1]
            if r1 - r0 < 3:
                continue
            out.append(Syllable((r0, r1), attempt_range(al, r0, r1), nucleus))
    for syl in out:
        a = syl.ref[0] - al.ref_span[0]
        b = syl.ref[1] - al.ref_span[0]
        syl.rho = float(al.rho[a:b].mean())
    return out


def syllables_from_spans(al: Alignment, spans: list[tuple[int, int]]) -> list[Syllable]:
    """Reference syllables given as frame spans (from the sentence text), aligned to the
    attempt; spans are clipped to the aligned reference span."""
    out: list[Syllable] = []
    lo, hi = al.ref_span
    for a, b in spans:
        r0, r1 = min(max(a, lo), hi - 1), min(max(b, lo + 1), hi)
        if r1 <= r0:
            r1 = r0 + 1
        syl = Syllable((r0, r1), attempt_range(al, r0, r1), (r0 + r1) // 2)
        syl.rho = float(al.rho[r0 - lo : r1 - lo].mean())
        out.append(syl)
    return out


@dataclass
class PitchComparison:
    time: np.ndarray  # reference seconds
    ref_st: np.ndarray  # semitones re reference median (NaN unvoiced)
    att_st: np.ndarray  # aligned attempt semitones re attempt median
    correlation: float | None
    direction_agreement: float | None
    range_ratio: float | None
    ref_range: float  # reference standard deviation, semitones
    measurable: bool


def compare_pitch(ref: RecordingFeatures, att: RecordingFeatures, al: Alignment) -> PitchComparison:
    """Pitch contours along the alignment, each in semitones re its speaker's median, so a
    man and a woman (or a shifted voice) compare by tone shape, not by pitch height."""
    a, b = al.ref_span
    ref_st = ref.semitones[a:b]
    att_st = map_to_reference(att.semitones, al)
    both = ~np.isnan(ref_st) & ~np.isnan(att_st)
    ref_voiced = ref_st[~np.isnan(ref_st)]
    ref_range = float(np.std(ref_voiced)) if ref_voiced.size else 0.0
    time = np.arange(a, b) * dsp.HOP
    if both.sum() < 10 or ref_range < 0.4:
        return PitchComparison(time, ref_st, att_st, None, None, None, ref_range, False)
    x, y = ref_st[both], att_st[both]
    sx, sy = float(np.std(x)), float(np.std(y))
    corr = float(np.corrcoef(x, y)[0, 1]) if sx > 1e-6 and sy > 1e-6 else 0.0
    # Direction: movement over 40 ms where both are voiced throughout.
    dref = _movement(ref_st)
    datt = _movement(att_st)
    moving = ~np.isnan(dref) & ~np.isnan(datt) & (np.abs(dref) >= 0.4)
    if moving.sum() >= 5:
        agree = (np.sign(datt[moving]) == np.sign(dref[moving])) & (np.abs(datt[moving]) >= 0.12)
        direction = float(agree.mean())
    else:
        direction = None
    return PitchComparison(time, ref_st, att_st, corr, direction, sy / sx, ref_range, True)


def _movement(st: np.ndarray, half: int = 2) -> np.ndarray:
    out = np.full(len(st), np.nan)
    if len(st) > 2 * half:
        out[half:-half] = st[2 * half :] - st[: -2 * half]
    return out


def tone_by_syllable(pc: PitchComparison, syllables: list[Syllable], ref_start: int) -> None:
    """Mark each syllable's tone as matching or not (None when not measurable)."""
    for syl in syllables:
        a, b = syl.ref[0] - ref_start, syl.ref[1] - ref_start
        x, y = pc.ref_st[a:b], pc.att_st[a:b]
        both = ~np.isnan(x) & ~np.isnan(y)
        if both.sum() < 6:
            continue
        xs, ys = x[both], y[both]
        ref_move = float(xs.max() - xs.min())
        if ref_move < 1.0:
            continue  # a level tone or too little movement to judge a shape
        att_move = float(ys.max() - ys.min())
        corr = float(np.corrcoef(xs, ys)[0, 1]) if np.std(ys) > 1e-6 else 0.0
        syl.tone_ok = bool(corr >= 0.3 and att_move >= 0.35 * ref_move)
        syl.tone_detail = {"correlation": corr, "ref_movement": ref_move, "att_movement": att_move}


def npvi(durations: np.ndarray) -> float | None:
    """Normalised pairwise variability index (Grabe & Low 2002) of successive durations."""
    d = np.asarray(durations, dtype=np.float64)
    if d.size < 2:
        return None
    pair = np.abs(np.diff(d)) / ((d[1:] + d[:-1]) / 2.0)
    return float(100.0 * pair.mean())


# Typical content cost of two unrelated sentences (real speech, docs/ANALYSIS.md): the
# per-frame phonetic cost is divided by it so the RHO_* thresholds above keep meaning
# "share of an unrelated match".
PHONETIC_CHANCE = 3.4


def _cover_phones(f: RecordingFeatures, ph: phonetic.PhoneticFeatures, span: tuple[int, int]) -> tuple[int, int]:
    if ph.content_frames.size == 0:
        return span
    first = int(ph.frame_time(ph.content_frames[0]) / dsp.HOP) - TRIM_MARGIN - 2
    last = int(ph.frame_time(ph.content_frames[-1]) / dsp.HOP) + TRIM_MARGIN + 3
    return max(0, min(span[0], first)), min(f.n_frames, max(span[1], last))


def align_phonetic(
    ref: RecordingFeatures,
    att: RecordingFeatures,
    ref_ph: phonetic.PhoneticFeatures,
    att_ph: phonetic.PhoneticFeatures,
) -> tuple[Alignment, phonetic.ContentAlignment]:
    """The frame alignment from the phone-posterior DTW, on the 10 ms grid.

    The content path pairs only frames that carry phones; between them (and out to both
    speech spans' edges) the time map is interpolated linearly, which gives every
    reference frame of the span an attempt frame and a connected, monotone path.
    """
    ca = phonetic.align(ref_ph, att_ph)
    # A weak last (or first) syllable may fall below the intensity threshold; where the
    # recogniser hears phones, there is speech: widen the spans to cover them.
    rs, as_ = _cover_phones(ref, ref_ph, _trim(ref)), _cover_phones(att, att_ph, _trim(att))
    rt, at = phonetic.anchors(ref_ph, att_ph, ca)
    r0, r1 = rs[0] * dsp.HOP, (rs[1] - 1) * dsp.HOP
    a0, a1 = as_[0] * dsp.HOP, (as_[1] - 1) * dsp.HOP
    inside = (rt > r0) & (rt < r1) & (at > a0) & (at < a1)
    xs = np.concatenate([[r0], rt[inside], [r1]])
    ys = np.concatenate([[a0], at[inside], [a1]])
    ys = np.maximum.accumulate(ys)
    ref_frames = np.arange(rs[0], rs[1])
    att_of = np.rint(np.interp(ref_frames * dsp.HOP, xs, ys) / dsp.HOP).astype(np.int64)
    att_of = np.clip(att_of, as_[0], as_[1] - 1)
    att_of[0], att_of[-1] = as_[0], as_[1] - 1
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    prev = att_of[0]
    for i, j in zip(ref_frames.tolist(), att_of.tolist(), strict=True):
        lo = prev + 1 if j > prev else j
        seg = np.arange(lo, j + 1) if j > prev else np.array([j])
        rows.append(np.full(len(seg), i))
        cols.append(seg)
        prev = j
    path = np.stack([np.concatenate(rows), np.concatenate(cols)], axis=1).astype(np.int64)

    # Local cost per 10 ms frame of each side (held constant beyond the outer anchors).
    def per_frame(times: np.ndarray, values: np.ndarray, span: tuple[int, int]) -> np.ndarray:
        grid = np.arange(span[0], span[1]) * dsp.HOP
        if times.size == 0:
            return np.ones(len(grid))
        return np.interp(grid, times, values) / PHONETIC_CHANCE

    rho = per_frame(*phonetic.local_cost_by_ref_time(ref_ph, ca), rs)
    rho_att = per_frame(*phonetic.local_cost_by_att_time(att_ph, ca), as_)
    fmax = float(np.clip(0.95 * min(ref.bandwidth, att.bandwidth), 3000.0, dsp.MEL_FMAX))
    al = Alignment(rs, as_, path, 1.0, fmax, ca.cost, PHONETIC_CHANCE, rho, rho_att)
    return al, ca
