"""`vocalborn report` (a learner's clinical report, PDF or CSV, saved to a file) and `vocalborn
drills` (the minimal-pair items suggested for a learner), from a running API (issue #26)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from vocalborn.cli.client import _ApiClient, _SubmitError
from vocalborn.cli.common import fail

Url = Annotated[str, typer.Option(envvar="VOCALBORN_URL", help="the API")]
Email = Annotated[str | None, typer.Option(envvar="VOCALBORN_EMAIL", help="your login")]
Password = Annotated[str | None, typer.Option(envvar="VOCALBORN_PASSWORD", help="your password")]
Learner = Annotated[str | None, typer.Option(help="the learner's user id (a therapist: a linked learner); default you")]
Lang = Annotated[str, typer.Option(help="zh-TW or en: the report's and the messages' language")]


def _learner(client: _ApiClient, token: str, learner: str | None) -> str:
    return learner or str(client.call("GET", "/api/v1/auth/me", token)["user_id"])


def report(
    url: Url = "http://127.0.0.1:8000",
    email: Email = None,
    password: Password = None,
    learner: Learner = None,
    format: Annotated[str, typer.Option("--format", help="pdf or csv")] = "pdf",
    first: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD (default 12 weeks ago)")] = None,
    last: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD (default today)")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file to write (default: the API's name)")
    ] = None,
    lang: Lang = "en",
) -> None:
    """Download a learner's clinical report (weekly practice and dose, score trends, character and
    tone errors, reviews) as PDF or CSV: the learner or their linked therapist."""
    if format not in ("pdf", "csv"):
        fail("--format: pdf or csv", code=2)
    for name, value in (("--from", first), ("--to", last)):
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                fail(f"{name}: a day as YYYY-MM-DD, not {value!r}", code=2)
    client = _ApiClient(url)
    client.http.headers["Accept-Language"] = lang
    try:
        token = client.login(email, password, "you")
        who = _learner(client, token, learner)
        params = {
            "format": format,
            "lang": lang,
            **({"from": first} if first else {}),
            **({"to": last} if last else {}),
        }
        r = client.http.get(
            f"/api/v1/learners/{who}/report",
            params=params,
            headers={"Authorization": f"Bearer {client.current(token)}"},
        )
        if r.status_code != 200:
            try:
                detail = r.json().get("message") or r.json().get("detail")
            except ValueError:
                detail = r.text[:300]
            code = 3 if r.status_code in (401, 403) else 4 if r.status_code >= 500 else 5
            raise _SubmitError(f"GET report: {r.status_code} {json.dumps(detail, ensure_ascii=False)}", code)
    except _SubmitError as exc:
        fail(str(exc), code=exc.code)
    disposition = r.headers.get("content-disposition", "")
    name = disposition.split('filename="', 1)[1].rstrip('"') if 'filename="' in disposition else f"report.{format}"
    path = output or Path(name)
    path.write_bytes(r.content)
    typer.echo(f"{path} ({len(r.content)} bytes)")


def drills(
    url: Url = "http://127.0.0.1:8000",
    email: Email = None,
    password: Password = None,
    learner: Learner = None,
    lang: Lang = "en",
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """The minimal-pair drills suggested from a learner's still-deviating characters."""
    client = _ApiClient(url)
    client.http.headers["Accept-Language"] = lang
    try:
        token = client.login(email, password, "you")
        data = client.call("GET", f"/api/v1/learners/{_learner(client, token, learner)}/drills", token)
    except _SubmitError as exc:
        fail(str(exc), code=exc.code)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if not data["items"]:
        typer.echo(
            "no character is still marked: nothing to drill" if lang == "en" else "沒有仍需加強的字：沒有建議的練習"
        )
        return
    for item in data["items"]:
        typer.echo(f"{item['text']:<6} {item['pinyin']:<14} {item['kind']:<17} {item['why']}")
    typer.echo("")
    typer.echo(data["needs_reference_recording"])
