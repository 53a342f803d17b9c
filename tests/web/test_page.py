"""The waiting page in Debian's Chromium (headless, driven by Playwright) against a running
stack: an API process and a real worker on the suite's PostgreSQL and Redis."""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.support import Api, WorkerProcess, recording
from tests.verdicts import error_type_of
from tests.web.conftest import ARTIFACTS, PASSWORD, watch_console


def test_a_learner_submits_a_recording_and_watches_it_to_the_scores_and_chart(
    server: tuple[str, Api], worker: WorkerProcess, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist = api.register("therapist")
    sentence = api.sentence(therapist, recording())
    learner = api.register("learner")

    page = browser_context.new_page()
    problems = watch_console(page)
    page.goto(base + "/")
    expect(page.locator("#auth")).to_be_visible()
    page.fill("#email", learner["email"])
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")
    expect(page.locator("#practice")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("Learner")

    page.select_option("#sentence", sentence["sentence_id"])
    page.set_input_files(
        "#attempt-file",
        files=[{"name": "attempt.mp3", "mimeType": "audio/mpeg", "buffer": recording(voice="Male1", fmt="mp3")}],
    )
    expect(page.locator("#submit")).to_be_enabled()
    page.click("#submit")

    expect(page.locator("#progress")).to_be_visible()
    expect(page.locator("#percent")).to_have_text("100%", timeout=90_000)
    expect(page.locator("#result")).to_be_visible(timeout=30_000)
    expect(page.locator("#status-text")).to_have_text("完成")
    for which in ("overall", "pronunciation", "fluency", "rhythm"):
        expect(page.locator(f"#score-{which}")).to_have_text(re.compile(r"^\d{1,3}$"))
    expect(page.locator("#suggestions")).not_to_be_empty()
    # issue #26: the fresh result plays the attempt just sent and its sentence's reference
    players = page.locator("#result-audio audio")
    expect(players).to_have_count(2)
    page.wait_for_function("() => [...document.querySelectorAll('#result-audio audio')].every((a) => a.duration > 0.5)")

    # the page's numbers are the API's
    task_id = page.get_attribute("#progress", "data-task")
    result = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"]).json()
    assert page.text_content("#score-overall") == str(round(result["overall_score"]))
    # every event of the history is in the page's log, once
    assert page.locator("#event-log li").count() == len(api.events(learner, task_id))

    # the chart: both contours drawn, one shaded span per deviation
    ref_path = page.get_attribute("#pitch-chart path.ref", "d") or ""
    att_path = page.get_attribute("#pitch-chart path.att", "d") or ""
    assert ref_path.startswith("M") and att_path.startswith("M")
    assert page.locator("#pitch-chart rect.dev").count() == len(result["detailed_analysis"]["deviations"])
    # the sentence, character by character (characters.js): one cell per character, each
    # coloured by its verdict (error_type, or an older result's status), punctuation plain
    chars = result["detailed_analysis"]["characters"]
    expect(page.locator("#characters")).to_be_visible()
    assert page.locator("#characters .vb-cell").count() == len(chars)
    kinds = [error_type_of(c) for c in chars]
    for kind in ("none", "tone", "mispronunciation", "omission"):
        assert page.locator(f"#characters .vb-cell.vb-et-{kind}").count() == kinds.count(kind), kind
    assert page.locator("#characters .vb-cell.vb-plain").count() == kinds.count(None)

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-desktop-zh.png"), full_page=True)

    # English labels, on a phone
    page.click("#lang")
    expect(page.locator("#result h2")).to_contain_text("Your result")
    expect(page.locator("#status-text")).to_have_text("Done")
    page.set_viewport_size({"width": 390, "height": 844})
    # the chart redraws in the phone's own pixels (readable labels)
    expect(page.locator("#pitch-chart")).to_have_attribute("viewBox", re.compile(r"^0 0 3\d\d "))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.screenshot(path=str(ARTIFACTS / "web-phone-en.png"), full_page=True)

    # practise again: back to an empty attempt, nothing being watched
    page.click("#again")
    expect(page.locator("#progress")).to_be_hidden()
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#attempt-name")).to_be_empty()
    expect(page.locator("#submit")).to_be_disabled()
    assert problems == []


def test_registering_works_and_errors_are_shown_in_words(server: tuple[str, Api], browser_context: Any) -> None:
    from playwright.sync_api import expect

    base, api = server
    page = browser_context.new_page()
    problems = watch_console(page)
    page.goto(base + "/")

    page.fill("#email", f"nobody-{uuid.uuid4().hex[:6]}@example.com")
    page.fill("#password", "wrong-password")
    page.click("#auth-submit")
    expect(page.locator("#error")).to_have_text("電子郵件或密碼錯誤")  # the API answers in the page's language

    page.click("#tab-register")
    email = f"new-{uuid.uuid4().hex[:6]}@example.com"
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#name", "小明")
    page.select_option("#role", "therapist")
    page.click("#auth-submit")
    expect(page.locator("#practice")).to_be_visible()
    expect(page.locator("#who")).to_contain_text("小明")
    # a therapist adds sentences; nothing to record
    expect(page.locator("#new-sentence")).to_be_visible()
    expect(page.locator("#record-card")).to_be_hidden()

    # registering the same email again with another password: registration answers as for a new
    # email (no enumeration); the login that follows is refused, in words
    page.click("#logout")
    page.click("#tab-register")
    page.fill("#email", email)
    page.fill("#password", "another-password-2")
    page.fill("#name", "someone")
    page.click("#auth-submit")
    expect(page.locator("#error")).to_have_text("電子郵件或密碼錯誤")

    # The session survives a reload and a new tab (the httpOnly refresh cookie), and ends when
    # it is ended elsewhere: back to the login, told why.
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#tab-login")
    page.click("#auth-submit")
    expect(page.locator("#practice")).to_be_visible()
    page.reload()
    expect(page.locator("#practice")).to_be_visible()
    second = browser_context.new_page()
    second.goto(base + "/")
    expect(second.locator("#practice")).to_be_visible()
    assert page.evaluate("document.cookie") == ""  # scripts never see the refresh token
    elsewhere = api.client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD}).json()
    mine = {"Authorization": f"Bearer {elsewhere['access_token']}"}
    for s in api.client.get("/api/v1/auth/sessions", headers=mine).json():
        if not s["current"]:
            assert api.client.delete(f"/api/v1/auth/sessions/{s['session_id']}", headers=mine).status_code == 204
    page.reload()  # the page's refresh is refused now
    expect(page.locator("#auth")).to_be_visible()
    expect(page.locator("#practice")).to_be_hidden()
    second.close()
    # the refused logins are the only failed requests the console reports
    assert all("401" in p for p in problems), problems


