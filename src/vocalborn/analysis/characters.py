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

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vocalborn.analysis import compare, dsp, phonetic, sentence, tones
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
COST_MIN = 1.5
SEARCH_MARGIN = 0.1  # seconds searched around a character's mapped span in the attempt
MISSING_SHARE = 0.2  # attempt span below this share of the expected duration: missing
INSERT_MIN_SECONDS = 0.12  # an added attempt stretch shorter than this is no syllable
# An unsaid character between said ones is an omission only when its reference frames,
# re-aligned around its place, also match badly (synthetic omissions: most >= 2.2; a
# reduced but present syllable of a native reader matches better).
OMIT_COST = 2.2
CHAR_SCORE_FULL, CHAR_SCORE_ZERO = 1.0, 3.4  # a character's 0..100 score from its DTW cost
TONE_CONTOUR_DIFF = 1.0  # RMS difference (speaker-spread units) of a differing contour


# A judged character's error_type: one of these, the most important first.
ERROR_TYPES = ("omission", "mispronunciation", "tone", "none")


# --- tones --------------------------------------------------------------------------------
EDGE_REACH = 0.6  # seconds: how far the first/last character's contour may run on ...
EDGE_GAP = 0.1  # ... across voicing breaks this long


def classify_tone(st: np.ndarray, spread: float, level_known: bool = True) -> tuple[int | None, np.ndarray | None]:
    """Tone 1-4 of a contour (semitones re the speaker's median, NaN unvoiced) and its
    contour (semitones); (None, None) if too little voicing, (None, contour) when not
    confident (:func:`vocalborn.analysis.tones.classify`)."""
    v = tones.classify(st, tones.PitchNorm(1.0, max(float(spread), tones.SPREAD_MIN), level_known))
    return v.tone, v.contour


@dataclass
class CharacterResult:
    characters: list[dict[str, Any]]
    summary: dict[str, Any]
    extra: list[dict[str, Any]] = field(default_factory=list)
    deviations: list[dict[str, Any]] = field(default_factory=list)  # report format, per character


def _r(x: float | None, nd: int = 2) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


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


@dataclass(frozen=True)
class _Pair:
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


@dataclass(frozen=True)
class _Tone:
    ref_tone: int | None
    att_tone: int | None
    ok: bool | None
    confidence: float
    contour_diff: float | None


def analyse(
    located: Located,
    ref: Any,
    att: Any,
    analysis: Any,
    edits: Any = None,
    pitch_baseline: dict[str, Any] | None = None,
) -> CharacterResult:
    """Judge every located character in the attempt (``ref``/``att`` are engine.Prepared;
    ``pitch_baseline`` the learner's earlier pitch, used when the attempt is short).

    ``edits`` (:class:`vocalborn.analysis.miscues.EditAlignment`) says which reference
    content the attempt left unsaid and which attempt stretches it added: characters
    before the first or after the last said one are omissions outside ``ref``'s stretch
    (the engine cropped ``ref`` to it); an unsaid character in between is an omission
    unless the attempt added about a syllable's worth at its place (then it said something
    else there: judged as usual); the other added stretches are insertions."""
    from vocalborn.analysis import miscues

    judged_all = located.judged
    omitted_all = miscues.omitted_characters(located.ref_sec, edits)
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
    if gop_drop is not None and gop_drop.size >= GOP_PAIR_MIN_CHARS:
        # Relative to the pair's own level: another speaker, style or microphone lowers the
        # evidence of every character; a mispronounced one falls below its neighbours.
        gop_drop = gop_drop - max(0.0, float(np.median(gop_drop)))
    att_spans, char_cost = _map_characters(ref_sec, analysis.facts["alignment"], rph, aph)
    median = float(np.median(char_cost)) if char_cost else 0.0
    limit = min(COST_ABSOLUTE, max(COST_FLOOR, COST_RELATIVE * median))
    # Without a forced alignment, fall back on the DTW cost alone.
    drop_limit = GOP_DROP if len(judged) >= GOP_PAIR_MIN_CHARS else GOP_DROP_SHORT
    evidence = np.array(char_cost) - limit if gop_drop is None else gop_drop - drop_limit
    ref_norm = tones.norm_for(ref.features.tone_f0)
    att_norm = tones.norm_for(att.features.tone_f0, pitch_baseline)
    pair = _Pair(
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
    )
    if len(judged_all) == 1:
        # A character practised alone: the reference's reading is the expected one.
        judged = [_reading_of_single(judged[0], att_spans[0], pair)]
    omitted = [bool(omitted_all[k]) for k in keep]
    judged_rows = [
        _judge(j, c, span, att_spans[j], char_cost[j], pair, omitted[j])
        for j, (span, c) in enumerate(zip(ref_sec, judged, strict=True))
    ]
    by_k = dict(zip(keep, judged_rows, strict=True))
    rows = [by_k[k] if k in by_k else _unsaid(c, located.ref_sec[k]) for k, c in enumerate(judged_all)]
    extra = _insertions(edits.inserted if edits is not None else [], rows, located.ref_sec, omitted_all)
    summary = _summary(rows, extra, limit, located.forced)
    spans_by_k = dict(zip(keep, att_spans, strict=True))
    return CharacterResult(_listing(located.chars, rows), summary, extra, _char_deviations(rows, spans_by_k))


