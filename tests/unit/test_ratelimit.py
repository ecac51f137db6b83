"""Rate-limit counters: hits sent to Redis together still count each one exactly once."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from support.backends import REDIS_URL, check_redis
from voxbox.ratelimit import MemoryRateLimiter, RedisRateLimiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest):
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    check_redis()
    redis_limiter = RedisRateLimiter(REDIS_URL, f"test-{secrets.token_hex(4)}")
    yield redis_limiter
    await redis_limiter.close()


async def test_concurrent_hits_count_one_each(limiter) -> None:
    hits = await asyncio.gather(*(limiter.hit("send:alice", 10) for _ in range(50)))
    assert sorted(count for count, _ in hits) == list(range(1, 51))
    assert all(1 <= retry <= 10 for _, retry in hits)
    other, _ = await limiter.hit("send:bob", 10)
    assert other == 1
    assert (await limiter.peek("send:alice", 10))[0] == 50


async def test_two_deployments_count_apart() -> None:
    check_redis()
    a = RedisRateLimiter(REDIS_URL, f"a-{secrets.token_hex(4)}")
    b = RedisRateLimiter(REDIS_URL, f"b-{secrets.token_hex(4)}")
    try:
        await asyncio.gather(*(a.hit("login:addr:1.2.3.4", 60) for _ in range(3)))
        assert (await b.hit("login:addr:1.2.3.4", 60))[0] == 1
    finally:
        await a.close()
        await b.close()
