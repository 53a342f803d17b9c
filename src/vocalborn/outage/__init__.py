"""Surviving outages of the remote analysis service (issue #27).

- :mod:`policy`: the retry budget of each error class (network 5 x 30 s, timeout 2 x 60 s, ...);
- :mod:`circuit`: the remote engine's circuit breaker, shared by every worker process in Redis;
- :mod:`fallback`: the local engine analysing while the remote circuit is open
  (``AI_ENGINE_FALLBACK=local``), the result saying so (``engine_fallback``);
- :mod:`bulk_retry`: re-queue the failed tasks of a time window (admin API and CLI).
"""
