"""Per-character judgement on synthetic pairs: what only synthesis can give, a known
replaced character and a known tone change (reference and attempt in different voices).

Real-speech calibration lives in test_real_speech.py (scripts/evaluate.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vocalborn.analysis.engine import LocalEngine
from vocalborn.analysis.sentence import syllables
from vocalborn.analysis.synth import synthesize

# (sentence, index of the replaced character, replacement): the replacement changes the
# syllable's sounds (initial and/or final).
SEGMENTAL_CASES: tuple[tuple[str, int, str], ...] = (
    ("我今天很高興見到你", 4, "低"),
    ("請把窗戶打開讓空氣流通", 5, "關"),
    ("我們明天早上一起去公園散步", 6, "八"),
    ("今天的天氣非常好", 3, "地"),
    ("他想去商店買水果", 2, "來"),
    ("我喜歡吃蘋果和香蕉", 3, "喝"),
    ("這本書非常有意思", 2, "刀"),
    ("請你幫我打電話", 2, "拿"),
    ("明天我們去看電影", 5, "買"),
    ("小狗在公園裡跑步", 1, "貓"),
    ("老師在教室上課", 1, "虎"),
    ("我每天早上喝牛奶", 6, "咖"),
    ("外面正在下大雨", 5, "小"),
    ("媽媽做的菜很好吃", 4, "飯"),
    ("他騎自行車去學校", 1, "開"),
    ("我們一起唱歌跳舞", 4, "聽"),
    ("這個蘋果很甜", 5, "酸"),
    ("弟弟喜歡畫畫", 4, "讀"),
    ("請打開窗戶", 1, "推"),
    ("我的朋友住在台北", 3, "人"),
    ("爸爸在廚房做飯", 5, "洗"),
    ("我想喝一杯熱茶", 5, "冰"),
)
TONE_CASES: tuple[tuple[str, int, str], ...] = (
    ("他想去商店買水果", 5, "賣"),
    ("我要買很多書", 2, "賣"),
    ("他在市場買菜", 4, "賣"),
)
VOICE_PAIRS: tuple[tuple[str, str], ...] = (("Female1", "Male1"), ("Male1", "Female2"), ("Female3", "Male2"))


def _characters(engine: LocalEngine, text: str, k: int, rep: str, voices: tuple[str, str]) -> list[dict]:
    ref = synthesize(text, voice=voices[0])
    att = synthesize(text[:k] + rep + text[k + 1 :], voice=voices[1])
    return engine.analyze(ref, att, {"text": text}).detailed_analysis["characters"]


@pytest.mark.worker  # 20+ synthesised pairs, two analyses each: a long run
def test_replaced_characters_are_flagged_and_unchanged_ones_mostly_not(engine: LocalEngine) -> None:
    hits, flagged_unchanged, unchanged = 0, 0, 0
    missed = []
    # Every case in every voice pair (66 pairs).
    cases = [(case, voices) for voices in VOICE_PAIRS for case in SEGMENTAL_CASES]
    for (text, k, rep), voices in cases:
        chars = _characters(engine, text, k, rep, voices)
        assert [c["char"] for c in chars] == list(text)
        if chars[k]["status"] != "matched":
            hits += 1
        else:
            missed.append(text[k])
        for j, c in enumerate(chars):
            if j != k:
                unchanged += 1
                flagged_unchanged += c["status"] != "matched"
    assert len(SEGMENTAL_CASES) >= 20
    # Issue #22's target is 90 %. Engine 3.0 measured 59 of 66 (89.4 %) on these sentences,
    # 3.1 57 (86.4 %; 91.7 % on scripts/evaluate.py's synthetic set): a mispronunciation must
    # now also stand out of the pair's own scatter (fewer false flags on native readings), and
    # in a sentence a tone error needs the reference heard in the expected tone. The phone
    # evidence alone misses 菜→飯, 大→小, 唱→聽, 打→推 in some voice pairs (docs/ANALYSIS.md).
    # Renderings do not depend on test order, so this figure is stable; 0.85 guards against
    # regressions until the target is met.
    assert hits / len(cases) >= 0.85, missed
    assert flagged_unchanged / unchanged <= 0.10, (flagged_unchanged, unchanged)


def test_tone_only_change_is_heard_on_that_character(engine: LocalEngine) -> None:
    # Two misses in the six pairs are tolerated (a synthetic 賣 is sometimes heard as a low
    # tone; renderings no longer depend on test order, see analysis/synth.py). Inside a
    # sentence a tone error is claimed only when the attempt's contour is far from the
    # reference's (native readings of one sentence differ a lot: docs/ANALYSIS.md, "Tones"),
    # so the heard tone is what must show the change; a claimed error must name the character.
    heard_other, seen = 0, []
    for text, k, rep in TONE_CASES:
        for ref_voice, att_voice in (("Male1", "Female2"), ("Female1", "Male1")):
            report = engine.analyze(
                synthesize(text, voice=ref_voice),
                synthesize(text[:k] + rep + text[k + 1 :], voice=att_voice),
                {"text": text},
            )
            chars = report.detailed_analysis["characters"]
            c = chars[k]
            assert c["char"] == "買" and 3 in c["accepted_tones"]  # mai3 (tone 2 before a third tone)
            assert "pronunciation" not in c["issues"], c  # same sounds, only the tone differs
            seen.append((text, ref_voice, c["heard_tone"], c["tone_match"]))
            if c["heard_tone"] is not None and c["heard_tone"] not in c["accepted_tones"]:
                heard_other += 1
            if c["tone_match"] is False:
                assert "tone" in c["issues"] and c["heard_tone"] not in c["accepted_tones"]
                assert 0.5 <= c["tone_confidence"] <= 1.0
                assert "「買」的聲調" in report.detailed_analysis["localized"]["zh-TW"]["suggestions"]
                assert "「買」" in report.detailed_analysis["localized"]["en"]["suggestions"]
    assert heard_other >= len(seen) - 2, seen


def test_every_character_is_reported_with_pinyin_tone_and_times(engine: LocalEngine) -> None:
    text = "今天天氣很好，我們去公園散步。"
    report = engine.analyze(synthesize(text, voice="Female1"), synthesize(text, voice="Male1"), {"text": text})
    chars = report.detailed_analysis["characters"]
    assert "".join(c["char"] for c in chars) == text
    judged = [c for c in chars if c["status"] != "not_judged"]
    assert [c["char"] for c in chars if c["status"] == "not_judged"] == ["，", "。"]
    for c in judged:
        assert {"pinyin", "expected_tone", "heard_tone", "confidence", "ref_start", "ref_end", "start", "end"} <= set(c)
        assert c["ref_start"] < c["ref_end"]
    starts = [c["ref_start"] for c in judged]
    assert starts == sorted(starts)
    assert sum(c["status"] == "matched" for c in judged) >= 0.8 * len(judged)
    assert report.overall_score >= 85


def test_without_text_there_are_no_characters_but_a_full_report(engine: LocalEngine) -> None:
    text = "我今天很高興見到你"
    for params in ({}, {"text": ""}, {"text": "   "}, {"text": "ABC"}):
        report = engine.analyze(synthesize(text, voice="Female1"), synthesize(text, voice="Male1"), params)
        assert "characters" not in report.detailed_analysis
        assert report.overall_score >= 85 and report.suggestions
        assert set(report.detailed_analysis["localized"]) == {"zh-TW", "en"}


def test_localized_block_holds_both_languages_and_matches_the_chosen_one(engine: LocalEngine) -> None:
    text = "我今天很高興見到你"
    ref, att = synthesize(text, voice="Female1"), synthesize("請把窗戶打開讓空氣流通", voice="Male1")
    zh = engine.analyze(ref, att, {"text": text, "language": "zh-TW"})
    en = engine.analyze(ref, att, {"text": text, "language": "en"})
    loc = zh.detailed_analysis["localized"]
    assert loc == en.detailed_analysis["localized"]
    assert loc["zh-TW"]["suggestions"] == zh.suggestions and loc["zh-TW"]["improvement_areas"] == zh.improvement_areas
    assert loc["en"]["suggestions"] == en.suggestions and loc["en"]["improvement_areas"] == en.improvement_areas
    assert zh.overall_score <= 40


def test_a_perfect_attempt_is_praised_without_a_weakest_part(engine: LocalEngine) -> None:
    wav = synthesize("我今天很高興見到你", voice="Female1")
    report = engine.analyze(wav, wav, {"text": "我今天很高興見到你", "language": "en"})
    assert report.overall_score >= 95
    assert "weakest" not in report.suggestions
    assert "最弱" not in report.detailed_analysis["localized"]["zh-TW"]["suggestions"]


def test_tone_sandhi_sets_the_expected_tones() -> None:
    tones = {c.char: (c.tone, c.accepted_tones) for c in syllables("我很好")}
    assert tones["我"] == (2, (2, 3)) and tones["很"] == (2, (2, 3)) and tones["好"] == (3, (3,))
    yi = [c.tone for c in syllables("一天一樣第一")]
    assert yi == [4, 1, 2, 4, 4, 1]
    assert [c.tone for c in syllables("不是不好")] == [2, 4, 4, 3]


def test_a_text_longer_than_the_recording_spreads_the_characters(engine: LocalEngine) -> None:
    short = synthesize("你好", voice="Female1")
    text = "今天天氣很好我們明天早上一起去公園散步然後到圖書館借幾本書回家慢慢看"
    report = engine.analyze(short, synthesize("你好", voice="Male1"), {"text": text})
    chars = report.detailed_analysis["characters"]
    assert len(chars) == len(text)
    assert report.detailed_analysis["character_summary"]["alignment"] == "uniform"


@pytest.mark.worker  # runs the CLI as a process
def test_cli_analyze_takes_the_text(tmp_path: Path) -> None:
    text = "我今天很高興見到你"
    (tmp_path / "ref.wav").write_bytes(synthesize(text, voice="Female1"))
    (tmp_path / "att.wav").write_bytes(synthesize(text, voice="Male1"))
    args = [sys.executable, "-m", "vocalborn.cli", "analyze", str(tmp_path / "ref.wav"), str(tmp_path / "att.wav")]
    out = subprocess.run([*args, "--text", text, "--json"], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert [c["char"] for c in report["detailed_analysis"]["characters"]] == list(text)
    table = subprocess.run([*args, "--text", text], capture_output=True, text=True, check=True).stdout
    assert "逐字" in table and text[:3] in table
