"""The words of an in-app notification (zh-TW and en), from what its row's ``subject`` holds.

An ``analysis.succeeded`` subject carries, besides the ids, the learner's display name, the
sentence's text and whether the attempt counts (written by the consumer when the event arrives,
``notify/consumer.py`` ``analysis_details``), so the therapist reads who practised what, and
sees at once an attempt that did not count. Rows written before that carry only the ids: they
get the general wording."""

from __future__ import annotations

from typing import Any

SENTENCE_CHARS = 40  # a longer sentence is cut (…) in the in-app line; the mail has it whole

# short reasons for the in-app line (the full ones: practice/counting.REASONS)
NOT_COUNTED: dict[str, dict[str, str]] = {
    "silent": {"zh-TW": "幾乎沒有聽到說話", "en": "almost no speech"},
    "too_short": {"zh-TW": "錄音太短", "en": "recording too short"},
    "wrong_sentence": {"zh-TW": "不是練習的句子", "en": "not the practised sentence"},
}

_TEXTS: dict[str, dict[str, str]] = {
    "analysis.succeeded": {
        "zh-TW": "{learner} 完成了「{sentence}」的分析",
        "en": "{learner} finished an analysis of “{sentence}”",
    },
    "analysis.succeeded.general": {
        "zh-TW": "你的一位學員完成了一次分析",
        "en": "A learner of yours finished an analysis",
    },
    "not_counted": {"zh-TW": "（不計入練習：{reason}）", "en": " (NOT counted: {reason})"},
    "review.saved": {"zh-TW": "治療師回覆了你的練習", "en": "Your therapist reviewed your practice"},
}


def _lang(language: str | None) -> str:
    return "en" if (language or "").lower().startswith("en") else "zh-TW"


def short(sentence: str, limit: int = SENTENCE_CHARS) -> str:
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def not_counted(subject: dict[str, Any]) -> str | None:
    """The reason the attempt did not count, or None when it counts (or is not known)."""
    if str(subject.get("counted", "")).lower() != "false":
        return None
    return str(subject.get("not_counted_reason") or "") or "unknown"


def text(kind: str, subject: dict[str, Any], language: str | None) -> str | None:
    """The notification's line in ``language``; None for a kind without one."""
    lang = _lang(language)
    if kind == "analysis.succeeded":
        learner, sentence = subject.get("learner_name"), subject.get("sentence_text")
        if not learner or not sentence:
            return _TEXTS["analysis.succeeded.general"][lang]
        line = _TEXTS[kind][lang].format(learner=learner, sentence=short(str(sentence)))
        reason = not_counted(subject)
        if reason is not None:
            label = NOT_COUNTED.get(reason, {}).get(lang, reason)
            line += _TEXTS["not_counted"][lang].format(reason=label)
        return line
    texts = _TEXTS.get(kind)
    return texts[lang] if texts else None


def both(kind: str, subject: dict[str, Any]) -> dict[str, str]:
    """The line in both languages (what the live push carries: the page picks its own)."""
    out = {lang: text(kind, subject, lang) for lang in ("zh-TW", "en")}
    return {k: v for k, v in out.items() if v is not None}
