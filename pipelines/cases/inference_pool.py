"""A process-wide bound on concurrent analyses, so load turns into quick refusals instead of slow answers.

Each slot decodes, gates and detects one photo; there are as many slots as cores by default, and every
request of the process shares them. The API waits a short, bounded time for a slot and then refuses
with `Busy` (the app retries after `retry_after` seconds); a worker waits as long as it takes, since its
backlog lives in the broker. Memory follows the slots, not the number of uploads in flight.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Busy(Exception):
    """Every slot stayed taken for the whole allowed wait."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"all analysis slots are busy; retry after {retry_after} s")
        self.retry_after = retry_after


class InferencePool:
    def __init__(self, slots: int, *, seconds_per_analysis: float = 1.0) -> None:
        if slots < 1:
            raise ValueError("an inference pool needs at least one slot")
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._seconds_per_analysis = seconds_per_analysis
        self._lock = threading.Lock()
        self._waiting = 0

    @contextmanager
    def slot(self, wait: float | None) -> Iterator[None]:
        """Hold one slot for the block; `wait` seconds at most (None: as long as it takes), else `Busy`."""
        with self._lock:
            self._waiting += 1
        try:
            acquired = self._free.acquire(timeout=wait) if wait is not None else self._free.acquire()
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise Busy(self.retry_after())
        try:
            yield
        finally:
            self._free.release()

    def retry_after(self) -> int:
        """Seconds until the queue ahead of a new request has likely drained (at least 1)."""
        with self._lock:
            ahead = self._waiting + self.slots
        return max(1, math.ceil(ahead / self.slots * self._seconds_per_analysis))
