"""The pure rules behind progress and the dashboard flag, and the language choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vocalborn.i18n import accept_language, localized_report, translate
from vocalborn.learning.dashboard import flag_reasons
from vocalborn.learning.progress import _character_progress, character_marks, trend

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_character_marks_read_the_engines_list_defensively() -> None:
    assert character_marks({}) is None
    assert character_marks({"characters": "nope"}) is None
    detailed = {
        "characters": [
            {"char": "今", "index": 0, "deviating": True},
            {"char": "天", "index": 1, "deviates": False, "confidence": 0.9},
            {"char": "天", "index": 2, "ok": False},
            {"char": "氣", "index": 3, "confidence": 0.2},  # no flag at all: skipped, not guessed
            "garbage",
            {"char": "很", "index": 4, "status": "ok"},
            {"char": "好", "index": 5, "status": "tone"},
        ]
    }
    assert character_marks(detailed) == [
        (0, "今", True),
        (1, "天", False),
        (2, "天", True),
        (4, "很", False),
        (5, "好", True),
    ]


def test_character_marks_follow_error_type_and_never_list_punctuation() -> None:
    from tests import verdicts

    # issue #22: error_type decides; null (punctuation, not judged) is never listed
    marks = character_marks({"characters": verdicts.characters()})
    assert marks is not None
    assert [c for _, c, _ in marks] == list("今天天氣很好我們去公園散步")
    assert [c for _, c, d in marks if d] == ["氣", "公", "園"]  # tone, mispronunciation, omission
    # the status is not read when error_type is there: a "none" with a deviating status stays none
    assert character_marks(
        {"characters": [{"char": "氣", "index": 0, "status": "deviating", "error_type": "none"}]}
    ) == [(0, "氣", False)]
    # older results: status as before, but "not_judged" and punctuation are never deviating
    old = {
        "characters": [
            {"char": "我", "index": 0, "status": "matched", "issues": []},
            {"char": "，", "index": 1, "status": "not_judged"},
            {"char": "們", "index": 2, "status": "missing", "issues": ["missing"]},
            {"char": "!", "index": 3, "status": "deviating"},  # a punctuation mark judged by mistake
            {"char": "好", "index": 4, "status": "deviating", "issues": ["tone"]},
            {"char": "。", "index": 5, "error_type": None, "status": "not_judged"},
            {"char": "嗎", "index": 6, "error_type": "unknown-kind"},  # not a verdict we know: skipped
        ]
    }
    assert character_marks(old) == [(0, "我", False), (2, "們", True), (4, "好", True)]


def test_a_character_improved_when_it_deviated_first_and_not_last() -> None:
    attempts = [
        [(0, "今", True), (1, "天", True), (2, "好", False)],
        [(0, "今", True), (1, "天", False), (2, "好", False)],
        [(0, "今", True), (1, "天", False), (2, "好", True)],
    ]
    by_char = {c["char"]: c for c in _character_progress(attempts)}
    assert by_char["天"]["improved"] and not by_char["天"]["last_deviating"]
    assert not by_char["今"]["improved"] and by_char["今"]["deviating_count"] == 3
    assert not by_char["好"]["improved"] and by_char["好"]["last_deviating"]


def test_trend_compares_the_first_with_the_mean_of_the_last_n_and_fits_a_slope() -> None:
    t = trend([50, 60, 70, 80], 3)
    assert t == {"first": 50, "last_n_mean": 70, "change": 20, "slope_per_attempt": 10}
    assert trend([None, 40], 3)["slope_per_attempt"] is None
    assert trend([], 3)["first"] is None


def test_the_flag_rule() -> None:
    assert flag_reasons(None, [], NOW) == ["never_practised"]
    assert flag_reasons(NOW - timedelta(days=8), [80] * 5, NOW) == ["inactive"]
    assert flag_reasons(NOW - timedelta(days=6), [80] * 5, NOW) == []
    # newest first: the last three fell by 10+ points against the older ones
    assert flag_reasons(NOW, [60, 62, 61, 75, 74, 73], NOW) == ["declining"]
    assert flag_reasons(NOW, [68, 70, 72, 75, 74, 73], NOW) == []
    assert flag_reasons(NOW, [40, 40, 90, 90], NOW) == []  # too few attempts to call it a trend


def test_language_choice_and_catalogue() -> None:
    assert accept_language("en-US,en;q=0.9,zh-TW;q=0.8") == "en"
    assert accept_language("fr, zh-Hant;q=0.5") == "zh-TW"
    assert accept_language("fr") is None
    assert translate("task not found", "zh-TW") == "找不到這個分析"
    assert translate("audio: the file is empty", "zh-TW") == "audio：檔案是空的"
    assert translate("some new message", "zh-TW") == "some new message"  # unknown: stays English
    assert translate("task not found", "en") == "task not found"
    assert translate("Value error, a review needs at least one score, a character mark or a comment", "zh-TW") == (
        "評閱至少需要一個分數、一個字的標記或一段評語"
    )


def test_localized_suggestions_fall_back_to_the_stored_fields() -> None:
    detailed = {"localized": {"en": {"suggestions": "Slow down.", "improvement_areas": ["rhythm"]}}}
    assert localized_report(detailed, "en", "放慢", ["節奏"]) == ("Slow down.", ["rhythm"])
    assert localized_report(detailed, "zh-TW", "放慢", ["節奏"]) == ("放慢", ["節奏"])
    assert localized_report({}, "en", "放慢", ["節奏"]) == ("放慢", ["節奏"])
    assert localized_report(detailed, None, "放慢", None) == ("放慢", None)


def test_validator_messages_lose_pydantics_prefix_in_both_languages() -> None:
    from vocalborn.i18n import without_pydantic_prefix

    assert without_pydantic_prefix("password: Value error, the password is too easy to guess") == (
        "password: the password is too easy to guess"
    )
    assert translate("Value error, due_on: the date is in the past", "en") == "due_on: the date is in the past"
    assert translate("Value error, due_on: the date is in the past", "zh-TW") == "due_on: 日期已經過了"
    assert translate("password: Value error, the password is too easy to guess: x", "zh-TW") == (
        "password: 密碼太容易被猜到：請用幾個不常見的字詞組成較長的密碼"
    )
    # a bilingual engine message after a field: its English half starts in lower case
    bilingual = "audio: 這個檔案不是可以辨識的音訊檔 (The file is not a recognisable audio recording.)"
    assert translate(bilingual, "en") == "audio: the file is not a recognisable audio recording."
    assert translate(bilingual, "zh-TW") == "audio: 這個檔案不是可以辨識的音訊檔"
    assert translate("the upload is 9000000 bytes; the limit is 100 bytes per file", "zh-TW") == (
        "上傳的檔案有 9000000 位元組，每個檔案的上限是 100 位元組"
    )
