"""A client of a running API, from a terminal: `vocalborn submit` (upload, submit, watch the
progress, print the scores) and `vocalborn history` (the same history as the page)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from vocalborn.analysis.report_text import format_report
from vocalborn.analysis.types import STEPS, AnalysisReport
from vocalborn.cli.common import fail

# Exit codes of `vocalborn submit` (0: done; 2: bad options, typer's own).
SUBMIT_ANALYSIS_FAILED = 1  # failed, cancelled, or not finished within --timeout
SUBMIT_AUTH = 3  # wrong email or password, token refused, not allowed
SUBMIT_UNREACHABLE = 4  # no API at --url, or it answered 5xx
SUBMIT_REJECTED = 5  # the API refused the request: unknown sentence, unusable audio, ...


class _SubmitError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _ApiClient:
    """Just enough of the HTTP API for `vocalborn submit`, with errors in words."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(60.0, connect=5.0))
        # A login's handle (its first access token) -> [current access token, refresh token]:
        # access tokens live 15 minutes, a long wait refreshes them.
        self._sessions: dict[str, list[str]] = {}

    def current(self, token: str) -> str:
        return self._sessions[token][0] if token in self._sessions else token

    def _refresh(self, token: str) -> bool:
        pair = self._sessions.get(token)
        if pair is None:
            return False
        r = self.http.post("/api/v1/auth/refresh", json={"refresh_token": pair[1]})
        if r.status_code != 200:
            return False
        body = r.json()
        self._sessions[token] = [str(body["access_token"]), str(body["refresh_token"])]
        return True

    def call(self, method: str, path: str, token: str | None = None, **kwargs):
        import httpx

        for attempt in (1, 2):
            headers = {"Authorization": f"Bearer {self.current(token)}"} if token else {}
            try:
                r = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                raise _SubmitError(
                    f"cannot reach the API at {self.url} ({type(exc).__name__}: {exc})", SUBMIT_UNREACHABLE
                ) from None
            if not (r.status_code == 401 and token and attempt == 1 and self._refresh(token)):
                break
        if r.status_code < 400:
            return r.json()
        try:
            body = r.json()
            detail = body.get("message") or body.get("detail")
        except ValueError:
            detail = r.text[:300]
        if not isinstance(detail, str):
            detail = json.dumps(detail, ensure_ascii=False)
        code = (
            SUBMIT_AUTH
            if r.status_code in (401, 403)
            else SUBMIT_UNREACHABLE
            if r.status_code >= 500
            else SUBMIT_REJECTED
        )
        raise _SubmitError(f"{method} {path}: {r.status_code} {detail}", code)

    def login(self, email: str | None, password: str | None, who: str) -> str:
        if not email or not password:
            raise _SubmitError(f"{who} needs an email and a password (options or environment)", SUBMIT_AUTH)
        try:
            body = self.call("POST", "/api/v1/auth/login", data={"username": email, "password": password})
        except _SubmitError as exc:
            if exc.code == SUBMIT_AUTH:
                raise _SubmitError(f"{who} login failed for {email}: wrong email or password", SUBMIT_AUTH) from None
            raise
        token = str(body["access_token"])
        self._sessions[token] = [token, str(body["refresh_token"])]
        return token


def _progress_line(message: dict, tty: bool, lang: str = "zh-TW") -> str:
    """The bar, with the step's name in ``lang`` (the server's label may be in either)."""

    progress = int(message.get("progress") or 0)
    width = 30
    filled = round(width * progress / 100)
    step = message.get("current_step") or message.get("status") or ""
    number = next((i + 1 for i, s in enumerate(STEPS) if step in (s[1], s[2])), None)
    if number is not None:
        step = STEPS[number - 1][2 if lang.lower().startswith("en") else 1]
    where = f"{step} ({number}/{message.get('total_steps') or len(STEPS)})" if number else step
    line = f"[{'#' * filled}{'.' * (width - filled)}] {progress:3d}%  {where}"
    return ("\r" + line.ljust(72)) if tty else line


