"""Issue #26 on the page, in Debian's Chromium: an en-US browser opens in English (a zh-TW one in
Chinese); the learner's home shows this week (dose, streak, minutes, what is due), "1 attempt"
(not "1 attempts"), an attempt that does not count with its reason, and deletes an attempt; the
therapist's list shows the dose and the below-dose flag.

The analyses are stored by in-process runner calls (no worker consumes this module's messages)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.learning.test_counted import GOOD, WRONG, _attempt, _report
from tests.support import Api, recording
from tests.web.conftest import ARTIFACTS, CHROMIUM_ARGS, watch_console

STRONG = "correct-horse-battery-staple-9"


def _context(playwright: Any, chromium: Path, tmp: Path, locale: str) -> Any:
    context = playwright.chromium.launch_persistent_context(
        user_data_dir=str(tmp / f"profile-{locale}"),
        executable_path=str(chromium),
        args=[*CHROMIUM_ARGS, f"--lang={locale}"],
        headless=True,
        viewport={"width": 1280, "height": 900},
        locale=locale,
    )
    context.set_default_timeout(30_000)
    return context


@pytest.fixture
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _log_in(page: Any, base: str, email: str, password: str) -> None:
    page.goto(base + "/")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#auth-submit")


@pytest.mark.parametrize(("locale", "lang", "login"), [("en-US", "en", "Log in"), ("zh-TW", "zh-Hant-TW", "登入")])
def test_the_browsers_language_is_chosen_first(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any, locale: str, lang: str, login: str
) -> None:
    from playwright.sync_api import expect

    base, _ = server
    context = _context(playwright, chromium, tmp_path, locale)
    try:
        page = context.new_page()
        page.goto(base + "/")
        expect(page.locator("#auth-submit")).to_have_text(login)
        assert page.evaluate("document.documentElement.lang") == lang
    finally:
        context.close()


def test_the_week_not_counted_attempts_and_the_dose_on_the_page(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist, learner = _linked_with(api)
    uid = learner["user"]["user_id"]
    five = api.sentence(therapist, recording())["sentence_id"]
    once = api.sentence(therapist, recording(), text="你好。")["sentence_id"]
    for sid, body in ((five, {"target_attempts_per_week": 5, "days_per_week": 3}), (once, {})):
        r = api.client.post(
            f"/api/v1/learners/{uid}/assignments", headers=therapist["headers"], json={"sentence_id": sid, **body}
        )
        assert r.status_code == 201, r.text
    session = api.session(learner)["practice_session_id"]
    _attempt(api, learner, session, five, _report(70.0, GOOD))
    _attempt(api, learner, session, five, _report(75.0, GOOD))
    wrong = _attempt(api, learner, session, five, _report(4.0, WRONG))
    _attempt(api, learner, session, once, _report(80.0, GOOD))

    context = _context(playwright, chromium, tmp_path, "en-US")
    try:
        page = context.new_page()
        problems = watch_console(page)
        _log_in(page, base, learner["email"], STRONG)
        expect(page.locator("#learner-home")).to_be_visible()
        summary = page.locator("#week-summary")  # 2 of 5 on the one with a target; 3 that count in all
        expect(summary).to_have_text("3 attempts · 0.2 min · 1 day this week · streak 1 day · 40% of the goal")
        assigned = page.locator("#assigned")
        expect(assigned.locator(f'[data-sentence="{once}"]')).to_contain_text("· 1 attempt")
        assert "1 attempts" not in (assigned.text_content() or "")
        expect(assigned.locator(f'[data-sentence="{five}"]')).to_contain_text("· 2 attempts")
        due = page.locator(f'#week-due [data-sentence="{five}"]')
        expect(due).to_contain_text("2/5 attempts this week")
        row = page.locator(f'#history [data-task="{wrong["task_id"]}"]')
        expect(row.locator(".not-counted")).to_contain_text("not counted: The recording is not the practised sentence")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "goals-learner-desktop-en.png"), full_page=True)
        # the learner deletes the attempt that did not count
        page.on("dialog", lambda d: d.accept())
        row.locator(".delete-attempt").click()
        expect(page.locator(f'#history [data-task="{wrong["task_id"]}"]')).to_have_count(0)
        status = api.client.get(f"/api/v1/practice/records/{wrong['record_id']}", headers=learner["headers"])
        assert status.status_code == 404
        assert problems == []

        page.click("#logout")
        _log_in(page, base, therapist["email"], STRONG)
        expect(page.locator("#therapist-home")).to_be_visible()
        learner_row = page.locator(f'#learners [data-learner="{uid}"]')
        expect(learner_row).to_contain_text("40% of dose")
        expect(learner_row.locator(".flag")).to_have_text("below half the dose")
        page.screenshot(path=str(ARTIFACTS / "goals-therapist-desktop-en.png"), full_page=True)
    finally:
        context.close()


def _linked_with(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    therapist = api.register("therapist", password=STRONG)
    learner = api.register("learner", password=STRONG)
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).status_code == 200
    return therapist, learner


def test_the_invitation_link_fills_the_code_in(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist = api.register("therapist", password=STRONG)
    learner = api.register("learner", password=STRONG)
    inv = api.client.post("/api/v1/links/invitations", headers=therapist["headers"], json={}).json()
    assert inv["url"].startswith(base + "/?invite=")
    context = _context(playwright, chromium, tmp_path, "en-US")
    try:
        page = context.new_page()
        page.goto(inv["url"])
        expect(page.locator("#invited-hint")).to_contain_text("A therapist invited you")
        page.fill("#email", learner["email"])
        page.fill("#password", STRONG)
        page.click("#auth-submit")
        expect(page.locator("#invite-code")).to_have_value(inv["code"])
        page.click("#accept-invite")
        expect(page.locator("#my-therapist")).to_contain_text(therapist["user"]["name"])
        assert "invite=" not in page.url  # the used code leaves the address (a reload does not fill it again)
    finally:
        context.close()
