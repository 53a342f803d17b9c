"""Numerical building blocks: DTW against brute force, filterbanks, bandwidth, nPVI."""

from __future__ import annotations

import numpy as np
import pytest

from vocalborn.analysis import dsp
from vocalborn.analysis.compare import npvi
from vocalborn.analysis.decode import encode_audio, load_audio


def _brute_force(c: np.ndarray, penalty: float) -> float:
    n, m = c.shape
    d = np.full((n, m), np.inf)
    d[0, 0] = 2 * c[0, 0]
    for i in range(n):
        for j in range(m):
            if i == j == 0:
                continue
            best = np.inf
            if i and j:
                best = min(best, d[i - 1, j - 1] + 2 * c[i, j])
            if i:
                best = min(best, d[i - 1, j] + c[i, j] + penalty)
            if j:
                best = min(best, d[i, j - 1] + c[i, j] + penalty)
            d[i, j] = best
    return d[-1, -1] / (n + m)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (7, 9), (25, 18)])
@pytest.mark.parametrize("penalty", [0.0, 0.4])
def test_vectorised_dtw_equals_the_cell_by_cell_recursion(shape: tuple[int, int], penalty: float) -> None:
    c = np.random.default_rng(sum(shape)).random(shape)
    cost, path = dsp.dtw(c, penalty)
    assert cost == pytest.approx(_brute_force(c, penalty), abs=1e-9)
    assert dsp.dtw_cost_only(c, penalty) == pytest.approx(cost, abs=1e-12)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (shape[0] - 1, shape[1] - 1)
    steps = np.diff(path, axis=0)
    assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(axis=1) >= 1).all()


def test_dtw_follows_a_time_stretched_copy() -> None:
    a = np.sin(np.linspace(0, 6, 60))[:, None]
    b = np.sin(np.linspace(0, 6, 90))[:, None]
    _, path = dsp.dtw(dsp.pairwise_distance(a, b))
    slope = np.polyfit(path[:, 0], path[:, 1], 1)[0]
    assert 1.3 < slope < 1.7


def test_warped_filterbank_moves_filters_up_for_shorter_vocal_tracts() -> None:
    centre = lambda fb: (fb * np.arange(fb.shape[0])[:, None]).sum(0) / fb.sum(0)  # noqa: E731
    assert (centre(dsp.mel_filterbank(1.15))[:20] > centre(dsp.mel_filterbank(1.0))[:20]).all()


def test_effective_bandwidth_sees_the_codec_low_pass(samples: np.ndarray) -> None:
    full = dsp.power_spectrum(samples)
    amr = dsp.power_spectrum(load_audio(encode_audio(samples, 16000, "amr")))
    assert dsp.effective_bandwidth(full, np.ones(len(full), bool)) > 6500
    assert dsp.effective_bandwidth(amr, np.ones(len(amr), bool)) < 5000


def test_npvi_is_zero_for_even_durations_and_grows_with_alternation() -> None:
    assert npvi(np.array([0.2, 0.2, 0.2])) == 0.0
    assert npvi(np.array([0.1, 0.3, 0.1, 0.3])) == pytest.approx(100.0)
    assert npvi(np.array([0.2])) is None
