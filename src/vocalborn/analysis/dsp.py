"""Signal processing in plain numpy: framing, MFCCs with vocal-tract-length warping,
frame intensity, speech/pause segmentation and dynamic time warping.

Written here rather than taken from librosa/scipy because those cost 0.5-1.5 s of import
time in a fresh worker or CLI process, and the handful of routines needed are short.
Everything is vectorised and deterministic (no threads of our own, no randomness).

Frame convention: frame ``k`` is centred on ``k * HOP`` seconds (the signal is padded by
half a window on each side), so frame indices convert to seconds by ``k * HOP``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
HOP = 0.01  # seconds between frames
HOP_SAMPLES = 160
WIN_SAMPLES = 400  # 25 ms analysis window
N_FFT = 512
N_MELS = 30
N_CEPS = 12  # c1..c12; c0 (loudness) is left out so level differences do not count
MEL_FMIN = 80.0
MEL_FMAX = 7600.0
# Log filterbank energies are floored this far below the utterance's loud frames, so
# background noise and codec artefacts in quiet parts do not dominate the cepstra.
LOG_FLOOR_DB = 30.0


def frame_signal(x: np.ndarray, win: int = WIN_SAMPLES, hop: int = HOP_SAMPLES) -> np.ndarray:
    """Centred frames of ``x``: shape (n_frames, win), frame k centred at sample k*hop."""
    pad = win // 2
    xp = np.concatenate([np.zeros(pad, x.dtype), x, np.zeros(pad + hop, x.dtype)])
    n_frames = 1 + len(x) // hop
    view = np.lib.stride_tricks.sliding_window_view(xp, win)
    return view[: n_frames * hop : hop][:n_frames]


@lru_cache(maxsize=4)
def _window(win: int) -> np.ndarray:
    return np.hamming(win).astype(np.float64)


def power_spectrum(x: np.ndarray) -> np.ndarray:
    """Pre-emphasised, Hamming-windowed power spectra, shape (n_frames, N_FFT//2+1)."""
    x = np.asarray(x, dtype=np.float64)
    emphasised = np.empty_like(x)
    if x.size:
        emphasised[0] = x[0]
        emphasised[1:] = x[1:] - 0.97 * x[:-1]
    frames = frame_signal(emphasised) * _window(WIN_SAMPLES)
    spec = np.fft.rfft(frames, N_FFT, axis=1)
    return spec.real**2 + spec.imag**2


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def _warp(freqs: np.ndarray, alpha: float, nyquist: float) -> np.ndarray:
    """Piecewise-linear frequency warp (Lee & Rose 1998): scale by ``alpha`` up to a knee,
    then bend linearly so the Nyquist frequency maps onto itself."""
    knee = 0.85 * nyquist * min(1.0, 1.0 / alpha)
    upper = alpha * knee + (nyquist - alpha * knee) * (freqs - knee) / (nyquist - knee)
    return np.where(freqs <= knee, alpha * freqs, upper)


@lru_cache(maxsize=64)
def mel_filterbank(alpha: float = 1.0, fmax: float = MEL_FMAX) -> np.ndarray:
    """Triangular mel filters, shape (N_FFT//2+1, N_MELS), optionally frequency-warped.

    ``alpha`` > 1 samples the spectrum higher up: it maps a speaker with a shorter vocal
    tract (higher formants, e.g. a woman or child) onto a longer one.
    """
    nyquist = SAMPLE_RATE / 2
    edges = _mel_to_hz(np.linspace(_hz_to_mel(MEL_FMIN), _hz_to_mel(fmax), N_MELS + 2))
    edges = _warp(edges, alpha, nyquist)
    bins = np.linspace(0.0, nyquist, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lo) / np.maximum(mid - lo, 1e-9)
    falling = (hi - bins[None, :]) / np.maximum(hi - mid, 1e-9)
    fb = np.clip(np.minimum(rising, falling), 0.0, None)
    fb /= np.maximum(fb.sum(axis=1, keepdims=True), 1e-12)  # equal-area: level independent
    fb = fb.T.copy()
    fb.flags.writeable = False
    return fb


@lru_cache(maxsize=4)
def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II rows 1..n_out (c0 dropped), shape (n_in, n_out)."""
    k = np.arange(1, n_out + 1)[None, :]
    n = np.arange(n_in)[:, None]
    m = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    m.flags.writeable = False
    return m


def log_mel(power: np.ndarray, alpha: float = 1.0, fmax: float = MEL_FMAX) -> np.ndarray:
    """Log mel energies (natural log) floored LOG_FLOOR_DB below the loud frames."""
    mel = power @ mel_filterbank(round(float(alpha), 3), round(float(fmax)))
    top = float(np.quantile(mel.max(axis=1), 0.95)) if mel.size else 1.0
    floor = max(top, 1e-12) * 10.0 ** (-LOG_FLOOR_DB / 10.0)
    return np.log(np.maximum(mel, floor))


def mfcc_from_power(power: np.ndarray, alpha: float = 1.0, fmax: float = MEL_FMAX) -> np.ndarray:
    """MFCC c1..c12 of each frame (no liftering), shape (n_frames, N_CEPS)."""
    return log_mel(power, alpha, fmax) @ _dct_matrix(N_MELS, N_CEPS)


def effective_bandwidth(power: np.ndarray, speech: np.ndarray) -> float:
    """Highest frequency (Hz) carrying signal: where the long-term spectrum of the speech
    frames stays within 40 dB of its peak. Codecs cut sharply (AMR-NB near 4 kHz, low
    bit-rate MP3 near 6 kHz); comparing a band one recording lacks would read as a
    pronunciation difference, so both recordings are analysed up to the lower bandwidth.
    """
    frames = power[speech] if speech.any() else power
    if frames.size == 0:
        return SAMPLE_RATE / 2
    level = 10.0 * np.log10(frames.mean(axis=0) + 1e-20)
    smooth = np.convolve(np.pad(level, 4, mode="edge"), np.ones(9) / 9, mode="valid")
    above = np.flatnonzero(smooth > smooth.max() - 40.0)
    return float(above[-1]) * (SAMPLE_RATE / 2) / (len(level) - 1)


def suppress_noise(power: np.ndarray, intensity_db: np.ndarray, over: float = 2.0) -> np.ndarray:
    """Spectral subtraction (Boll 1979) of a stationary noise estimate.

    The noise spectrum is the mean of the quietest 10 % of frames; ``over`` times it is
    subtracted, keeping at least 5 % of each bin so the log stays finite. Deterministic
    and cheap, and it keeps steady fan or hiss from pulling every frame's cepstrum
    towards the noise's.
    """
    if len(power) < 10:
        return power
    quiet = intensity_db <= np.quantile(intensity_db, 0.10)
    noise = power[quiet].mean(axis=0)
    return np.maximum(power - over * noise, 0.05 * power)


def deltas(feat: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over +-width frames (edges repeated)."""
    n = len(feat)
    if n == 0:
        return feat.copy()
    padded = np.concatenate([np.repeat(feat[:1], width, 0), feat, np.repeat(feat[-1:], width, 0)])
    num = np.zeros_like(feat)
    for k in range(1, width + 1):
        num += k * (padded[width + k : width + k + n] - padded[width - k : width - k + n])
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def frame_intensity_db(x: np.ndarray) -> np.ndarray:
    """Frame level in dB re full scale (mean square over a 40 ms Hann window, 10 ms hop).

    The longer window smooths over pitch periods, like Praat's intensity with a 50 Hz
    minimum pitch as used by de Jong & Wempe (2009).
    """
    frames = frame_signal(np.asarray(x, dtype=np.float64), win=640)
    w = np.hanning(640)
    energy = (frames**2) @ (w / w.sum())
    return 10.0 * np.log10(energy + 1e-10)


@dataclass(frozen=True)
class Segmentation:
    """Speech/pause segmentation of one recording (frame indices, end exclusive)."""

    threshold_db: float
    speech: np.ndarray  # bool per frame
    span: tuple[int, int]  # first and one-past-last speech frame
    pauses: tuple[tuple[int, int], ...]  # internal silent runs of at least MIN_PAUSE


MIN_PAUSE = 0.15  # seconds; shorter silences are stop closures or word gaps
MIN_SPEECH_RUN = 0.05  # seconds; shorter bursts are clicks


def segment_speech(intensity_db: np.ndarray) -> Segmentation:
    """Split a recording into speech and silence from its intensity contour.

    Threshold: 25 dB below the 99th-percentile level (de Jong & Wempe 2009), but at least
    8 dB above the noise floor (10th percentile) so steady background noise is silence.
    """
    n = len(intensity_db)
    if n == 0:
        return Segmentation(0.0, np.zeros(0, bool), (0, 0), ())
    top = float(np.quantile(intensity_db, 0.99))
    floor = float(np.quantile(intensity_db, 0.10))
    threshold = max(top - 25.0, min(floor + 8.0, top - 6.0))
    speech = intensity_db > threshold
    speech = _remove_short_runs(speech, True, int(round(MIN_SPEECH_RUN / HOP)))
    idx = np.flatnonzero(speech)
    if idx.size == 0:
        return Segmentation(threshold, speech, (0, 0), ())
    start, end = int(idx[0]), int(idx[-1]) + 1
    min_pause = int(round(MIN_PAUSE / HOP))
    pauses = tuple((a, b) for a, b in runs(~speech[start:end], offset=start) if b - a >= min_pause)
    return Segmentation(threshold, speech, (start, end), pauses)


def runs(mask: np.ndarray, offset: int = 0) -> list[tuple[int, int]]:
    """(start, end) index pairs of the True runs of ``mask`` (end exclusive)."""
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return [(int(a) + offset, int(b) + offset) for a, b in zip(starts, ends, strict=True)]


def _remove_short_runs(mask: np.ndarray, value: bool, min_len: int) -> np.ndarray:
    out = mask.copy()
    target = mask if value else ~mask
    for a, b in runs(target):
        if b - a < min_len:
            out[a:b] = not value
    return out


def pairwise_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and of ``b``, shape (len(a), len(b))."""
    aa = np.einsum("ij,ij->i", a, a)[:, None]
    bb = np.einsum("ij,ij->i", b, b)[None, :]
    d2 = aa + bb - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def dtw(cost: np.ndarray, penalty: float = 0.0) -> tuple[float, np.ndarray]:
    """Dynamic time warping (Sakoe & Chiba 1978), symmetric form: steps (1,0) and (0,1)
    cost ``c + penalty``, the diagonal step costs ``2c``, so every path's weights sum to
    ``n + m`` and ``D / (n + m)`` is a length-independent mean cost.

    The ``penalty`` on non-diagonal steps stops the path from collapsing a badly matching
    stretch onto a single frame (which the symmetric form otherwise finds about as cheap
    as matching it diagonally), so a mispronounced syllable stays aligned with the
    syllable it replaced and is found at the right place.

    Returns that normalised cost and the best path from (0, 0) to (n-1, m-1) as an (L, 2)
    int array of (row, column) pairs.

    The row recursion ``D[i,j] = min(D[i-1,j-1] + 2c, D[i-1,j] + c + p, D[i,j-1] + c + p)``
    has a sequential dependency along the row; it is solved exactly in vectorised form as
    a prefix minimum: with ``S = cumsum(c[i] + p)`` and ``A[j] = min(D[i-1,j-1] + 2c[i,j],
    D[i-1,j] + c[i,j] + p)``, ``D[i,j] = S[j] + min_{k<=j}(A[k] - S[k])``. One numpy pass
    per row instead of a Python loop over cells.
    """
    n, m = cost.shape
    acc = np.empty((n, m), dtype=np.float64)
    acc[0] = np.cumsum(cost[0] + penalty)
    acc[0] += cost[0, 0] - penalty  # the start cell counts double and has no step
    best = np.empty(m, dtype=np.float64)
    tmp = np.empty(m - 1, dtype=np.float64)
    for i in range(1, n):
        _row_step(acc[i - 1], cost[i], penalty, best, tmp, acc[i])
    return float(acc[-1, -1]) / (n + m), _backtrack(acc, cost, penalty)


def _row_step(
    prev: np.ndarray,
    row: np.ndarray,
    penalty: float,
    best: np.ndarray,
    tmp: np.ndarray,
    out: np.ndarray,
) -> None:
    step = row + penalty
    best[0] = prev[0] + step[0]
    np.add(prev[:-1], row[1:], out=tmp)
    np.add(tmp, row[1:], out=tmp)  # diagonal: 2c
    np.add(prev[1:], step[1:], out=best[1:])  # vertical: c + penalty
    np.minimum(best[1:], tmp, out=best[1:])
    s = np.cumsum(step)
    best -= s
    np.minimum.accumulate(best, out=out)
    out += s


def _backtrack(acc: np.ndarray, cost: np.ndarray, penalty: float) -> np.ndarray:
    n, m = acc.shape
    i, j = n - 1, m - 1
    rows = [i]
    cols = [j]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            c = float(cost[i, j])
            diag = float(acc[i - 1, j - 1]) + c
            up = float(acc[i - 1, j]) + penalty
            left = float(acc[i, j - 1]) + penalty
            if diag <= up and diag <= left:
                i -= 1
                j -= 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        rows.append(i)
        cols.append(j)
    path = np.empty((len(rows), 2), dtype=np.int64)
    path[:, 0] = rows[::-1]
    path[:, 1] = cols[::-1]
    return path


def dtw_cost_only(cost: np.ndarray, penalty: float = 0.0) -> float:
    """Normalised cost of the best path (same recursion as :func:`dtw`, no path)."""
    n, m = cost.shape
    prev = np.cumsum(cost[0] + penalty)
    prev += cost[0, 0] - penalty
    cur = np.empty(m, dtype=np.float64)
    best = np.empty(m, dtype=np.float64)
    tmp = np.empty(m - 1, dtype=np.float64)
    for i in range(1, n):
        _row_step(prev, cost[i], penalty, best, tmp, cur)
        prev, cur = cur, prev
    return float(prev[-1]) / (n + m)
