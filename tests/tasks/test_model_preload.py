"""The phone recogniser loads once per worker process, when it starts, and never in the API."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.worker  # fresh Python processes

ENV = {**os.environ, "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")}


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_the_api_process_never_imports_the_recogniser() -> None:
    code = (
        "import sys, vocalborn.main as m; m.create_app(); "
        "print(any(n == 'hama' or n.startswith('hama.') or n == 'vocalborn.analysis.phonetic' for n in sys.modules))"
    )
    assert _run(code) == "False"


def test_a_worker_process_loads_the_model_when_it_starts() -> None:
    code = (
        "from vocalborn.tasks.worker import tasks as worker; from vocalborn.analysis import phonetic; "
        "before = phonetic.model_loaded(); worker._after_fork(); "
        "m = phonetic.load_model(); worker._after_fork(); "
        "print(before, phonetic.model_loaded(), phonetic.load_model() is m)"
    )
    assert _run(code) == "False True True"
