"""The render batch: the requests a lane took together, one decode per source.

A render lane hands :class:`RenderBatch` the requests waiting together; each request
then goes through the batch on its own (retried, dead-lettered and committed alone by
the runtime). The first request of a source renders the whole source group at once;
the others take their outcome from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from darkroom_common.errors import PoisonEvent
from darkroom_imaging.outcomes import Failure
from darkroom_schemas import VariantDoneV1, VariantRequestedV1
from darkroom_variants.request import RenderRequest, Slot
from darkroom_variants.worker import Outcome, Renderer, failed, reuse


@dataclass(slots=True)
class SourceGroup:
    """The batch's requests of one source, and what became of them once it was rendered.

    Attributes:
        requests: in the order they were taken.
        started: whether its shared render was attempted (it runs at most once).
        reused: ``id(request event)`` → the ``done`` answered from an existing object.
        outcomes: slot → rendered variant or failure, filled by the shared render.
    """

    requests: list[RenderRequest]
    started: bool = False
    reused: dict[int, VariantDoneV1] = field(default_factory=dict)
    outcomes: dict[Slot, Outcome] = field(default_factory=dict)


def group_by_source(requests: Sequence[RenderRequest]) -> list[SourceGroup]:
    """Group ``requests`` by ``(source_key, source_sha256)``, keeping first-seen order."""
    groups: dict[tuple[str, str], SourceGroup] = {}
    for r in requests:
        groups.setdefault(r.source, SourceGroup([])).requests.append(r)
    return list(groups.values())


class RenderBatch:
    """Answers each request of a batch with its ``variant-done``, sharing work between them.

    Building it never raises: each request is parsed once (:meth:`RenderRequest.parse`)
    and grouped by source. Calling it with one of the batch's requests:

    1. a request that did not parse is answered ``failed`` (``invalid_spec``);
    2. the first request of a source group checks every request of the group with
       :func:`reuse` and renders the rest from one decode;
    3. a reused request is answered from its existing object;
    4. a request whose shared render failed (it raised, e.g. the store was unavailable)
       is rendered alone when the runtime retries it;
    5. the outcome is published (:meth:`Renderer.publish`).

    Args:
        renderer: renders and publishes.
        events: the decoded values the lane took together.
        same_source: reuse only objects rendered from the request's own source bytes
            (the live lane: a request redelivered after a crash is answered from the
            object its first render wrote, since a render depends on the batch it was
            in; the replay lane reuses by spec alone).
    """

    def __init__(
        self, renderer: Renderer, events: Sequence[object], *, same_source: bool = False
    ) -> None:
        self.renderer = renderer
        self.same_source = same_source
        self._parsed = {
            id(e): RenderRequest.parse(e) for e in events if isinstance(e, VariantRequestedV1)
        }
        requests = [p for p in self._parsed.values() if isinstance(p, RenderRequest)]
        self._groups = {
            id(r.event): group for group in group_by_source(requests) for r in group.requests
        }

    async def __call__(self, event: object) -> VariantDoneV1:
        """Return the ``variant-done`` of ``event`` (one of the batch's requests).

        Raises:
            PoisonEvent: ``event`` is not a ``VariantRequestedV1``.
            StorageUnavailable: the source could not be read or the output stored (retriable).
        """
        if not isinstance(event, VariantRequestedV1):
            raise PoisonEvent(f"expected a VariantRequestedV1, got {type(event).__name__}")
        parsed = self._parsed.get(id(event))
        if parsed is None:  # not one the batch was built from: a batch of its own
            parsed = self._parsed[id(event)] = RenderRequest.parse(event)
            if isinstance(parsed, RenderRequest):
                self._groups[id(event)] = SourceGroup([parsed])
        if isinstance(parsed, Failure):
            return failed(event, parsed)
        group = self._groups[id(event)]
        if not group.started:
            group.started = True
            await self._reuse_or_render(group)
        if (done := group.reused.get(id(event))) is not None:
            return done
        outcome = group.outcomes.get(parsed.slot)
        if outcome is None:  # the shared render failed: this request alone
            outcome = group.outcomes[parsed.slot] = await self.renderer.render_one(parsed)
        return await self.renderer.publish(parsed, outcome)

    async def _reuse_or_render(self, group: SourceGroup) -> None:
        fresh = []
        for request in group.requests:
            done = await reuse(self.renderer.store, request, same_source=self.same_source)
            if done is None:
                fresh.append(request)
            else:
                group.reused[id(request.event)] = done
        if fresh:
            group.outcomes.update(await self.renderer.render(fresh))
