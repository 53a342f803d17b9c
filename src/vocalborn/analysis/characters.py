"""Per-character judgement of an attempt, from the sentence text.

1. :mod:`vocalborn.analysis.sentence` gives each character its pinyin and expected tone.
2. The reference's characters are located in time by CTC forced alignment (Viterbi) of
   the reference's phone posteriors against the expected phone sequence: each pinyin
   syllable becomes 1-4 broad phone units (an initial, a glide, a vowel, a nasal coda),
   each unit a set of the recogniser's IPA phones (the model has no Mandarin phone set,
   so the sets are deliberately broad; the alignment mostly needs the order). The units
   and the alignment live in :mod:`vocalborn.analysis.phone_units`.
3. Each character's reference span maps onto the attempt through the phone-posterior
   DTW path (:func:`vocalborn.analysis.compare.align_phonetic`).
4. Segmental: a character deviates when the attempt's evidence for the expected phones
   (mean log posterior along its own forced alignment to the same sequence; Witt & Young's
   goodness of pronunciation, made relative) falls ``GOP_DROP`` below the reference's, and
   the character's reference frames, re-aligned onto the attempt around the mapped span,
   still cost at least ``COST_MIN``. (Both must hold: either alone flags too many unchanged
   characters across voices.)
5. Tone: the pitch contour inside the character, in semitones re the speaker's median
   and in units of the speaker's pitch spread, classified as tone 1-4 in both recordings;
   a tone error is an attempt tone that is not the expected one and whose contour also
   differs from the reference's contour there.
6. Missing syllables: characters squeezed to almost nothing in the attempt; extra
   syllables: stretches of attempt phones that the path piles onto one reference frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vocalborn.analysis import char_report, char_tones, compare, dsp, miscues, phonetic, sentence, tones
from vocalborn.analysis.phone_units import force_align_scored, units

# Cost limit used when no forced alignment exists (recording shorter than its text) and for
# "missing": a character deviates above this many times the pair's median ...
COST_RELATIVE = 2.0
COST_FLOOR = 1.9  # ... and above this cost
COST_ABSOLUTE = 3.2  # ... or above this cost whatever the median
# A character deviates when the attempt's evidence for the expected phones falls this far
# below the reference's (mean log posterior along each one's forced alignment) AND the
# re-aligned DTW cost inside the character is at least COST_MIN (synthetic substitution
# pairs: 94 % of replaced characters, 5 % of unchanged ones; docs/ANALYSIS.md).
GOP_DROP = 0.8
GOP_PAIR_MIN_CHARS = 4  # from this many characters the drop is taken relative to the pair's median
# Below that (a lone character or a short word) there is no pair level to compare with: a
# mispronunciation needs this larger drop. Fitted on synthetic lone syllables (3 eSpeak
# voice pairs, 20 syllables): the smallest drop with <= 5 % of same-syllable pairs flagged
# (0.8 flags 17 %); it catches 46 % of another syllable said (0.8: 78 %). docs/ANALYSIS.md.
GOP_DROP_SHORT = 2.0
# In a pair whose characters' drops scatter widely, a deviating character must stand out
# by this many robust standard deviations (1.4826 x the median absolute deviation) as
# well, or by GOP_DROP_SHORT, or cost above the pair's limit. Outlier criteria use 2-3
# (Leys et al. 2013); of those, 2 is the one that keeps the synthetic substitutions of
# tests/analysis/test_characters.py at >= 85 % (2.5: 84.8 %); chosen on synthetic speech
# only, the native clips were only measured (docs/ANALYSIS.md).
GOP_SPREAD_K = 2.0
COST_MIN = 1.5
SEARCH_MARGIN = 0.1  # seconds searched around a character's mapped span in the attempt
MISSING_SHARE = 0.2  # attempt span below this share of the expected duration: missing
# An unsaid character between said ones is an omission only when its reference frames,
# re-aligned around its place, also match badly (synthetic omissions: most >= 2.2; a
# reduced but present syllable of a native reader matches better).
OMIT_COST = 2.2
CHAR_SCORE_FULL, CHAR_SCORE_ZERO = 1.0, 3.4  # a character's 0..100 score from its DTW cost
TONE_CONTOUR_DIFF = 1.0  # RMS difference (speaker-spread units) of a differing contour


@dataclass
class Located:
    """The sentence's characters located in the reference recording."""

    chars: list[sentence.CharSyllable]  # every character of the text
    judged: list[sentence.CharSyllable]  # the Han characters with a reading
    seq: list[list[str]]  # phone units per judged character
    ref_sec: list[tuple[float, float]]  # reference seconds per judged character
    ref_evidence: np.ndarray | None  # mean log posterior of the expected phones (forced)
    forced: bool  # False: spread uniformly (recording too short for its text)

    def frames(self) -> list[tuple[int, int]]:
        """The judged characters' reference spans on the 10 ms grid."""
        out = []
        for r0, r1 in self.ref_sec:
            f0 = int(round(r0 / dsp.HOP))
            out.append((f0, max(int(round(r1 / dsp.HOP)), f0 + 1)))
        return out


