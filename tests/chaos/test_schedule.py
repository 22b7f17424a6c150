"""The chaos soak's fault schedule: seeded, covering every kind, brokers spaced apart."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from darkroom_dev.chaos import BROKER, DECK, KINDS, STATE_LOSS, check_deck, corpus_dir, schedule


def test_the_same_seed_draws_the_same_schedule_and_another_seed_another():
    assert schedule(7, 300, workers=2, brokers=3) == schedule(7, 300, workers=2, brokers=3)
    assert schedule(7, 300, workers=2, brokers=3) != schedule(8, 300, workers=2, brokers=3)


@pytest.mark.parametrize("seed", range(20))
def test_five_minutes_hold_at_least_15_kills_of_every_kind_in_order(seed):
    plan = schedule(seed, 300, workers=2, brokers=3)
    kinds = Counter(f.kind for f in plan)
    assert len(plan) >= 15
    assert set(kinds) == set(KINDS), kinds
    assert kinds[STATE_LOSS] >= 1
    times = [f.at_s for f in plan]
    assert times == sorted(times)
    assert times[0] >= 15
    assert times[-1] <= 290
    assert all(b - a >= 2 for a, b in pairwise(times))
    brokers = [f for f in plan if f.kind == BROKER]
    assert all(b.at_s - a.at_s >= 45 for a, b in pairwise(brokers))
    assert all(3 <= f.restart_after_s <= 8 for f in brokers)
    assert all(0 <= f.target < (3 if f.kind == BROKER else 2) for f in plan)


def test_thirty_minutes_hold_more_kills_and_a_single_broker_is_never_killed():
    assert len(schedule(1, 1800, workers=2, brokers=3)) >= 100
    assert BROKER not in {f.kind for f in schedule(1, 300, workers=2, brokers=1)}


def test_a_window_too_short_for_the_kills_is_refused():
    with pytest.raises(ValueError, match="too short"):
        schedule(1, 60, workers=2, brokers=3, min_kills=15)


def test_every_deck_file_is_in_the_corpus_and_bad_files_carry_their_reason():
    check_deck(corpus_dir())
    bad = [d for d in DECK if d.reason]
    assert len(bad) >= 5
    assert {d.path for d in DECK if d.path.endswith(".cr2") and not d.reason}
