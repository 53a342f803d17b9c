"""Issue #26 on the page, in Debian's Chromium: audio everywhere (the attempt and its reference from
the result, the history and the therapist's timeline; one sound at a time; a tapped character plays
its span in both), the therapist's review with the whole result and its marks in the learner's
character grid, the invitation's link, QR code and copy button, a reference recorded in the browser
(Chromium's fake microphone plays a real recording), and the smaller frictions (a new tab stays
logged in, the footer, the progress chart's date axis, the therapist's practice view, the phone
header, pitch-chart labels). Screenshots at phone and desktop width in both languages go to
test-artifacts/.

The analyses are stored by in-process runner calls with verdicts the test knows (tests/verdicts.py):
no worker consumes this module's messages."""

from __future__ import annotations

import re
import wave
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from tests.learning.test_counted import GOOD, _attempt
from tests.support import SENTENCE, Api, recording
from tests.verdicts import verdict_detail
from tests.web.conftest import ARTIFACTS, CHROMIUM_ARGS, PASSWORD, watch_console

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SUGGESTION = "Hold the fourth tone of 氣 falling."  # the engine's text: a sentence character may be in it
COMMENT = "聲調再清楚一點"
# Six deviating spans close together: their labels used to be drawn over each other and past the edge.
DEVIATIONS = [
    {"kind": kind, "ref_start": a, "ref_end": a + 0.2, "start": a, "end": a + 0.2}
    for kind, a in (
        ("tone", 0.9),
        ("pronunciation", 1.0),
        ("missing", 1.1),
        ("pause", 1.3),
        ("tone", 3.3),
        ("too_long", 3.45),
    )
]


def _report(overall: float) -> Any:
    from vocalborn.analysis.types import AnalysisReport

    steps = [round(0.05 * i, 2) for i in range(72)]
    detail = verdict_detail(GOOD)
    detail["pitch_analysis"] = {
        "time": steps,
        "reference": [None if 20 <= i < 24 else round(3 * ((i % 18) / 9 - 1), 2) for i in range(72)],
        "attempt": [None if 30 <= i < 33 else round(2.5 * ((i % 20) / 10 - 1) + 0.5, 2) for i in range(72)],
        "correlation": 0.64,
        "direction_agreement": 0.7,
        "measurable": True,
    }
    detail["deviations"] = DEVIATIONS
    return AnalysisReport(
        overall,
        overall - 4,
        overall + 3,
        overall - 1,
        detail,
        suggestions=SUGGESTION,
        improvement_areas=["tone"],
        analysis_model_version="test/1",
        completeness_score=92.0,
    )


def _context(playwright: Any, chromium: Path, profile: Path, locale: str, *extra: str) -> Any:
    context = playwright.chromium.launch_persistent_context(
        user_data_dir=str(profile),
        executable_path=str(chromium),
        args=[*CHROMIUM_ARGS, f"--lang={locale}", *extra],
        headless=True,
        viewport=DESKTOP,
        locale=locale,
    )
    context.set_default_timeout(30_000)
    return context


@pytest.fixture
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _log_in(page: Any, base: str, email: str) -> None:
    page.goto(base + "/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")


def _linked(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    therapist = api.register("therapist")
    learner = api.register("learner")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).status_code == 200
    return therapist, learner


def _set_language(page: Any, lang: str) -> None:
    now = "en" if page.evaluate("document.documentElement.lang") == "en" else "zh-TW"
    if now != lang:
        page.click("#lang")


def _shots(page: Any, name: str) -> None:
    """Phone and desktop width in both languages; the phone never scrolls sideways and its header
    shows the product's and the user's names whole."""
    ARTIFACTS.mkdir(exist_ok=True)
    start = "en" if page.evaluate("document.documentElement.lang") == "en" else "zh-TW"
    for lang in ("zh-TW", "en"):
        _set_language(page, lang)
        for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(300)  # charts redraw after a resize
            if width == "phone":
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
                cut = page.evaluate(
                    "[...document.querySelectorAll('header.top .brand span, #who')]"
                    ".filter((e) => e.offsetParent && e.scrollWidth > e.clientWidth + 1).map((e) => e.textContent)"
                )
                assert cut == [], cut
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}-{lang}.png"), full_page=True)
    _set_language(page, start)
    page.set_viewport_size(DESKTOP)


