"""The in-process job queue's slots: taken by the best priority first, then first come; a
waiter cancelled as it is handed a slot passes it on."""

from __future__ import annotations

import asyncio

from voxbox.jobs.queue import _Slots


async def test_waiting_jobs_get_slots_best_priority_first_then_first_come() -> None:
    slots = _Slots(1)
    order: list[str] = []
    release = asyncio.Event()

    async def job(name: str, priority: int) -> None:
        async with slots.take(priority):
            order.append(name)
            if name == "running":
                await release.wait()

    running = asyncio.create_task(job("running", 0))
    await asyncio.sleep(0)
    waiting = [
        asyncio.create_task(job(name, priority))
        for name, priority in (("transcript 1", -1), ("transcode", 0), ("transcript 2", -1))
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(running, *waiting)
    assert order == ["running", "transcode", "transcript 1", "transcript 2"]


async def test_a_cancelled_waiter_never_keeps_a_slot() -> None:
    slots = _Slots(1)
    held = asyncio.Event()
    done = asyncio.Event()

    async def holder() -> None:
        async with slots.take(0):
            held.set()
            await done.wait()

    first = asyncio.create_task(holder())
    await held.wait()
    cancelled = asyncio.create_task(slots.take(0).__aenter__())
    await asyncio.sleep(0)
    cancelled.cancel()
    done.set()
    await first
    async with asyncio.timeout(1):
        async with slots.take(0):
            pass  # the slot came back
