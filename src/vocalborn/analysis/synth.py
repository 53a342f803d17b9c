"""Offline test recordings from Praat's built-in speech synthesiser (eSpeak NG).

Test suites (this package's, the API's, the worker's) need real speech without shipping
audio files or reaching a network. Praat's ``SpeechSynthesizer`` (inside
praat-parselmouth) speaks Mandarin and English in about 20 ms and also returns the exact
time span of every word (for Mandarin: every character), so a test can edit a known place
of the sentence and check the analysis finds it there.

Typical use::

    from vocalborn.analysis.synth import synthesize
    wav_bytes = synthesize("我今天很高興", language="zh", voice="Female1")
    mp3_bytes = synthesize("Good morning", language="en", voice="Male1", fmt="mp3")

Determinism: eSpeak (inside Praat) keeps global state between calls, so in one process
the same text renders a few milliseconds differently depending on everything rendered
before (an order-dependent test passes alone and fails in a full run). :func:`render`
therefore synthesises each new utterance in a child forked from a small server process
that has synthesised nothing but one fixed warm-up utterance: the samples depend on the
arguments only, whatever the process rendered before and in whatever order. Results are memoised
per process. Without ``fork`` (Windows) it renders in-process, where the order matters.
"""

from __future__ import annotations

import atexit
import io
import os
import pickle
import struct
import subprocess
import sys
import threading
import wave
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from vocalborn.analysis.decode import encode_audio

__all__ = ["LANGUAGES", "VOICES", "Utterance", "render", "synthesize", "to_wav"]

# Short language codes to Praat's SpeechSynthesizer language names.
LANGUAGES: dict[str, str] = {
    "zh": "Chinese (Mandarin)",
    "zh-tw": "Chinese (Mandarin)",
    "cmn": "Chinese (Mandarin)",
    "yue": "Chinese (Cantonese)",
    "en": "English (Great Britain)",
    "en-gb": "English (Great Britain)",
    "en-us": "English (America)",
}

# Voice variants known to work with every language above (eSpeak NG variants in Praat).
VOICES: tuple[str, ...] = (
    "Female1", "Female2", "Female3", "Female4", "Female5",
    "Male1", "Male2", "Male3", "Male4", "Male5", "Male6", "Male7",
    "Klatt", "Michael", "Robert",
)  # fmt: skip


@dataclass(frozen=True)
class Utterance:
    """A synthesised utterance and the time span of each word (Mandarin: each character).

    ``words`` holds ``(start_seconds, end_seconds, label)`` for every non-empty interval of
    the synthesiser's word tier, in order.
    """

    samples: np.ndarray
    sample_rate: int
    words: tuple[tuple[float, float, str], ...]

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def to_bytes(self, fmt: str = "wav") -> bytes:
        """Encode as ``fmt`` (wav by default; mp3, ogg, m4a, ... through PyAV)."""
        if fmt == "wav":
            return to_wav(self.samples, self.sample_rate)

        return encode_audio(self.samples, self.sample_rate, fmt)


def _language_name(language: str) -> str:
    return LANGUAGES.get(language.lower(), language)


def render(
    text: str,
    language: str = "zh",
    voice: str = "Female1",
    *,
    sample_rate: int = 16000,
    words_per_minute: float = 175.0,
    pitch_multiplier: float = 1.0,
    pitch_range: float = 1.0,
    word_gap: float = 0.01,
    peak: float = 0.7,
) -> Utterance:
    """Synthesise ``text`` and return samples plus per-word timings.

    Args:
        text: What to say (Chinese characters for ``zh``, plain text for ``en``).
        language: ``"zh"``, ``"en"``, ``"en-us"``, ``"yue"`` or a full Praat language name.
        voice: A Praat voice variant, e.g. ``"Female1"`` or ``"Male1"`` (see :data:`VOICES`).
        sample_rate: Output sampling rate in Hz.
        words_per_minute: Speaking rate (eSpeak's measure; 175 is its default).
        pitch_multiplier: 0.5..2.0, scales the voice's pitch.
        pitch_range: 0..2, scales the pitch excursions (0 gives a monotone).
        word_gap: Extra silence between words, seconds.
        peak: Peak amplitude of the returned samples (0..1).
    """
    if not text.strip():
        raise ValueError("text must not be empty")
    return _render_cached(
        text, language, voice, int(sample_rate), float(words_per_minute),
        float(pitch_multiplier), float(pitch_range), float(word_gap), float(peak),
    )  # fmt: skip


@lru_cache(maxsize=256)
def _render_cached(*args: Any) -> Utterance:
    utt = _render_isolated(args) if _can_isolate() else _render_now(*args)
    utt.samples.flags.writeable = False  # shared by the cache: callers must copy before editing
    return utt


def _can_isolate() -> bool:
    return os.name == "posix" and hasattr(os, "fork") and os.environ.get(_SERVER_ENV) != "1"


