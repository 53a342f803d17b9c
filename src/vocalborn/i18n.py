"""The caller's language and a small catalogue of API error messages in zh-TW.

The API speaks English by default. A caller who asks for zh-TW (``?lang=zh-TW`` or an
``Accept-Language`` that prefers Chinese) gets the messages below in Traditional Chinese; any
message not in the catalogue stays English, so new errors elsewhere keep working unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Literal

from starlette.requests import HTTPConnection

Language = Literal["en", "zh-TW"]
LANGUAGES: tuple[Language, ...] = ("en", "zh-TW")


def parse_language(value: str | None) -> Language | None:
    """``en``, ``en-US``, ``zh``, ``zh-TW``, ``zh-Hant`` ...; None for anything else."""
    if not value:
        return None
    tag = value.strip().lower()
    if tag.startswith("zh"):
        return "zh-TW"
    if tag.startswith("en"):
        return "en"
    return None


def accept_language(header: str | None) -> Language | None:
    """The first supported language of an Accept-Language header, by its q weights."""
    if not header:
        return None
    ranked: list[tuple[float, int, Language]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        m = re.search(r"q=([0-9.]+)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0
        lang = parse_language(tag)
        if lang and q > 0:
            ranked.append((-q, i, lang))
    return sorted(ranked)[0][2] if ranked else None


def explicit_language(conn: HTTPConnection) -> Language | None:
    """The language the caller asked for (``lang`` parameter first, then Accept-Language)."""
    return parse_language(conn.query_params.get("lang")) or accept_language(conn.headers.get("accept-language"))


def request_language(conn: HTTPConnection) -> Language:
    return explicit_language(conn) or "en"


def scope_language(scope: Any) -> Language | None:
    """``explicit_language`` from a raw ASGI scope, for the hot routes (``tasks/submission/hotroute.py``):
    no Request object, and nothing parsed unless a language is there to read."""
    query = scope.get("query_string") or b""
    if b"lang=" in query:
        lang = _query_language(bytes(query))
        if lang is not None:
            return lang
    for key, value in scope.get("headers") or ():
        if key == b"accept-language":
            return _header_language(bytes(value))
    return None


@lru_cache(maxsize=512)
def _query_language(query: bytes) -> Language | None:
    from urllib.parse import parse_qs

    values = parse_qs(query.decode("latin-1")).get("lang")
    return parse_language(values[0]) if values else None


@lru_cache(maxsize=512)
def _header_language(value: bytes) -> Language | None:
    """A client sends the same Accept-Language with every poll: parsed once."""
    return accept_language(value.decode("latin-1"))


# The worker stores a step's zh-TW label (analysis.types.STEPS); a caller who asked for a language
# gets the label in it (issue #26). Precomputed: the status route is the hottest read.
def _step_tables() -> dict[Language, dict[str, str]]:
    from vocalborn.analysis.types import STEPS  # reason: upward import, read once (CONTRIBUTING, 1)

    en = {zh: english for _, zh, english in STEPS} | {english: english for _, _, english in STEPS}
    zh = {english: zh for _, zh, english in STEPS} | {zh: zh for _, zh, _ in STEPS}
    return {"en": en, "zh-TW": zh}


_STEP_LABELS = _step_tables()


def count_en(n: int, word: str, plural: str | None = None) -> str:
    """``1 attempt``, ``2 attempts``: an English count with its noun in the right number."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def step_label(label: str | None, lang: Language | None) -> str | None:
    """A step label in ``lang`` (as stored without one, or for a label not a step's)."""
    if label is None or lang is None:
        return label
    return _STEP_LABELS[lang].get(label, label)


