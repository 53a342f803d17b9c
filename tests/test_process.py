"""Start-up moves the process's long-lived objects out of the garbage collector's way."""

from __future__ import annotations

import gc

from vocalborn.process import freeze_startup_objects


def test_startup_objects_are_frozen_and_later_ones_are_not() -> None:
    gc.unfreeze()
    try:
        freeze_startup_objects()
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the modules, classes and functions loaded so far
        made_after = [[1]]
        collected = gc.get_objects()  # what a full collection scans (the frozen objects are not in it)
        assert any(made_after is o for o in collected)  # later objects stay with the collector
        assert not any(freeze_startup_objects is o for o in collected)  # a function loaded at start-up
    finally:
        gc.unfreeze()


def test_the_api_freezes_at_start_up(api: object) -> None:
    assert gc.get_freeze_count() > 10_000  # the app's lifespan ran (the api fixture enters it)
