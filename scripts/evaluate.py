"""Score every ordered pair of a folder of real recordings and print the table by pair type.

Usage: ``uv run python scripts/evaluate.py DIR [--json OUT] [--no-text] [--limit N]``

A folder whose manifest has ``syllable`` and ``tone`` columns (like
``/work/shared/data/tone-syllables``) is evaluated in syllable mode instead (see
:func:`evaluate_syllables`): heard-tone accuracy, the confusion matrix, tone-error recall
and false alarms, refusals.

``DIR`` is laid out like ``/work/shared/data/real-speech``: a ``manifest.tsv`` (columns
``clip``, ``file``, ``speaker``, ``sentence``, ``style``, ``transcript``) and the clips it
names. Every clip is the reference of every other clip (the attempt); each clip's
same-sentence partners (and itself) also appear as degraded attempts: reversed, the
first half only, white noise at 10 dB SNR, tempo x0.8 and x1.25. The reference's
transcript is passed as the sentence text, as the worker does.

Each clip's features (acoustic and phonetic) are extracted once and reused for all its
pairs, so ~1100 pairs take a few minutes on one core. The acceptance figures (AUC of
overall_score same vs another sentence, the means and limits of docs/ANALYSIS.md) are
printed and written to the JSON under ``summary``. Exit status 0 unless ``--check`` is
given and an acceptance threshold fails.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # vocalborn_tools: the repository root
from vocalborn.analysis.decode import load_audio
from vocalborn.analysis.engine import Prepared, build_report, prepare
from vocalborn.analysis.types import AnalysisInputError
from vocalborn_tools import perturb  # noqa: E402

SAME_TYPES = (
    "same_sentence_same_speaker",
    "same_sentence_other_speaker_neutral",
    "same_sentence_other_speaker_emotion",
)
OTHER = "another_sentence"
DEGRADED = ("reversed", "truncated_50", "noise_10db", "tempo_0.8", "tempo_1.25")
TYPES = (*SAME_TYPES, OTHER, *DEGRADED)

# Acceptance thresholds (issue #9).
AUC_MIN = 0.98
NEUTRAL_MEAN_MIN = 75.0
OTHER_MAX = 40.0
TIMING_SHARE_MIN = 0.95
REVERSED_MAX = 30.0


def read_manifest(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.tsv").open(encoding="utf-8") as fh:
        return [dict(r) for r in csv.DictReader(fh, delimiter="\t")]


def degrade(x: np.ndarray, kind: str, seed: int) -> np.ndarray:
    if kind == "reversed":
        return np.ascontiguousarray(x[::-1])
    if kind == "truncated_50":
        return x[: len(x) // 2].copy()
    if kind == "noise_10db":
        return perturb.add_noise(x, 10.0, np.random.default_rng(seed))
    if kind == "tempo_0.8":
        return perturb.change_tempo(x, 0.8)
    if kind == "tempo_1.25":
        return perturb.change_tempo(x, 1.25)
    raise ValueError(kind)


def pair_type(ref: dict[str, str], att: dict[str, str]) -> str:
    if ref["sentence"] != att["sentence"]:
        return OTHER
    if ref["speaker"] == att["speaker"]:
        return SAME_TYPES[0]
    if ref.get("style") == "neutral" and att.get("style") == "neutral":
        return SAME_TYPES[1]
    return SAME_TYPES[2]


def auc(positive: list[float], negative: list[float]) -> float | None:
    """Probability that a positive (same sentence) scores above a negative; ties half."""
    if not positive or not negative:
        return None
    p = np.asarray(positive)[:, None]
    n = np.asarray(negative)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def evaluate(
    folder: Path, use_text: bool = True, limit: int | None = None, log: Any = None, cache: Path | None = None
) -> dict[str, Any]:
    """``cache``: a pickle of the clips' prepared features, read when it exists and written
    otherwise (development: delete it when the feature extraction changes)."""
    import pickle

    rows = read_manifest(folder)[:limit]
    t0 = time.perf_counter()
    clean: dict[str, Prepared] = {}
    degraded: dict[tuple[str, str], Prepared | None] = {}
    if cache is not None and cache.is_file():
        with cache.open("rb") as fh:
            clean, degraded = pickle.load(fh)  # noqa: S301 - a development cache this script wrote
    for r in rows:
        if r["clip"] in clean:
            continue
        x = load_audio(folder / r["file"])
        clean[r["clip"]] = prepare(x)
        for kind in DEGRADED:
            try:
                degraded[(r["clip"], kind)] = prepare(degrade(x, kind, zlib.crc32(r["clip"].encode())))
            except AnalysisInputError:
                degraded[(r["clip"], kind)] = None
    if cache is not None and not cache.is_file():
        with cache.open("wb") as fh:
            pickle.dump((clean, degraded), fh)
    t_features = time.perf_counter() - t0
    if log:
        log(f"features of {len(rows)} clips x {1 + len(DEGRADED)} versions in {t_features:.1f} s")

    pairs: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    for ref in rows:
        params = {"text": ref.get("transcript", "")} if use_text else {}
        jobs: list[tuple[str, dict[str, str], Prepared | None]] = [
            (pair_type(ref, att), att, clean[att["clip"]]) for att in rows if att is not ref
        ]
        for att in rows:
            if att["sentence"] == ref["sentence"]:
                jobs += [(kind, att, degraded[(att["clip"], kind)]) for kind in DEGRADED]
        for kind, att, prepared in jobs:
            if prepared is None:
                continue
            rep = build_report(clean[ref["clip"]], prepared, params)
            da = rep.detailed_analysis
            chars = da.get("characters") or []
            pairs.append(
                {
                    "type": kind,
                    "reference": ref["clip"],
                    "attempt": att["clip"],
                    "overall": rep.overall_score,
                    "pronunciation": rep.pronunciation_accuracy,
                    "fluency": rep.fluency_score,
                    "rhythm": rep.rhythm_score,
                    "content_distance": da["alignment"]["content_distance"],
                    "characters": sum(1 for c in chars if c.get("status") != "not_judged"),
                    "characters_deviating": sum(1 for c in chars if c.get("status") in ("deviating", "missing")),
                    "characters_pronunciation": sum(1 for c in chars if "pronunciation" in c.get("issues", [])),
                    "characters_tone": sum(1 for c in chars if "tone" in c.get("issues", [])),
                    "characters_missing": sum(1 for c in chars if c.get("status") == "missing"),
                }
            )
            pairs[-1].update(miscue_fields(rep, kind, att, clean[att["clip"]], params))
    t_pairs = time.perf_counter() - t1
    summary = summarise(pairs)
    if use_text:
        summary["tones"] = tone_agreement(rows, clean)
    summary["miscues"] = miscue_summary(pairs)
    summary["seconds_features"] = round(t_features, 1)
    summary["seconds_pairs"] = round(t_pairs, 1)
    return {"folder": str(folder), "use_text": use_text, "summary": summary, "pairs": pairs}


# Acceptance (issue #22) on native read sentences.
TONE_AGREEMENT_MIN = 0.75
TONE_JUDGED_MIN = 0.70


def tone_agreement(rows: list[dict[str, str]], clean: dict[str, Prepared]) -> dict[str, Any]:
    """Heard tone against the text's accepted tones (sandhi applied) on native readings.

    * ``pairs`` (the acceptance measure): every attempt of a same-sentence pair (another
      recording of the sentence as the reference, its transcript as the text), the
      attempt's ``heard_tone``; the reference's contour serves as the template of the
      expected tone, as in use.
    * ``alone``: every clip on its own, without a template (the ``reference_heard_tone``
      of the clip analysed against itself).

    Over non-neutral characters: ``agreement`` is the share of the judged ones (heard
    tone not null) whose heard tone is an accepted one, ``judged_share`` the share judged."""
    alone = _ToneTally()
    pairs = _ToneTally()
    for r in rows:
        p = clean[r["clip"]]
        text = r.get("transcript", "")
        rep = build_report(p, p, {"text": text})
        alone.add(rep.detailed_analysis.get("characters") or [], "reference_heard_tone")
        for att in rows:
            if att is r or att["sentence"] != r["sentence"]:
                continue
            rep = build_report(p, clean[att["clip"]], {"text": text})
            pairs.add(rep.detailed_analysis.get("characters") or [], "heard_tone")
    return {"pairs": pairs.summary(), "alone": alone.summary()}


class _ToneTally:
    def __init__(self) -> None:
        self.per_tone: dict[str, list[int]] = {str(t): [0, 0, 0] for t in (1, 2, 3, 4)}  # n, judged, agree
        self.confusion = {str(t): {str(h): 0 for h in (1, 2, 3, 4, 5, "none")} for t in (1, 2, 3, 4)}

    def add(self, chars: list[dict[str, Any]], key: str) -> None:
        for c in chars:
            if c.get("status") == "not_judged" or 5 in c.get("accepted_tones", [5]):
                continue
            tone = str(c["expected_tone"])
            row = self.per_tone[tone]
            row[0] += 1
            heard = c.get(key)
            self.confusion[tone]["none" if heard is None else str(heard)] += 1
            if heard is not None:
                row[1] += 1
                row[2] += heard in c["accepted_tones"]

    def summary(self) -> dict[str, Any]:
        n = sum(v[0] for v in self.per_tone.values())
        judged = sum(v[1] for v in self.per_tone.values())
        agree = sum(v[2] for v in self.per_tone.values())
        agreement = agree / judged if judged else None
        judged_share = judged / n if n else None
        return {
            "syllables": n,
            "judged_share": judged_share,
            "agreement": agreement,
            "per_tone": {
                t: {"n": v[0], "judged": v[1], "agreement": round(v[2] / v[1], 3) if v[1] else None}
                for t, v in self.per_tone.items()
            },
            "confusion": self.confusion,
            "holds": {
                "agreement": agreement is not None and agreement >= TONE_AGREEMENT_MIN,
                "judged_share": judged_share is not None and judged_share >= TONE_JUDGED_MIN,
            },
        }


def format_tones(tones: dict[str, Any]) -> str:
    lines = []
    for name, title in (("pairs", "attempts of same-sentence pairs"), ("alone", "each clip alone, no template")):
        t = tones[name]
        lines += [
            f"heard tone vs the text (sandhi applied), {title}, {t['syllables']} non-neutral syllables: "
            f"agreement {_pct(t['agreement'])} of the judged ({'holds' if t['holds']['agreement'] else 'FAILS'}), "
            f"judged {_pct(t['judged_share'])} ({'holds' if t['holds']['judged_share'] else 'FAILS'})",
            "",
            "| expected \\ heard | 1 | 2 | 3 | 4 | 5 | none | agreement of judged |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for tone, row in t["confusion"].items():
            lines.append(
                f"| {tone} | "
                + " | ".join(str(row[c]) for c in ("1", "2", "3", "4", "5", "none"))
                + f" | {_pct(t['per_tone'][tone]['agreement'])} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip()


def summarise(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pairs:
        by[p["type"]].append(p)
    table = {}
    for kind in TYPES:
        ps = by.get(kind, [])
        if not ps:
            continue
        ov = np.array([p["overall"] for p in ps])
        table[kind] = {
            "n": len(ps),
            "overall_mean": round(float(ov.mean()), 1),
            "overall_min": round(float(ov.min()), 1),
            "overall_max": round(float(ov.max()), 1),
            "pronunciation_mean": round(float(np.mean([p["pronunciation"] for p in ps])), 1),
            "fluency_mean": round(float(np.mean([p["fluency"] for p in ps])), 1),
            "rhythm_mean": round(float(np.mean([p["rhythm"] for p in ps])), 1),
            "timing_nonzero_share": round(float(np.mean([p["fluency"] > 0 and p["rhythm"] > 0 for p in ps])), 3),
            "distance_mean": round(float(np.mean([p["content_distance"] for p in ps])), 2),
        }
        judged = sum(p["characters"] for p in ps)
        if judged:
            for key in ("deviating", "pronunciation", "tone", "missing"):
                share = sum(p[f"characters_{key}"] for p in ps) / judged
                table[kind][f"characters_{key}_share"] = round(share, 3)
    same = [p for p in pairs if p["type"] in SAME_TYPES]
    other = by.get(OTHER, [])
    neutral = by.get(SAME_TYPES[1], [])
    rev = by.get("reversed", [])
    a = auc([p["overall"] for p in same], [p["overall"] for p in other])
    checks = {
        "auc_same_vs_other": a,
        "neutral_other_speaker_mean": float(np.mean([p["overall"] for p in neutral])) if neutral else None,
        "another_sentence_max": max((p["overall"] for p in other), default=None),
        "same_sentence_timing_nonzero_share": (
            float(np.mean([p["fluency"] > 0 and p["rhythm"] > 0 for p in same])) if same else None
        ),
        "reversed_max": max((p["overall"] for p in rev), default=None),
    }
    ok = {
        "auc_same_vs_other": a is not None and a >= AUC_MIN,
        "neutral_other_speaker_mean": checks["neutral_other_speaker_mean"] is None
        or checks["neutral_other_speaker_mean"] >= NEUTRAL_MEAN_MIN,
        "another_sentence_max": checks["another_sentence_max"] is None or checks["another_sentence_max"] <= OTHER_MAX,
        "same_sentence_timing_nonzero_share": checks["same_sentence_timing_nonzero_share"] is None
        or checks["same_sentence_timing_nonzero_share"] >= TIMING_SHARE_MIN,
        "reversed_max": checks["reversed_max"] is None or checks["reversed_max"] <= REVERSED_MAX,
    }
    return {"table": table, "checks": checks, "holds": ok}


def _chars(t: dict[str, Any]) -> str:
    if "characters_deviating_share" not in t:
        return "-"
    return (
        f"{100 * t['characters_deviating_share']:.0f} % ({100 * t['characters_pronunciation_share']:.0f} / "
        f"{100 * t['characters_tone_share']:.0f})"
    )


def format_table(summary: dict[str, Any]) -> str:
    head = (
        "| pairs | n | overall mean (min..max) | pron. | fluency | rhythm | timing > 0 | distance "
        "| chars flagged (pron. / tone) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for kind, t in summary["table"].items():
        lines.append(
            f"| {kind} | {t['n']} | {t['overall_mean']:.1f} ({t['overall_min']:.1f}..{t['overall_max']:.1f}) | "
            f"{t['pronunciation_mean']:.1f} | {t['fluency_mean']:.1f} | {t['rhythm_mean']:.1f} | "
            f"{100 * t['timing_nonzero_share']:.0f} % | {t['distance_mean']:.2f} | {_chars(t)} |"
        )
    c, h = summary["checks"], summary["holds"]
    lines.append("")
    lines.append(
        f"AUC same vs another sentence (overall): {c['auc_same_vs_other']:.4f}"
        if c["auc_same_vs_other"] is not None
        else "AUC: n/a"
    )
    for key, value in c.items():
        shown = "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"- {key}: {shown} ({'holds' if h[key] else 'FAILS'})")
    return "\n".join(lines)


# --- syllable folders ----------------------------------------------------------------------
# Acceptance (issue #22) on one-syllable recordings.
SYL_ACCURACY_MIN = 0.90
SYL_PER_TONE_MIN = 0.80
SYL_RECALL_MIN = 0.80
SYL_FALSE_ALARM_MAX = 0.05
SYL_REFUSED_MAX = 0.02
REFERENCE_MODES = ("auto", "other", "synth", "shifted", "self", "original")
SYNTH_VOICE = "Female2"  # the stand-in "other speaker" when the folder has only one ...
SYNTH_WPM = 90.0  # ... said slowly, like a syllable read from a chart
SHIFT_SEMITONES = -7.0


def is_syllable_folder(folder: Path) -> bool:
    with (folder / "manifest.tsv").open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\n").split("\t")
    return "syllable" in header and "tone" in header


def _tone_flag(row: dict[str, Any]) -> bool:
    """The character is reported as a tone error (error_type when the engine has it)."""
    if "error_type" in row:
        return row.get("error_type") == "tone"
    return row.get("tone_match") is False


def evaluate_syllables(
    folder: Path,
    reference: str = "auto",
    limit: int | None = None,
    log: Any = None,
    synth_voice: str = SYNTH_VOICE,
    attempt_shift: float = 0.0,
) -> dict[str, Any]:
    """One-syllable recordings of known tone (columns ``clip``, ``file``, ``speaker``,
    ``syllable``, ``tone``, ``character``).

    * **Heard tone**: each clip is the attempt, the text its ``character``, the reference
      the same syllable and tone by another speaker of the folder (``other``). With one
      speaker only, ``auto`` takes ``shifted``: the same recording 7 semitones lower (a
      native contour in the right tone, but the attempt's own: its template check is
      easy); ``synth`` an eSpeak rendering of the character (``synth_voice``, slow; its
      tones are crude, a pessimistic stand-in); ``self`` the clip itself; ``original``
      the unshifted recordings when ``attempt_shift`` (semitones, PSOLA) moves the
      attempts to another voice pitch (-10: a male-like voice against the original).
    * **Tone errors**: the same attempt against the reference of each *other* tone of its
      syllable, with that tone's character as the text: the character must be flagged as
      a tone error. Correct pairs flagged are false alarms.
    * **Refused**: recordings the engine refuses (UnusableAudioError).

    Each recording is extracted once.
    """
    rows = [r for r in read_manifest(folder) if r.get("character")][:limit]
    speakers = sorted({r["speaker"] for r in rows})
    mode = reference
    if mode == "auto":
        mode = "other" if len(speakers) > 1 else "shifted"
    t0 = time.perf_counter()
    prepared: dict[str, Prepared | None] = {}
    originals: dict[str, Prepared] = {}
    refused: list[str] = []
    for r in rows:
        x = load_audio(folder / r["file"])
        if mode == "original":
            with contextlib.suppress(AnalysisInputError):
                originals[r["clip"]] = prepare(x)
        try:
            prepared[r["clip"]] = prepare(perturb.pitch_shift(x, attempt_shift) if attempt_shift else x)
        except AnalysisInputError:
            prepared[r["clip"]] = None
            refused.append(r["clip"])
    # References: (syllable, tone) -> list of (speaker, Prepared) usable for an attempt.
    refs: dict[tuple[str, int], list[tuple[str, Prepared]]] = defaultdict(list)
    chars: dict[tuple[str, int], str] = {}
    for r in rows:
        key = (r["syllable"], int(r["tone"]))
        chars.setdefault(key, r["character"])
        if mode in ("other", "self", "original"):
            p = originals.get(r["clip"]) if mode == "original" else prepared[r["clip"]]
            if p is not None:
                refs[key].append((r["speaker"], p))
        elif mode == "shifted" and not any(s == r["speaker"] for s, _ in refs[key]):
            x = perturb.pitch_shift(load_audio(folder / r["file"]), SHIFT_SEMITONES)
            with contextlib.suppress(AnalysisInputError):
                refs[key].append((r["speaker"], prepare(x)))
    if mode == "synth":
        from vocalborn.analysis.synth import render

        for key, ch in sorted(chars.items()):
            u = render(ch, language="zh", voice=synth_voice, words_per_minute=SYNTH_WPM)
            with contextlib.suppress(AnalysisInputError):
                refs[key].append(("synth", prepare(u.samples)))
    t_features = time.perf_counter() - t0
    if log:
        log(f"features of {len(rows)} clips and their references ({mode}) in {t_features:.1f} s")

    def refs_for(key: tuple[str, int], speaker: str, clip: Prepared) -> list[Prepared]:
        if mode == "self":
            return [clip]
        if mode == "other":
            return [p for s, p in refs.get(key, []) if s != speaker]
        if mode == "original":
            return [p for _, p in refs.get(key, [])]
        return [p for _, p in refs.get(key, [])]

    t1 = time.perf_counter()
    trials: list[dict[str, Any]] = []
    for r in rows:
        att = prepared[r["clip"]]
        tone = int(r["tone"])
        if att is None:
            trials.append(
                {"clip": r["clip"], "speaker": r["speaker"], "tone": tone, "kind": "correct", "refused": True}
            )
            continue
        for other in (1, 2, 3, 4):
            key = (r["syllable"], other)
            if key not in chars:
                continue
            if mode == "self" and other != tone:
                continue  # the clip itself is only a reference for its own tone
            for ref in refs_for(key, r["speaker"], att):
                rep = build_report(ref, att, {"text": chars[key]})
                row = next(c for c in rep.detailed_analysis["characters"] if c.get("status") != "not_judged")
                trials.append(
                    {
                        "clip": r["clip"],
                        "speaker": r["speaker"],
                        "tone": tone,
                        "reference_tone": other,
                        "kind": "correct" if other == tone else "tone_error",
                        "refused": False,
                        "heard_tone": row.get("heard_tone"),
                        "reference_heard_tone": row.get("reference_heard_tone"),
                        "tone_confidence": row.get("tone_confidence"),
                        "tone_match": row.get("tone_match"),
                        "error_type": row.get("error_type"),
                        "status": row.get("status"),
                        "tone_flag": _tone_flag(row),
                        "overall": rep.overall_score,
                    }
                )
    summary = summarise_syllables(trials, len(rows), len(refused))
    summary["reference_mode"] = (
        mode
        + (f" ({synth_voice})" if mode == "synth" else "")
        + (f"; attempts shifted {attempt_shift:+g} semitones" if attempt_shift else "")
    )
    summary["speakers"] = speakers
    summary["seconds_features"] = round(t_features, 1)
    summary["seconds_pairs"] = round(time.perf_counter() - t1, 1)
    return {"folder": str(folder), "mode": "syllables", "summary": summary, "trials": trials, "refused": refused}


def summarise_syllables(trials: list[dict[str, Any]], n_clips: int, n_refused: int) -> dict[str, Any]:
    correct = [t for t in trials if t["kind"] == "correct"]
    errors = [t for t in trials if t["kind"] == "tone_error"]
    confusion = {str(t): {str(h): 0 for h in (1, 2, 3, 4, 5, "none", "refused")} for t in (1, 2, 3, 4)}
    for t in correct:
        heard = "refused" if t["refused"] else "none" if t.get("heard_tone") is None else str(t["heard_tone"])
        confusion[str(t["tone"])][heard] += 1
    per_tone = {}
    for tone, row in confusion.items():
        n = sum(row.values())
        per_tone[tone] = round(row[tone] / n, 3) if n else None
    n_correct = len(correct)
    right = sum(confusion[t][t] for t in confusion)
    judged = [t for t in correct if not t["refused"] and t.get("heard_tone") is not None]
    analysed = [t for t in correct if not t["refused"]]
    recall = sum(t["tone_flag"] for t in errors) / len(errors) if errors else None
    false_alarm = sum(t["tone_flag"] for t in analysed) / len(analysed) if analysed else None
    any_flag = sum(t.get("status") != "matched" for t in analysed) / len(analysed) if analysed else None
    accuracy = right / n_correct if n_correct else None
    checks = {
        "heard_tone_accuracy": accuracy,
        "worst_tone_accuracy": min((v for v in per_tone.values() if v is not None), default=None),
        "tone_error_recall": recall,
        "false_alarms": false_alarm,
        "refused_share": n_refused / n_clips if n_clips else None,
    }

    def at_least(v: float | None, lo: float) -> bool:
        return v is not None and v >= lo

    def at_most(v: float | None, hi: float) -> bool:
        return v is not None and v <= hi

    holds = {
        "heard_tone_accuracy": at_least(accuracy, SYL_ACCURACY_MIN),
        "worst_tone_accuracy": at_least(checks["worst_tone_accuracy"], SYL_PER_TONE_MIN),
        "tone_error_recall": at_least(recall, SYL_RECALL_MIN),
        "false_alarms": at_most(false_alarm, SYL_FALSE_ALARM_MAX),
        "refused_share": at_most(checks["refused_share"], SYL_REFUSED_MAX),
    }
    return {
        "clips": n_clips,
        "correct_pairs": n_correct,
        "tone_error_pairs": len(errors),
        "judged_share": round(len(judged) / n_correct, 3) if n_correct else None,
        "accuracy_of_judged": round(sum(t["heard_tone"] == t["tone"] for t in judged) / len(judged), 3)
        if judged
        else None,
        "correct_pairs_any_flag": any_flag,
        "confusion": confusion,
        "per_tone": per_tone,
        "checks": checks,
        "holds": holds,
    }


def format_syllables(summary: dict[str, Any]) -> str:
    cols = ("1", "2", "3", "4", "5", "none", "refused")
    lines = [
        f"reference: {summary['reference_mode']}; speakers: {', '.join(summary['speakers'])}; "
        f"{summary['clips']} clips, {summary['correct_pairs']} correct pairs, "
        f"{summary['tone_error_pairs']} tone-error pairs",
        "",
        "| tone \\ heard | " + " | ".join(cols) + " | right |",
        "|---|" + "---|" * (len(cols) + 1),
    ]
    for tone, row in summary["confusion"].items():
        acc = summary["per_tone"][tone]
        shown = "-" if acc is None else f"{100 * acc:.0f} %"
        lines.append(f"| {tone} | " + " | ".join(str(row[c]) for c in cols) + f" | {shown} |")
    c, h = summary["checks"], summary["holds"]
    lines.append("")
    lines.append(
        f"judged (heard tone not null): {_pct(summary['judged_share'])}; accuracy of the judged: "
        f"{_pct(summary['accuracy_of_judged'])}; correct pairs with any flag: {_pct(summary['correct_pairs_any_flag'])}"
    )
    for key, value in c.items():
        lines.append(f"- {key}: {_pct(value)} ({'holds' if h[key] else 'FAILS'})")
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


# --- miscues, completeness and per-character flags (issue #22) -----------------------------
ERROR_TYPES = ("omission", "mispronunciation", "tone")
TRUNCATED = "truncated_50"
# Synthetic sentences for omissions, insertions and substitutions (not the test suite's):
# (sentence, index of a character to replace, the replacement, which changes its sounds).
SYN_SENTENCES: tuple[tuple[str, int, str], ...] = (
    ("我們下午一起去圖書館看書", 9, "飯"),
    ("小明每天早上跑步上學", 4, "晚"),
    ("妹妹喜歡在花園裡唱歌", 5, "菜"),
    ("爺爺坐在門口看報紙", 6, "聽"),
    ("你明天要不要來我家吃飯", 10, "麵"),
    ("天上的白雲慢慢飄過去", 3, "紅"),
    ("我們學校的老師都很好", 5, "同"),
    ("他把桌子上的杯子拿走了", 6, "盤"),
    ("春天來了花都開了", 4, "草"),
    ("請你把門關上好嗎", 3, "窗"),
    ("這家餐廳的菜非常好吃", 5, "湯"),
    ("我們坐公車去動物園", 4, "火"),
)
SYN_VOICES: tuple[tuple[str, str], ...] = (("Female1", "Male1"), ("Male1", "Female2"), ("Female3", "Male2"))
SYN_INSERT_POOL = "天地山水大小"
INSERT_TOLERANCE = 0.1  # seconds: a reported insertion counts when it overlaps the true one this closely


def error_type(c: dict[str, Any]) -> str | None:
    """The character's error_type; for reports without one (engine 2.0) derived from its
    status and issues (missing > pronunciation > tone)."""
    if c.get("status") == "not_judged":
        return None
    if "error_type" in c:
        return c["error_type"]
    issues = c.get("issues") or []
    if c.get("status") == "missing" or "missing" in issues:
        return "omission"
    if "pronunciation" in issues:
        return "mispronunciation"
    if "tone" in issues:
        return "tone"
    return "none"


def insertions(da: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's insertions (engine 2.0: character_summary.extra_syllables)."""
    if "insertions" in da:
        return list(da["insertions"] or [])
    return list((da.get("character_summary") or {}).get("extra_syllables") or [])