def _insertions(
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
                "start": _r(a0),
                "end": _r(a1),
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


def _unsaid(c: sentence.CharSyllable, ref_span: tuple[float, float]) -> dict[str, Any]:
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
        "ref_start": _r(ref_span[0]),
        "ref_end": _r(ref_span[1]),
        "start": None,
        "end": None,
        "tone_contour_difference": None,
    }


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
    pair: _Pair,
    omitted: bool = False,
) -> dict[str, Any]:
    """The verdict on judged character ``k``: its sounds, its tone, whether it is missing
    (``omitted``: the edit alignment found it unsaid)."""
    r0, r1 = ref_span
    a0, a1 = att_span[2], att_span[3]
    att_dur = max(0, a1 - a0) * dsp.HOP
    expected_dur = (r1 - r0) * pair.tempo
    seg_dev = bool(pair.evidence[k] > 0) and (pair.gop_drop is None or cost >= COST_MIN)
    missing = (omitted and cost >= OMIT_COST) or (
        att_dur < MISSING_SHARE * expected_dur and (seg_dev or cost > pair.limit)
    )
    seg_conf = _clip01(0.5 + abs(float(pair.evidence[k])) / 2.0)
    tone = _judge_tone(c.accepted_tones, att_span, missing, pair)
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
        "tone_confidence": _r(tone.confidence) if tone.ok is not None else None,
        "status": status,
        "error_type": error,
        "issues": issues,
        "confidence": _r(confidence),
        "cost": _r(cost, 3),
        "phone_evidence_drop": _r(float(pair.gop_drop[k]), 3) if pair.gop_drop is not None else None,
        "score": _r(100.0 * _clip01((CHAR_SCORE_ZERO - cost) / (CHAR_SCORE_ZERO - CHAR_SCORE_FULL)), 1),
        "ref_start": _r(r0),
        "ref_end": _r(r1),
        "start": _r(a0 * dsp.HOP) if not missing else None,
        "end": _r(a1 * dsp.HOP) if not missing else None,
        "tone_contour_difference": _r(tone.contour_diff),
    }


def _judge_tone(exp_tones: tuple[int, ...], att_span: tuple[int, int, int, int], missing: bool, pair: _Pair) -> _Tone:
    """The tone heard in both recordings and whether the attempt's is right (None: not judged).

    ``att_tone`` is the attempt's heard tone when confident (else None). A tone error
    (``ok`` False) needs a confident attempt tone that is not an accepted one, a contour
    that differs from the reference's for the same character (the template of the
    expected tone), and a reference not heard in that same other tone (then the text's
    reading, not the learner, is in doubt)."""
    f0, f1, a0, a1 = att_span
    ref_v = tones.classify(_tone_slice(pair.ref_st, f0, f1, pair.ref_edges), pair.ref_norm)
    att_v = (
        tones.classify(_tone_slice(pair.att_st, a0, a1, pair.att_edges), pair.att_norm)
        if a1 > a0 and not missing
        else tones.ToneVerdict(None, None, 0.0, None, {})
    )
    if 5 in exp_tones or missing or att_v.best is None:
        return _Tone(ref_v.tone, att_v.tone, None, 0.0, None)
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
        and (distance is None or distance >= tones.error_distance(in_context))
    ):
        ok = False
    return _Tone(ref_v.tone, att_v.tone, ok, att_v.confidence, distance)


def _reading_of_single(c: sentence.CharSyllable, span: tuple[int, int, int, int], pair: _Pair) -> sentence.CharSyllable:
    """A character practised alone has no context to pick among its readings (拉 la1/la2,
    哈 ha1/ha3/ha4): the reference says one. When the reference is heard confidently in
    another of the character's tones, that reading is the expected one."""
    if c.tone == 5:
        return c
    options = sentence.reading_tones(c.char)
    if len(options) < 2:
        return c
    ref_v = tones.classify(_tone_slice(pair.ref_st, span[0], span[1], pair.ref_edges), pair.ref_norm)
    if ref_v.tone is None or ref_v.tone == c.tone or ref_v.tone not in options:
        return c
    return sentence.with_reading(c, options[ref_v.tone], ref_v.tone)


def _tone_slice(st: np.ndarray, f0: int, f1: int, edges: tuple[int, int]) -> np.ndarray:
    """A character's contour frames; at the utterance's edges it runs on over the voiced
    stretch it starts or ends in, across voicing breaks up to EDGE_GAP and at most
    EDGE_REACH (the quiet or creaky tail of a final tone 3 or 4 often lies outside the span
    the phones give)."""
    n = len(st)
    f0, f1 = max(0, min(f0, n)), max(0, min(f1, n))
    if f0 == edges[0]:
        f0 = _run_on(st, f0, -1)
    if f1 == edges[1]:
        f1 = _run_on(st, f1 - 1, 1) + 1
    return st[f0:f1]


def _run_on(st: np.ndarray, k: int, step: int) -> int:
    """The last voiced frame reached from ``k`` in direction ``step`` (see _tone_slice)."""
    gap, reach = int(round(EDGE_GAP / dsp.HOP)), int(round(EDGE_REACH / dsp.HOP))
    last, j = k, k + step
    while 0 <= j < len(st) and abs(j - k) <= reach and abs(j - last) <= gap:
        if not np.isnan(st[j]):
            last = j
        j += step
    return last


def _listing(chars: list[sentence.CharSyllable], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
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


def _summary(rows: list[dict[str, Any]], extra: list[dict[str, Any]], limit: float, forced: bool) -> dict[str, Any]:
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
        "cost_limit": _r(limit, 3),
        "alignment": "forced" if forced else "uniform",
    }


def _char_deviations(
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
            "start": _r(a0 * dsp.HOP),
            "end": _r(max(a1, a0 + 1) * dsp.HOP),
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