def test_a_therapist_turns_on_two_step_login_with_the_qr_code_and_logs_in_with_a_code(
    server: tuple[str, Api], browser_context: Any
) -> None:
    import time

    from playwright.sync_api import expect

    from vocalborn.auth import totp

    base, api = server
    therapist = api.register("therapist")
    page = browser_context.new_page()
    problems = watch_console(page)
    page.goto(base + "/")
    page.fill("#email", therapist["email"])
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")
    expect(page.locator("#security")).to_be_visible()
    page.click("#totp-start")
    expect(page.locator("#totp-qr")).to_be_visible()
    assert page.evaluate("document.getElementById('totp-qr').naturalWidth") > 0  # the QR code drew
    secret = page.text_content("#totp-secret") or ""
    page.fill("#totp-confirm-code", totp.code_at(secret, time.time()))
    page.click("#totp-form button")
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    expect(page.locator("#totp-start")).to_be_hidden()

    page.click("#logout")
    page.fill("#email", therapist["email"])
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")
    expect(page.locator("#totp-field")).to_be_visible()  # the password was right: now the code
    page.fill("#totp-code", totp.code_at(secret, time.time() + 30))
    page.click("#auth-submit")
    expect(page.locator("#practice")).to_be_visible()
    expect(page.locator("#totp-state")).to_have_text("已開啟：登入時需要驗證器的驗證碼。")
    assert all("401" in p for p in problems), problems
