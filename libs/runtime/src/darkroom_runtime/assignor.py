"""The consumer group's partition assignor: co-partitioned, sticky, and it knows who owns what.

Every worker of a stage subscribes to the same topics. The assignor hands out
*partition numbers*: a worker given number ``p`` gets partition ``p`` of every topic
it consumes, so an image's events on every topic, and the tables keyed like them,
meet on one worker (co-partitioning, as Kafka Streams and Faust require for tables).

It is sticky: a worker keeps the numbers it owned (sent in its subscription's user
data) as long as that keeps the group balanced, so a worker joining or leaving moves
as few partitions (and as little table state) as possible. Balanced means every
worker owns ``n // m`` or ``n // m + 1`` of the ``n`` numbers.

Every worker also learns every number's owner URL (sent in each assignment's user
data), so a catalog worker can forward an HTTP request for a key it does not hold.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

log = logging.getLogger(__name__)


def balance(numbers: Iterable[int], members: Mapping[str, Iterable[int]]) -> dict[str, list[int]]:
    """Return a balanced, sticky assignment of partition ``numbers`` to ``members``.

    Args:
        numbers: every partition number to hand out.
        members: member id → the numbers it owned before (possibly none).

    Returns:
        member id → sorted numbers. Each member gets ``n // m`` or one more (the
        members that owned the most get the extra ones); a member keeps what it
        owned up to its share; a number claimed by two members goes to the first by
        member id.
    """
    wanted = sorted(set(numbers))
    ids = sorted(members)
    if not ids:
        return {}
    base, extra = divmod(len(wanted), len(ids))
    claims: dict[str, list[int]] = {m: [] for m in ids}
    taken: set[int] = set()
    valid = set(wanted)
    for m in ids:
        for p in sorted(set(members[m])):
            if p in valid and p not in taken:
                claims[m].append(p)
                taken.add(p)
    # The members that owned the most keep the extra slots (fewest moves).
    by_claims = sorted(ids, key=lambda m: (-len(claims[m]), m))
    quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(by_claims)}
    result = {m: claims[m][: quota[m]] for m in ids}
    free = [p for p in wanted if not any(p in result[m] for m in ids)]
    for m in ids:
        while len(result[m]) < quota[m] and free:
            result[m].append(free.pop(0))
    return {m: sorted(ps) for m, ps in result.items()}


class CopartitionedAssignor(AbstractPartitionAssignor):
    """aiokafka assignor ``darkroom-copartitioned`` (see the module docstring).

    Args:
        url: this worker's advertised HTTP base URL (sent to the group).

    Attributes:
        owned: the partition numbers this worker was last assigned.
        owners: partition number → owner URL, for the whole group, from the last assignment.
        generation: how many assignments this worker received.
    """

    name = "darkroom-copartitioned"
    version = 1

    def __init__(self, url: str = "") -> None:
        self.url = url
        self.owned: set[int] = set()
        self.owners: dict[int, str] = {}
        self.generation = 0

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        """This worker's subscription, with its URL and owned numbers as user data."""
        user_data = json.dumps({"url": self.url, "owned": sorted(self.owned)}).encode()
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), user_data)

    def assign(
        self,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        """Assign partition numbers (run by the group leader)."""
        counts: dict[str, int] = {}
        urls: dict[str, str] = {}
        owned: dict[str, list[int]] = {}
        for member_id, meta in members.items():
            data = _user_data(meta.user_data)
            urls[member_id] = str(data.get("url", ""))
            owned[member_id] = [int(p) for p in data.get("owned", [])]
            for topic in meta.subscription:
                partitions = cluster.partitions_for_topic(topic)
                if partitions:
                    counts[topic] = len(partitions)
        numbers = range(max(counts.values(), default=0))
        plan = balance(numbers, owned)
        owners = {p: urls[m] for m, ps in plan.items() for p in ps}
        result = {}
        for member_id, meta in members.items():
            mine = plan[member_id]
            assignment = [
                (topic, [p for p in mine if p < counts[topic]])
                for topic in sorted(meta.subscription)
                if topic in counts
            ]
            user_data = json.dumps({"owners": owners, "numbers": mine}).encode()
            result[member_id] = ConsumerProtocolMemberAssignment(
                self.version, assignment, user_data
            )
        log.info(
            "assigned partitions",
            extra={"members": len(members), "plan": {urls[m] or m: ps for m, ps in plan.items()}},
        )
        return result

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        """Remember this worker's numbers and every number's owner."""
        data = _user_data(assignment.user_data)
        self.owned = {int(p) for p in data.get("numbers", [])}
        self.owners = {int(p): str(url) for p, url in data.get("owners", {}).items()}
        self.generation += 1


def _user_data(raw: bytes | None) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
