"""The clinical report's words in both languages (zh-TW and English)."""

from __future__ import annotations

from vocalborn.i18n import Language

TEXTS: dict[str, tuple[str, str]] = {  # key: (zh-TW, en)
    "title": ("練習報告", "Practice report"),
    "learner": ("學員", "Learner"),
    "range": ("期間", "Period"),
    "summary": (
        "計入的練習 {counted} 次（另有 {not_counted} 次不計入），共 {minutes} 分鐘，練習 {days} 天；治療師評閱 {reviews} 則。",
        "Attempts that count: {counted} (not counted: {not_counted}); {minutes} minutes on {days_en}; {reviews_en}.",
    ),
    "counting_note": (
        "只計入有效的練習：太短、無聲或唸了別的句子的練習會保留，但不列入次數、分鐘、劑量與分數趨勢。",
        "Only attempts that count are counted: a too short, silent or other sentence's attempt is kept but left "
        "out of the counts, minutes, dose and score trends.",
    ),
    "weeks_heading": ("每週練習量與劑量", "Practice and dose per week"),
    "week": ("週（週一）", "Week (Monday)"),
    "attempts": ("練習次數", "Attempts"),
    "not_counted": ("不計入", "Not counted"),
    "minutes": ("分鐘", "Minutes"),
    "days": ("天數", "Days"),
    "dose": ("劑量達成", "Dose met"),
    "no_targets": ("尚未設定每週目標，因此沒有劑量。", "No weekly targets are set, so there is no dose."),
    "scores_heading": ("分數趨勢（依日期）", "Score trends (by date)"),
    "overall_score": ("總分", "Overall"),
    "pronunciation_accuracy": ("發音準確度", "Pronunciation"),
    "fluency_score": ("流暢度", "Fluency"),
    "rhythm_score": ("節奏", "Rhythm"),
    "no_attempts": ("這段期間沒有計入的練習。", "No attempts that count in this period."),
    "errors_heading": ("各類錯誤比例（每週，佔評判字數）", "Errors per week (share of judged characters)"),
    "tone": ("聲調", "Tone"),
    "mispronunciation": ("發音", "Mispronounced"),
    "omission": ("漏字", "Omitted"),
    "no_characters": ("沒有逐字的評判資料。", "No per-character verdicts."),
    "characters_heading": ("需要練習的字", "Characters that need work"),
    "character": ("字", "Char."),
    "pinyin": ("拼音", "Pinyin"),
    "judged": ("評判次數", "Judged"),
    "errors": ("錯誤", "Errors"),
    "first_week": ("第一週", "First week"),
    "last_week": ("最後一週", "Last week"),
    "characters_note": (
        "「第一週」「最後一週」：該字在有練習的第一週與最後一週的錯誤次數／評判次數。",
        "First / last week: the character's errors / times judged in the first and last week it was practised.",
    ),
    "no_character_errors": ("這段期間沒有標出錯誤的字。", "No character was marked in this period."),
    "tones_heading": ("聲調混淆矩陣（應為 → 聽到）", "Tone confusion matrix (expected → heard)"),
    "expected_heard": ("應為 ＼ 聽到", "Expected \\ heard"),
    "tones_note": (
        "列：字的應有聲調（5 為輕聲）；欄：引擎聽到的聲調，「?」為引擎無法確定。對角線為正確。漏字不列入。",
        "Rows: the tone the character should have (5: neutral); columns: the tone the engine heard, '?' when it "
        "was not sure. The diagonal is right. Omitted characters are not counted.",
    ),
    "sentences_heading": ("練習的句子", "Sentences practised"),
    "first_score": ("第一次總分", "First overall"),
    "last_score": ("最近三次平均", "Last 3 mean"),
    "reviews_heading": ("治療師評閱", "Therapist reviews"),
    "no_reviews": ("這段期間沒有評閱。", "No reviews in this period."),
    "date": ("日期", "Date"),
    "sentence": ("句子", "Sentence"),
    "therapist": ("治療師", "Therapist"),
    "therapist_score": ("治療師評分", "Therapist"),
    "engine_score": ("系統評分", "Engine"),
    "marked": ("標記的字", "Marked"),
    "comment": ("評語", "Comment"),
    "page": ("第 {n} 頁", "Page {n}"),
}


def text(key: str, lang: Language) -> str:
    zh, en = TEXTS[key]
    return en if lang == "en" else zh
