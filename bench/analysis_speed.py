"""Speed and memory of the local analysis engine (figures only; tests assert none).

Usage: ``uv run python bench/analysis_speed.py [REAL_SPEECH_DIR]``

With ``REAL_SPEECH_DIR`` (a folder laid out like ``/work/shared/data/real-speech``) the
warm figure is also taken on real recordings: every clip of the manifest analysed against
another clip of the same sentence, with the sentence text.

* warm real-time factor: analysis time per second of attempt audio, after a warm-up, over
  several synthesized pairs of different lengths (reference features not cached, so
  every run does the full work for both recordings);
* fresh-process time: ``python -c`` that imports the engine and analyses a pair of two
  ~5-second recordings, as the ``vocalborn analyze`` CLI does;
* peak resident memory (ru_maxrss) of this process and of the fresh process.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # vocalborn_tools: the repository root
from vocalborn.analysis.engine import LocalEngine
from vocalborn.analysis.synth import render, to_wav
from vocalborn_tools import perturb  # noqa: E402

TEXTS = {
    "short": "請把窗戶打開",
    "medium": "我們明天早上一起去公園散步",
    "long": "我們明天早上一起去公園散步，然後到圖書館借幾本書回家慢慢看",
    "very long": "今天天氣很好，我們明天早上一起去公園散步，然後到圖書館借幾本書，中午再去吃一碗熱熱的牛肉麵",
}


def warm_rtf() -> list[tuple[str, float, float, float, float]]:
    engine = LocalEngine(reference_cache_size=0)
    rows = []
    for label, text in TEXTS.items():
        x = np.array(render(text, "zh", "Female1").samples)
        ref = to_wav(x, 16000)
        att = to_wav(perturb.add_noise(perturb.change_tempo(x, 0.9), 25.0, np.random.default_rng(0)), 16000)
        att_seconds = len(perturb.change_tempo(x, 0.9)) / 16000
        engine.analyze(ref, att, {"text": text})  # warm-up
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            engine.analyze(ref, att, {"text": text})
            times.append(time.perf_counter() - t0)
        best = statistics.median(times)
        cached = LocalEngine()  # as in a worker: the reference's features are reused
        cached.analyze(ref, att, {"text": text})
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            cached.analyze(ref, att, {"text": text})
            warm.append(time.perf_counter() - t0)
        rows.append((label, len(x) / 16000, att_seconds, best, statistics.median(warm)))
    return rows


def warm_real(folder: Path) -> tuple[float, float, int]:
    """(total analysis seconds, total attempt seconds, pairs) over real same-sentence pairs."""
    import csv

    from vocalborn.analysis.decode import probe_audio

    rows = list(csv.DictReader((folder / "manifest.tsv").open(encoding="utf-8"), delimiter="\t"))
    engine = LocalEngine(reference_cache_size=0)
    total = audio = 0.0
    n = 0
    for r in rows:
        partner = next((o for o in rows if o["sentence"] == r["sentence"] and o is not r), r)
        ref, att = folder / partner["file"], folder / r["file"]
        params = {"text": partner["transcript"]}
        engine.analyze(ref, att, params)  # warm-up
        t0 = time.perf_counter()
        engine.analyze(ref, att, params)
        total += time.perf_counter() - t0
        audio += probe_audio(att).duration_seconds
        n += 1
    return total, audio, n


def fresh_process(tmp: Path) -> tuple[float, int]:
    """``vocalborn analyze REF ATT --text ...`` in a fresh process, as a user runs it."""
    text = "今天天氣很好，我們明天早上一起去公園散步，然後去看書"
    x = np.array(render(text, "zh", "Female1").samples)
    x = x[: 5 * 16000] if len(x) > 5 * 16000 else np.pad(x, (0, 5 * 16000 - len(x)))
    (tmp / "ref.wav").write_bytes(to_wav(x, 16000))
    (tmp / "att.wav").write_bytes(to_wav(perturb.change_tempo(x, 1.0), 16000))
    code = (
        "import resource, sys; from vocalborn.cli import app; "
        "sys.argv = ['vocalborn', 'analyze', sys.argv[1], sys.argv[2], '--text', sys.argv[3]]; "
        "import atexit; atexit.register(lambda: print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
        "file=sys.stderr)); app()"
    )
    runs = []
    rss = 0
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp / "ref.wav"), str(tmp / "att.wav"), text],
            capture_output=True,
            text=True,
        )
        runs.append(time.perf_counter() - t0)
        rss = max(rss, int(out.stderr.strip().splitlines()[-1]))
    return statistics.median(runs), rss


WORKER_CODE = """
import resource, sys
import numpy as np
import vocalborn.tasks.worker.tasks  # what a Celery pool process imports
from vocalborn.analysis.phonetic import preload
from vocalborn.analysis.synth import render, to_wav
from vocalborn.tasks.worker.runner import analysis_engine
preload()  # as worker_process_init does
text = "今天天氣很好，我們明天早上一起去公園散步，然後到圖書館借幾本書，中午再去吃一碗熱熱的牛肉麵"
ref = to_wav(np.array(render(text, "zh", "Female1").samples), 16000)
att = to_wav(np.array(render(text, "zh", "Male1").samples), 16000)
for _ in range(3):
    analysis_engine().analyze(ref, att, {"text": text})
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def worker_rss() -> int:
    """Peak RSS (KiB) of a process set up like a worker's pool process after analyses."""
    import os

    env = {**os.environ}
    # Importing the worker module needs a broker and Redis URL; nothing connects to them here.
    env.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    out = subprocess.run([sys.executable, "-c", WORKER_CODE], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print("warm analysis (median of 5, after warm-up; one core)")
    print(f"{'pair':<10} {'ref s':>6} {'att s':>6} {'ms':>7} {'ms per s':>9} {'cached ms':>10} {'per s':>7}")
    rtfs, cached_rtfs = [], []
    for label, ref_s, att_s, t, tc in warm_rtf():
        rtfs.append(t / att_s)
        cached_rtfs.append(tc / att_s)
        print(
            f"{label:<10} {ref_s:6.2f} {att_s:6.2f} {t * 1000:7.1f} {t / att_s * 1000:9.1f} "
            f"{tc * 1000:10.1f} {tc / att_s * 1000:7.1f}"
        )
    print(f"worst per second of attempt audio: {max(rtfs):.4f} s (both recordings analysed), ")
    print(f"  {max(cached_rtfs):.4f} s with the reference's features cached (the worker's usual case)")
    if len(sys.argv) > 1:
        total, audio, n = warm_real(Path(sys.argv[1]))
        print(f"real speech: {n} pairs, {audio:.1f} s of attempts in {total:.2f} s: RTF {total / audio:.4f}")
    with tempfile.TemporaryDirectory() as tmp:
        seconds, rss = fresh_process(Path(tmp))
    print(f"fresh `vocalborn analyze --text` of two 5 s recordings: {seconds:.2f} s (median of 3)")
    print(f"worker process (worker module + preloaded model + three 13.5 s analyses): {worker_rss() / 1024:.0f} MiB")
    print(
        f"peak RSS: fresh process {rss / 1024:.0f} MiB; "
        f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
