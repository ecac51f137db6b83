"""Fixed-window counters for rate limits: in memory (one process) or in Redis (shared)."""

from __future__ import annotations

import time
from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, key: str, window: int) -> tuple[int, int]:
        """Count one attempt; return (attempts in the current window, seconds until it ends)."""
        ...

    async def peek(self, key: str, window: int) -> tuple[int, int]:
        """Like hit, without counting."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}  # key -> (window end, count)

    def _current(self, key: str, window: int) -> tuple[int, int]:
        now = int(time.monotonic())
        end, count = self._windows.get(key, (0, 0))
        if end <= now:
            if len(self._windows) > 100_000:  # drop stale windows now and then
                self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            end, count = now + window, 0
        return end, count

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        end, count = self._current(key, window)
        self._windows[key] = (end, count + 1)
        return count + 1, end - int(time.monotonic())

    async def peek(self, key: str, window: int) -> tuple[int, int]:
        end, count = self._current(key, window)
        return count, end - int(time.monotonic())

    async def close(self) -> None:
        pass


class RedisRateLimiter:
    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self.prefix = f"{prefix}:rl:"

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, window, nx=True)
            pipe.ttl(self.prefix + key)
            count, _, ttl = await pipe.execute()
        return int(count), max(int(ttl), 1)

    async def peek(self, key: str, window: int) -> tuple[int, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self.prefix + key)
            pipe.ttl(self.prefix + key)
            count, ttl = await pipe.execute()
        return int(count or 0), max(int(ttl), 1)

    async def close(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None, prefix: str = "voxbox") -> RateLimiter:
    return RedisRateLimiter(redis_url, prefix) if redis_url else MemoryRateLimiter()