def locate(text: str, ref: Any) -> Located | None:
    """Locate ``text``'s characters in the reference (``engine.Prepared``); None when the
    text has no Han character."""
    chars = sentence.syllables(text)
    judged = [c for c in chars if c.judged]
    if not judged:
        return None
    rph: phonetic.PhoneticFeatures = ref.phones
    seq = [units(c) for c in judged]
    scored = force_align_scored(rph, seq)
    if scored is None:  # too short for its text: spread the characters over the speech
        a, b = ref.features.segmentation.span
        edges = np.linspace(a * dsp.HOP, b * dsp.HOP, len(judged) + 1)
        ref_sec = [(float(edges[k]), float(edges[k + 1])) for k in range(len(judged))]
        return Located(chars, judged, seq, ref_sec, None, False)
    ref_sec = [(rph.frame_start(s0), rph.frame_start(s1)) for s0, s1 in scored[0]]
    return Located(chars, judged, seq, ref_sec, scored[1], True)


def analyse(
    located: Located,
    ref: Any,
    att: Any,
    analysis: Any,
    edits: Any = None,
    pitch_baseline: dict[str, Any] | None = None,
    said: Any = None,
) -> char_report.CharacterResult:
    """Judge every located character in the attempt (``ref``/``att`` are engine.Prepared;
    ``pitch_baseline`` the learner's earlier pitch, used when the attempt is short).

    ``edits`` (:class:`vocalborn.analysis.miscues.EditAlignment`) says which reference
    content the attempt left unsaid and which attempt stretches it added: characters
    before the first or after the last said one are omissions outside ``ref``'s stretch
    (the engine cropped ``ref`` to it); an unsaid character in between is an omission
    unless the attempt added about a syllable's worth at its place (then it said something
    else there: judged as usual); the other added stretches are insertions."""

    judged_all = located.judged
    if said is None and edits is not None:
        said = miscues.said_by_phones(att.phones, located.seq)
    omitted_all = miscues.omitted_characters(located.ref_sec, edits, said)
    inside = np.flatnonzero(~omitted_all)
    first, last = (int(inside[0]), int(inside[-1])) if inside.size else (0, len(judged_all) - 1)
    keep = list(range(first, last + 1))
    judged = [judged_all[k] for k in keep]
    ref_sec = [located.ref_sec[k] for k in keep]
    seq = [located.seq[k] for k in keep]
    rph: phonetic.PhoneticFeatures = ref.phones
    aph: phonetic.PhoneticFeatures = att.phones
    ref_evidence = located.ref_evidence[keep] if located.ref_evidence is not None else None
    att_scored = force_align_scored(aph, seq) if ref_evidence is not None and seq else None
    gop_drop = ref_evidence - att_scored[1] if ref_evidence is not None and att_scored else None
    drop_limit = GOP_DROP if len(judged) >= GOP_PAIR_MIN_CHARS else GOP_DROP_SHORT
    scatter = 0.0
    if gop_drop is not None and gop_drop.size >= GOP_PAIR_MIN_CHARS:
        # Relative to the pair's own level: another speaker, style or microphone lowers the
        # evidence of every character; a mispronounced one falls below its neighbours ...
        centre = float(np.median(gop_drop))
        # ... and further than the pair's own scatter (emotional or fast speech reduces
        # many syllables): an outlier by the usual robust rule (GOP_SPREAD_K robust SDs),
        # unless its re-aligned DTW cost is above the pair's limit too (_judge).
        spread = 1.4826 * float(np.median(np.abs(gop_drop - centre)))
        scatter = GOP_SPREAD_K * spread
        gop_drop = gop_drop - max(0.0, centre)
    att_spans, char_cost = _map_characters(ref_sec, analysis.facts["alignment"], rph, aph)
    median = float(np.median(char_cost)) if char_cost else 0.0
    limit = min(COST_ABSOLUTE, max(COST_FLOOR, COST_RELATIVE * median))
    # Without a forced alignment, fall back on the DTW cost alone.
    # A neutral-tone syllable (了, 的, 們) is reduced in any native reading: it needs the
    # larger drop of a character without a pair level.
    limits = np.array([max(drop_limit, GOP_DROP_SHORT) if c.tone == 5 else drop_limit for c in judged])
    evidence = np.array(char_cost) - limit if gop_drop is None else gop_drop - limits
    ref_norm = tones.norm_for(ref.features.tone_f0)
    att_norm = tones.norm_for(att.features.tone_f0, pitch_baseline)
    pair = char_tones.Pair(
        tones.semitones(ref.features.tone_f0, ref_norm),
        tones.semitones(att.features.tone_f0, att_norm),
        ref_norm,
        att_norm,
        _speech_frames(att.features) / _speech_frames(ref.features),
        limit,
        evidence,
        gop_drop,
        (att_spans[0][0], att_spans[-1][1]) if att_spans else (-1, -1),
        (att_spans[0][2], att_spans[-1][3]) if att_spans else (-1, -1),
        scatter,
        len(judged) >= GOP_PAIR_MIN_CHARS,
    )
    if len(judged_all) == 1:
        # A character practised alone: the reference's reading is the expected one.
        judged = [char_tones.reading_of_single(judged[0], att_spans[0], pair)]
    omitted = [bool(omitted_all[k]) for k in keep]
    judged_rows = [
        _judge(j, c, span, att_spans[j], char_cost[j], pair, omitted[j])
        for j, (span, c) in enumerate(zip(ref_sec, judged, strict=True))
    ]
    if said is not None:
        # Missing characters (left unsaid or squeezed to nothing) must agree with the
        # attempt's own phones too (miscues.confirm_runs); the others are judged as said.
        missing = np.zeros(len(judged_all), dtype=bool)
        missing[keep] = [r["error_type"] == "omission" for r in judged_rows]
        confirmed = miscues.confirm_runs(missing | omitted_all, said) if missing.any() else missing
        judged_rows = [
            _judge(j, c, span, att_spans[j], char_cost[j], pair, omitted[j], phones_said=True)
            if r["error_type"] == "omission" and not confirmed[keep[j]]
            else r
            for j, (span, c, r) in enumerate(zip(ref_sec, judged, judged_rows, strict=True))
        ]
    by_k = dict(zip(keep, judged_rows, strict=True))
    rows = [by_k[k] if k in by_k else char_report.unsaid(c, located.ref_sec[k]) for k, c in enumerate(judged_all)]
    extra = char_report.insertions(edits.inserted if edits is not None else [], rows, located.ref_sec, omitted_all)
    summary = char_report.summary(rows, extra, limit, located.forced)
    spans_by_k = dict(zip(keep, att_spans, strict=True))
    return char_report.CharacterResult(
        char_report.listing(located.chars, rows), summary, extra, char_report.char_deviations(rows, spans_by_k)
    )