class _ProgressBar:
    """The progress bar on stderr: one line redrawn on a terminal, one line per change otherwise."""

    def __init__(self, lang: str = "zh-TW") -> None:
        self.lang = lang
        self.tty = sys.stderr.isatty()
        self.last_line = ""
        self.history_until = 0  # events up to the snapshot's last_event_id are history, not news
        self.shown = (0, -1)  # (attempt, progress) on screen: the bar never runs backwards within an attempt

    def show(self, message: dict) -> None:
        if message.get("event_type") == "snapshot":
            self.history_until = int(message.get("last_event_id") or 0)
        elif message.get("event_id") is not None and int(message["event_id"]) <= self.history_until:
            return
        attempt, progress = int(message.get("attempt") or 0), int(message.get("progress") or 0)
        if message.get("status") == "processing" and attempt == self.shown[0] and progress < self.shown[1]:
            return
        self.shown = (attempt, progress)
        line = _progress_line(message, self.tty, self.lang)
        if line != self.last_line:
            typer.echo(line, err=True, nl=not self.tty)
            self.last_line = line

    def close(self) -> None:
        if self.tty and self.last_line:
            typer.echo("", err=True)


def _poll(client: _ApiClient, token: str, task_id: str, deadline: float, bar: _ProgressBar) -> None:
    """No sockets through here (a proxy?): poll the status instead."""
    while time.monotonic() < deadline:
        status = client.call("GET", f"/api/v1/tasks/analysis/{task_id}/status", token)
        bar.show(status)
        if status["status"] in ("success", "failure", "cancelled"):
            break
        time.sleep(1.0)


def _watch(client: _ApiClient, token: str, task_id: str, deadline: float, lang: str = "zh-TW") -> None:
    """Show a progress bar from the task WebSocket until the terminal event; resume with
    ?after= when the connection drops; fall back to polling the status if sockets fail."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
    from websockets.sync.client import connect

    bar = _ProgressBar(lang)
    ws_url = client.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    after, failures = 0, 0
    while time.monotonic() < deadline:
        url = f"{ws_url}/api/v1/tasks/ws/task/{task_id}?after={after}"
        try:
            auth = {"Authorization": f"Bearer {client.current(token)}"}
            with connect(url, additional_headers=auth, open_timeout=10) as ws:
                failures = 0
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    message = json.loads(ws.recv(timeout=remaining))
                    if message.get("event_id") is not None:
                        after = max(after, int(message["event_id"]))
                    bar.show(message)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            if code == 1000:
                break
            if code == 1008:
                reason = closed.rcvd.reason if closed.rcvd else ""
                raise _SubmitError(f"the server refused the progress socket: {reason}", SUBMIT_AUTH) from None
            failures += 1  # 1001, 1006, 1011, 1012, 1013: resume after a pause
        except TimeoutError:
            if time.monotonic() >= deadline:
                break
            failures += 1
        except (OSError, InvalidHandshake):
            failures += 1
        if failures >= 3:
            _poll(client, token, task_id, deadline, bar)
            break
        if failures:
            time.sleep(min(5.0, 0.5 * 2**failures))
    bar.close()


def _sentence_to_practise(
    client: _ApiClient,
    learner_token: str,
    sentence: str | None,
    reference: Path | None,
    text: str | None,
    therapist: tuple[str | None, str | None],
) -> str:
    """The id of the sentence: --sentence if the learner can read it, or a new shared sentence
    made by the therapist from --reference."""
    if reference is not None:
        therapist_token = client.login(*therapist, "--reference (a therapist)")
        words = text or reference.stem
        with reference.open("rb") as f:
            created = client.call(
                "POST",
                "/api/v1/practice/sentences",
                therapist_token,
                # shared: the learner may not be linked to this therapist
                data={"text": words, "shared": "true"},
                files={"reference_audio": (reference.name, f)},
            )
        sentence = str(created["sentence_id"])
        typer.echo(f"created sentence {sentence} ({words})", err=True)
    assert sentence is not None
    try:
        client.call("GET", f"/api/v1/practice/sentences/{sentence}", learner_token)
    except _SubmitError as exc:
        if exc.code == SUBMIT_REJECTED:
            raise _SubmitError(f"sentence not found: {sentence}", SUBMIT_REJECTED) from None
        raise
    return sentence


def _upload(client: _ApiClient, token: str, sentence: str, attempt: Path) -> dict:
    """The practice record of the attempt, in the CLI's one reused session (so that the
    learner's list does not fill up)."""
    sessions = client.call("GET", "/api/v1/practice/sessions?limit=200", token)
    session = next((x for x in sessions if x.get("title") == "vocalborn submit"), None) or client.call(
        "POST", "/api/v1/practice/sessions", token, json={"title": "vocalborn submit"}
    )
    with attempt.open("rb") as f:
        record: dict = client.call(
            "POST",
            f"/api/v1/practice/sessions/{session['practice_session_id']}/records",
            token,
            data={"sentence_id": sentence},
            files={"audio": (attempt.name, f)},
        )
    return record