def miscue_fields(
    rep: Any, kind: str, att: dict[str, str], att_clean: Prepared, params: dict[str, Any]
) -> dict[str, Any]:
    """Per pair: error types of the judged characters, completeness, insertions; for a
    truncated copy also how the characters said before the cut were judged."""
    from vocalborn.analysis import characters

    da = rep.detailed_analysis
    chars = [c for c in da.get("characters") or [] if error_type(c) is not None]
    out: dict[str, Any] = {
        "judged": len(chars),
        "error_types": {t: sum(1 for c in chars if error_type(c) == t) for t in ERROR_TYPES},
        "completeness": getattr(rep, "completeness_score", None),
        "insertions": len(insertions(da)),
    }
    text = params.get("text") or ""
    if kind == TRUNCATED and text and chars:
        # Which characters the first half holds: the attempt's own untruncated recording,
        # force-aligned to the text; a character counts as said when it ends before the cut.
        located = characters.locate(text, att_clean)
        if located is not None and located.forced:
            cut = att_clean.features.duration / 2.0
            said = {c.index for c, (_, t1) in zip(located.judged, located.ref_sec, strict=True) if t1 <= cut}
            unsaid = {c.index for c, (t0, _) in zip(located.judged, located.ref_sec, strict=True) if t0 >= cut}
            out["said"] = sum(1 for c in chars if c["index"] in said)
            out["said_none"] = sum(1 for c in chars if c["index"] in said and error_type(c) == "none")
            out["unsaid"] = sum(1 for c in chars if c["index"] in unsaid)
            out["unsaid_omission"] = sum(1 for c in chars if c["index"] in unsaid and error_type(c) == "omission")
            out["said_share_true"] = round(100.0 * len(said) / len(located.judged), 1)
    return out


