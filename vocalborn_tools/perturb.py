"""Controlled edits of recordings, for calibration and tests (not used by the engine).

Each edit mimics a learner's real deviation or a recording condition: another voice
pitch, a slower or faster tempo, flattened tones, an inserted pause, background noise.
Pitch and tempo edits use Praat's PSOLA resynthesis (``Change gender``), which keeps the
formants, so only the intended property changes. PSOLA draws random numbers for unvoiced
stretches, so each edit seeds Praat's generator from the input first: the same recording
always gives the same edited bytes (unseeded, a 4-semitone shift of one synthetic sentence
scored anywhere from 84 to 94 from run to run, which made the calibration test flaky).

Noise needs randomness: callers pass their own seeded ``numpy.random.Generator``; nothing
here seeds or draws on its own.
"""

from __future__ import annotations

import zlib

import numpy as np

SAMPLE_RATE = 16000


def _sound(x: np.ndarray, sr: int) -> object:
    import parselmouth

    return parselmouth.Sound(np.asarray(x, dtype=np.float64), sampling_frequency=float(sr))


def _change(
    x: np.ndarray,
    sr: int,
    *,
    pitch_factor: float = 1.0,
    range_factor: float = 1.0,
    duration_factor: float = 1.0,
) -> np.ndarray:
    """Praat ``Change gender`` (PSOLA) with formants unchanged."""
    from parselmouth.praat import call, run

    samples = np.ascontiguousarray(x, dtype=np.float32)
    seed = zlib.crc32(samples.tobytes()) ^ zlib.crc32(repr((sr, pitch_factor, range_factor, duration_factor)).encode())
    run(f"random_initializeWithSeedUnsafelyButPredictably ({seed})")
    try:
        snd = _sound(x, sr)
        pitch = call(snd, "To Pitch", 0.01, 60, 700)
        median = float(call(pitch, "Get quantile", 0, 0, 0.5, "Hertz"))
        out = call(snd, "Change gender", 60, 700, 1.0, median * pitch_factor, range_factor, duration_factor)
    finally:
        run("random_initializeSafelyAndUnpredictably ()")
    y = np.asarray(out.values[0], dtype=np.float32)
    return _match_peak(y, x)


def _match_peak(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    top = float(np.max(np.abs(y))) or 1.0
    return (y * (float(np.max(np.abs(like))) / top)).astype(np.float32)


def pitch_shift(x: np.ndarray, semitones: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Shift the voice pitch by ``semitones`` (formants and timing kept)."""
    return _change(x, sr, pitch_factor=2.0 ** (semitones / 12.0))


def change_tempo(x: np.ndarray, tempo: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``tempo`` times as fast (0.8: slower, 1.25: faster), pitch kept."""
    return _change(x, sr, duration_factor=1.0 / tempo)


def monotone(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Flatten the pitch contour to the speaker's median: Mandarin tones removed."""
    return _change(x, sr, range_factor=0.0)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white noise at ``snr_db`` relative to the mean power of the louder half of frames."""
    x = np.asarray(x, dtype=np.float64)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    power = np.mean(frames**2, axis=1)
    speech_power = float(np.mean(np.sort(power)[len(power) // 2 :]))
    noise = rng.standard_normal(len(x)) * np.sqrt(speech_power / 10 ** (snr_db / 10.0))
    return (x + noise).astype(np.float32)


def insert_silence(x: np.ndarray, at: float, seconds: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Insert ``seconds`` of silence at time ``at``."""
    i = int(round(at * sr))
    gap = np.zeros(int(round(seconds * sr)), dtype=np.float32)
    return np.concatenate([x[:i], gap, x[i:]]).astype(np.float32)


def pad_silence(x: np.ndarray, before: float, after: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Add silence before and after the recording."""
    return np.concatenate([np.zeros(int(before * sr), np.float32), x, np.zeros(int(after * sr), np.float32)]).astype(
        np.float32
    )


def white_noise(seconds: float, level: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Pure noise of ``seconds`` with RMS ``level``."""
    return (rng.standard_normal(int(seconds * sr)) * level).astype(np.float32)