_SERVER_ENV = "VOCALBORN_SYNTH_SERVER"
_WARM_UP = ("你好", "zh", "Female1", 16000, 175.0, 1.0, 1.0, 0.01, 0.7)
_server: subprocess.Popen[bytes] | None = None
_server_pid = 0  # the process that started _server (a forked child starts its own)
_server_lock = threading.Lock()


def _render_isolated(args: tuple[Any, ...]) -> Utterance:
    """:func:`_render_now` in a fresh fork of a server process that synthesised only its
    fixed warm-up (see the module's docstring)."""
    global _server, _server_pid
    with _server_lock:
        if _server is None or _server_pid != os.getpid() or _server.poll() is not None:
            _server_pid = os.getpid()
            env = {**os.environ, _SERVER_ENV: "1"}
            cmd = [sys.executable, "-c", "from vocalborn.analysis.synth import _serve; _serve()"]
            _server = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            atexit.register(_stop_server, _server)
        assert _server.stdin is not None and _server.stdout is not None
        _send(_server.stdin, args)
        reply = _receive(_server.stdout)
    if reply is None:
        raise RuntimeError("the speech synthesis server stopped")
    if reply[0] == "error":
        raise RuntimeError(f"speech synthesis failed: {reply[1]}")
    _, samples, rate, words = reply
    return Utterance(samples, rate, words)


def _stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def _send(stream: Any, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _receive(stream: Any) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        return None
    (n,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(n))


def _serve() -> None:
    """The synthesis server: for each request on stdin, a forked child renders it and
    writes the reply; the server's own eSpeak state is never touched."""
    # One fixed utterance first: it loads eSpeak's data once for all the forks, and every
    # fork starts from the state it leaves (the same in every server).
    _render_now(*_WARM_UP)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything Praat prints goes to stderr, not into the replies
    inp = sys.stdin.buffer
    while True:
        args = _receive(inp)
        if args is None:
            return
        pid = os.fork()
        if pid == 0:
            try:
                u = _render_now(*args)
                reply: Any = ("ok", np.asarray(u.samples), u.sample_rate, u.words)
            except BaseException as exc:
                reply = ("error", f"{type(exc).__name__}: {exc}")
            try:
                _send(out, reply)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)


def _render_now(
    text: str,
    language: str,
    voice: str,
    sample_rate: int,
    words_per_minute: float,
    pitch_multiplier: float,
    pitch_range: float,
    word_gap: float,
    peak: float,
) -> Utterance:
    import parselmouth
    from parselmouth.praat import call

    synth = call("Create SpeechSynthesizer", _language_name(language), voice)
    call(
        synth,
        "Speech output settings",
        float(sample_rate),
        float(word_gap),
        float(pitch_multiplier),
        float(pitch_range),
        float(words_per_minute),
        "IPA",
    )
    textgrid, sound = call(synth, "To Sound", text, "yes")
    assert isinstance(sound, parselmouth.Sound)
    samples = np.asarray(sound.values[0], dtype=np.float64)
    top = float(np.max(np.abs(samples))) if samples.size else 0.0
    if top > 0:
        samples = samples * (peak / top)
    words = _word_spans(textgrid, call)
    return Utterance(samples.astype(np.float32), int(sound.sampling_frequency), words)


def _word_spans(textgrid: Any, call: Any) -> tuple[tuple[float, float, str], ...]:
    tier = 3  # sentence, clause, word, phoneme
    spans = []
    for i in range(1, int(call(textgrid, "Get number of intervals", tier)) + 1):
        label = str(call(textgrid, "Get label of interval", tier, i)).strip()
        if label:
            start = float(call(textgrid, "Get start time of interval", tier, i))
            end = float(call(textgrid, "Get end time of interval", tier, i))
            spans.append((round(start, 4), round(end, 4), label))
    return tuple(spans)


def to_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV bytes of float samples in -1..1."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def synthesize(
    text: str,
    language: str = "zh",
    voice: str = "Female1",
    *,
    fmt: str = "wav",
    sample_rate: int = 16000,
    words_per_minute: float = 175.0,
    pitch_multiplier: float = 1.0,
    pitch_range: float = 1.0,
) -> bytes:
    """Return an encoded recording of ``text`` spoken by Praat's synthesiser.

    Signature: ``synthesize(text, language="zh", voice="Female1", *, fmt="wav",
    sample_rate=16000, words_per_minute=175.0, pitch_multiplier=1.0, pitch_range=1.0)
    -> bytes``.

    ``language`` is ``"zh"`` (Mandarin), ``"en"`` (British English), ``"en-us"`` or a Praat
    language name; ``voice`` a Praat variant such as ``"Female1"``/``"Male1"``; ``fmt`` one
    of wav, mp3, ogg, webm, m4a, aac, flac, amr, 3gp. Deterministic and offline.
    """
    utt = render(
        text,
        language,
        voice,
        sample_rate=sample_rate,
        words_per_minute=words_per_minute,
        pitch_multiplier=pitch_multiplier,
        pitch_range=pitch_range,
    )
    return utt.to_bytes(fmt)
