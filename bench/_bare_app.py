"""The baselines for bench/api.py, in one small app: what a plain FastAPI process does with
nothing of ours in the way.

* ``GET /ping``: a bare ``async def`` endpoint.
* ``POST /insert``: a bare ``async def`` doing one ``INSERT ... RETURNING`` on a psycopg async
  pool and one publish (an LPUSH of a small JSON message to Redis): the floor of any submit.
* ``POST /naive-submit``: the plan's style: a sync ``def`` handler that inserts the task with
  SQLModel, commits, refreshes and calls Celery's ``send_task`` (it reads the record first, as
  any submit must).

Started by bench/api.py with DATABASE_URL, CELERY_BROKER_URL and BENCH_QUEUE set.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

DSN = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
QUEUE = os.environ["BENCH_QUEUE"]
pool = AsyncConnectionPool(DSN, min_size=10, max_size=10, open=False)
broker = aioredis.Redis.from_url(os.environ["CELERY_BROKER_URL"])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await pool.open()
    yield
    await pool.close()


app = FastAPI(lifespan=lifespan)


class Body(BaseModel):
    practice_record_id: uuid.UUID


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/insert", status_code=202)
async def insert(body: Body) -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO bench_insert (record_id) VALUES (%s) RETURNING id, created_at", (body.practice_record_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    await broker.lpush(QUEUE + "_bare", json.dumps({"id": str(row[0])}))
    return {"task_id": str(row[0]), "status": "pending"}


@app.post("/naive-submit", status_code=202)
def naive_submit(body: Body) -> dict[str, Any]:
    from sqlmodel import Session

    from vocalborn.celery_app import ANALYZE_TASK, celery_app
    from vocalborn.db import get_engine
    from vocalborn.practice.models import PracticeRecord
    from vocalborn.tasks.models import AIAnalysisTask

    with Session(get_engine()) as db:
        record = db.get(PracticeRecord, body.practice_record_id)
        assert record is not None
        task = AIAnalysisTask(
            celery_task_id=uuid.uuid4().hex,
            practice_record_id=record.practice_record_id,
            user_id=record.user_id,
            task_params={},
        )
        db.add(task)
        db.commit()
        db.refresh(task)
        celery_app.send_task(
            ANALYZE_TASK, args=[str(task.task_id)], task_id=task.celery_task_id, queue=QUEUE + "_naive"
        )
        return {"task_id": str(task.task_id), "status": task.status}
