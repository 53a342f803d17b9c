"""`python -m tests.faults.drill worker ...`: the real `vocalborn` CLI with a fast engine.

Fault drills are about delivery, not acoustics: the drill engine reads both recordings (so a
missing file still fails), reports the five steps like the real engine (the worker's progress
reporter, heartbeats, cancel checks and ANALYSIS_STEP_DELAY_SECONDS all run as in production),
and returns a valid report. A recording whose SHA-256 is listed in DRILL_POISON_SHA256 kills its
pool child with SIGKILL every time it is analysed: the poison message of the field notes.
"""

from __future__ import annotations

import hashlib
import os
import signal
from pathlib import Path
from typing import Any

from vocalborn.analysis.types import STEPS, AnalysisReport, AudioSource, ProgressCallback


class DrillEngine:
    name = "drill"
    version = "drill-1"

    def __init__(self) -> None:
        self.poison = {h for h in os.environ.get("DRILL_POISON_SHA256", "").split(",") if h}

    def analyze(
        self,
        reference: AudioSource,
        attempt: AudioSource,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> AnalysisReport:
        ref = Path(str(reference)).read_bytes()
        att = Path(str(attempt)).read_bytes()
        for number, (key, _zh, _en) in enumerate(STEPS, start=1):
            if progress is not None:
                progress(number, key)
            if number == 2 and hashlib.sha256(att).hexdigest() in self.poison:
                os.kill(os.getpid(), signal.SIGKILL)
        score = float(50 + (len(ref) + len(att)) % 50)
        return AnalysisReport(
            overall_score=score,
            pronunciation_accuracy=score,
            fluency_score=score,
            rhythm_score=score,
            detailed_analysis={"engine": "drill", "reference_bytes": len(ref), "attempt_bytes": len(att)},
            sentence_analyses=[{"index": 0, "overall_score": score}],
            suggestions="",
            improvement_areas=[],
            analysis_model_version=self.version,
        )


if os.environ.get("DRILL_CHILD_STACKS"):  # diagnostic: where a slow pool child is, 3.5 s after its fork
    import faulthandler

    def _arm() -> None:
        out = open(Path(os.environ["DRILL_CHILD_STACKS"]) / f"child-{os.getpid()}.txt", "w")  # noqa: SIM115
        faulthandler.dump_traceback_later(3.5, file=out)

    os.register_at_fork(after_in_child=_arm)


def main() -> None:
    from vocalborn import cli
    from vocalborn.tasks.worker import runner

    engine = DrillEngine()
    runner.analysis_engine = lambda: engine  # type: ignore[assignment] # forked pool children inherit it
    cli.main()


if __name__ == "__main__":
    main()
