"""The topic registry: every topic of the pipeline and every stage's routes, in one place.

The whole pipeline graph can be read here: which stage consumes which topic
and what each of those routes may produce, with which event schema, how many
partitions, how long data is kept, which state each stage keeps (a compacted
changelog topic per table) and where each stage sends what it gives up on (its
dead-letter topic). :func:`describe` prints it; the stage runtime
(``darkroom_runtime.mount``) builds every consumer from it and refuses to start a
stage whose handlers differ from its routes.

Every topic declares its key field: pipeline topics are keyed by ``image_id``, so all
events of one image stay ordered on one partition; the gallery repartitions and the
settings topic by ``gallery_id``. Producers partition keys with Kafka's default
partitioner (murmur2 of the key bytes, as the Java client does).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

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

TopicKind = Literal["event", "repartition", "dead-letter", "changelog"]


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its registry name, key, layout and the schemas its values may carry.

    Attributes:
        name: the name without the deployment prefix, e.g. ``uploaded``.
        key: the event field whose value (UTF-8) is the message key, e.g. ``image_id``;
            for dead-letter topics the failed message's own key, for changelogs the
            table key.
        schemas: event models allowed as values (empty for dead-letter topics, which
            carry ``DeadLetterV1``, and for changelogs, which carry table values).
        retention_ms: ``retention.ms``; -1 keeps data forever (needed to replay).
        cleanup_policy: ``cleanup.policy``: ``delete`` or ``compact``.
        partitions: partition count; ``None`` means the deployment's default.
        kind: ``event`` (a pipeline topic), ``repartition`` (a stage's own topic keyed
            by another field), ``dead-letter`` or ``changelog`` (a table's state).
        producers: the stages and sources that write it (filled from :data:`STAGES`
            and :data:`SOURCES`).
        consumers: the stages that read it in their consumer group, or follow it whole.
    """

    name: str
    key: str = "image_id"
    schemas: tuple[type[WireRecord], ...] = ()
    retention_ms: int = 7 * DAY_MS
    cleanup_policy: str = "delete"
    partitions: int | None = None
    kind: TopicKind = "event"
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()

    def full_name(self, prefix: str) -> str:
        """Return the broker-side name, ``<prefix><name>`` (e.g. ``darkroom.uploaded``)."""
        return f"{prefix}{self.name}"

    def configs(self, min_insync_replicas: int | None = None) -> dict[str, str]:
        """Return the topic-level configs the broker must hold for this topic.

        Args:
            min_insync_replicas: the deployment's ``min.insync.replicas`` for this
                topic (it depends on the replication factor, not on the registry);
                ``None`` leaves it out.
        """
        configs = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if min_insync_replicas is not None:
            configs["min.insync.replicas"] = str(min_insync_replicas)
        return configs

    def key_of(self, value: object) -> bytes | None:
        """Return the message key of ``value`` on this topic: its :attr:`key` field, UTF-8.

        ``None`` when ``value`` has no such field (a dead letter or a table value: the
        caller passes the key itself).
        """
        found = getattr(value, self.key, None)
        return None if found is None else str(found).encode()


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One route of a stage: the topic it consumes and the topics its handler may produce.

    Attributes:
        topic: the consumed topic (registry name).
        emits: every topic the handler may send to; anything else is refused.
        does: what the handler does, in a few words (printed by :func:`describe`).
    """

    topic: str
    emits: tuple[str, ...]
    does: str


@dataclass(frozen=True, slots=True)
class Stage:
    """A service: its routes, what it produces, its state and its dead-letter topic.

    Attributes:
        name: the stage name; the consumer group is ``<topic prefix><name>``.
        routes: one per consumed topic (see :class:`RouteSpec`).
        produces: every topic the stage writes: its routes' emits (its own internal
            topics aside) and its commands'.
        commands: topics the stage writes outside its routes (an HTTP API's commands).
        internal: topics the stage alone reads and writes (a repartition by another key).
        follows: compacted topics every worker reads whole, outside the consumer group.
        state: its tables; each has a compacted changelog topic
            ``<stage>-<table>-changelog`` partitioned like the stage's input topics.
        dead_letter: ``<name>.dlq``.
    """

    name: str
    routes: tuple[RouteSpec, ...]
    produces: tuple[str, ...]
    commands: tuple[str, ...] = ()
    internal: tuple[str, ...] = ()
    follows: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    dead_letter: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dead_letter", f"{self.name}.dlq")

    @property
    def consumes(self) -> tuple[str, ...]:
        """The topics the stage's consumer group reads: one per route."""
        return tuple(r.topic for r in self.routes)

    def route(self, topic: str) -> RouteSpec:
        """Return the route consuming ``topic``.

        Raises:
            KeyError: the stage does not consume ``topic``.
        """
        for r in self.routes:
            if r.topic == topic:
                return r
        raise KeyError(f"stage {self.name} has no route for {topic!r}")

    def changelog(self, table: str) -> str:
        """Return the registry name of ``table``'s changelog topic."""
        if table not in self.state:
            raise KeyError(f"stage {self.name} keeps no table {table!r}")
        return changelog_name(self.name, table)


@dataclass(frozen=True, slots=True)
class Source:
    """A producer outside the stages (an upload API, a CLI command, a bridge)."""

    name: str
    produces: tuple[str, ...]


def changelog_name(stage_name: str, table: str) -> str:
    """Registry name of a table's changelog: ``<stage>-<table>-changelog``.

    With the deployment prefix this is ``<prefix><stage>-<table>-changelog``, the name
    Faust gave the same tables (``<app id>-<table>-changelog``), so state written by
    earlier releases is read as is.
    """
    return f"{stage_name}-{table}-changelog"


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
    kind="repartition",
)
"""Uploads, deletes and terminal jobs repartitioned by gallery, so one ingest worker owns
each gallery's limits, held (manual-mode) jobs and concurrency count."""
CATALOGED_BY_GALLERY = TopicSpec(
    "catalog.cataloged-by-gallery",
    key="gallery_id",
    schemas=(CatalogedV1, ImageDeletedV1),
    retention_ms=7 * DAY_MS,
    kind="repartition",
)
"""Terminal jobs and deletes repartitioned by gallery, so one catalog worker owns each gallery's row."""

