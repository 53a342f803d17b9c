"""What a new user's first hour found on the page, in Debian's Chromium: a long "not counted" label
wraps on a phone in English; #task= links (the bell, the mails) open the analysis for the learner
and the therapist, on load and in a tab already open, as do #verify-email= and #reset-password=;
the learner's sentences are there right after accepting an invitation; the drills card never says
"null"; the therapist sets a weekly goal when assigning; an old error does not stay beside a new
answer; a recording of another sentence is shown without right/wrong colours or a completeness.

The analyses are stored by in-process runner calls (no worker consumes this module's messages)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.learning.test_counted import GOOD, WRONG, _attempt, _report
from tests.support import Api, recording
from tests.web.conftest import ARTIFACTS, watch_console
from tests.web.test_goals_page import STRONG, _context, _linked_with, _log_in

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _issue(user: dict[str, Any], purpose: str) -> str:
    """A mailed link's token, issued as the API issues it (the mail itself is the notifier's test)."""
    from vocalborn.db import open_session
    from vocalborn.notify import tokens

    with open_session() as db:
        row = tokens.issue(db, uuid.UUID(user["user"]["user_id"]), user["email"], purpose)
        db.commit()
        return tokens.derive(purpose, row.id)


def _in_app(user_id: str, task_id: str, therapist_id: str) -> str:
    """A review notification in the user's bell, as the notifier stores it (its own tests run it)."""
    from vocalborn.db import open_session
    from vocalborn.notify.models import Notification

    row = Notification(
        event_id=uuid.uuid4(),
        user_id=uuid.UUID(user_id),
        channel="in_app",
        type="review.saved",
        subject={"task_id": task_id, "therapist_id": therapist_id},
        status="done",
    )
    with open_session() as db:
        db.add(row)
        db.commit()
        return str(row.id)


def test_the_learner_on_a_phone_and_the_task_links(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist, learner = _linked_with(api)
    sid = api.sentence(therapist, recording())["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    good = _attempt(api, learner, session, sid, _report(72.0, GOOD))
    wrong = _attempt(api, learner, session, sid, _report(4.0, WRONG))
    r = api.client.put(
        f"/api/v1/tasks/analysis/{good['task_id']}/review",
        headers=therapist["headers"],
        json={"overall_score": 66, "comment": "Nice and steady", "characters": []},
    )
    assert r.status_code in (200, 201), r.text

    context = _context(playwright, chromium, tmp_path, "en-US")
    try:
        page = context.new_page()
        problems = watch_console(page)
        page.set_viewport_size(PHONE)
        _log_in(page, base, learner["email"], STRONG)
        row = page.locator(f'#history [data-task="{wrong["task_id"]}"]')
        expect(row.locator(".not-counted")).to_contain_text("not counted: The recording is not the practised sentence")
        page.wait_for_timeout(300)
        # 1. the long label wraps: the page is no wider than the phone
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        # 7. another sentence's completeness is no score, in the history either
        assert "Completeness" not in (row.locator(".hint").text_content() or "")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "pagefix-learner-phone-en.png"), full_page=True)

        # 2. a #task= link pasted into the open tab: that result, the grid not judged
        page.evaluate(f"location.hash = 'task={wrong['task_id']}'")
        expect(page.locator("#result")).to_be_visible()
        expect(page.locator("#not-counted")).to_contain_text("not the practised sentence")
        grid = page.locator("#characters")
        expect(grid.locator(".vb-unjudged-note")).to_contain_text("Not judged: another sentence")
        assert grid.locator(".vb-unjudged").count() > 0
        assert grid.locator("[class*='vb-et-']").count() == 0  # no right/wrong colours, no legend of them
        assert grid.locator(".vb-completeness").count() == 0
        assert "Completeness" not in (grid.text_content() or "")
        assert "task=" not in page.url  # the same link opens it again
        page.click("#lang")  # the other language says it too
        expect(grid.locator(".vb-unjudged-note")).to_contain_text("另一個句子")
        assert grid.locator("[class*='vb-et-']").count() == 0
        page.click("#lang")
        expect(grid.locator(".vb-unjudged-note")).to_contain_text("Not judged")

        # the bell: a click on the review's notification opens the counted result, judged, with the review
        note = _in_app(learner["user"]["user_id"], good["task_id"], therapist["user"]["user_id"])
        page.click("#bell")
        page.click("#notif-list li.unread button")
        expect(page.locator("#notif-panel")).to_be_hidden()
        expect(page.locator("#result-review-comment")).to_have_text("Nice and steady")
        expect(grid.locator(".vb-et-none").first).to_be_visible()
        assert grid.locator(".vb-unjudged").count() == 0
        expect(grid.locator(".vb-unjudged-note")).to_have_count(0)
        expect(page.locator("#not-counted")).to_be_hidden()
        read = api.client.get("/api/v1/notifications?limit=30", headers=learner["headers"]).json()
        assert next(n for n in read if n["id"] == note)["read_at"] is not None

        # the mail's link opens a new tab: the session resumes, then the result opens
        fresh = context.new_page()
        fresh.goto(f"{base}/#task={wrong['task_id']}")
        expect(fresh.locator("#characters .vb-unjudged-note")).to_be_visible()
        fresh.close()
        assert problems == []
    finally:
        context.close()


