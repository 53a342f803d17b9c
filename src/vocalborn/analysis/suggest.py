"""Feedback text for the learner, derived from the measured weaknesses of one attempt.

Every sentence names something measured in *this* recording (a time, a syllable number,
a percentage): no canned advice. zh-TW is the default; English with ``language="en"``.
With the sentence text (``params["text"]``) the engine judges every character, and the
suggestions name the characters (「熱」的聲調…); without it they speak of syllable
positions and times.
"""

from __future__ import annotations

import math
from typing import Any

from vocalborn.analysis.scoring import Analysis, Scores
from vocalborn.i18n import count_en

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "mismatch": "這段錄音和示範句子的內容不太一樣（只有約 {share:.0f}% 的音節對得上），請先聽一次示範，再完整說出同一句話。",
        "mismatch_area": "句子內容與示範不符",
        "missing": "示範在 {ref_start:.1f} 秒之後的部分（約 {n} 個音節）在你的錄音裡沒有聽到，請把整句話說完。",
        "missing_area": "句子不完整（缺少 {ref_start:.1f} 秒之後的部分）",
        "pron": "第 {k} 個音節（你的錄音 {start:.1f}–{end:.1f} 秒，對應示範 {ref_start:.1f}–{ref_end:.1f} 秒）的發音和示範差異較大，請放慢仔細模仿這個音。",
        "pron_area": "發音：第 {k} 個音節（{start:.1f}–{end:.1f} 秒）",
        "tone_flat": "聲調起伏不夠：你的音高變化只有示範的 {pct:.0f}%，請把每個字的聲調（升、降、轉折）說得更明顯。",
        "tone_shape": "聲調走向和示範不同（相似度 {corr:.0f}%），特別是第 {ks} 個音節，請注意每個字是上升還是下降。",
        "tone_area": "聲調：第 {ks} 個音節",
        "tone_area_flat": "聲調起伏（只有示範的 {pct:.0f}%）",
        "fast": "你說得比示範快約 {pct:.0f}%（說話時間 {att:.1f} 秒，示範 {ref:.1f} 秒），請放慢速度。",
        "slow": "你說得比示範慢約 {pct:.0f}%（說話時間 {att:.1f} 秒，示範 {ref:.1f} 秒），可以試著說得更連貫流暢。",
        "rate_area_fast": "語速偏快（快 {pct:.0f}%）",
        "rate_area_slow": "語速偏慢（慢 {pct:.0f}%）",
        "pause": "你在 {start:.1f} 秒處停頓了 {dur:.1f} 秒，示範在這裡沒有這麼長的停頓，請連貫地說下去。",
        "pause_area": "多餘的停頓（{start:.1f} 秒處，{dur:.1f} 秒）",
        "long": "第 {k} 個音節拖得太長（約為示範比例的 {x:.1f} 倍），請注意每個字的長短。",
        "short": "第 {k} 個音節說得太短（約為示範比例的 {x:.1f} 倍），請把它說完整。",
        "rhythm_area": "節奏：第 {k} 個音節的長短",
        "tone_shape_chars": "聲調走向和示範不同（相似度 {corr:.0f}%），特別是{ks}，請注意每個字是上升還是下降。",
        "tone_area_chars": "聲調：{ks}",
        "tone_shape_general": "聲調走向和示範不同（相似度 {corr:.0f}%），請注意每個字是上升還是下降。",
        "tone_area_general": "聲調走向",
        "long_char": "{c}拖得太長（約為示範比例的 {x:.1f} 倍），請注意每個字的長短。",
        "short_char": "{c}說得太短（約為示範比例的 {x:.1f} 倍），請把它說完整。",
        "rhythm_area_char": "節奏：{c}的長短",
        "list_sep": "、",
        "rhythm_env": "句子的輕重節奏和示範不太一樣（相似度 {pct:.0f}%），請模仿示範中哪些字重、哪些字輕。",
        "rhythm_env_area": "輕重節奏",
        "good": "整體和示範非常接近（總分 {overall:.0f}）。相對最弱的是{weakest}（{value:.0f} 分），可以再多練習。",
        "excellent": "整體和示範非常接近（總分 {overall:.0f}），發音、流暢度和節奏都很好，請保持。",
        "char_pron": "「{chars}」的發音和示範不同，請仔細聽示範中{this}字怎麼念，再跟著說。",
        "char_pron_area": "發音：「{chars}」",
        "char_tone": "「{char}」的聲調不對：應該是第{expected}聲（{pinyin}），聽起來像第{heard}聲。",
        "char_tone_area": "聲調：「{char}」",
        "char_missing": "沒有聽到「{chars}」，請把每個字都說出來。",
        "char_missing_area": "漏字：「{chars}」",
        "char_extra": "在「{after}」之後多了一個音節（你的錄音 {start:.1f}–{end:.1f} 秒），請照句子念，不要加字。",
        "char_extra_area": "多出的音節（{start:.1f} 秒）",
        "this_one": "這個",
        "these": "這些",
        "char_sep": "」「",
        "sep": "",
        "pronunciation": "發音",
        "fluency": "流暢度",
        "rhythm": "節奏",
    },
    "en": {
        "mismatch": "This recording does not sound like the reference sentence (only about {share:.0f}% of the syllables match). Listen to the reference again, then say the same sentence in full.",
        "mismatch_area": "Sentence does not match the reference",
        "missing": "The part of the reference after {ref_start:.1f} s (about {syllables}) is missing from your recording: please say the whole sentence.",
        "missing_area": "Incomplete sentence (missing after {ref_start:.1f} s)",
        "pron": "Syllable {k} (your recording {start:.1f}-{end:.1f} s, reference {ref_start:.1f}-{ref_end:.1f} s) sounds quite different from the reference: slow down and imitate that sound closely.",
        "pron_area": "Pronunciation: syllable {k} ({start:.1f}-{end:.1f} s)",
        "tone_flat": "Your tones are too flat: your pitch moves only {pct:.0f}% as much as the reference. Make each rise and fall clearer.",
        "tone_shape": "Your pitch contour differs from the reference (similarity {corr:.0f}%), especially on syllable(s) {ks}: check whether each one rises or falls.",
        "tone_area": "Tones: syllable(s) {ks}",
        "tone_area_flat": "Tone movement ({pct:.0f}% of the reference)",
        "fast": "You spoke about {pct:.0f}% faster than the reference ({att:.1f} s of speech against {ref:.1f} s): slow down.",
        "slow": "You spoke about {pct:.0f}% slower than the reference ({att:.1f} s of speech against {ref:.1f} s): try to speak more smoothly.",
        "rate_area_fast": "Speaking too fast ({pct:.0f}% faster)",
        "rate_area_slow": "Speaking too slowly ({pct:.0f}% slower)",
        "pause": "You paused for {dur:.1f} s at {start:.1f} s where the reference has no such pause: keep going without stopping.",
        "pause_area": "Extra pause ({dur:.1f} s at {start:.1f} s)",
        "long": "Syllable {k} is drawn out (about {x:.1f} times its share in the reference): mind each syllable's length.",
        "short": "Syllable {k} is cut short (about {x:.1f} times its share in the reference): say it fully.",
        "rhythm_area": "Rhythm: length of syllable {k}",
        "tone_shape_chars": "Your pitch contour differs from the reference (similarity {corr:.0f}%), especially on {ks}: check whether each one rises or falls.",
        "tone_area_chars": "Tones: {ks}",
        "tone_shape_general": "Your pitch contour differs from the reference (similarity {corr:.0f}%): check whether each syllable rises or falls.",
        "tone_area_general": "Tone contour",
        "long_char": "{c} is drawn out (about {x:.1f} times its share in the reference): mind each syllable's length.",
        "short_char": "{c} is cut short (about {x:.1f} times its share in the reference): say it fully.",
        "rhythm_area_char": "Rhythm: length of {c}",
        "list_sep": ", ",
        "rhythm_env": "The pattern of stressed and unstressed syllables differs from the reference (similarity {pct:.0f}%): copy which syllables are strong and which are light.",
        "rhythm_env_area": "Stress pattern",
        "good": "Very close to the reference overall (score {overall:.0f}). The weakest part is {weakest} ({value:.0f}): keep practising it.",
        "excellent": "Very close to the reference overall (score {overall:.0f}): pronunciation, fluency and rhythm are all good. Keep it up.",
        "char_pron": "「{chars}」 sounded different from the reference: listen to how the reference says {this} and repeat it.",
        "char_pron_area": "Pronunciation: 「{chars}」",
        "char_tone": "The tone of 「{char}」 is off: it should be tone {expected} ({pinyin}), it sounded like tone {heard}.",
        "char_tone_area": "Tone: 「{char}」",
        "char_missing": "「{chars}」 could not be heard: say every character.",
        "char_missing_area": "Missing: 「{chars}」",
        "char_extra": "There is an extra syllable after 「{after}」 (your recording {start:.1f}-{end:.1f} s): say the sentence as written.",
        "char_extra_area": "Extra syllable (at {start:.1f} s)",
        "this_one": "it",
        "these": "them",
        "char_sep": "」「",
        "sep": " ",
        "pronunciation": "pronunciation",
        "fluency": "fluency",
        "rhythm": "rhythm",
    },
}


