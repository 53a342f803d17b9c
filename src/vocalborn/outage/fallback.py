"""``AI_ENGINE=remote`` as the worker builds it: the remote engine behind a circuit breaker and,
with ``AI_ENGINE_FALLBACK=local``, the local engine analysing while the circuit is open.

A result the fallback analysed says so: ``engine_fallback`` is true beside its
``analysis_model_version`` (the local engine's), in the API and in the stored result.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from vocalborn.analysis.engine import get_engine
from vocalborn.analysis.types import TransientAnalysisError
from vocalborn.config import Settings
from vocalborn.outage.circuit import SharedCircuit
from vocalborn.tasks.events import get_redis

if TYPE_CHECKING:
    from vocalborn.analysis.engine import RemoteEngine
    from vocalborn.analysis.types import AnalysisEngine, AnalysisReport, AudioSource, ProgressCallback

log = logging.getLogger(__name__)


class FallbackEngine:
    """The remote engine; the local one when the remote circuit is open.

    Before a call: an open circuit sends the analysis to the local engine at once. After a
    transient failure that opened the circuit (this call's, or a concurrent one's), the local
    engine analyses it too instead of scheduling a retry. A transient failure while the circuit
    stays closed is raised: the retry budget applies (``outage.policy``)."""

    def __init__(self, primary: RemoteEngine, fallback: AnalysisEngine) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self.version = primary.version

    def analyze(
        self,
        reference: AudioSource,
        attempt: AudioSource,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> AnalysisReport:
        if not self.primary.circuit_open:
            try:
                return self.primary.analyze(reference, attempt, params, progress=progress)
            except TransientAnalysisError as exc:
                if not self.primary.circuit_open:
                    raise
                log.warning("remote analysis failed and its circuit is now open (%s): the local engine analyses", exc)
        report = self.fallback.analyze(reference, attempt, params, progress=progress)
        report.engine_fallback = True
        return report


def build_remote_engine(settings: Settings) -> AnalysisEngine:
    """The engine ``AI_ENGINE=remote`` means: remote, its circuit (shared in Redis unless
    AI_CIRCUIT_SHARED=false), and the fallback AI_ENGINE_FALLBACK names."""

    if not settings.ai_service_url:
        raise RuntimeError("AI_ENGINE=remote needs AI_SERVICE_URL")
    circuit = shared_circuit(settings) if settings.ai_circuit_shared else None
    remote: RemoteEngine = get_engine(  # type: ignore[assignment]
        "remote",
        url=settings.ai_service_url,
        api_key=settings.ai_service_api_key,
        timeout=settings.ai_service_timeout,
        failure_threshold=settings.ai_circuit_failure_threshold,
        reset_seconds=settings.ai_circuit_reset_seconds,
        circuit=circuit,
    )
    if settings.ai_engine_fallback == "local":
        return FallbackEngine(remote, get_engine("local"))
    return remote


def shared_circuit(settings: Settings) -> Any:
    return SharedCircuit(
        get_redis, settings.redis_key_prefix, settings.ai_circuit_failure_threshold, settings.ai_circuit_reset_seconds
    )
