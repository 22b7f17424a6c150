"""Prometheus rules and config, the Grafana dashboard, and the consumer-lag exporter.

* ``promtool`` (Debian's ``prometheus`` package, tools/bootstrap/promtool.sh) checks the
  scrape configs and the rules, and runs the rules' unit tests (alerts.test.yml).
* Every metric the dashboard and the rules query is one the running services export: the
  four services run as processes on a fresh topic prefix, one photo goes through, and each
  service's ``/metrics`` is scraped. Metrics the catalog does not export yet are listed in
  :data:`PENDING_CATALOG_METRICS`; the test requires the missing set to be exactly that, so
  it fails as soon as the catalog exports them and the list must be emptied.
* ``darkroom_consumer_lag`` against the real broker: N messages a group has not consumed
  show as N, and 0 after the group consumed and committed them.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from darkroom_dev.local.pipeline import LocalPipeline, start_local_pipeline
from darkroom_runtime.lag import LagExporter, lag_metrics

from .conftest import CORPUS, run_files

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

PENDING_CATALOG_METRICS: set[str] = set()
"""Metrics the dashboard or rules query that no service exports yet (none: keep it so)."""

BUILTIN_METRICS = {"up"}
"""Series Prometheus makes itself, queried by the rules."""

_METRIC = re.compile(r"(?<![A-Za-z0-9_:])(darkroom_[a-z0-9_]+|up)\b(?!\s*\()")


def promtool() -> str:
    """Return the promtool executable, or fail with how to install it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run tools/bootstrap/promtool.sh")
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``promtool args…`` in deploy/prometheus and return the finished process."""
    return subprocess.run(
        [promtool(), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False
    )


# --- promtool -------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_promtool_accepts_the_scrape_config(config):
    proc = run_promtool("check", "config", config)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_accepts_the_rules():
    proc = run_promtool("check", "rules", "alerts.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alert_rules_fire_on_their_unit_test_series():
    proc = run_promtool("test", "rules", "alerts.test.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_rejects_a_broken_rule(tmp_path):
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    rules["groups"][1]["rules"][0]["expr"] = "sum by (service (rate(darkroom_failures_total[5m]))"
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(rules))
    proc = run_promtool("check", "rules", str(bad))
    assert proc.returncode != 0


# --- queried vs exported metric names ----------------------------------------------------


def promql_metrics(expr: str) -> set[str]:
    """Return the metric names (sample names, e.g. ``…_bucket``) a PromQL ``expr`` selects.

    Label values inside ``{…}`` and quoted strings are ignored; recording-rule names
    (``darkroom:…``) are not metric names the services export.
    """
    no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    no_matchers = re.sub(r"\{[^}]*\}", "{}", no_strings)
    return set(_METRIC.findall(no_matchers))


def test_promql_metrics_parses_names_not_labels_or_functions():
    expr = (
        "histogram_quantile(0.99, sum by (le) (rate(darkroom_stage_duration_seconds_bucket"
        '{service=~"darkroom_x"}[5m]))) / darkroom:consumer_lag:sum and up == 0'
    )
    assert promql_metrics(expr) == {"darkroom_stage_duration_seconds_bucket", "up"}


def dashboard_exprs() -> list[str]:
    """Return every PromQL expression of the provisioned dashboards (panels and variables)."""
    exprs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                elif key == "definition" and isinstance(value, str):
                    exprs.append(re.sub(r"^label_values\((.*),[^,]*\)$", r"\1", value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in DASHBOARDS.glob("*.json"):
        walk(json.loads(path.read_text()))
    return exprs


def rule_exprs() -> list[str]:
    """Return every ``expr`` of deploy/prometheus/alerts.yml."""
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def queried_metrics() -> set[str]:
    """Return the metric names the dashboard and the rules query."""
    return set().union(*(promql_metrics(e) for e in [*dashboard_exprs(), *rule_exprs()]))


def exported_sample_names(exposition: str) -> set[str]:
    """Return every sample name a ``/metrics`` page can carry, from its families' types.

    A labelled family with no child yet has no samples, but its ``# TYPE`` line tells the
    names Prometheus will see: counter ``x`` → ``x_total``; histogram → ``_bucket``,
    ``_sum``, ``_count``; summary → ``x``, ``_sum``, ``_count``; gauge/untyped → ``x``.
    """
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(s.name for s in family.samples)
    return names


def test_exported_sample_names_follow_the_type_suffix_rules():
    page = (
        "# HELP darkroom_events_total x\n# TYPE darkroom_events_total counter\n"
        "# HELP darkroom_stage_duration_seconds x\n# TYPE darkroom_stage_duration_seconds histogram\n"
        "# HELP darkroom_consumer_lag x\n# TYPE darkroom_consumer_lag gauge\n"
    )
    names = exported_sample_names(page)
    assert {"darkroom_events_total", "darkroom_stage_duration_seconds_bucket"} <= names
    assert "darkroom_consumer_lag" in names
    assert "darkroom_events" not in names
    assert "darkroom_consumer_lag_total" not in names


def scrape(port: int, timeout_s: float = 60.0) -> str:
    """Return ``http://127.0.0.1:port/metrics``, retrying until the worker serves it."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap, tmp_path_factory) -> Iterator[LocalPipeline]:
    """The four services on a fresh topic prefix, with one photo already through."""
    p = start_local_pipeline(
        kafka_bootstrap,
        f"obs{uuid.uuid4().hex[:8]}.",
        tmp_path_factory.mktemp("obs"),
        partitions=2,
        env={"DARKROOM_RETRY_BASE_DELAY_S": "0.05"},
    )
    try:
        # Any end will do (complete, failed, dead_letter): the event crossed the services.
        run_files(p, [CORPUS / "orientation" / "Landscape_1.jpg"], gallery="obs", timeout_s=120)
        yield p
    finally:
        p.stop()


