"""Warm analysis speed of this checkout's engine beside a baseline engine, in one run
(figures only; tests assert none).

Usage: ``uv run python bench/speed_vs_baseline.py BASELINE_SRC REAL_SPEECH_DIR [ROUNDS]``

``BASELINE_SRC`` is the ``src`` folder of another checkout (e.g. ``/work/main/src``). Each
round starts one fresh process per engine, alternating baseline and candidate, so both
see the same load on a shared machine. A process warms up on one pair, then analyses
every clip of the manifest against another clip of the same sentence with the
transcript, through ``LocalEngine(reference_cache_size=0)`` and file paths: both
recordings are decoded and analysed each time, as the acceptance figure asks. It prints
seconds (wall and CPU) per second of attempt audio; the medians over rounds are compared.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"


def child(folder: Path) -> None:
    """Measure in this process and print one JSON line."""
    from vocalborn.analysis.decode import load_audio
    from vocalborn.analysis.engine import ENGINE_VERSION, LocalEngine

    with (folder / "manifest.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    pairs = []
    for r in rows:
        other = next((o for o in rows if o is not r and o["sentence"] == r["sentence"]), None)
        if other is not None:
            pairs.append((folder / other["file"], folder / r["file"], other["transcript"]))
    engine = LocalEngine(reference_cache_size=0)
    engine.analyze(pairs[0][0], pairs[0][1], {"text": pairs[0][2]})  # warm-up: the recogniser loads
    seconds = sum(len(load_audio(att)) / 16000.0 for _, att, _ in pairs)
    w0, c0 = time.perf_counter(), time.process_time()
    for ref, att, text in pairs:
        engine.analyze(ref, att, {"text": text})
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(json.dumps({"version": ENGINE_VERSION, "pairs": len(pairs), "wall": wall / seconds, "cpu": cpu / seconds}))


def run(src: Path, folder: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder)], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(baseline_src: Path, folder: Path, rounds: int) -> None:
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "candidate": []}
    for _ in range(rounds):
        results["baseline"].append(run(baseline_src, folder))
        results["candidate"].append(run(HERE_SRC, folder))
    print("| engine | version | pairs | wall s per s of attempt (median, min..max) | CPU s per s (median) |")
    print("|---|---|---|---|---|")
    for name, rs in results.items():
        walls = [r["wall"] for r in rs]
        print(
            f"| {name} | {rs[0]['version']} | {rs[0]['pairs']} | {statistics.median(walls):.3f} "
            f"({min(walls):.3f}..{max(walls):.3f}) | {statistics.median(r['cpu'] for r in rs):.3f} |"
        )


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
    else:
        main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 3)
