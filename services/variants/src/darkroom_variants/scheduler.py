"""Live first: the replay lane renders only while live requests leave the workers idle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from darkroom_common.ports import Clock


class LiveFirst:
    """Lets replay batches run only when no live batch ran for ``quiet_s`` seconds.

    Live batches run inside :meth:`live`; each replay batch inside :meth:`replay`, which
    first waits for :meth:`wait_idle`. Both are the ``around`` of their render routes. A
    backfill therefore delays a live upload by at most one (small) replay batch.

    Args:
        quiet_s: idle time the live lane needs before a replay batch starts, seconds.
        clock: the monotonic time (seconds).
        poll_s: how often a waiting replay batch looks again, seconds.
    """

    def __init__(self, quiet_s: float, clock: Clock, *, poll_s: float = 0.05) -> None:
        self.quiet_s = quiet_s
        self.clock = clock
        self.poll_s = poll_s
        self._active = 0
        self._last = float("-inf")

    @property
    def idle(self) -> bool:
        """Whether no live batch runs now nor finished within the last ``quiet_s`` seconds."""
        return not self._active and self.clock.monotonic() - self._last >= self.quiet_s

    @contextlib.asynccontextmanager
    async def live(self) -> AsyncIterator[None]:
        """Mark a live batch as running while the block runs."""
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            self._last = self.clock.monotonic()

    async def wait_idle(self) -> None:
        """Return once :attr:`idle` (at once when it already is)."""
        while not self.idle:  # noqa: ASYNC110 - a condition on the clock, not an event
            await asyncio.sleep(self.poll_s)

    @contextlib.asynccontextmanager
    async def replay(self) -> AsyncIterator[None]:
        """Wait until :attr:`idle`, then run the (replay) block."""
        await self.wait_idle()
        yield
