"""The remote engine client: request shape, error classes and the circuit breaker."""

from __future__ import annotations

import json

import httpx
import pytest

from vocalborn.analysis.engine import RemoteEngine
from vocalborn.analysis.types import AnalysisInputError, AnalysisReport, TransientAnalysisError

REPORT = AnalysisReport(80.0, 85.0, 75.0, 70.0, {"deviations": []}, [], "ok", [], "remote-9")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _engine(handler, **kw) -> RemoteEngine:  # type: ignore[no-untyped-def]
    return RemoteEngine("http://analysis.test/", api_key="k", transport=httpx.MockTransport(handler), **kw)


def test_posts_both_recordings_and_params_and_reads_the_report() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        body = request.read()
        seen["body"] = body
        return httpx.Response(200, json=REPORT.to_dict())

    steps: list[int] = []
    report = _engine(handler).analyze(b"REF", b"ATT", {"language": "en"}, lambda n, k: steps.append(n))
    assert report == REPORT
    assert seen["url"] == "http://analysis.test/analyze" and seen["auth"] == "Bearer k"
    body = seen["body"]
    assert isinstance(body, bytes)
    assert b'name="reference"' in body and b'name="attempt"' in body and b"REF" in body and b"ATT" in body
    assert json.dumps({"language": "en"}).encode() in body
    assert steps == [1, 2, 3, 4, 5]


def test_client_errors_are_permanent_and_carry_the_server_message() -> None:
    engine = _engine(lambda r: httpx.Response(422, json={"detail": "attempt is silent"}))
    with pytest.raises(AnalysisInputError, match="attempt is silent"):
        engine.analyze(b"a", b"b")


@pytest.mark.parametrize(
    "handler",
    [
        lambda r: httpx.Response(503, text="overloaded"),
        lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)),
        lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)),
        lambda r: httpx.Response(200, text="not json"),
    ],
    ids=["5xx", "timeout", "connection", "garbage"],
)
def test_server_side_failures_are_transient(handler) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TransientAnalysisError):
        _engine(handler).analyze(b"a", b"b")


def test_circuit_opens_after_consecutive_failures_and_retries_after_the_pause() -> None:
    calls = {"n": 0, "ok": False}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(200, json=REPORT.to_dict()) if calls["ok"] else httpx.Response(500)

    clock = Clock()
    engine = _engine(handler, failure_threshold=3, reset_seconds=60, clock=clock)
    for _ in range(3):
        with pytest.raises(TransientAnalysisError):
            engine.analyze(b"a", b"b")
    assert engine.circuit_open
    with pytest.raises(TransientAnalysisError, match="circuit"):
        engine.analyze(b"a", b"b")
    assert calls["n"] == 3  # the open circuit did not call the server
    clock.now += 61
    calls["ok"] = True
    assert engine.analyze(b"a", b"b") == REPORT
    assert not engine.circuit_open


def test_a_success_resets_the_failure_count() -> None:
    responses = iter([500, 500, 200, 500, 500])

    def handler(request: httpx.Request) -> httpx.Response:
        code = next(responses)
        return httpx.Response(code, json=REPORT.to_dict()) if code == 200 else httpx.Response(code)

    engine = _engine(handler, failure_threshold=3, clock=Clock())
    for expected in (
        TransientAnalysisError,
        TransientAnalysisError,
        None,
        TransientAnalysisError,
        TransientAnalysisError,
    ):
        if expected is None:
            engine.analyze(b"a", b"b")
        else:
            with pytest.raises(expected):
                engine.analyze(b"a", b"b")
    assert not engine.circuit_open