# English message -> zh-TW. Exact messages first, then patterns for messages with a value in them.
_EXACT: dict[str, str] = {
    # the bulk retry of failed tasks (outage/bulk_retry.py)
    "failed_from and failed_to need a time zone (e.g. 2026-12-07T10:00:00Z)": (
        "failed_from 與 failed_to 需要時區（例如 2026-12-07T10:00:00Z）"
    ),
    "failed_to must be later than failed_from": "failed_to 必須晚於 failed_from",
    "reason is blank: leave it out to take every failure of the window": "reason 是空白的：要涵蓋時段內所有失敗，請省略它",
    "wrong email or password": "電子郵件或密碼錯誤",
    "an account with this email already exists": "這個電子郵件已經註冊過了",
    "not authenticated: send 'Authorization: Bearer <token>'": "尚未登入：請帶上 'Authorization: Bearer <token>'",
    "token expired: refresh it or log in again": "登入已過期，請重新登入",
    "this session has ended: log in again": "這次登入已結束，請重新登入",
    "this account needs its authenticator code: send totp_code (or a recovery code)": "這個帳號需要驗證器的驗證碼（或一組備用碼）",
    "wrong or already used authenticator code": "驗證碼錯誤或已經用過",
    "too many wrong authenticator codes: the second factor is locked for a while": "驗證碼錯誤太多次，暫時鎖定",
    "current_password: the current password is wrong": "目前的密碼不正確",
    "the password cannot be only spaces": "密碼不能只有空白",
    "invalid token": "登入憑證無效",
    "notification not found": "找不到這則通知",
    "mail not found": "找不到這封郵件",
    "dead letter not found": "找不到這筆無法處理的訊息",
    "this dead letter's consumer is not known to this server; it cannot be replayed here": "這個伺服器不認得這筆訊息的處理程序，無法在這裡重新處理",
    "this link is not valid: it was used already, it expired, or a newer one was sent": "這個連結無效：已經用過、已過期，或已寄出較新的連結",
    "too many password reset requests from this address": "這個位址要求重設密碼太多次，請稍後再試",
    "too many password reset requests for this email": "這個電子郵件要求重設密碼太多次，請稍後再試",
    "quiet hours are given as HH:MM (00:00 to 23:59)": "勿擾時段請用 HH:MM（00:00 至 23:59）",
    "quiet hours need an end different from their start": "勿擾時段的結束時間不能與開始時間相同",
    "the token's user no longer exists": "這個帳號已不存在",
    "task not found": "找不到這個分析",
    "practice session not found": "找不到這個練習",
    "practice record not found": "找不到這筆錄音",
    # issue #26: the report, drills, editing a sentence
    "the report is for the learner and their linked therapist": "報告只提供給學員本人與其連結的治療師",
    "from: the first day is after the last day (to)": "from：開始日期晚於結束日期（to）",
    "only the therapist who made the sentence can change or delete it": "只有建立這個句子的治療師可以修改或刪除它",
    "sentence not found (it was deleted)": "找不到這個句子（已刪除）",
    "give text or shared (or both)": "請提供 text 或 shared（或兩者）",
    "not one of this learner's suggested drills": "這不是這位學員目前建議的練習項目",
    "record the reference first: the learner's attempts are compared with your voice": "請先錄製參考音檔：學員的練習會與您的聲音比對",
    "sentence not found": "找不到這個句子",
    "learner not found": "找不到這位學習者",
    "practice sessions belong to learners": "只有學習者可以建立練習",
    "only the learner who asked for this analysis can cancel it": "只有送出分析的學習者可以取消",
    "no result: the analysis is waiting in the queue": "還沒有結果：分析正在排隊",
    "no result: the analysis will be tried again shortly": "還沒有結果：分析稍後會重試",
    "no result: the analysis is still running": "還沒有結果：分析仍在進行",
    "no result: the analysis failed": "沒有結果：分析失敗",
    "no result: the analysis was cancelled": "沒有結果：分析已取消",
    "the database is unavailable; try again shortly": "資料庫暫時無法使用，請稍後再試",
    "internal error; it has been logged": "伺服器內部錯誤，已記錄",
    "invitation code not found": "找不到這個邀請碼",
    "this invitation has expired; ask your therapist for a new code": "這個邀請碼已過期，請向治療師索取新的邀請碼",
    "this invitation has already been used; ask your therapist for a new code": "這個邀請碼已經用過了，請向治療師索取新的邀請碼",
    "you are already linked to another therapist; unlink first": "你已經連結了另一位治療師，請先解除連結",
    "only learners accept invitations": "只有學習者可以接受邀請",
    "this learner is not linked to you": "這位學習者沒有與你連結",
    "no therapist is linked to this learner": "這位學習者沒有連結治療師",
    "only the learner's linked therapist may review this analysis": "只有這位學習者連結的治療師可以評閱這個分析",
    "a review needs at least one score, a character mark or a comment": "評閱至少需要一個分數、一個字的標記或一段評語",
    "no review of this analysis yet": "這個分析還沒有評閱",
    "the cursor is not valid; start again without it": "分頁游標無效，請不帶游標重新查詢",
    "the body is not valid JSON": "內容不是有效的 JSON",
    "webhook endpoint not found": "找不到這個 webhook 端點",
    "webhook delivery not found": "找不到這筆 webhook 傳送紀錄",
    "url: only http and https URLs can be webhook targets": "url：webhook 只能傳送到 http 或 https 網址",
    "url: not a valid URL": "url：不是有效的網址",
    "url: the URL has no host": "url：網址沒有主機名稱",
    "url: credentials in the URL are not accepted; the signature authenticates": "url：網址裡不能帶帳號密碼，傳送內容以簽章驗證",
}
_EXACT.update(
    {
        "the date is in the past": "日期已經過了",
        "more practice days than target_attempts_per_week attempts": "練習天數不能多於每週目標次數（target_attempts_per_week）",
    }
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^the upload is (\d+) bytes; the limit is (\d+) bytes per file$"),
        "上傳的檔案有 {0} 位元組，每個檔案的上限是 {1} 位元組",
    ),
    (
        re.compile(r"^the upload is larger than the limit of (\d+) bytes per file$"),
        "上傳的檔案超過每個檔案 {0} 位元組的上限",
    ),
    (re.compile(r"^the request body is larger than the limit of (\d+) bytes$"), "請求內容超過 {0} 位元組的上限"),
    (
        re.compile(r"^the password needs at least (\d+) characters \(it has (\d+)\)$"),
        "密碼至少需要 {0} 個字元（目前 {1} 個）",
    ),
    (re.compile(r"^the password is too easy to guess.*$"), "密碼太容易被猜到：請用幾個不常見的字詞組成較長的密碼"),
    (re.compile(r"^this needs the role (.+)$"), "這個操作需要身分：{0}"),
    (re.compile(r"^'(.+)' is not an IANA time zone .*$"), "「{0}」不是 IANA 時區（例如 Asia/Taipei）"),
    (re.compile(r"^unknown notification kinds (.+); the kinds are (.+)$"), "未知的通知種類 {0}；可用的有 {1}"),
    (re.compile(r"^no result: the analysis failed: (.+)$"), "沒有結果：分析失敗：{0}"),
    (re.compile(r"^(\w+): the file is empty$"), "{0}：檔案是空的"),
    (re.compile(r"^(\w+): the recording is silent: .+$"), "{0}：錄音裡聽不到聲音，請靠近麥克風再錄一次"),
    (
        re.compile(r"^(\w+): the recording is ([0-9.]+) s long; at least ([0-9.]+) s is needed$"),
        "{0}：錄音只有 {1} 秒，至少需要 {2} 秒",
    ),
    (
        re.compile(r"^(\w+): the recording is ([0-9.]+) s long; at most ([0-9.]+) s is accepted$"),
        "{0}：錄音長 {1} 秒，最多接受 {2} 秒",
    ),
    (re.compile(r"^(\w+): (\w+) audio is not accepted; send one of: (.+)$"), "{0}：不接受 {1} 格式，請改用：{2}"),
    (re.compile(r"^(\w+): the file is larger than the limit of (\d+) bytes$"), "{0}：檔案超過 {1} 位元組的上限"),
    (re.compile(r"^url: the host (\S+) does not resolve$"), "url：找不到主機 {0}"),
    (
        re.compile(r"^url: (\S+) resolves to (\S+), a private, loopback or link-local address;.*$"),
        "url：{0} 指向 {1}，這是私有、本機或鏈路本地位址；若要使用，請加入 WEBHOOK_ALLOWED_HOSTS",
    ),
    (re.compile(r"^event_types: unknown event types: (.+)$"), "event_types：不認得的事件類型：{0}"),
]