def _speech_frames(f: Any) -> int:
    return max(f.segmentation.span[1] - f.segmentation.span[0], 1)


def _map_characters(
    ref_sec: list[tuple[float, float]],
    al: compare.Alignment,
    rph: phonetic.PhoneticFeatures,
    aph: phonetic.PhoneticFeatures,
) -> tuple[list[tuple[int, int, int, int]], list[float]]:
    """Each character's reference and attempt frames (f0, f1, a0, a1) through the DTW
    path, and its re-aligned phone cost (:func:`subsequence_cost`)."""
    rt = rph.frame_time(rph.content_frames)
    at = aph.frame_time(aph.content_frames)
    att_spans = []
    char_cost = []
    for r0, r1 in ref_sec:
        f0 = int(round(r0 / dsp.HOP))
        f1 = max(int(round(r1 / dsp.HOP)), f0 + 1)
        a0, a1 = compare.attempt_range(al, max(f0, al.ref_span[0]), min(f1, al.ref_span[1]))
        att_spans.append((f0, f1, a0, a1))
        rk = rph.content[(rt >= r0) & (rt < r1)]
        ak = aph.content[(at >= a0 * dsp.HOP - SEARCH_MARGIN) & (at < a1 * dsp.HOP + SEARCH_MARGIN)]
        char_cost.append(subsequence_cost(rk, ak))
    return att_spans, char_cost