def _analyse(client: _ApiClient, token: str, record: dict, lang: str, timeout: float) -> dict:
    """Submit the record, watch it, and return the result (or raise if it did not succeed)."""
    submitted = client.call(
        "POST",
        "/api/v1/tasks/analysis/submit",
        token,
        json={"practice_record_id": record["practice_record_id"], "parameters": {"language": lang}},
    )
    task_id = str(submitted["task_id"])
    typer.echo(f"task {task_id} submitted (queue position {submitted.get('queue_position')})", err=True)
    _watch(client, token, task_id, time.monotonic() + timeout, lang)
    status = client.call("GET", f"/api/v1/tasks/analysis/{task_id}/status", token)
    if status["status"] != "success":
        reason = status.get("error_message") or "no reason given"
        if status["status"] in ("failure", "cancelled"):
            raise _SubmitError(f"the analysis ended as {status['status']}: {reason}", SUBMIT_ANALYSIS_FAILED)
        raise _SubmitError(f"the analysis is still {status['status']} after {timeout:.0f} s", SUBMIT_ANALYSIS_FAILED)
    result: dict = client.call("GET", f"/api/v1/tasks/analysis/{task_id}/result", token)
    return result


def submit(
    attempt: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the learner's recording")],
    sentence: Annotated[str | None, typer.Option(help="the id of an existing sentence")] = None,
    reference: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="a reference recording: creates the sentence first"),
    ] = None,
    text: Annotated[str | None, typer.Option(help="the sentence's text with --reference (default: file name)")] = None,
    url: Annotated[str, typer.Option(envvar="VOCALBORN_URL", help="the API")] = "http://127.0.0.1:8000",
    email: Annotated[str | None, typer.Option(envvar="VOCALBORN_EMAIL", help="the learner's login")] = None,
    password: Annotated[str | None, typer.Option(envvar="VOCALBORN_PASSWORD", help="the learner's password")] = None,
    therapist_email: Annotated[
        str | None, typer.Option(envvar="VOCALBORN_THERAPIST_EMAIL", help="for --reference")
    ] = None,
    therapist_password: Annotated[
        str | None, typer.Option(envvar="VOCALBORN_THERAPIST_PASSWORD", help="for --reference")
    ] = None,
    lang: Annotated[str, typer.Option(help="zh-TW or en: the language of the progress, errors and report")] = "zh-TW",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON instead of a table")] = False,
    timeout: Annotated[float, typer.Option(help="give up waiting after this many seconds")] = 600.0,
) -> None:
    """Upload a recording to a running API, submit it, show live progress, print the scores.

    Exit codes: 0 success; 1 the analysis failed, was cancelled or timed out; 2 usage;
    3 wrong email/password or not allowed; 4 the API is unreachable or failed; 5 the API
    refused the request (unknown sentence, unusable audio)."""
    if (sentence is None) == (reference is None):
        fail("give exactly one of --sentence ID or --reference FILE", code=2)
    client = _ApiClient(url)
    client.http.headers["Accept-Language"] = lang  # the server's messages and steps in it too
    try:
        learner_token = client.login(email, password, "the learner")
        therapist = (therapist_email, therapist_password)
        sentence = _sentence_to_practise(client, learner_token, sentence, reference, text, therapist)
        record = _upload(client, learner_token, sentence, attempt)
        result = _analyse(client, learner_token, record, lang, timeout)
    except _SubmitError as exc:
        fail(str(exc), code=exc.code)
        return
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        typer.echo(format_report(AnalysisReport.from_dict(result), lang=lang))