def test_the_therapist_task_link_weekly_goal_and_drills(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist, learner = _linked_with(api)
    uid = learner["user"]["user_id"]
    sid = api.sentence(therapist, recording())["sentence_id"]
    other = api.sentence(therapist, recording(), text="你好。")["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sid, _report(70.0, GOOD))
    other_said = _attempt(api, learner, session, sid, _report(5.0, WRONG))
    quiet = api.register("learner", password=STRONG)  # linked too, never practised: no drills at all
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=quiet["headers"], json={"code": code}).status_code == 200

    context = _context(playwright, chromium, tmp_path, "en-US")
    try:
        page = context.new_page()
        problems = watch_console(page)
        _log_in(page, base, therapist["email"], STRONG)
        expect(page.locator("#therapist-home")).to_be_visible()
        # 2. the therapist's link: the learner's timeline and the review of that attempt
        page.evaluate(f"location.hash = 'task={done['task_id']}'")
        expect(page.locator("#timeline-card")).to_be_visible()
        expect(page.locator("#review-card")).to_be_visible()
        expect(page.locator("#review-engine")).to_contain_text("70")
        # 4. the drills card, however few its items, never says "null"
        expect(page.locator("#drills h3")).to_have_text("Suggested drills")
        assert "null" not in (page.locator("#drills").text_content() or "")
        page.click(f'#learners [data-learner="{quiet["user"]["user_id"]}"] button')
        expect(page.locator("#timeline-name")).to_have_text(quiet["user"]["name"])
        expect(page.locator("#drills p.hint")).to_contain_text("No suggestions")
        assert "null" not in (page.locator("#drills").text_content() or "")
        page.click(f'#learners [data-learner="{uid}"] button')
        expect(page.locator("#timeline-name")).to_have_text(learner["user"]["name"])

        # 5. a weekly goal with the assignment
        page.select_option("#assign-sentence", other)
        page.fill("#goal-attempts", "4")
        page.fill("#goal-days", "3")
        page.fill("#goal-due", "2099-01-31")
        page.click("#assign")
        expect(page.locator("#timeline-assigned")).to_contain_text("你好")
        got = api.client.get(f"/api/v1/learners/{uid}/assignments", headers=therapist["headers"]).json()
        mine = next(a for a in got if a["sentence_id"] == other)
        assert (mine["target_attempts_per_week"], mine["days_per_week"], mine["due_on"]) == (4, 3, "2099-01-31")
        assert mine["target_minutes_per_week"] is None
        assert page.locator("#goal-attempts").input_value() == ""  # the form is ready for the next one
        # a refused value: the API's words in the banner
        page.fill("#goal-days", "9")
        page.click("#assign")
        expect(page.locator("#error")).to_be_visible()
        assert "7" in (page.locator("#error").text_content() or "")
        page.click("#lang")
        expect(page.locator("#assign-goal legend")).to_have_text("每週目標（可不填）")
        assert problems == [] or all("422" in p for p in problems), problems

        # the page opened by the analysis mail's link, fresh: the review opens once logged in; the
        # attempt is another sentence, so its grid is not judged there either
        fresh = context.new_page()
        fresh.goto(f"{base}/#task={other_said['task_id']}")
        expect(fresh.locator("#review-card")).to_be_visible()
        expect(fresh.locator("#rv-grid .vb-unjudged-note")).to_contain_text("另一個句子")  # the language chosen above
        assert fresh.locator("#rv-grid [class*='vb-et-']").count() == 0
        assert fresh.locator("#rv-grid .vb-completeness").count() == 0
        fresh.close()
    finally:
        context.close()


def test_links_in_an_open_tab_sentences_after_linking_and_no_stale_errors(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    from playwright.sync_api import expect

    from vocalborn.notify import tokens

    base, api = server
    learner = api.register("learner", password=STRONG)
    therapist = api.register("therapist", password=STRONG)
    private = api.sentence(therapist, recording(), text="老師的句子。", shared=False)["sentence_id"]
    context = _context(playwright, chromium, tmp_path, "en-US")
    try:
        page = context.new_page()
        page.goto(base + "/")
        # an error first (a wrong password) ...
        page.fill("#email", learner["email"])
        page.fill("#password", "not-the-password-1")
        page.click("#auth-submit")
        expect(page.locator("#error")).to_be_visible()
        # ... 6. then the reset link pasted into this tab: the success alone is on screen
        page.evaluate(f"location.hash = 'reset-password={_issue(learner, tokens.PASSWORD_RESET)}'")
        expect(page.locator("#reset-card")).to_be_visible()
        page.fill("#reset-password", "a-fresh-secret-horse-77")
        page.click("#reset-form button[type=submit]")
        expect(page.locator("#notice")).to_contain_text("Password updated")
        expect(page.locator("#error")).to_be_hidden()
        # 2. the verification link, pasted likewise
        page.evaluate(f"location.hash = 'verify-email={_issue(learner, tokens.VERIFY_EMAIL)}'")
        expect(page.locator("#notice")).to_contain_text("Email address confirmed")

        # 3. the therapist's sentence is in the learner's list right after accepting
        page.fill("#email", learner["email"])
        page.fill("#password", "a-fresh-secret-horse-77")
        page.click("#auth-submit")
        expect(page.locator("#learner-home")).to_be_visible()
        assert page.locator(f'#sentence option[value="{private}"]').count() == 0
        code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
        page.fill("#invite-code", code)
        page.click("#accept-invite")
        expect(page.locator(f'#sentence option[value="{private}"]')).to_have_count(1)
        page.click("#logout")

        # 6. the therapist's empty reference file is refused; then the browser blocks an empty text:
        # the old error goes
        _log_in(page, base, therapist["email"], STRONG)
        expect(page.locator("#therapist-home")).to_be_visible()
        page.fill("#sentence-text", "空的檔案。")
        page.set_input_files("#reference-file", {"name": "empty.wav", "mimeType": "audio/wav", "buffer": b""})
        page.click("#sentence-form button[type=submit]")
        expect(page.locator("#error")).to_be_visible()
        page.fill("#sentence-text", "")
        page.click("#sentence-form button[type=submit]")
        expect(page.locator("#error")).to_be_hidden()
    finally:
        context.close()
