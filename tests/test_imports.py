"""Importing the app has no side effects: no settings, broker or database are needed to import it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_app_imports_from_an_empty_folder_with_no_configuration(tmp_path: Path) -> None:
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    code = (
        "import vocalborn.main, vocalborn.tasks.worker.tasks, vocalborn.celery_app as c; "
        "assert vocalborn.main.app.title; "
        "assert not c.celery_app.configured, 'the Celery app read its settings at import'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list(tmp_path.iterdir()), "importing the app wrote files"
