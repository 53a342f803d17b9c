"""The offline speech synthesiser helper other test suites rely on."""

from __future__ import annotations

from vocalborn.analysis.decode import probe_audio
from vocalborn.analysis.synth import render, synthesize


def test_synthesize_returns_a_wav_of_the_spoken_sentence() -> None:
    data = synthesize("我今天很高興見到你")
    assert data[:4] == b"RIFF"
    info = probe_audio(data)
    assert info.format == "wav" and info.sample_rate == 16000
    assert 1.5 < info.duration_seconds < 5.0


def test_synthesize_speaks_english_and_encodes_other_formats() -> None:
    info = probe_audio(synthesize("Good morning, how are you?", language="en", voice="Male1", fmt="mp3"))
    assert info.format == "mp3" and info.duration_seconds > 0.8


def test_same_arguments_give_the_same_bytes_within_a_process() -> None:
    assert synthesize("請把窗戶打開") == synthesize("請把窗戶打開")


def test_render_reports_increasing_character_timings() -> None:
    utt = render("我們明天早上一起去公園散步")
    starts = [w[0] for w in utt.words]
    assert starts == sorted(starts)
    assert all(end > start for start, end, _ in utt.words)
    assert utt.words[-1][1] <= utt.duration + 1e-6
    assert "".join(w[2] for w in utt.words).startswith("我們明天")


def test_a_rendering_does_not_depend_on_what_was_rendered_before() -> None:
    """eSpeak keeps global state between calls; in one process the same text used to come
    out a few milliseconds different after other renderings (tests passed alone and failed
    in a full run). Uncached renderings of the same arguments must be identical."""
    from vocalborn.analysis.synth import _render_cached

    text = "我們明天早上一起"
    _render_cached.cache_clear()
    first = render(text, "zh", "Male1")
    for i, other in enumerate(["請把窗戶打開讓空氣流通", "他", "今天天氣很好我們去公園散步"]):
        render(other, "zh", ("Female1", "Male2", "Female3")[i])
    _render_cached.cache_clear()
    again = render(text, "zh", "Male1")
    assert first is not again
    assert first.samples.tobytes() == again.samples.tobytes()
    assert first.words == again.words
    assert not again.samples.flags.writeable  # shared by the cache
