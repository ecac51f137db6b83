"""Fixed-window counters for rate limits: in memory (one process) or in Redis (shared)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol


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
    """Counters in Redis, exact across workers. The hits of every request of this process go
    to Redis together: one round trip (one MULTI) carries all that arrived while the last
    was in flight, so a busy worker does not pay a round trip per send."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self.prefix = f"{prefix}:rl:"
        self._pending: list[tuple[str, int, asyncio.Future[tuple[int, int]]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def hit(self, key: str, window: int) -> tuple[int, int]:
        done: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._pending.append((self.prefix + key, window, done))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(), name="rate-limit-hits")
        return await done

    async def _send(self) -> None:
        """Send what is pending, round after round, until nothing is. Every hit gets its
        answer or an error, even when this is cancelled (at shutdown)."""
        batch: list[tuple[str, int, asyncio.Future[tuple[int, int]]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await self._count(batch)
                    answers = [
                        (int(count), max(int(ttl), 1))
                        for count, _, ttl in zip(*[iter(results)] * 3, strict=True)
                    ]
                except Exception as exc:
                    _fail(batch, exc)
                    continue
                for (_, _, done), answer in zip(batch, answers, strict=True):
                    if not done.done():  # its request may have gone away
                        done.set_result(answer)
        finally:
            self._sender = None
            stopped = RuntimeError("the rate limiter stopped")
            _fail(batch, stopped)
            _fail(self._pending, stopped)
            self._pending = []

    async def _count(self, batch: list[tuple[str, int, Any]]) -> list[Any]:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, window, _ in batch:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)
                pipe.ttl(key)
            return list(await pipe.execute())

    async def peek(self, key: str, window: int) -> tuple[int, int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self.prefix + key)
            pipe.ttl(self.prefix + key)
            count, ttl = await pipe.execute()
        return int(count or 0), max(int(ttl), 1)

    async def close(self) -> None:
        await self._redis.aclose()


def _fail(hits: list[tuple[str, int, asyncio.Future[tuple[int, int]]]], exc: Exception) -> None:
    for _, _, done in hits:
        if not done.done():
            done.set_exception(exc)


def make_rate_limiter(redis_url: str | None, prefix: str = "voxbox") -> RateLimiter:
    return RedisRateLimiter(redis_url, prefix) if redis_url else MemoryRateLimiter()
