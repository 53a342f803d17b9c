"""Short fault drills on processes of our own (issue #11). Each asserts 0 lost, 0 duplicate
results, 0 5xx (other than 503 JSON with Retry-After) and a bounded time to heal.

The long versions: `uv run python bench/faults.py` (docs/RELIABILITY.md)."""

from __future__ import annotations

import pytest

from tests.faults import scenarios
from tests.faults.harness import Cluster, Tally

N = 12  # tasks per scenario
HEAL_WITHIN = 60.0  # seconds from the end of the fault to every task terminal


def _check(t: Tally, cluster: Cluster, *, failures: dict[str, int] | None = None) -> None:
    client = cluster.client
    detail = f"{t.row()}; 5xx: {client.server_errors[:3] if client else None}; dropped: {client.dropped[:3] if client else None}"
    assert t.accepted == t.submitted, f"{detail}; refused: {t.refused[:3]}"
    assert t.lost == 0, detail
    assert t.duplicate_results == 0, detail
    assert t.server_errors == 0, detail
    assert t.dropped == 0, detail
    assert t.failed == (failures or {}), detail
    assert t.heal_seconds is not None and t.heal_seconds < HEAL_WITHIN, detail


@pytest.mark.parametrize(
    "name", ["pool_child_sigkill", "node_sigkill", "node_sigterm", "redis_sigkill_aof", "broker_down_at_submit"]
)
def test_process_faults_lose_nothing_and_duplicate_nothing(cluster: Cluster, name: str) -> None:
    t = scenarios.ALL[name](cluster, N, HEAL_WITHIN + 30)
    _check(t, cluster)
    assert t.succeeded == N


@pytest.mark.parametrize("name", ["postgres_stop", "postgres_freeze"])
def test_a_database_that_is_down_or_frozen_gets_503_within_5_s_and_heals(cluster: Cluster, name: str) -> None:
    """Issue #11, defect 1: a frozen database hung every request (24.6 s measured)."""
    t = scenarios.ALL[name](cluster, N, HEAL_WITHIN + 30)
    _check(t, cluster)
    assert t.succeeded == N
    assert t.slowest_request < 5.0, f"a request took {t.slowest_request:.1f} s during the outage"  # type: ignore[attr-defined]
    assert cluster.client is not None and cluster.client.unavailable > 0  # the 503s were answered


def test_a_poison_task_fails_classified_and_the_rest_succeed(cluster: Cluster) -> None:
    t = scenarios.poison_task(cluster, N, HEAL_WITHIN + 30)
    _check(t, cluster, failures={"poison (delivery cap)": 1})
    assert t.succeeded == N - 1


def test_a_worker_stalled_past_the_visibility_timeout_is_taken_over_once(cluster: Cluster) -> None:
    t = scenarios.stalled_worker(cluster, 4, HEAL_WITHIN + 30)
    _check(t, cluster)
    assert t.succeeded == 4