def _chrome_cjk(page: Any, user_texts: list[str]) -> list[str]:
    """The visible texts of the page with Chinese characters in them, the user's own texts (sentences,
    names, comments, the engine's suggestion) and the language button aside."""
    texts: list[str] = page.evaluate(
        """() => {
          const out = [];
          const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          for (let n = walk.nextNode(); n; n = walk.nextNode()) {
            const e = n.parentElement;
            if (!e || !e.checkVisibility() || e.closest('#lang, .vb-char, [data-content], script, style, title')) continue;
            if (n.textContent.trim()) out.push(n.textContent);
          }
          for (const e of document.querySelectorAll('input, textarea')) if (e.checkVisibility()) out.push(e.placeholder || '');
          for (const e of document.querySelectorAll('[title], [aria-label]')) {
            if (e.checkVisibility() && !e.closest('#lang')) out.push(e.getAttribute('aria-label') || '', e.getAttribute('title') || '');
          }
          return out;
        }"""
    )
    cjk = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
    found = []
    for text in texts:
        rest = text
        for own in sorted(user_texts, key=len, reverse=True):
            rest = rest.replace(own, "")
        for ch in SENTENCE:  # a character of the sentence in a tooltip ("氣 qì")
            rest = rest.replace(ch, "")
        rest = re.sub(r"'[^']{1,4}'", "", rest)  # characters an English text talks about ("'七' (qī) is ...")
        if cjk.search(rest):
            found.append(text)
    return found


def _wait_playing(page: Any, path: str, span: str | None = None) -> None:
    """The clip player plays `path` (and the span `span`) and its time moves."""
    page.wait_for_function(
        """([path, span]) => { const a = document.getElementById('clip-player');
             return a && a.dataset.path === path && (span === null || a.dataset.span === span)
               && (a.currentTime > 0 || a.ended); }""",
        arg=[path, span],
    )