_BY_GALLERY = "repartition by gallery_id"
_JOB = "apply to the job; cataloged when it ends"

STAGES: tuple[Stage, ...] = (
    Stage(
        "ingest",
        routes=(
            RouteSpec("uploaded", ("ingest.uploaded-by-gallery",), _BY_GALLERY),
            RouteSpec("image-deleted", ("ingest.uploaded-by-gallery",), _BY_GALLERY),
            RouteSpec("cataloged", ("ingest.uploaded-by-gallery",), _BY_GALLERY),
            RouteSpec(
                "ingest.uploaded-by-gallery",
                ("validated",),
                "validate; hold, queue, release; forget deletes",
            ),
        ),
        produces=("validated",),
        internal=("ingest.uploaded-by-gallery",),
        follows=("gallery-settings",),
        state=(
            "ingest-content",
            "ingest-gallery-counts",
            "ingest-image-content",
            "ingest-held",
            "ingest-queued",
            "ingest-active",
            "ingest-verdicts",
        ),
    ),
    Stage(
        "raw-provider",
        routes=(
            RouteSpec("validated", ("validated",), "develop a RAW into its JPEG master"),
            RouteSpec("image-deleted", (), "delete masters/<gallery>/<image>/"),
        ),
        produces=("validated",),
        follows=("gallery-settings",),
    ),
    Stage(
        "variants",
        routes=(
            RouteSpec(
                "validated",
                ("variant-requested", "variant-done"),
                "plan one request per spec of the profile",
            ),
            RouteSpec(
                "variant-requested",
                ("variant-done",),
                "render in batches, one decode per source",
            ),
            RouteSpec("image-deleted", (), "delete variants/<gallery>/<image>/"),
            RouteSpec(
                "replay.validated",
                ("replay.variant-requested", "variant-done"),
                "plan again for a replay",
            ),
            RouteSpec(
                "replay.variant-requested",
                ("variant-done",),
                "reuse or render while live is idle",
            ),
        ),
        produces=("variant-requested", "variant-done", "replay.variant-requested"),
        follows=("gallery-settings",),
    ),
    Stage(
        "catalog",
        routes=(
            RouteSpec("uploaded", ("cataloged",), _JOB),
            RouteSpec("validated", ("cataloged",), _JOB),
            RouteSpec("variant-requested", ("cataloged",), _JOB),
            RouteSpec("variant-done", ("cataloged",), _JOB),
            RouteSpec("replay.validated", ("cataloged",), _JOB),
            RouteSpec("replay.variant-requested", ("cataloged",), _JOB),
            RouteSpec(
                "image-deleted",
                ("catalog.cataloged-by-gallery",),
                "mark deleted; " + _BY_GALLERY,
            ),
            RouteSpec("cataloged", ("catalog.cataloged-by-gallery",), _BY_GALLERY),
            RouteSpec("catalog.cataloged-by-gallery", (), "apply to the gallery"),
        ),
        produces=("cataloged", "uploaded", "image-deleted", "gallery-settings"),
        commands=("uploaded", "image-deleted", "gallery-settings"),
        internal=("catalog.cataloged-by-gallery",),
        follows=("gallery-settings",),
        state=("jobs", "galleries"),
    ),
)
"""Every stage and its routes: the pipeline graph in one place."""

