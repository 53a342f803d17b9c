"""Two real API processes (uvicorn subprocesses) sharing the suite's database and Redis, with
this module's own limits and Redis key prefix, so the counters are theirs alone."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.services import ServicesUnderTest
from tests.support import Api, ServiceProcess, api_process
from vocalborn.embedded import free_port


class Pair:
    def __init__(self, apis: list[Api], procs: list[ServiceProcess]) -> None:
        self.apis = apis
        self.procs = procs
        self.a, self.b = apis

    def alternate(self, i: int) -> Api:
        return self.apis[i % 2]


@pytest.fixture(scope="module")
def start_pair(migrated: ServicesUnderTest) -> Iterator[Callable[[dict[str, Any]], Pair]]:
    started: list[Pair] = []

    def start(env: dict[str, Any]) -> Pair:
        tag = uuid.uuid4().hex[:8]
        env = {
            # under the suite's prefix, so its clean-up removes the keys too
            "REDIS_KEY_PREFIX": f"{migrated.env['REDIS_KEY_PREFIX']}sec{tag}:",
            # nobody consumes this queue: submitted analyses stay pending
            "TASK_QUEUE": f"{migrated.env['TASK_QUEUE']}_sec{tag}",
            # the tests play a reverse proxy on 127.0.0.1, giving each client an address of its own
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            **env,
        }
        env = {k: v for k, v in env.items() if v is not None}  # None: leave the variable unset
        procs = [api_process(free_port(), migrated.data_dir, env) for _ in range(2)]
        apis = [Api(httpx.Client(base_url=f"http://127.0.0.1:{_port(p)}", timeout=30)) for p in procs]
        pair = Pair(apis, procs)
        started.append(pair)
        return pair

    yield start
    for pair in started:
        for api in pair.apis:
            api.client.close()  # type: ignore[union-attr]
        for proc in pair.procs:
            proc.stop()


def _port(proc: ServiceProcess) -> int:
    return int(proc.args[proc.args.index("--port") + 1])


def address(tag: str) -> dict[str, str]:
    """A client address of its own (the pair trusts X-Forwarded-For from 127.0.0.1: FORWARDED_ALLOW_IPS)."""
    return {"X-Forwarded-For": f"10.{hash(tag) % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"}


def register(
    api: Api, email: str, password: str, role: str = "learner", headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    return api.client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "name": "N", "role": role, **extra},
        headers=headers or {},
    )


def login(api: Api, email: str, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return api.client.post("/api/v1/auth/login", data={"username": email, "password": password}, headers=headers or {})
