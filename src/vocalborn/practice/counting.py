"""Attempts that count (issue #26): whether an analysed attempt counts, decided once, when its
result is stored (``tasks/worker/runner.py`` and the one-statement path in ``tasks/worker/fastrun.py``).

An attempt that is silent, too short or another sentence is kept (the learner and the
therapist see it, with the reason) but left out of trends, means, dose and flags. The decision
reads only the engine's stored ``detailed_analysis`` (documented in docs/PRACTICE.md):

* ``silent``: the attempt has less than ``MIN_SPEECH_SECONDS`` of speech
  (``timing_analysis.attempt_speech_time``);
* ``too_short``: the recording is shorter than ``TOO_SHORT_SECONDS`` and than half the
  reference recording (``timing_analysis.attempt_duration`` / ``reference_duration``), or its
  speech is less than ``TOO_SHORT_SPEECH_SHARE`` of the reference's;
* ``wrong_sentence``: the engine's sentence match (``alignment.sentence_match``, the gate that
  makes its suggestion say "this does not sound like the reference sentence") is below
  ``SENTENCE_MATCH_MIN``.

A result without these fields (another engine, an older result) counts.

When an attempt is not counted as ``silent`` or ``too_short``, the engine's suggestions (made
from its scores, which often read such an attempt as "another sentence") are replaced, where the
result is stored, by ``learner_report``'s: record the whole sentence, in both languages. The
engine's scores and its own texts are kept (``detailed_analysis["engine_localized"]``).
"""

from __future__ import annotations

from typing import Any

MIN_SPEECH_SECONDS = 0.3  # the engine's own minimum of speech (analysis/features.py)
TOO_SHORT_SECONDS = 1.0
TOO_SHORT_REFERENCE_SHARE = 0.5
TOO_SHORT_SPEECH_SHARE = 0.3
SENTENCE_MATCH_MIN = 0.5  # as analysis/suggest.py's "mismatch" suggestion

REASONS: dict[str, dict[str, str]] = {
    "silent": {
        "zh-TW": "錄音裡幾乎聽不到說話，這次不計入練習",
        "en": "Almost no speech was heard in the recording; this attempt does not count",
    },
    "too_short": {
        "zh-TW": "錄音太短，沒有把整句話說完，這次不計入練習",
        "en": "The recording is too short for the whole sentence; this attempt does not count",
    },
    "wrong_sentence": {
        "zh-TW": "說的內容和示範句子不同，這次不計入練習",
        "en": "The recording is not the practised sentence; this attempt does not count",
    },
}

# What the learner is told to do about an attempt that did not count because it was too short
# or silent: (suggestion, improvement area), per language.
ADVICE: dict[str, dict[str, tuple[str, str]]] = {
    "silent": {
        "zh-TW": (
            "錄音裡幾乎聽不到你說話。請靠近麥克風，按下錄音後把整句話說完，再停止錄音。",
            "沒有聽到說話：請錄下整句話",
        ),
        "en": (
            "Almost no speech was heard in the recording. Move closer to the microphone, start recording, "
            "say the whole sentence, then stop.",
            "No speech heard: record the whole sentence",
        ),
    },
    "too_short": {
        "zh-TW": (
            "錄音太短，沒有錄到整句話。請按下錄音後把整句話說完，再停止錄音。",
            "錄音太短：請錄下整句話",
        ),
        "en": (
            "The recording is too short to hold the whole sentence. Start recording, say the whole sentence, "
            "then stop.",
            "Recording too short: record the whole sentence",
        ),
    },
}


def learner_report(detail: Any, reason: str | None, suggestions: str, areas: list[str]) -> tuple[Any, str, list[str]]:
    """``(detailed_analysis, suggestions, improvement_areas)`` as stored for the learner.

    Unchanged unless the attempt is not counted as ``silent`` or ``too_short``: then the
    suggestions and areas say to record the whole sentence, in the language the engine wrote
    (``suggestions``) and in both of ``detailed_analysis["localized"]``. Empty suggestions (the
    task asked for none) stay empty. Scores are never touched."""
    advice = ADVICE.get(reason or "")
    if advice is None:
        return detail, suggestions, areas
    english = False
    if isinstance(detail, dict):
        localized = detail.get("localized")
        en = localized.get("en") if isinstance(localized, dict) else None
        english = isinstance(en, dict) and bool(suggestions) and en.get("suggestions") == suggestions
        detail = dict(detail)
        if isinstance(localized, dict):
            detail["engine_localized"] = localized
        detail["localized"] = {
            lang: {"suggestions": text, "improvement_areas": [area]} for lang, (text, area) in advice.items()
        }
    if not suggestions and not areas:
        return detail, suggestions, areas
    if not english and suggestions and suggestions.isascii():  # no localized texts: the language as written
        english = True
    text, area = advice["en" if english else "zh-TW"]
    return detail, text, [area]


def _number(section: Any, key: str) -> float | None:
    if not isinstance(section, dict):
        return None
    value = section.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def decide(detailed_analysis: Any) -> tuple[bool, str | None]:
    """``(counted, not_counted_reason)`` for an analysed attempt's stored detail."""
    if not isinstance(detailed_analysis, dict):
        return True, None
    timing = detailed_analysis.get("timing_analysis")
    speech = _number(timing, "attempt_speech_time")
    if speech is not None and speech < MIN_SPEECH_SECONDS:
        return False, "silent"
    duration = _number(timing, "attempt_duration")
    reference = _number(timing, "reference_duration")
    if (
        duration is not None
        and duration < TOO_SHORT_SECONDS
        and (reference is None or duration < TOO_SHORT_REFERENCE_SHARE * reference)
    ):
        return False, "too_short"
    reference_speech = _number(timing, "reference_speech_time")
    if speech is not None and reference_speech and speech < TOO_SHORT_SPEECH_SHARE * reference_speech:
        return False, "too_short"
    match = _number(detailed_analysis.get("alignment"), "sentence_match")
    if match is not None and match < SENTENCE_MATCH_MIN:
        return False, "wrong_sentence"
    return True, None


def reason_text(reason: str | None, lang: str | None) -> str | None:
    """The reason in the reader's language (English, as the API, unless zh-TW is asked for)."""
    if reason is None:
        return None
    texts = REASONS.get(reason)
    if texts is None:
        return reason
    return texts["zh-TW"] if (lang or "").lower().startswith("zh") else texts["en"]