SOURCES: tuple[Source, ...] = (
    Source("upload API", ("uploaded",)),
    Source("darkroom upload", ("uploaded",)),
    Source("darkroom bridge (S3 notifications)", ("uploaded",)),
    Source("your own producer", ("uploaded",)),
    Source("darkroom replay", ("replay.validated",)),
)
"""Producers outside the stages."""

DEAD_LETTER_RETENTION_MS = 30 * DAY_MS


def _registry() -> dict[str, TopicSpec]:
    specs = [
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
            TopicSpec(
                s.dead_letter,
                key="image_id",
                retention_ms=DEAD_LETTER_RETENTION_MS,
                kind="dead-letter",
            )
            for s in STAGES
        ),
        *(
            TopicSpec(
                changelog_name(s.name, table),
                key="table key",
                retention_ms=-1,
                cleanup_policy="compact",
                kind="changelog",
            )
            for s in STAGES
            for table in s.state
        ),
    ]
    producers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for source in SOURCES:
        for t in source.produces:
            producers.setdefault(t, []).append(source.name)
    for s in STAGES:
        written = (
            *s.produces,
            *(t for r in s.routes for t in r.emits),
            s.dead_letter,
            *(changelog_name(s.name, t) for t in s.state),
        )
        for t in dict.fromkeys(written):
            producers.setdefault(t, []).append(s.name)
        for t in dict.fromkeys((*s.consumes, *s.follows)):
            consumers.setdefault(t, []).append(s.name)
    return {
        spec.name: dataclasses.replace(
            spec,
            producers=tuple(dict.fromkeys(producers.get(spec.name, ()))),
            consumers=tuple(dict.fromkeys(consumers.get(spec.name, ()))),
        )
        for spec in specs
    }


TOPICS: dict[str, TopicSpec] = _registry()
"""Every topic by registry name, dead-letter and changelog topics included, with the
stages and sources that produce and consume it."""


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
    """Return every topic stage ``name`` reads or writes: dead-letter and changelogs included."""
    s = stage(name)
    names = dict.fromkeys(
        (
            *s.consumes,
            *s.produces,
            *s.internal,
            *s.follows,
            s.dead_letter,
            *(changelog_name(s.name, t) for t in s.state),
        )
    )
    return [TOPICS[n] for n in names]


def describe(prefix: str = "darkroom.", partitions: int = DEFAULT_PARTITIONS) -> str:
    """Return the pipeline graph as text: the sources, then each stage's routes, state and DLQ.

    One line per route: ``consumed topic ──► topics it may produce   what the handler does``
    (``〃``: as the line above). This is what ``darkroom topics graph`` prints and what the
    README shows; the stage runtime builds every consumer from the same registry, so the
    text is the graph that runs.

    Args:
        prefix: the deployment's topic prefix, shown in the consumer group names.
        partitions: the deployment's default partition count, shown in the heading.
    """
    routes = [r for s in STAGES for r in s.routes]
    width = max(len(_label(r.topic)) for r in routes) + 4
    emits_width = max(len(", ".join(_label(t) for t in r.emits) or "·") for r in routes) + 2
    lines = [
        f"topic prefix {prefix!r}; {partitions} partitions and key image_id unless marked",
        "(g: keyed by gallery_id; 1p: one partition; 〃: as above)",
        "",
        "sources",
    ]
    by_targets: dict[tuple[str, ...], list[str]] = {}
    for source in SOURCES:
        by_targets.setdefault(source.produces, []).append(source.name)
    for targets, names in by_targets.items():
        lines.append(f"  {', '.join(names)} ──► {', '.join(_label(t) for t in targets)}")
    for s in STAGES:
        lines += ["", f"{s.name}  (consumer group {prefix}{s.name})"]
        previous = ""
        for r in s.routes:
            topic = _label(r.topic)
            emits = ", ".join(_label(t) for t in r.emits) or "·"
            does = "〃" if r.does == previous else r.does
            previous = r.does
            arrow = "─" * (width - len(topic) - 1) + "►"
            lines.append(f"  {topic} {arrow} {emits.ljust(emits_width)}{does}")
        if s.commands:
            lines.append(f"  HTTP API commands ──► {', '.join(_label(t) for t in s.commands)}")
        if s.follows:
            lines.append(f"  every worker reads whole: {', '.join(_label(t) for t in s.follows)}")
        if s.state:
            lines.append(f"  tables, each with a compacted changelog: {', '.join(s.state[:3])}")
            for start in range(3, len(s.state), 3):
                lines.append(f"    {', '.join(s.state[start : start + 3])}")
        lines.append(f"  dead letters ──► {s.dead_letter}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _label(name: str) -> str:
    spec = TOPICS[name]
    marks = [m for m, on in (("g", spec.key == "gallery_id"), ("1p", spec.partitions == 1)) if on]
    return f"{name} ({', '.join(marks)})" if marks else name