# The engine's and the upload checks' messages carry both languages: "中文 (English.)". The caller
# gets its own half (issue #26: English mode showed "audio: 這個檔案不是可以辨識的音訊檔 (…)").
_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_BILINGUAL = re.compile(rf"([{_CJK}][^()]*?) \(([\x20-\x27\x2a-\x7e]+)\)")


def one_language(message: str, lang: Language) -> str:
    """Each "中文 (English)" part of ``message`` in ``lang`` only."""
    return _BILINGUAL.sub(lambda m: m.group(2) if lang == "en" else m.group(1).strip(), message)


# pydantic puts these before a validator's own message ("Value error, the date is in the past")
PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
_FIELDS = re.compile(r"^((?:[\w.\[\]-]+: )+)(.*)$", re.S)  # "password: ", "items.0.text: "


def without_pydantic_prefix(message: str) -> str:
    """``message`` without pydantic's "Value error, " (wherever a field path put it)."""
    for prefix in PYDANTIC_PREFIXES:
        where, sep, rest = message.partition(prefix)
        if sep:
            message = where + rest
    return message


def _lower_after_fields(message: str) -> str:
    """ "audio: The file is not…" -> "audio: the file is not…" (a sentence inside a message)."""
    m = _FIELDS.match(message)
    rest = m.group(2) if m else ""
    if m and len(rest) > 1 and rest[0].isupper() and rest[1].islower():
        return m.group(1) + rest[0].lower() + rest[1:]
    return message


