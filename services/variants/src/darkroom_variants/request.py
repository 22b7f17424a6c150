"""A ``variant-requested`` event parsed once: its spec, checked against its hash, and its key."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from darkroom_common.errors import InvalidKey
from darkroom_common.objects import variant_key
from darkroom_imaging.outcomes import Failure, Reason
from darkroom_imaging.specs import VariantSpec, spec_hash
from darkroom_schemas import VariantRequestedV1

Slot = tuple[str, str]
"""``(variant, spec_hash)``: requests of one source with the same slot share one output."""


@dataclass(frozen=True, slots=True)
class RenderRequest:
    """One variant request, ready to render, reuse or publish.

    Build it with :meth:`parse`, never directly: ``spec`` is then known to hash to
    ``event.spec_hash``, so ``key`` names exactly what this spec renders.

    Attributes:
        event: the request as received.
        spec: its parsed spec.
        key: where its output goes, ``variants/<gallery>/<image>/<variant>-<spec_hash>.<ext>``.
    """

    event: VariantRequestedV1
    spec: VariantSpec
    key: str

    @classmethod
    def parse(cls, event: VariantRequestedV1) -> RenderRequest | Failure:
        """Return the parsed request, or an ``invalid_spec`` failure saying what is wrong.

        A request is invalid when its ``spec_json`` does not validate, hashes to another
        value than its ``spec_hash`` (the planner and this worker disagree on the
        renderer), or its variant name cannot be part of an object key. Never raises.
        """
        try:
            spec = VariantSpec.model_validate_json(event.spec_json)
        except ValidationError as exc:
            return Failure(
                Reason.INVALID_SPEC,
                f"The variant spec does not validate: {exc.errors()[0]['msg']}.",
            )
        if spec_hash(spec) != event.spec_hash:
            return Failure(
                Reason.INVALID_SPEC,
                "The spec hash does not match the spec; "
                "the planner and this worker disagree on the renderer.",
            )
        try:
            key = variant_key(
                event.gallery_id, event.image_id, event.variant, event.spec_hash, spec.extension
            )
        except InvalidKey as exc:
            return Failure(Reason.INVALID_SPEC, f"The variant name is not usable in a key: {exc}")
        return cls(event, spec, key)

    @property
    def slot(self) -> Slot:
        """``(variant, spec_hash)`` of the request."""
        return (self.event.variant, self.event.spec_hash)

    @property
    def source(self) -> tuple[str, str]:
        """``(source_key, source_sha256)``: requests of one source render from one decode."""
        return (self.event.source_key, self.event.source_sha256)
