"""Both roles end to end in Debian's Chromium: the therapist invites, the learner accepts and
practises one sentence three times and sees the progress chart; the therapist sees the learner
flagged, then not, opens the timeline, plays both recordings and saves a review; the learner sees
it. Screenshots at phone and desktop width in both languages go to test-artifacts/."""

from __future__ import annotations

from typing import Any

from tests.support import Api, WorkerProcess, recording
from tests.web.conftest import ARTIFACTS, PASSWORD, watch_console

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def log_in(page: Any, base: str, email: str) -> None:
    page.goto(base + "/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")


def set_language(page: Any, lang: str) -> None:
    now = "en" if page.evaluate("document.documentElement.lang") == "en" else "zh-TW"
    if now != lang:
        page.click("#lang")


def shots(page: Any, role: str) -> None:
    """Desktop and phone, zh-TW and English; the phone never scrolls sideways and its header shows
    the product's and the user's names whole (issue #26: they were cut with an ellipsis)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for lang in ("zh-TW", "en"):
        set_language(page, lang)
        for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(300)  # charts redraw after a resize
            if name == "phone":
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
                cut = page.evaluate(
                    "[...document.querySelectorAll('header.top .brand span, #who')]"
                    ".filter((e) => e.offsetParent && e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent)"
                )
                assert cut == [], cut
                header = page.locator("header.top").bounding_box()
                assert header is not None and header["height"] < 110, header  # at most two lines
            page.screenshot(path=str(ARTIFACTS / f"practice-{role}-{name}-{lang}.png"), full_page=True)
    set_language(page, "zh-TW")
    page.set_viewport_size(DESKTOP)


def test_therapist_and_learner_end_to_end(
    server: tuple[str, Api], worker: WorkerProcess, browser_context: Any, other_browser_context: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist = api.register("therapist")
    learner = api.register("learner")
    sentence = api.sentence(therapist, recording())
    twin = api.sentence(therapist, recording())  # the same text twice: the dropdown tells them apart
    sid = sentence["sentence_id"]

    # --- the therapist invites ----------------------------------------------------------------
    tp = browser_context.new_page()
    t_problems = watch_console(tp)
    log_in(tp, base, therapist["email"])
    expect(tp.locator("#therapist-home")).to_be_visible()
    expect(tp.locator("#no-learners")).to_be_visible()
    tp.click("#make-invite")
    expect(tp.locator("#invite-code-shown")).to_be_visible()
    code = tp.text_content("#invite-code-shown") or ""
    assert len(code) == 10

    # --- the learner accepts ------------------------------------------------------------------
    lp = other_browser_context.new_page()  # the learner's own browser
    l_problems = watch_console(lp)
    log_in(lp, base, learner["email"])
    expect(lp.locator("#learner-home")).to_be_visible()
    lp.fill("#invite-code", code)
    lp.click("#accept-invite")
    expect(lp.locator("#my-therapist")).to_contain_text(therapist["user"]["name"])
    expect(lp.locator("#invite-form")).to_be_hidden()
    labels = [lp.locator(f'#sentence option[value="{s}"]').text_content() for s in (sid, twin["sentence_id"])]
    assert labels[0] != labels[1], labels

    # --- the therapist sees the learner, flagged (never practised), and assigns the sentence ---
    tp.reload()
    row = tp.locator(f'#learners li[data-learner="{learner["user"]["user_id"]}"]')
    expect(row.locator(".flag")).to_be_visible()
    expect(row.locator(".flag")).to_contain_text("從未練習")
    row.locator("button").click()
    expect(tp.locator("#timeline-card")).to_be_visible()
    tp.select_option("#assign-sentence", sid)
    tp.click("#assign")
    expect(tp.locator("#timeline-assigned li")).to_have_count(1)

    # --- the learner practises the assigned sentence three times --------------------------------
    lp.reload()
    assigned = lp.locator(f'#assigned li[data-sentence="{sid}"]')
    expect(assigned).to_be_visible()
    assert lp.locator("#sentence option").first.get_attribute("value") == sid  # assigned first
    for n in range(3):
        assigned.locator("button").click()
        assert lp.input_value("#sentence") == sid
        lp.set_input_files(
            "#attempt-file",
            files=[{"name": "attempt.mp3", "mimeType": "audio/mpeg", "buffer": recording(voice="Male1", fmt="mp3")}],
        )
        lp.click("#submit")
        # while a worker runs it, no queue position is shown any more
        expect(lp.locator("#status-text")).to_have_text("分析中", timeout=90_000)
        expect(lp.locator("#queue")).to_have_text("—")
        expect(lp.locator("#result")).to_be_visible(timeout=90_000)
        expect(lp.locator("#status-text")).to_have_text("完成")
        expect(lp.locator("#history li")).to_have_count(n + 1)
        lp.click("#again")
    expect(lp.locator("#progress-chart circle.pt.overall_score")).to_have_count(3)
    expect(lp.locator("#progress-chart path.series.overall_score")).to_have_count(1)
    expect(lp.locator("#progress-facts")).to_contain_text("3")
    expect(assigned).to_contain_text("3")
    shots(lp, "learner")

    # --- the therapist: not flagged now, timeline, both recordings, a review ---------------------
    tp.reload()
    row = tp.locator(f'#learners li[data-learner="{learner["user"]["user_id"]}"]')
    expect(row.locator(".badge.ok")).to_be_visible()
    expect(row.locator(".flag")).to_have_count(0)
    row.locator("button").click()
    expect(tp.locator("#timeline li")).to_have_count(3)
    tp.locator("#timeline li .review-open").first.click()
    expect(tp.locator("#review-card")).to_be_visible()
    for button, audio in (("#play-ref", "review-ref-audio"), ("#play-att", "review-att-audio")):
        tp.wait_for_function("(id) => document.getElementById(id).readyState >= 1", arg=audio)
        tp.click(button)
        tp.wait_for_function(
            "(id) => { const a = document.getElementById(id); return a.currentTime > 0 || a.ended; }", arg=audio
        )
        assert tp.evaluate(f"document.getElementById('{audio}').duration") > 0.5
    tp.fill("#rv-overall", "82")
    tp.fill("#rv-fluency", "75")
    # the characters to mark are the learner's grid (issue #26), with the whole result above
    expect(tp.locator("#review-result")).to_be_visible()
    tp.locator("#rv-grid .vb-cell[data-error-type], #rv-chars .char").first.click()
    expect(tp.locator("#rv-grid .vb-cell.vb-marked, #rv-chars .char.marked")).to_have_count(1)
    tp.fill("#rv-comment", "聲調再清楚一點")
    tp.click("#rv-save")
    expect(tp.locator("#review-saved")).to_contain_text("第 1 版")
    expect(tp.locator("#timeline li .badge").first).to_contain_text("82")
    # what the form saved is what the API holds
    task_id = tp.locator("#timeline li").first.get_attribute("data-task")
    saved = api.client.get(f"/api/v1/tasks/analysis/{task_id}/review", headers=therapist["headers"]).json()
    (rv,) = saved["reviews"]
    assert rv["overall_score"] == 82 and rv["fluency_score"] == 75 and rv["pronunciation_accuracy"] is None
    assert [c["char"] for c in rv["characters"] if c["deviating"]] == ["今"], rv["characters"]
    assert rv["comment"] == "聲調再清楚一點"
    # switching language re-renders what is already on screen
    set_language(tp, "en")
    expect(tp.locator("#review-engine")).to_contain_text("Overall")
    expect(tp.locator("#review-saved")).to_have_text("Review saved (version 1).")
    expect(row.locator(".badge.ok")).to_have_text("on track")
    set_language(tp, "zh-TW")
    shots(tp, "therapist")

    # --- the learner sees the review beside the engine's scores -----------------------------------
    lp.reload()
    first = lp.locator("#history li").first
    expect(first.locator(".badge")).to_contain_text("82")
    first.locator("button.open-result").click()
    expect(lp.locator("#result-review")).to_be_visible()
    expect(lp.locator("#result-review-scores")).to_contain_text("82")
    expect(lp.locator("#result-review-comment")).to_contain_text("聲調再清楚一點")
    expect(lp.locator("#score-overall")).to_have_text(__import__("re").compile(r"^\d{1,3}$"))
    # in English, the review and the page speak English
    set_language(lp, "en")
    expect(lp.locator("#result-review h3")).to_have_text("Therapist's review")
    expect(lp.locator("#result-review-scores")).to_contain_text("Overall 82")
    lp.screenshot(path=str(ARTIFACTS / "practice-learner-review-desktop-en.png"), full_page=True)
    set_language(lp, "zh-TW")

    assert t_problems == [] and l_problems == [], (t_problems, l_problems)
