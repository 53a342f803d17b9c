"""Score every ordered pair of a folder of real recordings and print the table by pair type.

Usage: ``uv run python scripts/evaluate.py DIR [--json OUT] [--no-text] [--limit N]``

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
import csv
import json
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from vocalborn.analysis import perturb
from vocalborn.analysis.decode import load_audio
from vocalborn.analysis.engine import Prepared, build_report, prepare
from vocalborn.analysis.types import AnalysisInputError

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


def evaluate(folder: Path, use_text: bool = True, limit: int | None = None, log: Any = None) -> dict[str, Any]:
    rows = read_manifest(folder)[:limit]
    t0 = time.perf_counter()
    clean: dict[str, Prepared] = {}
    degraded: dict[tuple[str, str], Prepared | None] = {}
    for r in rows:
        x = load_audio(folder / r["file"])
        clean[r["clip"]] = prepare(x)
        for kind in DEGRADED:
            try:
                degraded[(r["clip"], kind)] = prepare(degrade(x, kind, zlib.crc32(r["clip"].encode())))
            except AnalysisInputError:
                degraded[(r["clip"], kind)] = None
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
    summary["miscues"] = miscue_summary(pairs)
    summary["seconds_features"] = round(t_features, 1)
    summary["seconds_pairs"] = round(t_pairs, 1)
    return {"folder": str(folder), "use_text": use_text, "summary": summary, "pairs": pairs}


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


def synthetic_miscues(voices: tuple[tuple[str, str], ...] = SYN_VOICES, log: Any = None) -> dict[str, Any]:
    """Synthetic omissions (1-3 characters), insertions (1-3 syllables) and substitutions,
    reference and attempt in different Praat/eSpeak voices: precision and recall."""
    from vocalborn.analysis.synth import render

    t0 = time.perf_counter()
    prepared: dict[tuple[str, str], tuple[Prepared, Any]] = {}

    def prep(text: str, voice: str) -> tuple[Prepared, Any]:
        if (text, voice) not in prepared:
            utt = render(text, "zh", voice)
            prepared[(text, voice)] = (prepare(np.array(utt.samples)), utt)
        return prepared[(text, voice)]

    om = {"tp": 0, "fp": 0, "fn": 0}
    ins = {"tp": 0, "fp": 0, "fn": 0, "after_right": 0}
    sub = {"hit": 0, "n": 0, "others_flagged": 0, "others": 0}
    clean = {"flagged": 0, "judged": 0, "insertions": 0, "n": 0}
    completeness: dict[str, list[float]] = defaultdict(list)
    for ref_voice, att_voice in voices:
        for kind, text, att_text, truth in _syn_cases():
            ref, _ = prep(text, ref_voice)
            att, utt = prep(att_text, att_voice)
            rep = build_report(ref, att, {"text": text})
            da = rep.detailed_analysis
            chars = [c for c in da["characters"] if error_type(c) is not None]
            if rep.completeness_score is not None:
                completeness[kind].append(rep.completeness_score)
            omitted = set(truth.get("omitted", []))
            for c in chars:
                flagged = error_type(c) == "omission"
                if c["index"] in omitted:
                    om["tp" if flagged else "fn"] += 1
                elif flagged:
                    om["fp"] += 1
            found = insertions(da)
            if kind == "insertion":
                at, n = truth["inserted_at"], truth["n"]
                words = utt.words
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
        "--synthetic-miscues",
        action="store_true",
        help="also run the synthetic omission/insertion/substitution pairs (Praat/eSpeak voices)",
    )
    args = ap.parse_args(argv)
    if not (args.folder / "manifest.tsv").is_file():
        print(f"{args.folder}: no manifest.tsv", file=sys.stderr)
        return 2
    result = evaluate(args.folder, use_text=not args.no_text, limit=args.limit, log=lambda m: print(m, flush=True))
    print(format_table(result["summary"]))
    print(f"pairs scored in {result['summary']['seconds_pairs']:.1f} s")
    if result["use_text"]:
        print()
        print(format_miscues(result["summary"]["miscues"]))
    if args.synthetic_miscues:
        result["synthetic_miscues"] = synthetic_miscues(log=lambda m: print(m, flush=True))
        print()
        print(format_synthetic(result["synthetic_miscues"]))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.check and not all(result["summary"]["holds"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