def _judge(
    k: int,
    c: sentence.CharSyllable,
    ref_span: tuple[float, float],
    att_span: tuple[int, int, int, int],
    cost: float,
    pair: char_tones.Pair,
    omitted: bool = False,
    phones_said: bool = False,
) -> dict[str, Any]:
    """The verdict on judged character ``k``: its sounds, its tone, whether it is missing
    (``omitted``: the edit alignment found it unsaid)."""
    r0, r1 = ref_span
    a0, a1 = att_span[2], att_span[3]
    att_dur = max(0, a1 - a0) * dsp.HOP
    expected_dur = (r1 - r0) * pair.tempo
    seg_dev = bool(pair.evidence[k] > 0) and (
        pair.gop_drop is None
        or (cost >= COST_MIN and (pair.gop_drop[k] > min(pair.scatter, GOP_DROP_SHORT) or cost > pair.limit))
    )
    missing = not phones_said and (
        (omitted and cost >= OMIT_COST) or (att_dur < MISSING_SHARE * expected_dur and (seg_dev or cost > pair.limit))
    )
    seg_conf = _clip01(0.5 + abs(float(pair.evidence[k])) / 2.0)
    tone = char_tones.judge_tone(c.accepted_tones, att_span, missing, pair)
    issues = []
    if missing:
        issues.append("missing")
    elif seg_dev:
        issues.append("pronunciation")
    if tone.ok is False:
        issues.append("tone")
    status = "missing" if missing else ("deviating" if issues else "matched")
    # One error type, the most important: omission > mispronunciation > tone.
    error = "omission" if missing else "mispronunciation" if seg_dev else "tone" if tone.ok is False else "none"
    confidence = tone.confidence if "tone" in issues and not seg_dev else seg_conf
    return {
        "index": c.index,
        "char": c.char,
        "pinyin": c.pinyin_tone,
        "pinyin_marks": c.pinyin_marks,
        "expected_tone": c.tone,
        "accepted_tones": list(c.accepted_tones),
        "reference_heard_tone": tone.ref_tone,
        "heard_tone": tone.att_tone,
        "tone_match": tone.ok,
        "tone_confidence": char_report.rnd(tone.confidence) if tone.ok is not None else None,
        "status": status,
        "error_type": error,
        "issues": issues,
        "confidence": char_report.rnd(confidence),
        "cost": char_report.rnd(cost, 3),
        "phone_evidence_drop": char_report.rnd(float(pair.gop_drop[k]), 3) if pair.gop_drop is not None else None,
        "score": char_report.rnd(100.0 * _clip01((CHAR_SCORE_ZERO - cost) / (CHAR_SCORE_ZERO - CHAR_SCORE_FULL)), 1),
        "ref_start": char_report.rnd(r0),
        "ref_end": char_report.rnd(r1),
        "start": char_report.rnd(a0 * dsp.HOP) if not missing else None,
        "end": char_report.rnd(a1 * dsp.HOP) if not missing else None,
        "tone_contour_difference": char_report.rnd(tone.contour_diff),
    }


def subsequence_cost(r: np.ndarray, a: np.ndarray) -> float:
    """Mean frame cost of the best DTW of all of ``r`` (a character's reference phone
    frames) onto any stretch of ``a`` (the attempt's frames around the mapped span):
    a local re-alignment, so a path bent by a neighbouring error does not count."""
    if len(r) == 0:
        return 0.0  # no phone frame in the reference character: nothing to compare
    if len(a) == 0:
        return phonetic.EMPTY_DISTANCE
    cm = -np.log(np.maximum(r @ a.T, 1e-12))
    acc = cm[0].copy()
    for i in range(1, len(r)):
        best = np.minimum(acc, np.concatenate([[np.inf], acc[:-1]])) + cm[i]
        # horizontal steps (several attempt frames on one reference frame), as a prefix scan
        row = best.copy()
        for j in range(1, len(row)):
            alt = row[j - 1] + cm[i, j]
            if alt < row[j]:
                row[j] = alt
        acc = row
    return float(acc.min() / len(r))


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))
