"""The analysis engine without any server: `vocalborn analyze` and `vocalborn sample-audio`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vocalborn.analysis.engine import analyze as run
from vocalborn.analysis.report_text import format_report
from vocalborn.analysis.types import AnalysisInputError
from vocalborn.cli.common import fail


def analyze(
    reference: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the therapist's recording")],
    attempt: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the learner's recording")],
    as_json: Annotated[bool, typer.Option("--json", help="print the full report as JSON")] = False,
    language: Annotated[str, typer.Option("--lang", "--language", help="zh-TW or en")] = "zh-TW",
    text: Annotated[
        str | None, typer.Option("--text", help="the sentence both recordings say: judges every character")
    ] = None,
) -> None:
    """Compare two recordings and print the report, without any server."""

    try:
        report = run(reference, attempt, {"language": language, **({"text": text} if text else {})})
    except AnalysisInputError as exc:
        fail(str(exc), code=2)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_report(report, lang=language))


def sample_audio(
    directory: Annotated[Path, typer.Argument(help="where to write the recordings")] = Path("samples"),
    text: Annotated[str, typer.Option(help="the sentence")] = "今天天氣很好，我們去公園散步。",
) -> None:
    """Write a sample reference (female voice, WAV) and learner attempt (male voice, MP3) of a
    sentence, made offline with Praat's speech synthesiser, for trying the API."""
    from vocalborn.analysis.synth import synthesize  # reason: PyAV/numpy on use only

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "reference.wav").write_bytes(synthesize(text, "zh", "Female1", fmt="wav"))
    (directory / "attempt.mp3").write_bytes(synthesize(text, "zh", "Male1", fmt="mp3"))
    typer.echo(f"wrote {directory / 'reference.wav'} and {directory / 'attempt.mp3'}")
