"""Prometheus metrics with one naming rule: ``darkroom_<noun>_<unit>``.

Every service uses the same few families, distinguished by labels, so one
Grafana dashboard reads them all. Counters end in ``_total``, durations are
seconds (``_seconds``), sizes bytes (``_bytes``) — the Prometheus naming
conventions.
"""

from __future__ import annotations

import functools
import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

PREFIX = "darkroom_"
_NAME = re.compile(r"^darkroom_[a-z][a-z0-9_]*$")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
"""Histogram buckets in seconds: 5 ms to 5 min covers a thumbnail to a large RAW develop."""


def metric_name(*parts: str) -> str:
    """Join ``parts`` under the naming rule: ``metric_name("events", "total")`` → ``darkroom_events_total``.

    Raises:
        ValueError: the result breaks the rule (lower-case ``[a-z0-9_]``, ``darkroom_`` prefix).
    """
    name = PREFIX + "_".join(p.strip("_") for p in parts if p)
    if not _NAME.match(name):
        raise ValueError(f"metric name {name!r} breaks the darkroom_<noun>_<unit> rule")
    return name


class Metrics:
    """The metric families a service exports, registered in one registry.

    Args:
        registry: where to register; a fresh :class:`CollectorRegistry` for tests,
            the process registry in services (use :meth:`of`, which registers once).
    """

    @classmethod
    def of(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Return the families registered in ``registry`` (default: the process registry).

        Registered once per registry and process: every ``app.py`` of a process (tests
        build several) gets the same instance, which it passes to its handlers.
        """
        from prometheus_client import REGISTRY

        return _of(registry if registry is not None else REGISTRY)

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import REGISTRY

        self.registry = registry if registry is not None else REGISTRY
        self.events = Counter(
            metric_name("events"),
            "Events consumed or produced, by service, topic, direction and outcome.",
            ["service", "topic", "direction", "outcome"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            metric_name("stage", "duration", "seconds"),
            "Time to handle one event, by service and stage.",
            ["service", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            metric_name("failures"),
            "Failed events by service, stage and reason code.",
            ["service", "stage", "reason"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            metric_name("dead_letters"),
            "Events sent to a dead-letter topic, by service and reason code.",
            ["service", "reason"],
            registry=self.registry,
        )
        self.retries = Counter(
            metric_name("retries"),
            "Retries of transient failures, by service and reason code.",
            ["service", "reason"],
            registry=self.registry,
        )
        self.variant_seconds = Histogram(
            metric_name("variant", "render", "seconds"),
            "Resize, operations and encode time of one variant (the shared decode excluded).",
            ["variant", "format"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.object_bytes = Counter(
            metric_name("object", "bytes"),
            "Bytes read from or written to the object store, by direction.",
            ["direction"],
            registry=self.registry,
        )
        self.raw_develop_seconds = Histogram(
            metric_name("raw", "develop", "seconds"),
            "Time to develop one RAW into its master, by provider and outcome.",
            ["provider", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.provider_requests = Counter(
            metric_name("provider", "requests"),
            "HTTP requests to an external provider, by provider, operation and status (or error).",
            ["provider", "operation", "status"],
            registry=self.registry,
        )
        self.commits = Counter(
            metric_name("offset", "commits"),
            "Offset commits of a stage's consumer group member, by service.",
            ["service"],
            registry=self.registry,
        )
        self.rebalances = Counter(
            metric_name("rebalances"),
            "Partition assignments a worker received, by service.",
            ["service"],
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            metric_name("assigned", "partitions"),
            "Partition numbers a worker holds now, by service.",
            ["service"],
            registry=self.registry,
        )
        self.restored_records = Counter(
            metric_name("restored", "records"),
            "Changelog records read to restore a table partition, by service and table.",
            ["service", "table"],
            registry=self.registry,
        )
        self.restore_seconds = Histogram(
            metric_name("restore", "duration", "seconds"),
            "Time to restore one partition's tables before processing it, by service.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.reconciler_runs = Counter(
            metric_name("reconciler", "runs"),
            "Runs of a stage's reconciler (the catalog's: jobs left non-terminal), by service.",
            ["service"],
            registry=self.registry,
        )
        self.reconciler_jobs = Counter(
            metric_name("reconciler", "jobs"),
            "Jobs a reconciler acted on, by service and outcome "
            "(finished, advanced, failed_stalled).",
            ["service", "outcome"],
            registry=self.registry,
        )
        self.provider_poll_seconds = Histogram(
            metric_name("provider", "poll", "seconds"),
            "Time from starting a provider step (edit, export) until it reported COMPLETED or FAILED.",
            ["provider", "step"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.redelivery_reused = Counter(
            metric_name("redelivery", "reused"),
            "Re-sent events answered from earlier work instead of doing it again, by service "
            "and kind (verdict: ingest's stored verdict; master: a RAW master already developed; "
            "cataloged: a cataloged event already on the topic, not sent again).",
            ["service", "kind"],
            registry=self.registry,
        )


@functools.cache
def _of(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry)


def serve_metrics(port: int, addr: str = "127.0.0.1") -> None:
    """Expose the default registry at ``http://addr:port/metrics`` from a daemon thread."""
    start_http_server(port, addr=addr)
