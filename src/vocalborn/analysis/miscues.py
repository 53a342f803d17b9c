"""Which part of the reference an attempt said: partial attempts and completeness.

A learner often stops early, starts late or skips words. The global content DTW
(:func:`vocalborn.analysis.phonetic.align`) must match the whole reference with the whole
attempt, so half a sentence is stretched over all of it and looks like another sentence.

Here the reference may be left partly unsaid at either end. A DTW of the content frames
(the same frame cost ``-log(p_ref . p_att)`` and symmetric weights as the global one)
may start at any reference frame and end at any reference frame; each reference frame
it leaves out costs ``UNSAID_COST``, a price a frame that was said would not reach. The
reference stretch the best path covers is what was said: characters mostly outside it
are omissions, and the rest of the analysis compares the attempt with that stretch only
(:func:`crop`), so a partial attempt is judged on what it said, with its completeness.

The price is the midpoint between the frame cost of two recordings saying the same
phones (same sentence by another speaker: mean 1.5-2.0 on real speech, below 1.0 for
synthetic voices) and of unrelated phones (chance, ``compare.PHONETIC_CHANCE`` 3.4): a
stretch is only cut when matching it costs more per frame than that. A reference frame
piled onto an attempt frame costs its frame cost once (a vertical step), so leaving it
out is preferred exactly when it matches worse than the price.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from vocalborn.analysis import dsp, phonetic
from vocalborn.analysis.phone_units import said_characters

UNSAID_COST = 2.8  # price per reference content frame left unsaid (see the module docstring)
STEP_PENALTY = 1.0  # added to a frame piled onto the other side's frame (a stretch, not a match)
INSERTED_COST = 2.8  # price per attempt content frame that is an addition (same grounds)
INSERT_MIN_SECONDS = 0.12  # an insertion adds at least this much attempt time (a short syllable)
INSERT_JOIN_FRAMES = 25  # added content frames at most this many posterior frames (500 ms) apart form one run
# (the recogniser's posteriors are peaky: the content frames of 2-3 added syllables lie up to
# ~400 ms apart; 10 split them into pieces under a syllable. Chosen on the synthetic
# insertion set: 10 -> P/R 0.807/0.815, 15 -> 0.823/0.861, 25 -> 0.832/0.870)
SAID_SHARE = 0.5  # a character is unsaid when this share of its reference content frames is
# An unsaid run is an omission when the attempt's time between the said neighbours is under
# this share of the reference's (an omission leaves only the neighbours' own time; a
# substitution keeps about all of it). Fitted on the synthetic omission set
# (scripts/evaluate.py --synthetic-miscues, two voice pairs): 61 of 70 omitted runs fall
# below it, 10 of 48 other unsaid runs.
KEPT_TIME_MAX = 0.4
MAX_JUMP = 3  # characters the edit alignment may leave out in one jump
# Log-probability prices of leaving a syllable out of the attempt's own forced alignment
# (said_by_phones, confirm_runs). Fitted on the synthetic omission set
# (scripts/evaluate.py --synthetic-miscues; 3 voice pairs, 216 omitted characters); see
# docs/ANALYSIS.md.
SKIP_PENALTY = 6.0
SKIP_PENALTY_LOOSE = 3.0


@dataclass(frozen=True)
class EditAlignment:
    """The content frames an attempt left out of the reference and added to it."""

    start: float  # reference seconds of the first said content frame
    end: float  # ... and past the last one
    ref_times: np.ndarray  # every reference content frame's time (seconds)
    att_first: float  # attempt seconds of its first content frame
    att_last: float  # ... and of its last
    unsaid: np.ndarray  # bool per reference content frame: left unsaid
    att_first_of: np.ndarray  # per reference content frame, the first attempt second aligned to it (NaN: off the path)
    att_last_of: np.ndarray  # ... and the last
    inserted: list[tuple[float, float, float]]  # (attempt start, attempt end, reference time) runs

    def unsaid_share(self, r0: float, r1: float) -> float | None:
        """Share of the reference content frames in [r0, r1) seconds left unsaid (None: none there)."""
        inside = (self.ref_times >= r0) & (self.ref_times < r1)
        n = int(inside.sum())
        return float(self.unsaid[inside].sum()) / n if n else None

    def kept_time_share(self, r0: float, r1: float, tempo: float) -> float:
        """How much attempt time lies between the said reference frames just before ``r0``
        and just after ``r1`` (the attempt's first or last content frame at either end of
        the reference), as a share of the reference's time between them times ``tempo``
        (attempt over reference speaking time). About 1 when something else was said in
        [r0, r1), well below when nothing was."""
        # The neighbours' first attempt frame before and last after: attempt frames piled
        # onto a neighbour (the new sound of a substitution) count as kept time.
        ok = ~self.unsaid & ~np.isnan(self.att_first_of)
        before = np.flatnonzero(ok & (self.ref_times < r0))
        after = np.flatnonzero(ok & (self.ref_times >= r1))
        if before.size:
            ref_b, att_b = float(self.ref_times[before[-1]]), float(self.att_first_of[before[-1]])
        else:
            ref_b, att_b = float(self.ref_times[0]), self.att_first
        if after.size:
            ref_a, att_a = float(self.ref_times[after[0]]), float(self.att_last_of[after[0]])
        else:
            ref_a, att_a = float(self.ref_times[-1]), self.att_last
        ref_gap = max(ref_a - ref_b, phonetic.FRAME) * tempo
        return max(0.0, att_a - att_b) / ref_gap


def edit_align(
    ref_ph: phonetic.PhoneticFeatures,
    att_ph: phonetic.PhoneticFeatures,
    ref_sec: list[tuple[float, float]] | None = None,
) -> EditAlignment | None:
    """DTW of the content frames where a reference frame may stay unsaid at
    ``UNSAID_COST`` and an attempt frame may be an addition at ``INSERTED_COST`` (both
    ends of the reference open); None when either recording has under two content frames.

    Steps: diagonal ``2c``; a reference frame onto the same attempt frame
    ``min(c, UNSAID_COST)`` (when capped, the frame was not said); an attempt frame onto
    the same reference frame ``min(c, INSERTED_COST)`` (when capped, it was added).

    With ``ref_sec`` (the characters' reference seconds) the reference is left unsaid by
    whole characters only: a jump over 1-``MAX_JUMP`` characters at ``UNSAID_COST`` per
    content frame they hold, and the path starts and ends at character boundaries; a
    reference frame piled onto an attempt frame then costs ``c + STEP_PENALTY`` uncapped.
    (Frame by frame, the unsaid stretch's edges fall between characters' phones and the
    omission is often placed one character off.)"""
    n, m = len(ref_ph.content_frames), len(att_ph.content_frames)
    if n < 2 or m < 2:
        return None
    c = -np.log(np.maximum(ref_ph.content @ att_ph.content.T, 1e-12))
    rt = ref_ph.frame_time(ref_ph.content_frames)
    if ref_sec:
        starts = np.array([r0 for r0, _ in ref_sec])
        char_of = np.clip(np.searchsorted(starts, rt, side="right") - 1, 0, len(ref_sec) - 1)
        first_row = np.flatnonzero(np.r_[True, char_of[1:] != char_of[:-1]])  # each present character's first frame
        can_start = np.zeros(n, dtype=bool)
        can_start[first_row] = True
        can_end = np.r_[first_row[1:] - 1, n - 1]
        vert = c + STEP_PENALTY
    else:
        first_row = np.zeros(0, dtype=np.int64)
        can_start = np.ones(n, dtype=bool)
        can_end = np.arange(n)
        vert = np.minimum(c + STEP_PENALTY, UNSAID_COST)
    horiz = np.minimum(c + STEP_PENALTY, INSERTED_COST)
    came = np.zeros((n, m), dtype=np.int8)  # 0 diagonal, 1 from above, 2 from the left, 3 start here, 4 jump
    jump_from = np.zeros((n, m), dtype=np.int32)  # for 4: the row the jump comes from
    rows_kept: dict[int, np.ndarray] = {}  # the cost row at each character's last frame
    group_of_row = {int(r): g for g, r in enumerate(first_row.tolist())}
    prev = 2.0 * c[0, 0] + np.concatenate([[0.0], np.cumsum(horiz[0, 1:])])
    came[0, 0] = 3
    came[0, 1:] = 2
    last = np.empty(n)
    last[0] = prev[-1]
    big = np.inf
    for i in range(1, n):
        entry = np.empty(m)
        came_entry = np.empty(m, dtype=np.int8)
        up0 = prev[0] + vert[i, 0]
        fresh = UNSAID_COST * i + 2.0 * c[i, 0] if can_start[i] else big
        entry[0], came_entry[0] = (up0, 1) if up0 <= fresh else (fresh, 3)
        diag = prev[:-1] + 2.0 * c[i, 1:]
        up = prev[1:] + vert[i, 1:]
        take_diag = diag <= up
        entry[1:] = np.where(take_diag, diag, up)
        came_entry[1:] = np.where(take_diag, 0, 1)
        g = group_of_row.get(i)
        jump_src = np.zeros(m, dtype=np.int32)
        if g is not None:
            if g >= 1:
                rows_kept[i - 1] = prev
            for skip in range(1, MAX_JUMP + 1):
                if g - skip < 1:
                    break
                src_row = int(first_row[g - skip]) - 1  # the last frame before the skipped characters
                cand = rows_kept[src_row] + UNSAID_COST * (i - 1 - src_row) + vert[i]
                take = cand < entry
                entry = np.where(take, cand, entry)
                came_entry = np.where(take, 4, came_entry)
                jump_src = np.where(take, src_row, jump_src)
        jump_from[i] = jump_src
        # horizontal steps: D[j] = S[j] + min_{k<=j} (entry[k] - S[k]), S the cumulated step costs
        h = horiz[i].copy()
        h[0] = 0.0
        s = np.cumsum(h)
        v = entry - s
        run_min = np.minimum.accumulate(v)
        from_left = v > run_min
        prev = s + run_min
        came[i] = np.where(from_left, 2, came_entry)
        last[i] = prev[-1]
    total = np.full(n, np.inf)
    total[can_end] = last[can_end] + UNSAID_COST * (n - 1 - can_end)
    i, j = int(np.argmin(total)), m - 1
    unsaid = np.zeros(n, dtype=bool)
    unsaid[i + 1 :] = True
    added = np.zeros(m, dtype=bool)
    ref_of_att = np.zeros(m, dtype=np.int64)
    first_of = np.full(n, -1, dtype=np.int64)
    last_of = np.full(n, -1, dtype=np.int64)
    while True:
        step = int(came[i, j])
        ref_of_att[j] = i
        first_of[i] = j  # the path is walked backwards: the last visit is the first column
        last_of[i] = j if last_of[i] < 0 else last_of[i]
        if step == 3:
            unsaid[:i] = True
            break
        if step == 0:
            i, j = i - 1, j - 1
        elif step == 4:
            src = int(jump_from[i, j])
            unsaid[src + 1 : i] = True
            i = src
        elif step == 1:
            unsaid[i] |= not ref_sec and c[i, j] + STEP_PENALTY > UNSAID_COST
            i -= 1
        else:
            added[j] |= c[i, j] + STEP_PENALTY > INSERTED_COST
            j -= 1
    said_rows = np.flatnonzero(~unsaid)
    at = att_ph.frame_time(att_ph.content_frames)
    half = phonetic.FRAME / 2.0
    if said_rows.size:
        start, end = float(rt[said_rows[0]] - half), float(rt[said_rows[-1]] + half)
    else:
        start = end = float(rt[0] - half)
    # An added run is an insertion only when the attempt also spends extra time there: the
    # attempt time between the frames around it, less the reference time between the
    # reference frames they match (times the tempo), is what the run added.
    tempo = (float(at[-1] - at[0]) + phonetic.FRAME) / max(end - start, phonetic.FRAME)
    runs = []
    for a, b in _runs(added, INSERT_JOIN_FRAMES, att_ph.content_frames):
        a_prev, b_next = max(a - 1, 0), min(b, m - 1)
        att_gap = float(at[b_next] - at[a_prev])
        ref_gap = float(rt[ref_of_att[b_next]] - rt[ref_of_att[a_prev]])
        extra = att_gap - max(ref_gap, 0.0) * tempo
        if extra >= INSERT_MIN_SECONDS:
            runs.append((float(at[a] - half), float(at[b - 1] + half), float(rt[ref_of_att[a]])))
    first_t = np.where(first_of >= 0, at[np.maximum(first_of, 0)], np.nan)
    last_t = np.where(last_of >= 0, at[np.maximum(last_of, 0)], np.nan)
    return EditAlignment(start, end, rt, float(at[0]), float(at[-1]), unsaid, first_t, last_t, runs)


def _runs(mask: np.ndarray, join: int, frames: np.ndarray) -> list[tuple[int, int]]:
    """[a, b) index runs of ``mask``, joining runs whose posterior frames are at most
    ``join`` apart (content frames skip blank frames)."""
    out: list[tuple[int, int]] = []
    for k in np.flatnonzero(mask).tolist():
        if out and frames[k] - frames[out[-1][1] - 1] <= join:
            out[-1] = (out[-1][0], k + 1)
        else:
            out.append((k, k + 1))
    return out


def omitted_characters(
    ref_sec: list[tuple[float, float]], edits: EditAlignment | None, said: PhoneSaid | None = None
) -> np.ndarray:
    """Per judged character (reference seconds), whether the attempt left it out.

    A character is unsaid when ``SAID_SHARE`` or more of its reference content frames
    were left unsaid by :func:`edit_align` (one without content frames counts as said: no
    evidence). A run of unsaid characters is an omission only if the attempt spends
    less than ``KEPT_TIME_MAX`` of the reference's time (tempo-corrected) between
    the said neighbours: otherwise something else was said there (a substitution, judged
    as a pronunciation).

    ``said`` (:func:`said_by_phones`): a second, independent source the runs must agree
    with (:func:`confirm_runs`)."""
    omitted = np.zeros(len(ref_sec), dtype=bool)
    if edits is None or not edits.unsaid.any():
        return omitted
    shares = [edits.unsaid_share(r0, r1) for r0, r1 in ref_sec]
    unsaid = np.array([s is not None and s >= SAID_SHARE for s in shares], dtype=bool)
    if unsaid.all():
        return omitted  # nothing of the reference said: judged as it is (another sentence)
    said_time = sum(r1 - r0 for (r0, r1), u in zip(ref_sec, unsaid, strict=True) if not u)
    tempo = (edits.att_last - edits.att_first + phonetic.FRAME) / said_time if said_time > 0 else 1.0
    k = 0
    while k < len(ref_sec):
        if not unsaid[k]:
            k += 1
            continue
        e = k
        while e + 1 < len(ref_sec) and unsaid[e + 1]:
            e += 1
        share = edits.kept_time_share(ref_sec[k][0], ref_sec[e][1], tempo)
        omitted[k : e + 1] = share < KEPT_TIME_MAX
        k = e + 1
    return omitted if said is None else confirm_runs(omitted, said)


def confirm_runs(omitted: np.ndarray, said: PhoneSaid) -> np.ndarray:
    """Keep a run of omitted characters only when the attempt's own phones leave out a
    character in it or next to it (``said.strict``), and cut it at its ends down to as
    many characters as the phones leave out around it (``said.loose``): the edit
    alignment finds where something is missing, the phones which characters."""
    out = np.zeros_like(omitted)
    n = len(omitted)
    k = 0
    while k < n:
        if not omitted[k]:
            k += 1
            continue
        e = k
        while e + 1 < n and omitted[e + 1]:
            e += 1
        lo, hi = max(k - 1, 0), min(e + 2, n)
        if (~said.strict[lo:hi]).any():
            a, b = k, e + 1
            want = max(int((~said.loose[lo:hi]).sum()), 1)
            while b - a > want and said.loose[a]:
                a += 1
            while b - a > want and said.loose[b - 1]:
                b -= 1
            out[a:b] = True
        k = e + 1
    return out


class PhoneSaid:
    """Per character, whether the attempt's own phones say it: the text's syllables
    force-aligned to the attempt where whole syllables may be left out at a price each
    (:func:`vocalborn.analysis.phone_units.said_characters`). It looks at the attempt's
    phones only, not at the reference's voice, so it errs apart from the edit alignment:
    an omission needs both (:func:`confirm_runs`). Computed on first use (most attempts
    leave nothing out and never need it)."""

    def __init__(self, att_ph: phonetic.PhoneticFeatures, seq: list[list[str]]) -> None:
        self._ph, self._seq = att_ph, seq
        self._said: dict[float, np.ndarray] = {}

    def _at(self, penalty: float) -> np.ndarray:
        if penalty not in self._said:
            out = said_characters(self._ph, self._seq, penalty)
            self._said[penalty] = np.ones(len(self._seq), dtype=bool) if out is None else out
        return self._said[penalty]

    @property
    def strict(self) -> np.ndarray:
        """Left out only at a high price (SKIP_PENALTY): few false omissions."""
        return self._at(SKIP_PENALTY)

    @property
    def loose(self) -> np.ndarray:
        """Left out at a low price (SKIP_PENALTY_LOOSE): which characters exactly."""
        return self._at(SKIP_PENALTY_LOOSE)


def said_by_phones(att_ph: phonetic.PhoneticFeatures, seq: list[list[str]]) -> PhoneSaid:
    """The attempt's own evidence of which characters it said (:class:`PhoneSaid`)."""
    return PhoneSaid(att_ph, seq)


def crop(prepared: Any, t0: float, t1: float) -> Any:
    """The reference (``engine.Prepared``) reduced to its stretch [t0, t1) seconds: speech,
    pauses, nuclei and phone frames outside it removed; the pitch stays whole (the
    speaker's range is the whole recording's) and the time axis is unchanged."""
    f = prepared.features
    a = max(0, int(np.floor(t0 / dsp.HOP)))
    b = min(f.n_frames, max(a + 1, int(np.ceil(t1 / dsp.HOP))))
    seg = f.segmentation
    speech = seg.speech.copy()
    speech[:a] = False
    speech[b:] = False
    idx = np.flatnonzero(speech)
    span = (int(idx[0]), int(idx[-1]) + 1) if idx.size else (a, b)
    pauses = tuple((p0, p1) for p0, p1 in seg.pauses if p0 >= span[0] and p1 <= span[1])
    new_seg = dsp.Segmentation(seg.threshold_db, speech, span, pauses)
    nuclei = f.nuclei[(f.nuclei >= a) & (f.nuclei < b)]
    features = replace(f, segmentation=new_seg, nuclei=nuclei)
    ph = prepared.phones
    times = ph.frame_time(ph.content_frames)
    keep = (times >= t0) & (times < t1)
    phones = replace(ph, content=ph.content[keep], content_frames=ph.content_frames[keep])
    return replace(prepared, features=features, phones=phones)
