"""Live first: a replay batch starts only after the live lane was idle for ``quiet_s``."""

from __future__ import annotations

import asyncio

from darkroom_variants.scheduler import LiveFirst


async def test_a_fresh_gate_is_idle(clock):
    gate = LiveFirst(quiet_s=1.0, clock=clock)
    assert gate.idle
    async with gate.replay():
        pass


async def test_a_replay_batch_waits_for_the_live_batch_and_the_quiet_time(clock):
    gate = LiveFirst(quiet_s=1.0, clock=clock, poll_s=0.001)
    started = asyncio.Event()

    async def replay_batch() -> None:
        async with gate.replay():
            started.set()

    async with gate.live():
        assert not gate.idle
        replay = asyncio.create_task(replay_batch())
        await asyncio.sleep(0.02)
        assert not started.is_set()
    clock.advance(0.5)
    await asyncio.sleep(0.02)
    assert not started.is_set()  # live finished only half a quiet time ago
    clock.advance(0.5)
    await asyncio.wait_for(replay, 1)
    assert started.is_set()
    assert gate.idle


async def test_overlapping_live_batches_keep_the_gate_busy_until_the_last_ends(clock):
    gate = LiveFirst(quiet_s=0.0, clock=clock)
    async with gate.live():
        async with gate.live():
            pass
        assert not gate.idle
    assert gate.idle
