"""Per-recording features: spectra, intensity, speech segmentation, pitch, voice quality
and syllable nuclei.

Praat (through parselmouth) does what it does best and fast in C: pitch tracking and the
glottal point process for jitter/shimmer. Everything frame-based lives on the common
10 ms grid of :mod:`vocalborn.analysis.dsp` so the comparison can index all contours with
the same DTW path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vocalborn.analysis import dsp
from vocalborn.analysis.tones import tone_track
from vocalborn.analysis.types import UnusableAudioError

# Usability limits. The messages are for learners, in zh-TW with English. A recording is
# usable with MIN_VOICED_SECONDS of voiced speech (one syllable said alone is a normal
# exercise) or, voiced or not, MIN_SPEECH_SECONDS of speech by intensity.
MIN_SPEECH_SECONDS = 0.3
MIN_VOICED_SECONDS = 0.15
SILENCE_PEAK_DBFS = -50.0  # a recording whose peak stays below this is silence
CLIPPED_SHARE_LIMIT = 0.02  # share of speech samples at full scale beyond which: unusable

MSG_SILENT = (
    "錄音裡聽不到聲音，請靠近麥克風再錄一次 (The recording is silent: please record again closer to the microphone.)"
)
MSG_TOO_SHORT = "錄音裡的說話太短，請再說一次，說清楚一點 (There is too little speech in the recording: please say it again, clearly.)"
MSG_CLIPPED = "錄音音量過大而失真，請離麥克風遠一點再錄一次 (The recording is too loud and distorted: please move away from the microphone and record again.)"


@dataclass(frozen=True)
class VoiceQuality:
    """Mean harmonics-to-noise ratio (dB), local jitter and local shimmer (fractions)."""

    hnr_db: float | None
    jitter_local: float | None
    shimmer_local: float | None


@dataclass(frozen=True)
class RecordingFeatures:
    """Everything the comparison needs from one recording, on the 10 ms frame grid."""

    duration: float
    power: np.ndarray  # (n, 257) power spectra after stationary-noise suppression
    bandwidth: float  # Hz, see dsp.effective_bandwidth
    intensity_db: np.ndarray  # (n,)
    segmentation: dsp.Segmentation
    f0: np.ndarray  # (n,) Hz, 0 where unvoiced
    pitch_floor: float
    pitch_ceiling: float
    median_f0: float  # Hz, 0 if no voiced frame
    voice: VoiceQuality
    nuclei: np.ndarray  # frame indices of syllable nuclei (de Jong & Wempe 2009)
    # F0 for tones (Hz, 0 unvoiced): every voiced run touching speech, octave-repaired
    # (:func:`vocalborn.analysis.tones.tone_track`); ``f0`` above is masked to speech.
    tone_f0: np.ndarray

    @property
    def voiced_seconds(self) -> float:
        return float(np.count_nonzero(self.tone_f0 > 0)) * dsp.HOP

    @property
    def n_frames(self) -> int:
        return len(self.intensity_db)

    @property
    def semitones(self) -> np.ndarray:
        """F0 in semitones relative to the speaker's median (NaN where unvoiced)."""
        out = np.full(self.n_frames, np.nan)
        voiced = self.f0 > 0
        if self.median_f0 > 0:
            out[voiced] = 12.0 * np.log2(self.f0[voiced] / self.median_f0)
        return out


