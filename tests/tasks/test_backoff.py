from __future__ import annotations

import pytest


def test_backoff_grows_exponentially_with_jitter_and_a_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalborn.config import get_settings
    from vocalborn.tasks.worker.runner import backoff_seconds

    monkeypatch.setenv("RETRY_BACKOFF_BASE", "2")
    monkeypatch.setenv("RETRY_BACKOFF_MAX", "10")
    get_settings.cache_clear()
    try:
        for n, ceiling in ((1, 2), (2, 4), (3, 8), (4, 10), (9, 10)):
            delays = [backoff_seconds(n) for _ in range(200)]
            assert all(ceiling / 2 <= d <= ceiling for d in delays)
            assert max(delays) - min(delays) > 0  # jittered, not a constant
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