def miscue_summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Characters flagged by pair type and error type; completeness on truncated copies."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in pairs:
        if "judged" in p:
            by[p["type"]].append(p)
    table: dict[str, Any] = {}
    for kind in TYPES:
        ps = by.get(kind, [])
        judged = sum(p["judged"] for p in ps)
        if not judged:
            continue
        row: dict[str, Any] = {"n": len(ps), "judged": judged}
        for t in ERROR_TYPES:
            row[t] = round(sum(p["error_types"][t] for p in ps) / judged, 3)
        row["flagged"] = round(sum(row[t] for t in ERROR_TYPES), 3)
        row["insertions_per_pair"] = round(float(np.mean([p["insertions"] for p in ps])), 2)
        comp = [p["completeness"] for p in ps if p["completeness"] is not None]
        row["completeness_mean"] = round(float(np.mean(comp)), 1) if comp else None
        row["completeness_min"] = round(float(np.min(comp)), 1) if comp else None
        row["completeness_max"] = round(float(np.max(comp)), 1) if comp else None
        table[kind] = row
    trunc = [p for p in by.get(TRUNCATED, []) if "said" in p]
    truncation: dict[str, Any] = {"n": len(trunc)}
    if trunc:
        comp = [p["completeness"] for p in trunc if p["completeness"] is not None]
        said = sum(p["said"] for p in trunc)
        unsaid = sum(p["unsaid"] for p in trunc)
        truncation.update(
            {
                "completeness_in_35_65": round(float(np.mean([35 <= c <= 65 for c in comp])), 3) if comp else 0.0,
                "true_said_share_mean": round(float(np.mean([p["said_share_true"] for p in trunc])), 1),
                "said_none_share": round(sum(p["said_none"] for p in trunc) / said, 3) if said else None,
                "unsaid_omission_share": round(sum(p["unsaid_omission"] for p in trunc) / unsaid, 3)
                if unsaid
                else None,
                "overall_mean": round(float(np.mean([p["overall"] for p in trunc])), 1),
            }
        )
    same_neutral = table.get(SAME_TYPES[1], {}).get("flagged")
    same_emotion = table.get(SAME_TYPES[2], {}).get("flagged")
    checks = {
        "neutral_other_speaker_flagged": same_neutral,
        "emotion_other_speaker_flagged": same_emotion,
        "truncated_completeness_in_35_65": truncation.get("completeness_in_35_65"),
        "truncated_said_none_share": truncation.get("said_none_share"),
    }
    return {"table": table, "truncation": truncation, "checks": checks}