@pytest.mark.kafka
@pytest.mark.e2e
@pytest.mark.slow
def test_dashboard_and_rules_query_only_exported_metrics(pipeline):
    pages = {sp.name: scrape(sp.web_port) for sp in pipeline.services.processes}
    assert set(pages) == {"ingest", "raw-provider", "variants", "catalog"}
    exported = set().union(*(exported_sample_names(p) for p in pages.values()))
    missing = queried_metrics() - exported - BUILTIN_METRICS
    assert missing == PENDING_CATALOG_METRICS, (
        f"queried but not exported: {sorted(missing)}; "
        f"pending list: {sorted(PENDING_CATALOG_METRICS)} — export the metric or drop the query, "
        "and empty PENDING_CATALOG_METRICS once the catalog exports them"
    )
    # The event moved the families the dashboard's throughput and latency panels read.
    ingest = {s.name: s for f in text_string_to_metric_families(pages["ingest"]) for s in f.samples}
    assert "darkroom_events_total" in ingest
    assert "darkroom_stage_duration_seconds_bucket" in ingest


@pytest.mark.kafka
@pytest.mark.e2e
@pytest.mark.slow
def test_every_service_exports_its_consumer_lag(pipeline):
    deadline = time.monotonic() + 45
    groups: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        groups = {}
        for sp in pipeline.services.processes:
            for family in text_string_to_metric_families(scrape(sp.web_port)):
                if family.name == "darkroom_consumer_lag":
                    groups[sp.name] = {s.labels["group"] for s in family.samples}
        if len(groups) == 4 and all(groups.values()):
            break
        time.sleep(1)
    prefix = pipeline.prefix
    assert groups == {
        "ingest": {f"{prefix}ingest"},
        "raw-provider": {f"{prefix}raw-provider"},
        "variants": {f"{prefix}variants"},
        "catalog": {f"{prefix}catalog"},
    }


# --- consumer lag against the real broker -----------------------------------------------


async def _topic(bootstrap: str, partitions: int) -> str:
    name = f"lag{uuid.uuid4().hex[:8]}.events"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


def _gauge(registry: CollectorRegistry, group: str, topic: str, partition: int) -> float | None:
    return registry.get_sample_value(
        "darkroom_consumer_lag", {"group": group, "topic": topic, "partition": str(partition)}
    )


@pytest.mark.kafka
async def test_lag_counts_unconsumed_messages_then_zero_after_commit(kafka_bootstrap):
    topic = await _topic(kafka_bootstrap, partitions=2)
    group = f"lag-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(7):
            await producer.send_and_wait(topic, b"x", key=b"k", partition=i % 2)
    finally:
        await producer.stop()

    registry = CollectorRegistry()
    exporter = LagExporter(kafka_bootstrap, group, lambda: [topic], metrics=lag_metrics(registry))
    try:
        lag = await exporter.poll()
        assert lag is not None
        assert sum(lag.values()) == 7
        assert (_gauge(registry, group, topic, 0), _gauge(registry, group, topic, 1)) == (4, 3)

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            seen = 0
            deadline = time.monotonic() + 30
            while seen < 7 and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                seen += sum(len(b) for b in batches.values())
            assert seen == 7
            await consumer.commit()
        finally:
            await consumer.stop()

        lag = await exporter.poll()
        assert lag is not None
        assert sum(lag.values()) == 0
        assert (_gauge(registry, group, topic, 0), _gauge(registry, group, topic, 1)) == (0, 0)
    finally:
        await exporter.close()


@pytest.mark.kafka
async def test_lag_skips_topics_the_broker_does_not_have(kafka_bootstrap):
    registry = CollectorRegistry()
    missing = f"missing{uuid.uuid4().hex}"
    exporter = LagExporter(
        kafka_bootstrap, "lag-none", lambda: [missing], metrics=lag_metrics(registry)
    )
    try:
        assert await exporter.poll() == {}
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            assert missing not in await admin.list_topics(), "the poll auto-created the topic"
        finally:
            await admin.close()
    finally:
        await exporter.close()


async def test_lag_poll_against_a_dead_broker_counts_an_error_and_does_not_raise():
    from darkroom_dev.testing.kafka import free_port

    registry = CollectorRegistry()
    exporter = LagExporter(
        f"127.0.0.1:{free_port()}",
        "lag-dead",
        lambda: ["anything"],
        metrics=lag_metrics(registry),
        timeout_s=1.0,
    )
    try:
        assert await asyncio.wait_for(exporter.poll(), timeout=30) is None
        assert (
            registry.get_sample_value("darkroom_consumer_lag_errors_total", {"group": "lag-dead"})
            == 1
        )
    finally:
        await exporter.close()