def _lang(language: str | None) -> str:
    return "en" if (language or "").lower().startswith("en") else "zh"


def make_suggestions(an: Analysis, language: str | None = "zh-TW", limit: int = 4) -> tuple[str, list[str]]:
    """Return (suggestions paragraph, improvement areas) for one analysed attempt."""
    t = _TEXT[_lang(language)]
    sc = an.scores
    items: list[tuple[float, str, str]] = []  # (priority, sentence, area)

    if sc.gate < 0.5:
        share = sc.segmental
        items.append((100.0, t["mismatch"].format(share=share), t["mismatch_area"]))
        return _join(items, t, limit)

    chars = an.facts.get("characters")
    # With the text, syllable k of the analysis is the k-th judged character.
    names = [c["char"] for c in chars.characters if c.get("status") != "not_judged"] if chars is not None else None
    if chars is not None:  # with the text, missing characters are named by _character_items
        items += _character_items(chars, t)
    else:
        items += _missing_items(an.deviations, t)
        items += _syllable_items(an.deviations, t)
    named_tones = chars is not None and any(c.get("tone_match") is False for c in chars.characters)
    if sc.tone is not None and sc.tone < 75 and not named_tones:
        items.append(_tone_item(an, sc.tone, names, t))
    items += _timing_items(an, t)
    items += _rhythm_items(an, names, t)
    if not items:
        items.append(_praise(sc, t))
    return _join(items, t, limit)