def format_miscues(m: dict[str, Any]) -> str:
    lines = [
        "| pairs | n | judged chars | flagged | omission | mispron. | tone | insertions / pair | completeness mean (min..max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, r in m["table"].items():
        comp = (
            f"{r['completeness_mean']:.1f} ({r['completeness_min']:.1f}..{r['completeness_max']:.1f})"
            if r["completeness_mean"] is not None
            else "-"
        )
        lines.append(
            f"| {kind} | {r['n']} | {r['judged']} | {100 * r['flagged']:.1f} % | {100 * r['omission']:.1f} % | "
            f"{100 * r['mispronunciation']:.1f} % | {100 * r['tone']:.1f} % | {r['insertions_per_pair']:.2f} | {comp} |"
        )
    t = m["truncation"]
    if t.get("n"):
        lines.append("")
        lines.append(
            f"truncated_50 ({t['n']} pairs): completeness in 35..65 {100 * t['completeness_in_35_65']:.0f} %, "
            f"true share said {t['true_said_share_mean']:.1f} %, characters said before the cut judged none "
            f"{_pct(t['said_none_share'])}, characters after the cut flagged omission {_pct(t['unsaid_omission_share'])}, "
            f"overall mean {t['overall_mean']:.1f}"
        )
    return "\n".join(lines)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _syn_cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(kind, reference text, attempt text, truth) of the synthetic miscue pairs."""
    cases: list[tuple[str, str, str, dict[str, Any]]] = []
    for i, (text, k, rep) in enumerate(SYN_SENTENCES):
        n_chars = len(text)
        cases.append(("clean", text, text, {}))
        cases.append(("substitution", text, text[:k] + rep + text[k + 1 :], {"replaced": k}))
        for n in (1, 2, 3):
            pos = (i * 3 + n * 2) % (n_chars - n + 1)
            cases.append(("omission", text, text[:pos] + text[pos + n :], {"omitted": list(range(pos, pos + n))}))
            at = (i * 5 + n) % (n_chars + 1)
            extra = "".join(SYN_INSERT_POOL[(i + j) % len(SYN_INSERT_POOL)] for j in range(n))
            cases.append(("insertion", text, text[:at] + extra + text[at:], {"inserted_at": at, "n": n}))
    return cases


def _closest_omission(text: str, att_text: str, omitted: list[int], flagged: set[int]) -> set[int]:
    """The omitted positions, or an equivalent choice closest to ``flagged``: leaving out
    one of two equal characters (妹妹, 慢慢) gives the same attempt text, so the attempt
    cannot tell which one was left out."""
    from itertools import combinations

    best = set(omitted)
    if not omitted:
        return best
    for cand in combinations(range(len(text)), len(omitted)):
        same = "".join(ch for k, ch in enumerate(text) if k not in cand) == att_text
        if same and len(set(cand) & flagged) > len(best & flagged):
            best = set(cand)
    return best


def synthetic_miscues(
    voices: tuple[tuple[str, str], ...] = SYN_VOICES, log: Any = None, cache: Path | None = None
) -> dict[str, Any]:
    """Synthetic omissions (1-3 characters), insertions (1-3 syllables) and substitutions,
    reference and attempt in different Praat/eSpeak voices: precision and recall.

    ``cache``: a pickle of the rendered and prepared recordings, read when it exists and
    written otherwise (to iterate on the judging without re-extracting the features;
    delete it when the feature extraction changes)."""
    import pickle

    from vocalborn.analysis.synth import render

    t0 = time.perf_counter()
    prepared: dict[tuple[str, str], tuple[Prepared, Any]] = {}
    if cache is not None and cache.is_file():
        with cache.open("rb") as fh:
            prepared = pickle.load(fh)  # noqa: S301 - a development cache this script wrote
    n_cached = len(prepared)

    def prep(text: str, voice: str) -> tuple[Prepared, Any]:
        if (text, voice) not in prepared:
            utt = render(text, "zh", voice)
            prepared[(text, voice)] = (prepare(np.array(utt.samples)), utt.words)
        return prepared[(text, voice)]

    om = {"tp": 0, "fp": 0, "fn": 0}
    ins = {"tp": 0, "fp": 0, "fn": 0, "after_right": 0}
    sub = {"hit": 0, "n": 0, "others_flagged": 0, "others": 0}
    clean = {"flagged": 0, "judged": 0, "insertions": 0, "n": 0}
    completeness: dict[str, list[float]] = defaultdict(list)
    for ref_voice, att_voice in voices:
        for kind, text, att_text, truth in _syn_cases():
            ref, _ = prep(text, ref_voice)
            att, words = prep(att_text, att_voice)
            rep = build_report(ref, att, {"text": text})
            da = rep.detailed_analysis
            chars = [c for c in da["characters"] if error_type(c) is not None]
            if rep.completeness_score is not None:
                completeness[kind].append(rep.completeness_score)
            flagged_om = {c["index"] for c in chars if error_type(c) == "omission"}
            omitted = _closest_omission(text, att_text, truth.get("omitted", []), flagged_om)
            for c in chars:
                flagged = error_type(c) == "omission"
                if c["index"] in omitted:
                    om["tp" if flagged else "fn"] += 1
                elif flagged:
                    om["fp"] += 1
            found = insertions(da)
            if kind == "insertion":
                at, n = truth["inserted_at"], truth["n"]
                if len(words) == len(att_text):
                    t_start, t_end = words[at][0], words[at + n - 1][1]
                else:  # the synthesiser's word tier did not split per character: skip the pair
                    continue
                hit = [
                    x for x in found if x["start"] < t_end + INSERT_TOLERANCE and x["end"] > t_start - INSERT_TOLERANCE
                ]
                ins["tp" if hit else "fn"] += 1
                ins["fp"] += len(found) - len(hit)  # reported away from the inserted syllables
                expected_after = at - 1 if at > 0 else None
                ins["after_right"] += any(x.get("after_index") == expected_after for x in hit)
            else:
                ins["fp"] += len(found)
            if kind == "substitution":
                k = truth["replaced"]
                for c in chars:
                    if c["index"] == k:
                        sub["n"] += 1
                        sub["hit"] += error_type(c) != "none"
                    else:
                        sub["others"] += 1
                        sub["others_flagged"] += error_type(c) != "none"
            if kind == "clean":
                clean["n"] += 1
                clean["judged"] += len(chars)
                clean["flagged"] += sum(1 for c in chars if error_type(c) != "none")
                clean["insertions"] += len(found)
    seconds = time.perf_counter() - t0
    if cache is not None and len(prepared) > n_cached:
        with cache.open("wb") as fh:
            pickle.dump(prepared, fh)

    def pr(d: dict[str, int]) -> tuple[float | None, float | None]:
        p = d["tp"] / (d["tp"] + d["fp"]) if d["tp"] + d["fp"] else None
        r = d["tp"] / (d["tp"] + d["fn"]) if d["tp"] + d["fn"] else None
        return (None if p is None else round(p, 3)), (None if r is None else round(r, 3))

    op, orc = pr(om)
    ip, irc = pr(ins)
    result = {
        "voices": [list(v) for v in voices],
        "omission": {**om, "precision": op, "recall": orc},
        "insertion": {**ins, "precision": ip, "recall": irc},
        "substitution": {
            **sub,
            "replaced_flagged": round(sub["hit"] / sub["n"], 3) if sub["n"] else None,
            "others_flagged_share": round(sub["others_flagged"] / sub["others"], 3) if sub["others"] else None,
        },
        "clean": {**clean, "flagged_share": round(clean["flagged"] / clean["judged"], 3) if clean["judged"] else None},
        "completeness_mean": {k: round(float(np.mean(v)), 1) for k, v in completeness.items()},
        "seconds": round(seconds, 1),
    }
    if log:
        log(f"synthetic miscue pairs in {seconds:.1f} s")
    return result


def format_synthetic(s: dict[str, Any]) -> str:
    o, i, sub, cl = s["omission"], s["insertion"], s["substitution"], s["clean"]
    lines = [
        "| synthetic | precision | recall | detail |",
        "|---|---|---|---|",
        f"| omissions (1-3 characters) | {o['precision']} | {o['recall']} | tp {o['tp']}, fp {o['fp']}, fn {o['fn']} |",
        f"| insertions (1-3 syllables) | {i['precision']} | {i['recall']} | tp {i['tp']}, fp {i['fp']}, fn {i['fn']}, "
        f"after the right character {i['after_right']} |",
        f"| substitutions | - | {sub['replaced_flagged']} | others flagged {sub['others_flagged_share']} |",
        f"| clean pairs | - | - | characters flagged {cl['flagged_share']}, insertions {cl['insertions']} in {cl['n']} pairs |",
    ]
    if s["completeness_mean"]:
        lines.append("")
        lines.append("completeness mean: " + ", ".join(f"{k} {v:.1f}" for k, v in s["completeness_mean"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--json", type=Path, help="write every pair and the summary here")
    ap.add_argument("--no-text", action="store_true", help="do not pass the transcripts (text-free fallback)")
    ap.add_argument("--limit", type=int, help="only the first N clips of the manifest")
    ap.add_argument("--check", action="store_true", help="exit 1 when an acceptance threshold fails")
    ap.add_argument(
        "--reference",
        choices=REFERENCE_MODES,
        default="auto",
        help="syllable folders: the reference of each attempt (auto: another speaker, else shifted)",
    )
    ap.add_argument("--synth-voice", default=SYNTH_VOICE, help="syllable folders: eSpeak voice of synth references")
    ap.add_argument(
        "--attempt-shift", type=float, default=0.0, help="syllable folders: shift the attempts' pitch (semitones)"
    )
    ap.add_argument(
        "--synthetic-miscues",
        action="store_true",
        help="also run the synthetic omission/insertion/substitution pairs (Praat/eSpeak voices)",
    )
    ap.add_argument("--syn-cache", type=Path, help="pickle of the prepared synthetic recordings (development)")
    ap.add_argument("--feature-cache", type=Path, help="pickle of the folder's prepared clips (development)")
    ap.add_argument(
        "--synthetic-only", action="store_true", help="only the synthetic miscue pairs (the folder is not read)"
    )
    args = ap.parse_args(argv)
    if args.synthetic_only:
        syn = synthetic_miscues(log=lambda m: print(m, flush=True), cache=args.syn_cache)
        print(format_synthetic(syn))
        if args.json:
            args.json.write_text(json.dumps(syn, ensure_ascii=False, indent=1), encoding="utf-8")
        return 0
    if not (args.folder / "manifest.tsv").is_file():
        print(f"{args.folder}: no manifest.tsv", file=sys.stderr)
        return 2
    if is_syllable_folder(args.folder):
        result = evaluate_syllables(
            args.folder,
            reference=args.reference,
            limit=args.limit,
            log=lambda m: print(m, flush=True),
            synth_voice=args.synth_voice,
            attempt_shift=args.attempt_shift,
        )
        print(format_syllables(result["summary"]))
        print(f"pairs scored in {result['summary']['seconds_pairs']:.1f} s")
        if args.json:
            args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        if args.check and not all(result["summary"]["holds"].values()):
            return 1
        return 0
    result = evaluate(
        args.folder,
        use_text=not args.no_text,
        limit=args.limit,
        log=lambda m: print(m, flush=True),
        cache=args.feature_cache,
    )
    print(format_table(result["summary"]))
    if "tones" in result["summary"]:
        print()
        print(format_tones(result["summary"]["tones"]))
    print(f"pairs scored in {result['summary']['seconds_pairs']:.1f} s")
    if result["use_text"]:
        print()
        print(format_miscues(result["summary"]["miscues"]))
    if args.synthetic_miscues:
        result["synthetic_miscues"] = synthetic_miscues(log=lambda m: print(m, flush=True), cache=args.syn_cache)
        print()
        print(format_synthetic(result["synthetic_miscues"]))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.check and not all(result["summary"]["holds"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
