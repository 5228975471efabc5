"""Dynamic batching: items of concurrent requests share forward passes of up to `max_batch` items.

Requests queue on the event loop; one worker task takes everything queued, cuts it into batches
(a request larger than a batch spans several) and runs the model function on a dedicated thread,
so the event loop keeps answering health checks and metrics while the model works.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Optional, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Job(Generic[T, R]):
    items: list[T]
    future: "asyncio.Future[list[R]]"
    results: list[Any] = field(default_factory=list)
    taken: int = 0


class Batcher(Generic[T, R]):
    """Runs fn(list of items) -> list of results on one worker thread, batching across requests."""

    def __init__(self, fn: Callable[[list[T]], list[R]], max_batch: int,
                 on_batch: Optional[Callable[[int, float], None]] = None, executor: Optional[ThreadPoolExecutor] = None):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.fn, self.max_batch, self.on_batch = fn, max_batch, on_batch
        self.executor = executor or ThreadPoolExecutor(1, thread_name_prefix="glassbox-model")
        self._queue: Optional[asyncio.Queue[_Job[T, R]]] = None
        self._task: Optional[asyncio.Task[None]] = None

    async def submit(self, items: list[T]) -> list[R]:
        """The results of items, in order (computed with whatever else is queued)."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if self._queue is None or self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._run())
        job: _Job[T, R] = _Job(list(items), loop.create_future())
        self._queue.put_nowait(job)
        return await job.future

    def _drain(self, pending: "collections.deque[_Job[T, R]]") -> None:
        assert self._queue is not None
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())

    def _cut(self, pending: "collections.deque[_Job[T, R]]") -> tuple[list[T], list[tuple[_Job[T, R], int]]]:
        """The next batch, and for each job in it how many of its items it holds."""
        batch: list[T] = []
        owners: list[tuple[_Job[T, R], int]] = []
        while pending and len(batch) < self.max_batch:
            job = pending[0]
            n = min(self.max_batch - len(batch), len(job.items) - job.taken)
            batch += job.items[job.taken:job.taken + n]
            owners.append((job, n))
            job.taken += n
            if job.taken == len(job.items):
                pending.popleft()
        return batch, owners

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        pending: collections.deque[_Job[T, R]] = collections.deque()
        while True:
            pending.append(await self._queue.get())
            self._drain(pending)
            while pending:
                batch, owners = self._cut(pending)
                t0 = time.perf_counter()
                try:
                    out = await loop.run_in_executor(self.executor, self.fn, batch)
                except Exception as exc:  # noqa: BLE001 - the requests in this batch fail, the server goes on
                    for job, _ in owners:
                        if not job.future.done():
                            job.future.set_exception(exc)
                        if job in pending:
                            pending.remove(job)
                    continue
                if self.on_batch is not None:
                    self.on_batch(len(batch), time.perf_counter() - t0)
                i = 0
                for job, n in owners:
                    job.results += out[i:i + n]
                    i += n
                    if len(job.results) == len(job.items) and not job.future.done():
                        job.future.set_result(job.results)
                self._drain(pending)