def _missing_items(devs: list[dict[str, Any]], t: dict[str, str]) -> list[tuple[float, str, str]]:
    """Without the text: the part of the reference the attempt lacks, from its first missing syllable."""
    missing = [d for d in devs if d["kind"] == "missing"]
    if not missing:
        return []
    first = min(missing, key=lambda d: d["ref_start"])
    n = sum(len(d["syllables"]) for d in missing)
    return [
        (
            90.0,
            t["missing"].format(ref_start=first["ref_start"], n=n, syllables=count_en(n, "syllable")),
            t["missing_area"].format(ref_start=first["ref_start"]),
        )
    ]


def _syllable_items(devs: list[dict[str, Any]], t: dict[str, str]) -> list[tuple[float, str, str]]:
    """Without the text: the two worst mispronounced syllables, by number and time."""
    items: list[tuple[float, str, str]] = []
    for d in sorted((d for d in devs if d["kind"] == "pronunciation"), key=lambda d: -d["severity"])[:2]:
        k = d["syllables"][0] + 1 if d["syllables"] else 0
        fields = {**d, "k": k}
        items.append((60.0 + 30.0 * d["severity"], t["pron"].format(**fields), t["pron_area"].format(**fields)))
    return items


def _tone_item(an: Analysis, tone: float, names: list[str] | None, t: dict[str, str]) -> tuple[float, str, str]:
    """The pitch contour as a whole: too flat, or shaped differently (naming where)."""
    pitch = an.facts["pitch"]
    ratio = pitch.range_ratio or 0.0
    if ratio < 0.5:
        pct = 100.0 * ratio
        return (80.0 - tone / 2, t["tone_flat"].format(pct=pct), t["tone_area_flat"].format(pct=pct))
    idx = [k for d in an.deviations if d["kind"] == "tone" for k in d["syllables"][:3]]
    corr = 100.0 * max(0.0, pitch.correlation or 0.0)
    if names is not None and idx:
        ks = t["list_sep"].join(_name(names, k) for k in idx)
        return (75.0 - tone / 2, t["tone_shape_chars"].format(corr=corr, ks=ks), t["tone_area_chars"].format(ks=ks))
    if not idx:
        return (75.0 - tone / 2, t["tone_shape_general"].format(corr=corr), t["tone_area_general"])
    ks = t["list_sep"].join(str(k + 1) for k in idx)
    return (75.0 - tone / 2, t["tone_shape"].format(corr=corr, ks=ks), t["tone_area"].format(ks=ks))


def _timing_items(an: Analysis, t: dict[str, str]) -> list[tuple[float, str, str]]:
    """Speaking rate off by more than 15 %, and each extra pause."""
    items: list[tuple[float, str, str]] = []
    timing = an.detailed["timing_analysis"]
    rate = an.facts["rate_ratio"]
    if rate > 1.15 or rate < 1 / 1.15:
        key = "fast" if rate > 1 else "slow"
        pct = abs(rate - 1.0) * 100.0 if rate > 1 else abs(1.0 / rate - 1.0) * 100.0
        fields = {"pct": pct, "att": timing["attempt_speech_time"], "ref": timing["reference_speech_time"]}
        items.append((40.0 + min(pct, 60.0), t[key].format(**fields), t[f"rate_area_{key}"].format(pct=pct)))
    for p in an.facts["extra_pauses"]:
        fields = {"start": p["start"], "dur": p["duration"]}
        items.append(
            (50.0 + 30.0 * min(1.0, p["extra"]), t["pause"].format(**fields), t["pause_area"].format(**fields))
        )
    return items


