"""``darkroom kafka start|stop|status``: the command over the local broker manager.

With ``--brokers 3`` the command manages a local 3-node cluster; its real-broker
test uses the session's ``kafka_cluster``.

The broker's own lifecycle, on real brokers, is tested with the manager in
``tools/devkit/tests/local/test_kafka.py``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from darkroom_cli.__main__ import main
from darkroom_cli.commands import kafka as kafka_command
from darkroom_dev.local import kafka as local_kafka
from darkroom_dev.local.cluster import LocalKafkaCluster
from darkroom_dev.testing.kafka import free_port


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``darkroom <argv>`` in this process."""
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_help_names_the_managers_default_port() -> None:
    assert kafka_command.DEFAULT_PORT == local_kafka.DEFAULT_PORT


def test_cli_status_of_a_stopped_state_dir_is_json_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    port = free_port()
    code, out, _ = _cli(
        ["kafka", "status", "--state-dir", str(tmp_path), "--port", str(port)], capsys
    )
    assert code == 1
    body = json.loads(out)
    assert body["running"] is False
    assert body["pid"] is None
    assert body["external"] is False
    assert body["bootstrap"] == f"127.0.0.1:{port}"


def test_cli_start_failure_exits_1_with_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = _cli(
            ["kafka", "start", "--state-dir", str(tmp_path), "--port", str(port)], capsys
        )
    assert code == 1
    assert "configuration_error" in err
    assert "already in use" in err


def test_cli_with_external_cluster_manages_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    external = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", external)
    state = tmp_path / "kafka"
    code, out, _ = _cli(["kafka", "start", "--state-dir", str(state)], capsys)
    assert code == 0
    assert f"external Kafka cluster at {external}" in out
    assert not state.exists()
    code, out, _ = _cli(["kafka", "stop", "--state-dir", str(state)], capsys)
    assert code == 0
    assert "not managed here" in out
    code, out, _ = _cli(["kafka", "status", "--state-dir", str(state)], capsys)
    assert code == 1
    assert json.loads(out) == {"external": True, "bootstrap": external, "running": False}


def test_cli_cluster_status_of_an_empty_state_dir_picks_no_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    state = tmp_path / "cluster"
    code, out, _ = _cli(["kafka", "status", "--brokers", "3", "--state-dir", str(state)], capsys)
    assert code == 1
    assert json.loads(out) == {
        "external": False,
        "running": False,
        "brokers": 3,
        "state_dir": str(state),
    }
    code, out, _ = _cli(["kafka", "stop", "--brokers", "3", "--state-dir", str(state)], capsys)
    assert code == 0
    assert "no Kafka cluster running" in out
    assert not state.exists()
    code, _, err = _cli(
        ["kafka", "start", "--brokers", "3", "--state-dir", str(state), "--port", "9092"], capsys
    )
    assert code == 2
    assert "--port and --controller-port apply to the single broker" in err
    assert not state.exists()


@pytest.mark.kafka
@pytest.mark.slow
def test_cli_cluster_start_is_idempotent_and_status_lists_every_broker(
    kafka_cluster: LocalKafkaCluster,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    args = ["--brokers", "3", "--state-dir", str(kafka_cluster.state_dir)]
    code, out, _ = _cli(["kafka", "start", *args], capsys)
    assert code == 0
    assert f"Kafka cluster of 3 brokers ready at {kafka_cluster.bootstrap}" in out
    code, out, _ = _cli(["kafka", "status", *args], capsys)
    assert code == 0
    body = json.loads(out)
    assert body["running"] is True
    assert body["registered"] == [0, 1, 2]
    assert body["bootstrap"] == kafka_cluster.bootstrap
    assert [n["pid"] for n in body["nodes"]] == [n.pid() for n in kafka_cluster.nodes]
    # a state dir made for three brokers is not taken for another count
    code, _, err = _cli(["kafka", "status", "--brokers", "2", *args[2:]], capsys)
    assert code == 2
    assert "has 3 brokers, not 2" in err