# --- the practice history, from a terminal (same API as the page) ---------------------------------
def _score(v: float | int | str | None) -> str:
    return "-" if v is None else f"{float(v):.0f}"


def _print_progress(data: dict) -> None:
    for s in data["sentences"]:
        tr = s["trend"]["overall_score"]
        slope = tr["slope_per_attempt"]
        typer.echo(
            f"{s['sentence_text']}  attempts {s['attempts']}  overall first {_score(tr['first'])}"
            f" -> last {s['last_n']} mean {_score(tr['last_n_mean'])}"
            f"  slope {'-' if slope is None else f'{slope:+.1f}'}/attempt"
            + (f"  improved: {' '.join(s['improved_characters'])}" if s["improved_characters"] else "")
            + (f"  still: {' '.join(s['still_deviating'])}" if s.get("still_deviating") else "")
        )
    if not data["sentences"]:
        typer.echo("no successful analyses yet")


def _print_history(data: dict) -> None:
    typer.echo(
        f"{'when':<17} {'status':<10} {'overall':>7} {'pron':>5} {'flu':>5} {'rhy':>5} {'compl':>5} {'review':>6}"
        "  sentence"
    )
    for i in data["items"]:
        review = i.get("review") or {}
        typer.echo(
            f"{i['created_at'][:16].replace('T', ' '):<17} {i['status']:<10} {_score(i['overall_score']):>7}"
            f" {_score(i['pronunciation_accuracy']):>5} {_score(i['fluency_score']):>5} {_score(i['rhythm_score']):>5}"
            f" {_score(i.get('completeness_score')):>5}"
            f" {_score(review.get('overall_score')) if review else '':>6}  {i['sentence_text']}"
        )
    if data.get("next_cursor"):
        typer.echo(f"(more: GET /api/v1/tasks/analysis?cursor={data['next_cursor']})")


def history(
    url: Annotated[str, typer.Option(envvar="VOCALBORN_URL", help="the API")] = "http://127.0.0.1:8000",
    email: Annotated[str | None, typer.Option(envvar="VOCALBORN_EMAIL", help="your login")] = None,
    password: Annotated[str | None, typer.Option(envvar="VOCALBORN_PASSWORD", help="your password")] = None,
    learner: Annotated[str | None, typer.Option(help="a linked learner's user id (therapists, admins)")] = None,
    progress: Annotated[bool, typer.Option("--progress", help="per sentence trend instead of the list")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    lang: Annotated[str, typer.Option(help="zh-TW or en: the language of error messages")] = "en",
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
) -> None:
    """Your analyses, newest first, with the four scores and the therapist's review; or, with
    --progress, each sentence's trend (first attempt against the mean of the last three)."""
    client = _ApiClient(url)
    client.http.headers["Accept-Language"] = lang
    try:
        token = client.login(email, password, "you")
        if progress:
            who = learner or client.call("GET", "/api/v1/auth/me", token)["user_id"]
            data = client.call("GET", f"/api/v1/learners/{who}/progress", token)
        else:
            params: dict[str, str | int] = {"limit": limit}
            if learner:
                params["user_id"] = learner
            data = client.call("GET", "/api/v1/tasks/analysis", token, params=params)
    except _SubmitError as exc:
        fail(str(exc), code=exc.code)
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    elif progress:
        _print_progress(data)
    else:
        _print_history(data)