def check_usable(
    samples: np.ndarray, intensity_db: np.ndarray, seg: dsp.Segmentation, voiced_seconds: float | None = None
) -> None:
    """Raise :class:`UnusableAudioError` for silence, too little speech or heavy clipping.

    ``voiced_seconds`` (of the tone track) lets a short voiced item through: enough speech
    is MIN_SPEECH_SECONDS by intensity or MIN_VOICED_SECONDS voiced."""
    check_signal(samples)
    peak = float(np.max(np.abs(samples)))
    speech_frames = int(seg.speech.sum())
    voiced_ok = voiced_seconds is not None and voiced_seconds >= MIN_VOICED_SECONDS
    if speech_frames * dsp.HOP < MIN_SPEECH_SECONDS and not voiced_ok:
        raise UnusableAudioError(MSG_TOO_SHORT)
    if peak >= 0.98:
        # Clipping shows as runs of samples stuck near full scale; count them in speech.
        start, end = seg.span
        part = np.abs(samples[start * dsp.HOP_SAMPLES : end * dsp.HOP_SAMPLES])
        near = part >= 0.98 * peak
        stuck = near[1:] & near[:-1]
        if part.size and float(stuck.mean()) > CLIPPED_SHARE_LIMIT:
            raise UnusableAudioError(MSG_CLIPPED)


def check_signal(samples: np.ndarray) -> None:
    """Raise :class:`UnusableAudioError` for an empty or silent recording."""
    if samples.size == 0:
        raise UnusableAudioError(MSG_SILENT)
    if float(np.max(np.abs(samples))) <= 10 ** (SILENCE_PEAK_DBFS / 20):
        raise UnusableAudioError(MSG_SILENT)