def _rhythm_items(an: Analysis, names: list[str] | None, t: dict[str, str]) -> list[tuple[float, str, str]]:
    """Syllables drawn out or cut short, and a loudness pattern unlike the reference's."""
    items: list[tuple[float, str, str]] = []
    for d in an.deviations:
        if d["kind"] in ("too_long", "too_short") and d["syllables"]:
            k = d["syllables"][0]
            lr = an.facts["rhythm"]["log_duration_ratio"]
            x = math.exp(float(lr[k])) if k < len(lr) else 1.0
            key = "long" if d["kind"] == "too_long" else "short"
            if names is not None:
                c = _name(names, k)
                items.append(
                    (35.0 + 20.0 * d["severity"], t[f"{key}_char"].format(c=c, x=x), t["rhythm_area_char"].format(c=c))
                )
            else:
                items.append(
                    (35.0 + 20.0 * d["severity"], t[key].format(k=k + 1, x=x), t["rhythm_area"].format(k=k + 1))
                )
    env = an.facts["rhythm"]["envelope_correlation"]
    if an.scores.rhythm_raw < 80 and env < 0.7:
        items.append((30.0, t["rhythm_env"].format(pct=100 * max(env, 0.0)), t["rhythm_env_area"]))
    return items


def _praise(sc: Scores, t: dict[str, str]) -> tuple[float, str, str]:
    """Nothing to fix: praise, naming the weakest part unless every part is excellent."""
    parts = {"pronunciation": sc.pronunciation, "fluency": sc.fluency, "rhythm": sc.rhythm}
    weakest = min(parts, key=lambda k: parts[k])
    if parts[weakest] >= EXCELLENT:
        # Nothing is weak: naming "the weakest part (100)" would be nonsense.
        return (0.0, t["excellent"].format(overall=sc.overall), "")
    return (0.0, t["good"].format(overall=sc.overall, weakest=t[weakest], value=parts[weakest]), "")


def _name(names: list[str], k: int) -> str:
    return f"「{names[k]}」" if 0 <= k < len(names) else f"#{k + 1}"


EXCELLENT = 90.0  # every score at or above this: praise, without a "weakest part"


def _character_items(chars: Any, t: dict[str, str]) -> list[tuple[float, str, str]]:
    """Suggestions naming the deviating characters of the sentence."""
    items: list[tuple[float, str, str]] = []
    rows = [c for c in chars.characters if c.get("status") not in (None, "not_judged")]
    missing = [c for c in rows if c["status"] == "missing"]
    if missing:
        names = t["char_sep"].join(c["char"] for c in missing[:4])
        items.append((88.0, t["char_missing"].format(chars=names), t["char_missing_area"].format(chars=names)))
    pron = sorted(
        (c for c in rows if "pronunciation" in c.get("issues", [])), key=lambda c: -(c.get("confidence") or 0)
    )
    if pron:
        names = t["char_sep"].join(c["char"] for c in pron[:3])
        this = t["this_one"] if len(pron[:3]) == 1 else t["these"]
        sev = max(c.get("confidence") or 0.5 for c in pron[:3])
        items.append(
            (65.0 + 25.0 * sev, t["char_pron"].format(chars=names, this=this), t["char_pron_area"].format(chars=names))
        )
    tones = sorted((c for c in rows if c.get("tone_match") is False), key=lambda c: -(c.get("confidence") or 0))
    for c in tones[:2]:
        fields = {"char": c["char"], "expected": c["expected_tone"], "pinyin": c["pinyin"], "heard": c["heard_tone"]}
        items.append(
            (
                60.0 + 20.0 * (c.get("confidence") or 0.5),
                t["char_tone"].format(**fields),
                t["char_tone_area"].format(**fields),
            )
        )
    by_index = {c["index"]: c["char"] for c in rows}
    for x in chars.extra[:1]:
        after = by_index.get(x.get("after_index"), "…")
        fields = {"after": after, "start": x["start"], "end": x["end"]}
        items.append((55.0, t["char_extra"].format(**fields), t["char_extra_area"].format(**fields)))
    return items


def _join(items: list[tuple[float, str, str]], t: dict[str, str], limit: int) -> tuple[str, list[str]]:
    items = sorted(items, key=lambda it: -it[0])[:limit]
    text = t["sep"].join(s for _, s, _ in items)
    areas = [a for _, _, a in items if a]
    return text, areas


def empty() -> tuple[str, list[str]]:
    """What to store when the caller asked for no suggestions."""
    return "", []


__all__ = ["make_suggestions", "empty"]
