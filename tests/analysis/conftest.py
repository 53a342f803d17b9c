"""Shared fixtures: synthesized recordings (no audio files ship with the tests)."""

from __future__ import annotations

import numpy as np
import pytest

from vocalborn.analysis.engine import LocalEngine
from vocalborn.analysis.synth import Utterance, render

SENTENCE = "我今天很高興見到你"


@pytest.fixture(scope="session")
def engine() -> LocalEngine:
    return LocalEngine()


@pytest.fixture(scope="session")
def utterance() -> Utterance:
    return render(SENTENCE, "zh", "Female1")


@pytest.fixture(scope="session")
def reference_wav(utterance: Utterance) -> bytes:
    return utterance.to_bytes()


@pytest.fixture(scope="session")
def samples(utterance: Utterance) -> np.ndarray:
    return np.array(utterance.samples)
