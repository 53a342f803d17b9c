"""CPU time of the engine's two halves on real speech (figures only; tests assert none).

Usage: ``uv run python bench/engine_cpu.py REAL_SPEECH_DIR``

``prepare()`` every clip of the manifest (CPU seconds per second of audio), then
``build_report()`` for every same-sentence pair with its transcript (CPU ms per pair),
timed with ``time.process_time()`` so a loaded machine distorts it less than wall time.
Run it on two checkouts to compare engine versions.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

from vocalborn.analysis.decode import load_audio
from vocalborn.analysis.engine import ENGINE_VERSION, build_report, prepare


def main(folder: Path) -> None:
    with (folder / "manifest.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    audio = {r["clip"]: load_audio(folder / r["file"]) for r in rows}
    prepare(audio[rows[0]["clip"]])  # warm-up: the recogniser loads
    t0 = time.process_time()
    prepared = {clip: prepare(x) for clip, x in audio.items()}
    t1 = time.process_time()
    n = 0
    for ref in rows:
        for att in rows:
            if att is not ref and att["sentence"] == ref["sentence"]:
                build_report(prepared[ref["clip"]], prepared[att["clip"]], {"text": ref["transcript"]})
                n += 1
    t2 = time.process_time()
    seconds = sum(len(x) for x in audio.values()) / 16000
    print(
        f"{ENGINE_VERSION}: prepare {(t1 - t0) / seconds:.4f} s CPU per s of audio ({seconds:.1f} s); "
        f"build_report {(t2 - t1) / max(n, 1) * 1000:.1f} ms CPU per pair ({n} pairs)"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/real-speech"))
