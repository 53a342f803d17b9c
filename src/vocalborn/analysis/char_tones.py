"""The tone verdict of one character (part of :mod:`vocalborn.analysis.characters`).

The pitch contour inside the character, in semitones re the speaker's median and in units
of the speaker's pitch spread, is classified as tone 1-4 in both recordings
(:func:`vocalborn.analysis.tones.classify`); a tone error is an attempt tone that is not
the expected one and whose contour also differs from the reference's contour there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vocalborn.analysis import dsp, sentence, tones

# --- tones --------------------------------------------------------------------------------
EDGE_REACH = 0.6  # seconds: how far the first/last character's contour may run on ...
EDGE_GAP = 0.1  # ... across voicing breaks this long


@dataclass(frozen=True)
class Pair:
    """What judging one character needs from the pair as a whole."""

    ref_st: np.ndarray  # semitones per 10 ms frame re the speaker's median (tone track)
    att_st: np.ndarray
    ref_norm: tones.PitchNorm  # the speakers' pitch references
    att_norm: tones.PitchNorm
    tempo: float  # attempt speech time / reference speech time
    limit: float  # the pair's DTW cost limit
    evidence: np.ndarray  # > 0: the character's sounds deviate (per judged character)
    gop_drop: np.ndarray | None  # drop of the expected phones' evidence (forced alignment)
    # The first judged character's start and the last one's end (reference, attempt
    # frames): there the contour runs on to the edge of its voiced stretch.
    ref_edges: tuple[int, int] = (-1, -1)
    att_edges: tuple[int, int] = (-1, -1)
    scatter: float = 0.0  # the drop a character must exceed unless its cost is above ``limit``
    in_sentence: bool = False  # several characters: intonation bends the tones


@dataclass(frozen=True)
class ToneResult:
    ref_tone: int | None
    att_tone: int | None
    ok: bool | None
    confidence: float
    contour_diff: float | None


def judge_tone(
    exp_tones: tuple[int, ...], att_span: tuple[int, int, int, int], missing: bool, pair: Pair
) -> ToneResult:
    """The tone heard in both recordings and whether the attempt's is right (None: not judged).

    ``att_tone`` is the attempt's heard tone when confident (else None). A tone error
    (``ok`` False) needs a confident attempt tone that is not an accepted one, a contour
    that differs from the reference's for the same character (the template of the
    expected tone), and a reference not heard in that same other tone (then the text's
    reading, not the learner, is in doubt). In a sentence the reference must also be heard
    in an expected tone there: intonation (a final boundary tone, emotional speech) bends
    the contours of both readers, and a template that does not show its tone is none."""
    f0, f1, a0, a1 = att_span
    ref_v = tones.classify(tone_slice(pair.ref_st, f0, f1, pair.ref_edges), pair.ref_norm)
    att_v = (
        tones.classify(tone_slice(pair.att_st, a0, a1, pair.att_edges), pair.att_norm)
        if a1 > a0 and not missing
        else tones.ToneVerdict(None, None, 0.0, None, {})
    )
    if 5 in exp_tones or missing or att_v.best is None:
        return ToneResult(ref_v.tone, att_v.tone, None, 0.0, None)
    distance = None
    in_context = pair.att_norm.level_known and pair.ref_norm.level_known
    if ref_v.contour is not None and att_v.contour is not None:
        distance = tones.template_distance(att_v.contour, pair.att_norm, ref_v.contour, pair.ref_norm)
        # The reference reads the text: its contour is the expected tone's template.
        att_v = tones.with_template(att_v, exp_tones[0], distance, in_context)
    ok: bool | None = None
    if att_v.best in exp_tones:
        ok = True
    elif (
        att_v.tone is not None
        and ref_v.tone != att_v.tone
        and (not pair.in_sentence or ref_v.tone in exp_tones)
        and (distance is None or distance >= tones.error_distance(in_context))
    ):
        ok = False
    return ToneResult(ref_v.tone, att_v.tone, ok, att_v.confidence, distance)


def reading_of_single(c: sentence.CharSyllable, span: tuple[int, int, int, int], pair: Pair) -> sentence.CharSyllable:
    """A character practised alone has no context to pick among its readings (拉 la1/la2,
    哈 ha1/ha3/ha4): the reference says one. When the reference is heard confidently in
    another of the character's tones, that reading is the expected one."""
    if c.tone == 5:
        return c
    options = sentence.reading_tones(c.char)
    if len(options) < 2:
        return c
    ref_v = tones.classify(tone_slice(pair.ref_st, span[0], span[1], pair.ref_edges), pair.ref_norm)
    if ref_v.tone is None or ref_v.tone == c.tone or ref_v.tone not in options:
        return c
    return sentence.with_reading(c, options[ref_v.tone], ref_v.tone)


def tone_slice(st: np.ndarray, f0: int, f1: int, edges: tuple[int, int]) -> np.ndarray:
    """A character's contour frames; at the utterance's edges it runs on over the voiced
    stretch it starts or ends in, across voicing breaks up to EDGE_GAP and at most
    EDGE_REACH (the quiet or creaky tail of a final tone 3 or 4 often lies outside the span
    the phones give)."""
    n = len(st)
    f0, f1 = max(0, min(f0, n)), max(0, min(f1, n))
    if f0 == edges[0]:
        f0 = run_on(st, f0, -1)
    if f1 == edges[1]:
        f1 = run_on(st, f1 - 1, 1) + 1
    return st[f0:f1]


def run_on(st: np.ndarray, k: int, step: int) -> int:
    """The last voiced frame reached from ``k`` in direction ``step`` (see tone_slice)."""
    gap, reach = int(round(EDGE_GAP / dsp.HOP)), int(round(EDGE_REACH / dsp.HOP))
    last, j = k, k + step
    while 0 <= j < len(st) and abs(j - k) <= reach and abs(j - last) <= gap:
        if not np.isnan(st[j]):
            last = j
        j += step
    return last
