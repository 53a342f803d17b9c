"""The coalescer (vocalborn/kit/coalesce.py) behind the batched submit and rate-limit checks: nothing
waits to fill a batch, what arrives meanwhile goes together, at most ``max_batch`` at a time and
``in_flight`` batches at once, and every caller gets its own result."""

from __future__ import annotations

import asyncio

from vocalborn.kit.coalesce import Coalescer


def test_a_burst_goes_in_batches_no_larger_than_the_cap_each_caller_its_own_answer() -> None:
    batches: list[list[int]] = []
    running = 0
    most_at_once = 0

    async def double(items: list[int]) -> list[int]:
        nonlocal running, most_at_once
        batches.append(items)
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.01)  # a round trip
        running -= 1
        return [2 * i for i in items]

    async def burst() -> list[int]:
        c: Coalescer[int, int] = Coalescer(double, max_batch=16, in_flight=2)
        return list(await asyncio.gather(*(c.submit(i) for i in range(40))))

    assert asyncio.run(burst()) == [2 * i for i in range(40)]
    assert batches[0] == [0]  # the first went at once, alone
    assert [i for b in batches for i in b] == list(range(40))  # in the order asked
    assert max(len(b) for b in batches) == 16 and most_at_once == 2