def _pitch_on_grid(pitch: object, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz, 0 unvoiced) and candidate strength of a Praat Pitch on our frame grid."""
    sel = pitch.selected_array  # type: ignore[attr-defined]  # parselmouth's stubs omit Pitch's attributes
    freq = np.asarray(sel["frequency"], dtype=np.float64)
    strength = np.asarray(sel["strength"], dtype=np.float64)
    x1 = float(pitch.x1)  # type: ignore[attr-defined]  # parselmouth's stubs omit Pitch's attributes
    dx = float(pitch.dx)  # type: ignore[attr-defined]  # parselmouth's stubs omit Pitch's attributes
    idx = np.rint((np.arange(n_frames) * dsp.HOP - x1) / dx).astype(np.int64)
    valid = (idx >= 0) & (idx < len(freq))
    f0 = np.zeros(n_frames)
    st = np.zeros(n_frames)
    f0[valid] = freq[idx[valid]]
    st[valid] = strength[idx[valid]]
    f0[~np.isfinite(f0)] = 0.0
    return f0, st


def extract(samples: np.ndarray, check: bool = True) -> RecordingFeatures:
    """Compute :class:`RecordingFeatures` of a 16 kHz mono recording.

    With ``check`` the recording is first validated (:func:`check_usable`).
    """
    import parselmouth
    from parselmouth.praat import call

    x = np.asarray(samples, dtype=np.float64)
    intensity = dsp.frame_intensity_db(x)
    seg = dsp.segment_speech(intensity)
    if check:
        check_signal(x)
    n = len(intensity)
    sound = parselmouth.Sound(x, sampling_frequency=dsp.SAMPLE_RATE)

    # Two-pass, speaker-adaptive pitch range (De Looze & Hirst 2008): a wide first pass
    # finds the speaker's quartiles, the second tracks within 0.75*Q1 .. 2*Q3. This avoids
    # the octave jumps a fixed 75-600 Hz range makes on low male and high child voices.
    floor, ceiling = 60.0, 700.0
    pitch = sound.to_pitch_ac(time_step=dsp.HOP, pitch_floor=floor, pitch_ceiling=ceiling)
    f0, strength = _pitch_on_grid(pitch, n)
    voiced = f0[(f0 > 0) & seg.speech]
    if voiced.size >= 10:
        q1, q3 = np.quantile(voiced, [0.25, 0.75])
        floor = float(max(50.0, 0.75 * q1))
        ceiling = float(min(800.0, max(2.0 * q3, floor * 2.5)))
        pitch = sound.to_pitch_ac(time_step=dsp.HOP, pitch_floor=floor, pitch_ceiling=ceiling)
        f0, strength = _pitch_on_grid(pitch, n)

    tone_f0 = tone_track(f0, seg.speech)
    if check:
        check_usable(x, intensity, seg, float(np.count_nonzero(tone_f0 > 0)) * dsp.HOP)
    f0[~seg.speech] = 0.0
    voiced_mask = f0 > 0
    median_f0 = float(np.median(f0[voiced_mask])) if voiced_mask.any() else 0.0

    voice = _voice_quality(sound, pitch, strength[voiced_mask], call)
    nuclei = syllable_nuclei(intensity, voiced_mask, seg)
    power = dsp.power_spectrum(x)[:n]
    return RecordingFeatures(
        duration=len(x) / dsp.SAMPLE_RATE,
        power=dsp.suppress_noise(power, intensity),
        bandwidth=dsp.effective_bandwidth(power, seg.speech),
        intensity_db=intensity,
        segmentation=seg,
        f0=f0,
        pitch_floor=floor,
        pitch_ceiling=ceiling,
        median_f0=median_f0,
        voice=voice,
        nuclei=nuclei,
        tone_f0=tone_f0,
    )


def _voice_quality(sound: object, pitch: object, strength: np.ndarray, call: object) -> VoiceQuality:
    """HNR from the pitch tracker's autocorrelation peaks, jitter/shimmer from Praat.

    HNR uses Boersma's (1993) relation ``HNR = 10 log10(r / (1 - r))`` on the normalised
    autocorrelation peak ``r`` the pitch tracker already found in each voiced frame: the
    same quantity Praat's Harmonicity computes, without its second 70 ms-per-5 s pass.
    """
    hnr = None
    if strength.size:
        r = np.clip(strength, 1e-6, 0.999)
        hnr = float(np.mean(10.0 * np.log10(r / (1.0 - r))))
    jitter = shimmer = None
    if strength.size >= 5:
        try:
            points = call([sound, pitch], "To PointProcess (cc)")  # type: ignore[operator]  # parselmouth types praat.call's first argument too narrowly
            jitter = float(call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3))  # type: ignore[operator]  # parselmouth types praat.call's first argument too narrowly
            shimmer = float(
                call([sound, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)  # type: ignore[operator]  # parselmouth types praat.call's first argument too narrowly
            )
        except (RuntimeError, ValueError, ArithmeticError):  # Praat refuses when too few periods: unknown
            # (not Exception: a time limit the worker raises here must reach the worker)
            jitter = shimmer = None
        jitter = jitter if jitter is not None and np.isfinite(jitter) else None
        shimmer = shimmer if shimmer is not None and np.isfinite(shimmer) else None
    return VoiceQuality(hnr, jitter, shimmer)


def syllable_nuclei(intensity_db: np.ndarray, voiced: np.ndarray, seg: dsp.Segmentation) -> np.ndarray:
    """Frame indices of syllable nuclei after de Jong & Wempe (2009).

    Peaks of the intensity contour that lie above the silence threshold, rise at least
    2 dB above the dip separating them from the previous nucleus, and are voiced.
    """
    n = len(intensity_db)
    if n < 3:
        return np.zeros(0, dtype=np.int64)
    # Smooth over ~30 ms so pitch-period ripple does not make spurious peaks.
    k = np.array([0.25, 0.5, 0.25])
    smooth = np.convolve(np.pad(intensity_db, 1, mode="edge"), k, mode="valid")
    peaks = (
        np.flatnonzero((smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & (smooth[1:-1] > seg.threshold_db))
        + 1
    )
    min_dip = 2.0
    kept: list[int] = []
    for p in peaks.tolist():
        if not kept:
            kept.append(p)
            continue
        last = kept[-1]
        dip = float(smooth[last : p + 1].min())
        if smooth[p] - dip >= min_dip and smooth[last] - dip >= min_dip:
            kept.append(p)
        elif smooth[p] > smooth[last]:
            kept[-1] = p  # same syllable: keep the louder peak
    out = [p for p in kept if voiced[max(0, p - 2) : p + 3].any()]
    return np.asarray(out, dtype=np.int64)
