"""Issue #22's verdicts on the page, in Debian's Chromium: a learner submits a recording; a real
worker (remote engine kind) analyses it against a loopback AI service that runs the local engine and
writes the contract's per-character verdicts (tests/verdicts.py). The page colours each character by
its error_type only, puts its pinyin with tone marks under it, shows the heard tone only when there
is one that matters, never colours punctuation, marks the extra syllable between the characters and
shows the completeness, in both languages, on a phone and a desktop (screenshots in
test-artifacts/verdicts-*.png)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import verdicts
from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, recording
from tests.web.conftest import ARTIFACTS, PASSWORD, watch_console

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# The cells' background per verdict (app.css), and none for punctuation.
BACKGROUND = {
    "none": "rgb(236, 253, 245)",
    "tone": "rgb(254, 243, 199)",
    "mispronunciation": "rgb(254, 226, 226)",
    "omission": "rgb(243, 244, 246)",
    None: "rgba(0, 0, 0, 0)",
}


@pytest.fixture(scope="module")
def ai_service() -> Iterator[tuple[verdicts.FeedbackService, int]]:
    with verdicts.running_feedback_service() as running:
        yield running


@pytest.fixture(scope="module")
def verdict_worker(
    migrated: ServicesUnderTest, ai_service: tuple[verdicts.FeedbackService, int]
) -> Iterator[WorkerProcess]:
    env = {"AI_ENGINE": "remote", "AI_SERVICE_URL": f"http://127.0.0.1:{ai_service[1]}", "AI_SERVICE_TIMEOUT": "60"}
    w = WorkerProcess("web-verdicts", migrated.data_dir, concurrency=1, env=env).start()
    yield w
    w.stop()


def _cells(page: Any) -> list[dict[str, Any]]:
    """What the page shows of each cell of the sentence line, in order."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('#characters .vb-chars-line > *')].map((e) => ({
                insert: e.classList.contains('vb-insert'),
                char: e.querySelector('.vb-char') ? e.querySelector('.vb-char').textContent : null,
                kind: e.dataset.errorType || null,
                plain: e.classList.contains('vb-plain'),
                classes: [...e.classList].filter((c) => c.startsWith('vb-et-')),
                pinyin: e.querySelector('.vb-pinyin') ? e.querySelector('.vb-pinyin').textContent : null,
                heard: e.querySelector('.vb-heard') ? e.querySelector('.vb-heard').textContent : null,
                label: e.querySelector('.vb-insert-label') ? e.querySelector('.vb-insert-label').textContent : null,
                background: getComputedStyle(e).backgroundColor,
                visible: e.getBoundingClientRect().width > 0,
            }))"""
        )
    )


def _check_cells(page: Any, lang: str) -> None:
    cells = _cells(page)
    expected = verdicts.characters()
    # one cell per character, and the extra syllable right after 去 (index 9)
    assert [c["insert"] for c in cells] == [False] * 10 + [True] + [False] * (len(expected) - 10)
    insert = cells.pop(10)
    assert insert["label"] == ("extra" if lang == "en" else "多念") and insert["visible"]
    heard_word = "heard tone {t}" if lang == "en" else "聽到第 {t} 聲"
    for cell, c in zip(cells, expected, strict=True):
        kind = c["error_type"]
        assert cell["char"] == c["char"] and cell["kind"] == kind, (cell, c)
        assert cell["background"] == BACKGROUND[kind], (c["char"], cell["background"])
        if kind is None:  # punctuation: plain, no pinyin, no verdict, never coloured
            assert cell["plain"] and cell["classes"] == [] and cell["pinyin"] is None and cell["heard"] is None
            continue
        assert cell["classes"] == [f"vb-et-{kind}"] and cell["pinyin"] == c["pinyin_marks"]
        if c["heard_tone"] is None:
            assert cell["heard"] is None, c  # nothing heard for sure: nothing shown
    # the heard tone is shown where it matters: the tone error (氣 said in tone 2), nowhere else
    assert [(c["char"], c["heard"]) for c in cells if c["heard"]] == [("氣", heard_word.format(t=2))]
    completeness = page.text_content("#characters .vb-completeness") or ""
    if lang == "en":
        assert "Completeness 92%" in completeness and "12 of 13 characters said" in completeness
    else:
        assert "完整度 92%" in completeness and "念到 12/13 個字" in completeness


def test_the_page_shows_each_characters_verdict_in_both_languages_on_a_phone_and_a_desktop(
    server: tuple[str, Api], verdict_worker: WorkerProcess, browser_context: Any
) -> None:
    from playwright.sync_api import expect

    base, api = server
    therapist = api.register("therapist")
    sentence = api.sentence(therapist, recording())
    learner = api.register("learner")

    page = browser_context.new_page()
    problems = watch_console(page)
    page.goto(base + "/")
    page.fill("#email", learner["email"])
    page.fill("#password", PASSWORD)
    page.click("#auth-submit")
    expect(page.locator("#practice")).to_be_visible()
    page.select_option("#sentence", sentence["sentence_id"])
    page.set_input_files(
        "#attempt-file",
        files=[{"name": "attempt.mp3", "mimeType": "audio/mpeg", "buffer": recording(voice="Male1", fmt="mp3")}],
    )
    page.click("#submit")
    expect(page.locator("#result")).to_be_visible(timeout=120_000)
    expect(page.locator("#characters")).to_be_visible()
    task_id = page.get_attribute("#progress", "data-task")
    result = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"]).json()
    assert result["detailed_analysis"]["characters"] == verdicts.characters()  # what the page was given

    ARTIFACTS.mkdir(exist_ok=True)
    for lang in ("zh-TW", "en"):
        if lang == "en":
            page.click("#lang")
            expect(page.locator("#characters h3")).to_have_text("Character by character")
        for name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(size)
            page.wait_for_timeout(300)  # the chart redraws after a resize
            _check_cells(page, lang)
            if name == "phone":
                assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.locator("#characters").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / f"verdicts-{name}-{lang}.png"), full_page=True)
            page.locator("#characters").screenshot(path=str(ARTIFACTS / f"verdicts-characters-{name}-{lang}.png"))
        # the history shows the completeness beside the scores
        row = page.locator(f'#history li[data-task="{task_id}"]')
        expect(row).to_contain_text("Completeness 92%" if lang == "en" else "完整度 92%")
        # a cell's tooltip tells the whole verdict: expected tone, heard tone, confidence
        tip = page.locator("#characters .vb-cell.vb-et-tone").get_attribute("title") or ""
        if lang == "en":
            assert "wrong tone" in tip and "expected tone 4" in tip and "heard tone 2" in tip and "91%" in tip
        else:
            assert "聲調不對" in tip and "應為第 4 聲" in tip and "聽到第 2 聲" in tip and "91%" in tip
    assert problems == []
