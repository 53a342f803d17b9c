"""A client for a remote analysis service that answers with the local engine's report.

For deployments that move analysis elsewhere: :class:`RemoteEngine` sends the same
request over HTTP and classifies failures into permanent (:class:`AnalysisInputError`)
and retryable (:class:`TransientAnalysisError`) so the worker knows whether to retry.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from vocalborn.analysis.types import (
    AnalysisInputError,
    AnalysisReport,
    AudioSource,
    CircuitOpenError,
    ProgressCallback,
    RemoteTimeoutError,
    RemoteUnreachableError,
    TransientAnalysisError,
)
from vocalborn.analysis.types import report_progress as _progress


class RemoteEngine:
    """Client for a remote analysis service speaking the same report format.

    ``POST {url}/analyze`` with multipart files ``reference`` and ``attempt`` and a form
    field ``params`` (JSON); the answer is the :class:`AnalysisReport` as JSON. Progress is
    reported locally around the call (steps 1-2 before sending, 3-5 after the answer).

    A simple circuit breaker protects the worker pool: after ``failure_threshold``
    consecutive transient failures the engine refuses calls for ``reset_seconds``
    (raising :class:`CircuitOpenError` at once), then lets one call through. ``circuit``
    replaces this per-process breaker with a shared one (``vocalborn.outage.circuit``: every
    worker process sees the same state in Redis).
    """

    name = "vocalborn-remote"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        transport: Any = None,
        clock: Any = time.monotonic,
        circuit: Any = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self.version = "remote"
        self._transport = transport
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()
        self._circuit = circuit

    # -- circuit breaker ----------------------------------------------------------------
    @property
    def circuit_open(self) -> bool:
        if self._circuit is not None:
            return bool(self._circuit.is_open())
        with self._lock:
            # Past reset_seconds the circuit is half-open: the next call is a trial.
            return self._opened_at is not None and self._clock() - self._opened_at < self.reset_seconds

    def _record(self, ok: bool) -> None:
        if self._circuit is not None:
            self._circuit.record(ok)
            return
        with self._lock:
            if ok:
                self._failures = 0
                self._opened_at = None
            else:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._opened_at = self._clock()

    # -- call ---------------------------------------------------------------------------
    def analyze(
        self,
        reference: AudioSource,
        attempt: AudioSource,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> AnalysisReport:
        import httpx

        if self.circuit_open:
            raise CircuitOpenError("remote analysis circuit is open: too many recent failures")
        _progress(progress, 1)
        files = {
            "reference": ("reference", _read(reference), "application/octet-stream"),
            "attempt": ("attempt", _read(attempt), "application/octet-stream"),
        }
        data = {"params": json.dumps(params or {}, ensure_ascii=False, sort_keys=True)}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        _progress(progress, 2)
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        try:
            with httpx.Client(timeout=timeout, transport=self._transport) as client:
                response = client.post(f"{self.url}/analyze", files=files, data=data, headers=headers)
        except httpx.TimeoutException as exc:
            self._record(False)
            raise RemoteTimeoutError(f"remote analysis timed out: {exc}") from exc
        except httpx.HTTPError as exc:
            self._record(False)
            raise RemoteUnreachableError(f"remote analysis unreachable: {exc}") from exc

        if response.status_code >= 500:
            self._record(False)
            raise TransientAnalysisError(f"remote analysis failed ({response.status_code}): {_message(response)}")
        if response.status_code >= 400:
            self._record(True)  # the service works; the input is at fault
            raise AnalysisInputError(_message(response))
        _progress(progress, 3)
        try:
            payload = response.json()
            report = AnalysisReport.from_dict(payload)
        except (ValueError, TypeError) as exc:
            self._record(False)
            raise TransientAnalysisError(f"remote analysis returned an invalid report: {exc}") from exc
        self._record(True)
        _progress(progress, 4)
        _progress(progress, 5)
        if not report.analysis_model_version:
            report.analysis_model_version = self.version
        report.engine_fallback = False  # the remote engine itself analysed it
        return report


def _read(source: AudioSource) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    return Path(source).read_bytes()


def _message(response: Any) -> str:
    """The server's error message: ``detail``/``message``/``error`` of a JSON body, or text."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or f"HTTP {response.status_code}").strip()[:500]
    if isinstance(body, dict):
        for key in ("detail", "message", "error"):
            if body.get(key):
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(body, ensure_ascii=False)[:500]
