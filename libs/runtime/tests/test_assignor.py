"""The co-partitioned, sticky assignor: balance, stickiness, and every worker's map of owners."""

from __future__ import annotations

import json
import random

import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from darkroom_runtime.assignor import CopartitionedAssignor, balance


def shares(plan: dict[str, list[int]]) -> list[int]:
    return sorted(len(ps) for ps in plan.values())


@pytest.mark.parametrize(("numbers", "members"), [(8, 1), (8, 3), (8, 8), (3, 5), (12, 5)])
def test_every_number_goes_to_exactly_one_member_and_shares_differ_by_at_most_one(numbers, members):
    plan = balance(range(numbers), {f"m{i}": [] for i in range(members)})
    handed = sorted(p for ps in plan.values() for p in ps)
    assert handed == list(range(numbers))
    assert max(shares(plan)) - min(shares(plan)) <= 1


def test_a_joining_member_moves_only_what_balance_requires():
    before = balance(range(8), {"a": [], "b": []})
    after = balance(range(8), {"a": before["a"], "b": before["b"], "c": []})
    moved = sum(1 for m in ("a", "b") for p in before[m] if p not in after[m])
    assert shares(after) == [2, 3, 3]
    assert moved == 2  # the newcomer's two, nothing shuffled between the others
    assert set(after["a"]) <= set(before["a"])
    assert set(after["b"]) <= set(before["b"])


def test_a_leaving_member_hands_on_only_its_own_numbers():
    before = balance(range(8), {"a": [], "b": [], "c": []})
    after = balance(range(8), {"a": before["a"], "b": before["b"]})
    assert set(before["a"]) <= set(after["a"])
    assert set(before["b"]) <= set(after["b"])
    assert sorted(after["a"] + after["b"]) == list(range(8))


def test_double_claims_and_unknown_numbers_are_resolved_deterministically():
    plan = balance(range(4), {"b": [0, 1, 9], "a": [0, 1]})
    assert plan == {"a": [0, 1], "b": [2, 3]}
    assert plan == balance(range(4), {"a": [0, 1], "b": [0, 1, 9]})


def test_random_histories_stay_balanced_and_complete():
    rng = random.Random(7)
    owned: dict[str, list[int]] = {}
    for step in range(200):
        if owned and rng.random() < 0.4:
            owned.pop(rng.choice(sorted(owned)))
        else:
            owned[f"w{step}"] = []
        plan = balance(range(8), owned)
        if owned:
            assert sorted(p for ps in plan.values() for p in ps) == list(range(8))
            assert max(shares(plan)) - min(shares(plan)) <= 1
        owned = {m: plan[m] for m in owned}


class Cluster:
    """The only part of aiokafka's ClusterMetadata an assignor reads."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.counts[topic])) if topic in self.counts else None


def test_the_group_gets_co_partitioned_assignments_and_the_owner_map():
    leader = CopartitionedAssignor("http://a:1")
    members = {
        "m-a": leader.metadata(["t.uploaded", "t.validated"]),
        "m-b": CopartitionedAssignor("http://b:1").metadata(["t.uploaded", "t.validated"]),
    }
    result = leader.assign(Cluster({"t.uploaded": 4, "t.validated": 4}), members)  # type: ignore[arg-type]
    a = dict(result["m-a"].assignment)
    b = dict(result["m-b"].assignment)
    assert a["t.uploaded"] == a["t.validated"]
    assert b["t.uploaded"] == b["t.validated"]
    assert sorted(a["t.uploaded"] + b["t.uploaded"]) == [0, 1, 2, 3]
    follower = CopartitionedAssignor("http://b:1")
    follower.on_assignment(result["m-b"])
    assert follower.owned == set(b["t.uploaded"])
    assert follower.owners == {
        **dict.fromkeys(a["t.uploaded"], "http://a:1"),
        **dict.fromkeys(b["t.uploaded"], "http://b:1"),
    }
    # The next subscription tells the leader what this worker owns (stickiness).
    data = json.loads(follower.metadata(["t.uploaded"]).user_data)
    assert data == {"url": "http://b:1", "owned": sorted(follower.owned)}


def test_garbage_user_data_counts_as_owning_nothing():
    members = {"m": ConsumerProtocolMemberMetadata(1, ["t.x"], b"\xff not json")}
    result = CopartitionedAssignor().assign(Cluster({"t.x": 2}), members)  # type: ignore[arg-type]
    assert dict(result["m"].assignment) == {"t.x": [0, 1]}
