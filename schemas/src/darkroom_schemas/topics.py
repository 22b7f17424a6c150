"""The topic registry: every topic of the pipeline, in one place.

The whole pipeline graph can be read here: which stage consumes and produces
which topic, with which event schema, how many partitions, how long data is
kept, and where each stage sends what it gives up on (its dead-letter topic).
Every pipeline topic is keyed by ``image_id`` so all events of one image stay ordered
on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from darkroom_schemas.base import WireRecord
from darkroom_schemas.events import (
    CatalogedV1,
    GallerySettingsV1,
    ImageDeletedV1,
    UploadedV1,
    ValidatedV1,
    VariantDoneV1,
    VariantRequestedV1,
)

DEFAULT_PARTITIONS = 8
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its registry name, layout and the schemas its values may carry.

    Attributes:
        name: the name without the deployment prefix, e.g. ``uploaded``.
        key: the event field used as the message key.
        schemas: event models allowed as values (empty for dead-letter topics,
            which carry ``DeadLetterV1``).
        retention_ms: ``retention.ms``; -1 keeps data forever (needed to replay).
        cleanup_policy: ``cleanup.policy``: ``delete`` or ``compact``.
        partitions: partition count; ``None`` means the deployment's default.
    """

    name: str
    key: str = "image_id"
    schemas: tuple[type[WireRecord], ...] = ()
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    partitions: int | None = None
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()

    def full_name(self, prefix: str) -> str:
        """Return the broker-side name, ``<prefix><name>`` (e.g. ``darkroom.uploaded``)."""
        return f"{prefix}{self.name}"

    def configs(self) -> dict[str, str]:
        """Return the topic-level configs the broker must hold for this topic."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


@dataclass(frozen=True, slots=True)
class Stage:
    """A service: the topics it reads and writes, its own internal topics, its dead-letter topic.

    ``internal`` topics are read and written by the stage alone (a repartition
    by another key); they are created with the others, before any worker starts.
    ``tables`` are compacted topics the stage reads whole into a global table.
    """

    name: str
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    internal: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    dead_letter: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dead_letter", f"{self.name}.dlq")


UPLOADED = TopicSpec("uploaded", schemas=(UploadedV1,), retention_ms=30 * DAY_MS)
VALIDATED = TopicSpec("validated", schemas=(ValidatedV1,), retention_ms=30 * DAY_MS)
VARIANT_REQUESTED = TopicSpec("variant-requested", schemas=(VariantRequestedV1,))
VARIANT_DONE = TopicSpec("variant-done", schemas=(VariantDoneV1,))
CATALOGED = TopicSpec("cataloged", schemas=(CatalogedV1,), retention_ms=30 * DAY_MS)
REPLAY_VALIDATED = TopicSpec("replay.validated", schemas=(ValidatedV1,))
"""The replay lane: validated images to plan again (``darkroom replay``), apart from live uploads."""
REPLAY_VARIANT_REQUESTED = TopicSpec("replay.variant-requested", schemas=(VariantRequestedV1,))
"""Variant requests of the replay lane; rendered only while live requests leave the workers idle."""
IMAGE_DELETED = TopicSpec("image-deleted", schemas=(ImageDeletedV1,), retention_ms=30 * DAY_MS)
"""Delete requests; every stage removes what it holds of the image."""
GALLERY_SETTINGS = TopicSpec(
    "gallery-settings",
    key="gallery_id",
    schemas=(GallerySettingsV1,),
    retention_ms=-1,
    cleanup_policy="compact",
    partitions=1,
)
"""Per-gallery processing settings, latest per gallery_id; every service reads it whole."""
UPLOADED_BY_GALLERY = TopicSpec(
    "ingest.uploaded-by-gallery",
    key="gallery_id",
    schemas=(UploadedV1, ImageDeletedV1, CatalogedV1),
    retention_ms=7 * DAY_MS,
)
"""Uploads, deletes and terminal jobs repartitioned by gallery, so one ingest worker owns
each gallery's limits, held (manual-mode) jobs and concurrency count."""
CATALOGED_BY_GALLERY = TopicSpec(
    "catalog.cataloged-by-gallery",
    key="gallery_id",
    schemas=(CatalogedV1, ImageDeletedV1),
    retention_ms=7 * DAY_MS,
)
"""Terminal jobs and deletes repartitioned by gallery, so one catalog worker owns each gallery's row."""

STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        consumes=("uploaded", "image-deleted", "cataloged"),
        produces=("validated",),
        internal=("ingest.uploaded-by-gallery",),
        tables=("gallery-settings",),
    ),
    Stage(
        "raw-provider",
        consumes=("validated", "image-deleted"),
        produces=("validated",),
        tables=("gallery-settings",),
    ),
    Stage(
        "variants",
        consumes=(
            "validated",
            "variant-requested",
            "image-deleted",
            "replay.validated",
            "replay.variant-requested",
        ),
        produces=("variant-requested", "variant-done", "replay.variant-requested"),
        tables=("gallery-settings",),
    ),
    Stage(
        "catalog",
        consumes=(
            "uploaded",
            "validated",
            "variant-requested",
            "variant-done",
            "cataloged",
            "image-deleted",
            "replay.validated",
            "replay.variant-requested",
        ),
        produces=("cataloged", "uploaded", "image-deleted", "gallery-settings"),
        internal=("catalog.cataloged-by-gallery",),
        tables=("gallery-settings",),
    ),
)
"""Every stage and its edges: the pipeline graph in one place."""

DEAD_LETTER_RETENTION_MS = 30 * DAY_MS

TOPICS: dict[str, TopicSpec] = {
    t.name: t
    for t in (
        UPLOADED,
        VALIDATED,
        VARIANT_REQUESTED,
        VARIANT_DONE,
        CATALOGED,
        REPLAY_VALIDATED,
        REPLAY_VARIANT_REQUESTED,
        IMAGE_DELETED,
        GALLERY_SETTINGS,
        UPLOADED_BY_GALLERY,
        CATALOGED_BY_GALLERY,
        *(
            TopicSpec(s.dead_letter, key="image_id", retention_ms=DEAD_LETTER_RETENTION_MS)
            for s in STAGES
        ),
    )
}
"""Every topic by registry name, dead-letter topics included."""


def stage(name: str) -> Stage:
    """Return the stage called ``name``.

    Raises:
        KeyError: no such stage.
    """
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in STAGES)}")


def topics_for_stage(name: str) -> list[TopicSpec]:
    """Return every topic stage ``name`` reads or writes, its dead-letter topic included."""
    s = stage(name)
    names = dict.fromkeys((*s.consumes, *s.produces, *s.internal, *s.tables, s.dead_letter))
    return [TOPICS[n] for n in names]
