"""Mail through SMTP (``SMTP_*`` settings), and the texts of each kind of mail in both languages.

Every mail carries a ``Message-ID`` derived from the event and the recipient
(:func:`message_id`): a mail sent again after a crash (notify/sender.py) is the same message,
which the local mail outbox (notify/mailbox.py) keeps once and mail stores collapse."""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vocalborn.config import Settings

_NAMESPACE = uuid.UUID("5f2b8f3e-7c1a-4d7e-9a57-6f1f0c1d2b3a")


def message_id(event_id: uuid.UUID, user_id: uuid.UUID, kind: str = "") -> str:
    return f"<{uuid.uuid5(_NAMESPACE, f'{event_id}/{user_id}/{kind}')}@vocalborn>"


class MailNotConfigured(Exception):
    pass


def build(settings: Settings, to: str, subject: str, body: str, msg_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body)
    return msg


def send(settings: Settings, msg: EmailMessage) -> None:
    """One SMTP session: connect, STARTTLS if asked (the certificate is checked), log in if a
    user is set, send. Raises on any refusal (the caller retries)."""
    if not settings.smtp_host:
        raise MailNotConfigured("SMTP_HOST is not set")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        smtp.ehlo()
        if settings.smtp_starttls:
            context = ssl.create_default_context(cafile=settings.smtp_ca_file or None)
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(msg)


# --------------------------------------------------------------------------------------------
# the texts (zh-TW and en)
# --------------------------------------------------------------------------------------------
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    # The learner is addressed with 你, as the pages do (not 您).
    "analysis.succeeded": {
        "zh-TW": (
            "{learner} 完成了一次分析：「{sentence}」",
            "你連結的學員 {learner} 完成了句子「{sentence}」的一次發音分析。{counted_line}\n\n查看結果：{url}\n",
        ),
        "en": (
            "{learner} finished an analysis: “{sentence}”",
            "{learner}, a learner linked to you, has a new analysis of the sentence “{sentence}”.{counted_line}"
            "\n\nSee it: {url}\n",
        ),
    },
    # an analysis whose sentence is not known (a row written before the subject carried it)
    "analysis.succeeded.general": {
        "zh-TW": (
            "你的學員完成了一次分析",
            "你連結的學員 {learner} 完成了一次發音分析。{counted_line}\n\n查看結果：{url}\n",
        ),
        "en": (
            "A learner's analysis is ready",
            "{learner}, a learner linked to you, has a new analysis.{counted_line}\n\nSee it: {url}\n",
        ),
    },
    "review.saved": {
        "zh-TW": ("治療師回覆了你的練習", "{therapist} 對你的一次練習留下了回饋。\n\n查看：{url}\n"),
        "en": (
            "Your therapist reviewed your practice",
            "{therapist} left feedback on one of your analyses.\n\nSee it: {url}\n",
        ),
    },
    "account.password_reset_requested": {
        "zh-TW": (
            "重設你的 VocalBorn 密碼",
            "有人（希望是你）要求重設此帳號的密碼。\n\n請在 {minutes} 分鐘內開啟此連結設定新密碼（只能使用一次）：\n{url}\n\n若不是你，請忽略此信，密碼不會改變。\n",
        ),
        "en": (
            "Reset your VocalBorn password",
            "Someone (hopefully you) asked to reset this account's password.\n\nOpen this link within {minutes} minutes to choose a new one (it works once):\n{url}\n\nIf it was not you, ignore this mail; the password stays as it is.\n",
        ),
    },
    "account.verification_requested": {
        "zh-TW": ("請確認你的電子郵件地址", "歡迎使用 VocalBorn。請開啟此連結確認這是你的地址：\n{url}\n"),
        "en": (
            "Confirm your email address",
            "Welcome to VocalBorn. Open this link to confirm this address is yours:\n{url}\n",
        ),
    },
    "practice.reminder_due": {
        "zh-TW": (
            "該練習囉：本週目標還沒完成",
            "{name} 您好，\n\n您本週的練習目標還沒完成。今天花幾分鐘練習吧！\n\n開始練習：{url}\n\n（可在通知設定中更改或關閉提醒時間。）\n",
        ),
        "en": (
            "Time to practise: this week's target is not met yet",
            "Hello {name},\n\nyou have not met this week's practice target yet. A few minutes today will help!\n\nPractise now: {url}\n\n(Change or turn off the reminder hour in your notification settings.)\n",
        ),
    },
    "digest": {
        "zh-TW": ("今日學員練習摘要 {day}", "{day} 你的學員練習摘要：\n\n{lines}\n\n查看：{url}\n"),
        "en": ("Your learners' practice on {day}", "Your learners' practice on {day}:\n\n{lines}\n\nSee more: {url}\n"),
    },
}

_NOT_COUNTED = {
    "zh-TW": "\n\n⚠ 這次練習不計入：{reason}",
    "en": "\n\n⚠ This attempt was NOT counted: {reason}",
}


def not_counted_line(language: str, reason: str) -> str:
    """The analysis mail's line for an attempt that did not count (practice/counting.py)."""
    return (_NOT_COUNTED.get(language) or _NOT_COUNTED["zh-TW"]).format(reason=reason)


def render(kind: str, language: str, **values: object) -> tuple[str, str]:
    texts = TEXTS[kind]
    subject, body = texts.get(language) or texts["zh-TW"]
    return subject.format(**values), body.format(**values)
