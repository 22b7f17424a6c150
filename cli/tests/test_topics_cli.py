"""``darkroom topics`` and ``darkroom schemas`` from the command line."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from darkroom_cli.__main__ import main
from darkroom_schemas.topics import STAGES, TOPICS, describe

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.kafka
def test_topics_create_twice_then_describe(kafka_bootstrap, capsys):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    args = ["--bootstrap", kafka_bootstrap, "--prefix", prefix, "--partitions", "2"]
    assert main(["topics", "create", *args]) == 0
    first = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["outcome"] for r in first} == {"created"}
    assert main(["topics", "create", *args]) == 0
    second = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {r["outcome"] for r in second} == {"exists"}
    assert main(["topics", "describe", *args]) == 0
    described = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(described) == len(TOPICS)
    assert all(r["ok"] for r in described)
    assert {r["partitions"] for r in described} == {1, 2}


@pytest.mark.kafka
def test_topics_describe_fails_when_topics_are_missing(kafka_bootstrap, capsys):
    prefix = f"t{uuid.uuid4().hex[:8]}."
    assert main(["topics", "describe", "--bootstrap", kafka_bootstrap, "--prefix", prefix]) == 1
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert all(r["problems"] == ["missing"] for r in rows)


def test_topics_against_unreachable_broker_exits_2(capsys):
    assert main(["topics", "create", "--bootstrap", "127.0.0.1:1"]) == 2
    assert "cannot reach the Kafka cluster" in capsys.readouterr().err


def test_schemas_check_passes_on_the_committed_files():
    assert main(["schemas", "check"]) == 0


def test_schemas_check_flags_a_stale_file(tmp_path, capsys):
    assert main(["schemas", "export", "--dir", str(tmp_path)]) == 0
    (tmp_path / "uploaded.v1.avsc").write_text("{}")
    assert main(["schemas", "check", "--dir", str(tmp_path)]) == 1
    assert "uploaded.v1.avsc" in capsys.readouterr().err


@pytest.fixture
def default_topic_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DARKROOM_TOPIC_PREFIX", raising=False)
    monkeypatch.delenv("DARKROOM_TOPIC_PARTITIONS", raising=False)


def _graph(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["topics", "graph", *args]) == 0
    return capsys.readouterr().out


def _readme_topic_flow() -> str:
    """The first fenced block of the README's "The topic flow" section."""
    section = README.read_text("utf-8").split("\n## The topic flow\n", 1)[1].split("\n## ", 1)[0]
    lines = section.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("```")) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    return "".join(lines[start:end])


@pytest.mark.usefixtures("default_topic_settings")
def test_topics_graph_prints_the_registry_graph_without_a_broker(capsys, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    out = _graph(capsys)
    assert out == describe("darkroom.", 8)
    assert out.startswith("topic prefix 'darkroom.'; 8 partitions")
    for s in STAGES:
        assert f"{s.name}  (consumer group darkroom.{s.name})" in out
        assert f"dead letters ──► {s.dead_letter}" in out


@pytest.mark.usefixtures("default_topic_settings")
def test_topics_graph_follows_the_deployment_settings(capsys, monkeypatch):
    monkeypatch.setenv("DARKROOM_TOPIC_PREFIX", "prod.")
    monkeypatch.setenv("DARKROOM_TOPIC_PARTITIONS", "24")
    assert _graph(capsys) == describe("prod.", 24)
    assert _graph(capsys, "--prefix", "x.", "--partitions", "3") == describe("x.", 3)


@pytest.mark.usefixtures("default_topic_settings")
def test_topics_graph_with_a_bad_setting_exits_2(capsys, monkeypatch):
    monkeypatch.setenv("DARKROOM_TOPIC_PARTITIONS", "0")
    assert main(["topics", "graph"]) == 2
    assert "DARKROOM_TOPIC_PARTITIONS" in capsys.readouterr().err


@pytest.mark.usefixtures("default_topic_settings")
def test_readme_topic_flow_is_the_output_of_topics_graph(capsys):
    assert _readme_topic_flow() == _graph(capsys), (
        "README.md's topic flow differs from `darkroom topics graph`: paste the command's output"
    )