def translate(message: str, lang: Language) -> str:
    if not message:
        return message
    message = _lower_after_fields(without_pydantic_prefix(one_language(message, lang)))
    if lang == "en":
        return message
    if message in _EXACT:
        return _EXACT[message]
    m = _FIELDS.match(message)  # a field's name, then its message
    candidates = [("", message)] + ([(m.group(1), m.group(2))] if m else [])
    for where, rest in candidates[1:]:
        if rest in _EXACT:
            return where + _EXACT[rest]
    for where, rest in candidates:
        for pattern, template in _PATTERNS:
            found = pattern.match(rest)
            if found:
                return where + template.format(*found.groups())
    return message


def translate_detail(detail: Any, lang: Language) -> Any:
    return translate(detail, lang) if isinstance(detail, str) else detail


def localized_report(
    detailed_analysis: dict[str, Any] | None, lang: Language | None, suggestions: str | None, areas: list[str] | None
) -> tuple[str | None, list[str] | None]:
    """Suggestions and improvement areas in ``lang`` when the engine stored that language
    (``detailed_analysis["localized"][lang]``); otherwise the stored fields."""
    if lang is None or not isinstance(detailed_analysis, dict):
        return suggestions, areas
    localized = detailed_analysis.get("localized")
    entry = localized.get(lang) if isinstance(localized, dict) else None
    if not isinstance(entry, dict):
        return suggestions, areas
    s = entry.get("suggestions")
    a = entry.get("improvement_areas")
    return (
        s if isinstance(s, str) else suggestions,
        [str(x) for x in a] if isinstance(a, list) else areas,
    )
