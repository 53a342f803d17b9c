"""A bare Celery app with a no-op task: the baseline for bench/worker_pipeline.py."""

from __future__ import annotations

import os

import redis
from celery import Celery

BROKER = os.environ["BENCH_BROKER"]
QUEUE = os.environ["BENCH_QUEUE"]
COUNTER = os.environ["BENCH_COUNTER"]

app = Celery("noop", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    worker_hijack_root_logger=False,
)
_client = None


@app.task(name="noop")
def noop(i: int) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(BROKER)
    _client.incr(COUNTER)  # lets the bench see completions without a result backend
