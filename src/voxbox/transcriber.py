"""Runs speech-to-text engines in processes of their own: they hold the GIL for seconds at a
time, which would stall the server's event loop (and a crash of theirs would take it down)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from voxbox.config import TranscribeSettings
from voxbox.media import transcribe as engine


class Transcriber:
    """Runs transcriptions in ``concurrency`` processes of its own, each with the engine loaded
    once, and never lets more in than it has processes (a crash fails what is in the pool).
    When a process dies (a damaged model, out of memory on a long file), the transcription is
    tried once more in a fresh pool, so one that was only running beside it still gets made;
    a second crash is the answer."""

    def __init__(self, settings: TranscribeSettings) -> None:
        self._settings = settings
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def run(self, path: Path) -> engine.Transcript:
        async with self._slots:
            for attempt in (1, 2):
                pool = self._pool or self._start()
                try:
                    return await asyncio.get_running_loop().run_in_executor(
                        pool, engine.transcribe_in_process, str(path)
                    )
                except BrokenProcessPool:
                    if self._pool is pool:
                        self._pool = None
                        pool.shutdown(wait=False, cancel_futures=True)
                    if attempt == 2:
                        raise engine.EngineFailed(
                            "The transcription engine crashed (a damaged model, or out of memory)."
                        ) from None
        raise AssertionError("unreachable")

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        model_dir = self._settings.model_dir
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self._settings.concurrency,
            # Not fork: this process has threads and an event loop a child must not inherit.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=engine.load_engine,
            initargs=(self._settings.engine, str(model_dir) if model_dir else None),
        )
        return self._pool

    def close(self) -> None:
        """Stop the transcription processes, also one in the middle of a long file (its job was
        cancelled already, and its transcript stays pending to be made again)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            # Python 3.14 has pool.terminate_workers(); until then its process table.
            processes = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