def test_audio_everywhere_and_the_review_in_the_learners_grid(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist, learner = _linked(api)
    sid = api.sentence(therapist, recording(), shared=False)["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sid, _report(78.0))
    att_path = f"/api/v1/practice/records/{done['record_id']}/audio"
    ref_path = f"/api/v1/practice/sentences/{sid}/audio"
    user_texts = [SENTENCE, COMMENT, SUGGESTION, "Therapist", "Learner", therapist["email"], learner["email"]]

    # --- the therapist: the timeline plays both, the review shows the whole result ----------------
    tctx = _context(playwright, chromium, tmp_path / "t", "en-US")
    try:
        tp = tctx.new_page()
        t_problems = watch_console(tp)
        _log_in(tp, base, therapist["email"])
        expect(tp.locator("#therapist-home")).to_be_visible()
        # the practice view is the therapist's sentences, not the learner's step 1
        expect(tp.locator("#step-one")).to_be_hidden()
        expect(tp.locator("#sentence-title")).to_have_text("Sentences and references")
        tp.locator(f'#learners [data-learner="{learner["user"]["user_id"]}"] button').click()
        row = tp.locator(f'#timeline [data-task="{done["task_id"]}"]')
        row.locator(".play-attempt").click()
        _wait_playing(tp, att_path)
        row.locator(".play-reference").click()
        _wait_playing(tp, ref_path)
        row.locator(".review-open").click()
        expect(tp.locator("#review-result")).to_be_visible()
        expect(tp.locator("#review-pitch path.ref")).to_have_count(1)
        expect(tp.locator("#review-pitch path.att")).to_have_count(1)
        expect(tp.locator("#review-suggestions")).to_have_text(SUGGESTION)
        grid = tp.locator("#rv-grid")
        expect(grid.locator(".vb-cell[data-error-type]")).to_have_count(13)  # punctuation is not judged
        expect(grid.locator('.vb-cell[data-index="3"] .vb-pinyin')).to_have_text("qì")
        expect(grid.locator('.vb-cell[data-index="3"]')).to_have_attribute("data-error-type", "tone")
        _labels_apart(tp, "#review-pitch")
        # both players of the review: one stops the other
        tp.evaluate("document.getElementById('review-ref-audio').play()")
        tp.wait_for_function("() => !document.getElementById('review-ref-audio').paused")
        tp.evaluate("document.getElementById('review-att-audio').play()")
        tp.wait_for_function("() => !document.getElementById('review-att-audio').paused")
        assert tp.evaluate("document.getElementById('review-ref-audio').paused")
        # the therapist marks 氣 and 散 in the grid; with "tap plays" a tap plays instead
        grid.locator('.vb-cell[data-index="3"]').click()
        grid.locator('.vb-cell[data-index="12"]').click()
        expect(grid.locator(".vb-marked")).to_have_count(2)
        tp.check("#rv-listen")
        grid.locator('.vb-cell[data-index="0"]').click()
        _wait_playing(tp, ref_path, "0.25-0.59")
        expect(grid.locator(".vb-marked")).to_have_count(2)
        tp.uncheck("#rv-listen")
        tp.fill("#rv-overall", "70")
        tp.fill("#rv-comment", COMMENT)
        tp.click("#rv-save")
        expect(tp.locator("#review-saved")).to_contain_text("version 1")
        saved = api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/review", headers=therapist["headers"])
        (rv,) = saved.json()["reviews"]
        assert [(c["index"], c["char"]) for c in rv["characters"] if c["deviating"]] == [(3, "氣"), (12, "散")]
        assert _chrome_cjk(tp, user_texts) == []
        tp.locator("#review-card").scroll_into_view_if_needed()
        _shots(tp, "review-therapist")
        assert t_problems == []
    finally:
        tctx.close()

    # --- the learner, on a phone: the history and the result play both; the marks in the grid -----
    lctx = _context(playwright, chromium, tmp_path / "l", "en-US")
    try:
        lp = lctx.new_page()
        lp.set_viewport_size(PHONE)
        l_problems = watch_console(lp)
        _log_in(lp, base, learner["email"])
        expect(lp.locator("#learner-home")).to_be_visible()
        row = lp.locator(f'#history [data-task="{done["task_id"]}"]')
        row.locator(".play-attempt").click()
        _wait_playing(lp, att_path)
        row.locator(".play-reference").click()  # the reference stops the attempt: one player
        _wait_playing(lp, ref_path)
        row.locator(".open-result").click()
        expect(lp.locator("#result")).to_be_visible()
        players = lp.locator("#result-audio audio")
        expect(players).to_have_count(2)
        lp.wait_for_function(
            "() => [...document.querySelectorAll('#result-audio audio')].every((a) => a.readyState >= 1)"
        )
        lp.evaluate("document.querySelector('#result-audio .att-audio').play()")
        lp.wait_for_function("() => !document.querySelector('#result-audio .att-audio').paused")
        lp.evaluate("document.querySelector('#result-audio .ref-audio').play()")
        lp.wait_for_function("() => !document.querySelector('#result-audio .ref-audio').paused")
        assert lp.evaluate("document.querySelector('#result-audio .att-audio').paused")
        # a tapped character: its span in the reference, then in the attempt
        cell = lp.locator('#characters .vb-cell[data-index="3"]')
        expect(cell).to_have_class(re.compile(r"\bvb-marked\b"))  # the therapist's mark, in the grid
        expect(lp.locator("#characters .vb-marked")).to_have_count(2)
        cell.click()
        _wait_playing(lp, ref_path, "1.03-1.37")  # ref 1.08-1.32 s, 50 ms either side
        _wait_playing(lp, att_path, "1.08-1.42")  # attempt 1.13-1.37 s
        lp.wait_for_function("() => document.getElementById('clip-player').paused")  # it stops at the span's end
        assert lp.evaluate("document.getElementById('clip-player').currentTime") < 1.7
        # the comment is only the comment: the marks are not listed after it
        expect(lp.locator("#result-review-comment")).to_have_text(COMMENT)
        _labels_apart(lp, "#pitch-chart")
        # the footer tells the truth about recordings
        expect(lp.locator("footer")).to_contain_text("Recordings are kept")
        assert "for this analysis only" not in (lp.text_content("footer") or "")
        # the progress chart's x-axis is the date
        dates = lp.locator("#progress-chart text.date")
        expect(dates.first).to_have_text(re.compile(r"^\d{1,2}/\d{1,2}$"))
        assert _chrome_cjk(lp, user_texts) == []
        lp.locator("#result").scroll_into_view_if_needed()
        _shots(lp, "result-learner")
        # a new tab of the same browser is logged in (the refresh cookie), not the login form
        other = lctx.new_page()
        other.goto(base + "/")
        expect(other.locator("#learner-home")).to_be_visible()
        expect(other.locator("#who")).to_contain_text("Learner")
        assert l_problems == []
    finally:
        lctx.close()


def _labels_apart(page: Any, svg: str) -> None:
    """The deviation labels of a pitch chart: drawn, none over another, none past the right edge."""
    boxes = page.evaluate(
        """(sel) => { const svg = document.querySelector(sel); const r = svg.getBoundingClientRect();
             return { right: r.right, labels: [...svg.querySelectorAll('.dev-label')].map((t) => {
               const b = t.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; }) }; }""",
        svg,
    )
    labels = boxes["labels"]
    assert labels, "no deviation label drawn"
    for i, a in enumerate(labels):
        assert a[2] <= boxes["right"] + 0.5, (a, boxes["right"])
        for b in labels[i + 1 :]:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, (a, b)


def test_the_invitation_link_qr_code_and_copy_button(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist = api.register("therapist")
    context = _context(playwright, chromium, tmp_path / "t", "zh-TW")
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = context.new_page()
        problems = watch_console(page)
        _log_in(page, base, therapist["email"])
        page.click("#make-invite")
        expect(page.locator("#invite-box")).to_be_visible()
        code = page.text_content("#invite-code-shown") or ""
        url = page.input_value("#invite-url-text")
        assert url == f"{base}/?invite={code}"
        qr = page.locator("#invite-qr")
        assert (qr.get_attribute("src") or "").startswith("data:image/svg+xml")
        page.wait_for_function("() => document.getElementById('invite-qr').naturalWidth > 50")
        page.click("#copy-invite")
        expect(page.locator("#notice")).to_have_text("已複製連結。")
        assert page.evaluate("navigator.clipboard.readText()") == url
        _shots(page, "invite-therapist")
        assert problems == []
    finally:
        context.close()


def test_the_invitation_answer_carries_its_link_as_a_qr_code(server: tuple[str, Api]) -> None:
    import segno

    _, api = server
    therapist = api.register("therapist")
    made = api.client.post("/api/v1/links/invitations", headers=therapist["headers"], json={}).json()
    svg = made["qr_svg"]
    assert svg.startswith("<svg") and "VocalBorn" in svg
    # the very code segno makes of the link: its modules, drawn as the SVG's path
    assert svg == _svg_of(segno.make(made["url"], error="m"))
    listed = api.client.get("/api/v1/links/invitations", headers=therapist["headers"]).json()
    assert [i["qr_svg"] for i in listed] == [None]  # stored hashed: no link, no QR code later


def _svg_of(qr: Any) -> str:
    out = BytesIO()
    qr.save(out, kind="svg", xmldecl=False, scale=5, border=2, title="VocalBorn")
    return out.getvalue().decode()


def test_the_therapist_records_the_reference_in_the_browser(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    """Chromium's fake microphone plays a real recording of the sentence; the page records it with
    MediaRecorder and uploads it as the new sentence's reference."""
    from playwright.sync_api import expect

    base, api = server
    therapist = api.register("therapist")
    speech = tmp_path / "speech.wav"
    speech.write_bytes(recording())
    with wave.open(str(speech)) as w:
        assert w.getnframes() / w.getframerate() > 1.5
    mic = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech}",
    ]
    context = _context(playwright, chromium, tmp_path / "t", "en-US", *mic)
    try:
        page = context.new_page()
        problems = watch_console(page)
        _log_in(page, base, therapist["email"])
        expect(page.locator("#new-sentence")).to_be_visible()
        page.fill("#sentence-text", "你好。")
        page.click("#ref-record")
        expect(page.locator("#ref-record")).to_have_text("Stop recording")
        page.wait_for_timeout(2500)
        page.click("#ref-record")
        expect(page.locator("#ref-record-time")).to_contain_text("Recorded")
        expect(page.locator("#ref-preview")).to_be_visible()
        page.click("#sentence-form button[type=submit]")
        expect(page.locator("#notice")).to_have_text("Sentence added.")
        made = [
            s
            for s in api.client.get("/api/v1/practice/sentences", headers=therapist["headers"]).json()
            if s["text"] == "你好。"
        ]
        assert len(made) == 1 and not made[0]["shared"]  # private unless shared
        assert made[0]["reference_duration_seconds"] > 1.5
        audio = api.client.get(
            f"/api/v1/practice/sentences/{made[0]['sentence_id']}/audio", headers=therapist["headers"]
        )
        assert audio.status_code == 200 and len(audio.content) > 2000
        # no reference at all: the page says so before anything is sent
        page.fill("#sentence-text", "再見。")
        page.click("#sentence-form button[type=submit]")
        expect(page.locator("#error")).to_have_text("Record the reference or choose a recording first.")
        assert problems == []
    finally:
        context.close()


def test_the_report_downloads_from_the_timeline_and_the_learners_home(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    """The therapist downloads a learner's report from the timeline, the learner their own from the
    progress card: the PDF and the CSV the API makes (with the page's token), in the page's language."""
    from playwright.sync_api import expect

    base, api = server
    therapist, learner = _linked(api)
    sid = api.sentence(therapist, recording(), shared=False)["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    _attempt(api, learner, session, sid, _report(78.0))
    uid = learner["user"]["user_id"]
    for who, opens in ((therapist, True), (learner, False)):
        context = _context(playwright, chromium, tmp_path / who["email"], "en-US")
        try:
            page = context.new_page()
            problems = watch_console(page)
            _log_in(page, base, who["email"])
            if opens:
                page.locator(f'#learners [data-learner="{uid}"] button').click()
                box = page.locator("#timeline-report")
            else:
                box = page.locator("#my-report")
            expect(box.locator(".report-pdf")).to_be_visible()
            with page.expect_download() as pdf:
                box.locator(".report-pdf").click()
            body = Path(pdf.value.path()).read_bytes()
            assert body.startswith(b"%PDF") and pdf.value.suggested_filename.endswith(".pdf")
            with page.expect_download() as csv:
                box.locator(".report-csv").click()
            saved = Path(csv.value.path()).read_bytes().splitlines()
            api_csv = api.client.get(f"/api/v1/learners/{uid}/report?format=csv&lang=en", headers=who["headers"])
            assert api_csv.status_code == 200
            # the same file as the API's, but for when it was made (its "report" row's generated_at)
            made = [line.startswith(b"report,") for line in saved]
            assert made.count(True) == 1 and len(saved) > 5
            same = [a == b for a, b, m in zip(saved, api_csv.content.splitlines(), made, strict=True) if not m]
            assert all(same), (saved, api_csv.content)
            assert problems == []
        finally:
            context.close()


def test_the_therapist_assigns_a_suggested_drill_with_a_recorded_reference(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    """The timeline lists the learner's suggested minimal pairs; one click records the therapist's
    reference (Chromium's fake microphone plays a real recording), a second sends it: the item is
    a private sentence of the therapist's now, in the learner's practice set."""
    from playwright.sync_api import expect

    base, api = server
    therapist, learner = _linked(api)
    sid = api.sentence(therapist, recording(), shared=False)["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    _attempt(api, learner, session, sid, _report(70.0))
    uid = learner["user"]["user_id"]
    suggested = api.client.get(f"/api/v1/learners/{uid}/drills?lang=en", headers=therapist["headers"]).json()
    assert suggested["items"], suggested
    first = suggested["items"][0]
    speech = tmp_path / "speech.wav"
    speech.write_bytes(recording())
    mic = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech}",
    ]
    context = _context(playwright, chromium, tmp_path / "t", "en-US", *mic)
    try:
        page = context.new_page()
        problems = watch_console(page)
        _log_in(page, base, therapist["email"])
        page.locator(f'#learners [data-learner="{uid}"] button').click()
        row = page.locator("#drills li.drill").first
        expect(row).to_contain_text(first["text"])
        expect(row).to_contain_text(first["why"])
        row.locator(".record-drill").click()
        expect(page.locator("#drills li.drill").first.locator(".record-drill")).to_have_text("Stop and assign")
        page.wait_for_timeout(2000)
        page.locator("#drills li.drill").first.locator(".record-drill").click()
        expect(page.locator("#notice")).to_contain_text(f"Assigned \u201c{first['text']}\u201d")
        expect(page.locator("#timeline-assigned")).to_contain_text(first["text"])
        assigned = api.client.get(f"/api/v1/learners/{uid}/assignments", headers=learner["headers"]).json()
        made = [a for a in assigned if a["sentence_text"] == first["text"]]
        assert len(made) == 1
        sentence = api.client.get(f"/api/v1/practice/sentences/{made[0]['sentence_id']}", headers=therapist["headers"])
        assert sentence.json()["shared"] is False and sentence.json()["reference_duration_seconds"] > 1.0
        # in Chinese, the server's "why" comes again in Chinese
        zh = api.client.get(f"/api/v1/learners/{uid}/drills?lang=zh-TW", headers=therapist["headers"]).json()
        page.click("#lang")
        expect(page.locator("#drills li.drill").first.locator(".hint")).to_have_text(zh["items"][0]["why"])
        assert problems == []
    finally:
        context.close()


def test_the_therapist_edits_shares_and_deletes_a_sentence(
    server: tuple[str, Api], chromium: Path, tmp_path: Path, playwright: Any
) -> None:
    """My sentences: the text is corrected (PATCH), shared and unshared, and deleted (the learner's
    history of it stays); another therapist's sentence is not in the list."""
    from playwright.sync_api import expect

    base, api = server
    therapist, learner = _linked(api)
    other = api.register("therapist")
    api.sentence(other, recording(), text="別人的句子。", shared=True)
    sid = api.sentence(therapist, recording(), text="今天天氣很好。", shared=False)["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sid, _report(75.0))
    context = _context(playwright, chromium, tmp_path / "t", "en-US")
    try:
        page = context.new_page()
        problems = watch_console(page)
        page.on("dialog", lambda d: d.accept())
        _log_in(page, base, therapist["email"])
        mine = page.locator("#my-sentence-list li")
        expect(mine).to_have_count(1)  # not the other therapist's shared sentence
        row = page.locator(f'#my-sentence-list [data-sentence="{sid}"]')
        row.locator(".edit-sentence").click()
        row.locator("input.edit-text").fill("今天天氣真好。")
        row.locator(".save-sentence").click()
        expect(page.locator("#notice")).to_have_text("Sentence saved.")
        expect(row.locator(".item-main")).to_have_text("今天天氣真好。")
        got = api.client.get(f"/api/v1/practice/sentences/{sid}", headers=therapist["headers"]).json()
        assert got["text"] == "今天天氣真好。" and got["shared"] is False
        row.locator("input.share-sentence").check()
        expect(row.locator("input.share-sentence")).to_be_checked()
        for _ in range(100):  # the page's PATCH lands
            got = api.client.get(f"/api/v1/practice/sentences/{sid}", headers=therapist["headers"]).json()
            if got["shared"]:
                break
            page.wait_for_timeout(100)
        assert got["shared"] is True
        page.set_viewport_size(PHONE)
        page.locator("#my-sentences").screenshot(path=str(ARTIFACTS / "sentences-therapist-phone-en.png"))
        page.set_viewport_size(DESKTOP)
        row.locator(".delete-sentence").click()
        expect(page.locator("#notice")).to_have_text("Sentence deleted.")
        expect(page.locator(f'#my-sentence-list [data-sentence="{sid}"]')).to_have_count(0)
        expect(page.locator(f'#sentence option[value="{sid}"]')).to_have_count(0)
        listed = api.client.get("/api/v1/practice/sentences", headers=therapist["headers"]).json()
        assert sid not in [s["sentence_id"] for s in listed]
        # the learner's attempt on it is still in their history, with its result
        result = api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result", headers=learner["headers"])
        assert result.status_code == 200
        assert problems == []
    finally:
        context.close()
