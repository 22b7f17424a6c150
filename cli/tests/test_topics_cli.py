"""``darkroom topics`` and ``darkroom schemas`` from the command line."""

from __future__ import annotations

import json
import uuid

import pytest

from darkroom_cli.__main__ import main
from darkroom_schemas.topics import TOPICS


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
