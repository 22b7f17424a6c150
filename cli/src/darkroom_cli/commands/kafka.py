"""``darkroom kafka start|stop|status``: the local Kafka broker, or a local cluster.

By default one single-node broker (KRaft, combined broker+controller) in
``<repo>/.darkroom/kafka``. With ``--brokers 3`` a local 3-node KRaft cluster
instead (each node a broker+controller, replication factor 3 and
``min.insync.replicas`` 2 by default) in ``<repo>/.darkroom/kafka-cluster``, on
free ports chosen on first start and kept; ``start`` prints its bootstrap list,
to use as ``KAFKA_BOOTSTRAP_SERVERS`` with ``DARKROOM_TOPIC_REPLICATION_FACTOR=3``.
``stop`` and ``status`` act on the cluster when given the same ``--brokers``.

When ``KAFKA_BOOTSTRAP_SERVERS`` is set, an external cluster is in use: ``start``
and ``stop`` leave it alone and ``status`` only checks that it answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkroom_cli.commands import dev_tools_missing

if TYPE_CHECKING:
    from darkroom_dev.local.cluster import LocalKafkaCluster
    from darkroom_dev.local.kafka import LocalKafka

EXTERNAL_ENV = "KAFKA_BOOTSTRAP_SERVERS"
"""Environment variable naming an external cluster; when set, no local broker is managed."""

DEFAULT_PORT = 9092
"""The broker's port when neither ``--port`` nor the state dir names one: the manager's
``darkroom_dev.local.kafka.DEFAULT_PORT``, repeated here for the help text because the
manager is development-only (``cli/tests/test_kafka_cli.py`` keeps the two equal)."""


def register(subparsers: Any) -> None:
    """Add ``kafka`` with its ``start``, ``stop`` and ``status`` subcommands to ``subparsers``."""
    parser = subparsers.add_parser(
        "kafka",
        help="run the local Kafka broker (or a local cluster with --brokers 3)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="kafka_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="broker config, data, pid file and logs (default: <repo>/.darkroom/kafka, "
        "with --brokers above 1 <repo>/.darkroom/kafka-cluster)",
    )
    common.add_argument(
        "--brokers",
        type=int,
        default=1,
        help="1: the single-node broker (default); more (e.g. 3): a local KRaft cluster of "
        "that many broker+controller nodes on free ports (--port does not apply)",
    )
    common.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"PLAINTEXT port on 127.0.0.1 (default: the state dir's last port, else {DEFAULT_PORT})",
    )
    common.add_argument(
        "--controller-port",
        type=int,
        default=None,
        help="KRaft CONTROLLER port (default: the state dir's last one, else PORT + 1)",
    )

    start = actions.add_parser("start", parents=[common], help="start the broker (idempotent)")
    start.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait for readiness (default 60, 120 for a cluster)",
    )
    start.set_defaults(func=_start)
    stop = actions.add_parser("stop", parents=[common], help="stop the broker")
    stop.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before SIGKILL (default 30)"
    )
    stop.set_defaults(func=_stop)
    status = actions.add_parser(
        "status", parents=[common], help="print the broker state as JSON; exit 1 if not running"
    )
    status.set_defaults(func=_status)


def _broker(args: argparse.Namespace) -> LocalKafka:
    """The broker of ``args``; raises ModuleNotFoundError without the development package."""
    from darkroom_dev.local.kafka import LocalKafka, default_state_dir, recorded_ports

    state_dir = args.state_dir or default_state_dir()
    recorded = recorded_ports(state_dir)
    port = args.port or (recorded[0] if recorded else DEFAULT_PORT)
    controller_port = args.controller_port
    if controller_port is None and recorded and port == recorded[0]:
        controller_port = recorded[1]
    return LocalKafka(state_dir, port, controller_port)


def _cluster(args: argparse.Namespace, *, create: bool) -> LocalKafkaCluster | None:
    """The local cluster of ``args`` (``--brokers`` above 1).

    ``None`` when ``create`` is false and the state dir holds no cluster yet (so
    ``stop``/``status`` do not pick ports). Raises ModuleNotFoundError without the
    development package, ConfigurationError for ``--port`` or a state dir of
    another node count.
    """
    from darkroom_common.errors import ConfigurationError
    from darkroom_dev.local.cluster import CLUSTER_FILE, LocalKafkaCluster, default_cluster_dir

    if args.port is not None or args.controller_port is not None:
        raise ConfigurationError(
            "--port and --controller-port apply to the single broker; a cluster "
            "chooses free ports once and keeps them in its state dir"
        )
    state_dir = args.state_dir or default_cluster_dir()
    if not create and not (state_dir / CLUSTER_FILE).is_file():
        return None
    return LocalKafkaCluster(state_dir, brokers=args.brokers)


def _cluster_command(args: argparse.Namespace) -> int:
    """``start``/``stop``/``status`` of a local cluster; exit status as for one broker."""
    from darkroom_common.errors import ConfigurationError, DarkroomError

    command = f"darkroom kafka {args.kafka_command}"
    if args.brokers < 1:
        print(f"{command}: --brokers must be at least 1, not {args.brokers}", file=sys.stderr)
        return 2
    try:
        from darkroom_dev.local.cluster import default_cluster_dir

        state_dir = args.state_dir or default_cluster_dir()
        cluster = _cluster(args, create=args.kafka_command == "start")
    except ModuleNotFoundError as exc:
        return dev_tools_missing(command, exc)
    except ConfigurationError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    if args.kafka_command == "status":
        body: dict[str, Any] = (
            {"running": False, "brokers": args.brokers, "state_dir": str(state_dir)}
            if cluster is None
            else cluster.status()
        )
        _print({"external": False, **body})
        return 0 if body["running"] else 1
    if args.kafka_command == "stop":
        if cluster is not None and cluster.stop(timeout_s=args.timeout):
            print(f"Kafka cluster in {cluster.state_dir} stopped")
        else:
            print(f"no Kafka cluster running in {state_dir}")
        return 0
    assert cluster is not None
    try:
        bootstrap = cluster.start(timeout_s=args.timeout or 120.0)
    except DarkroomError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    print(
        f"Kafka cluster of {cluster.brokers} brokers ready at {bootstrap} "
        f"(logs: {cluster.state_dir}/node-*/server.log)"
    )
    return 0


def _print(body: dict[str, Any]) -> None:
    print(json.dumps(body, indent=2, sort_keys=True))


def _start(args: argparse.Namespace) -> int:
    if external := os.environ.get(EXTERNAL_ENV):
        print(f"{EXTERNAL_ENV} is set: using the external Kafka cluster at {external}")
        return 0
    if args.brokers != 1:
        return _cluster_command(args)
    from darkroom_common.errors import DarkroomError

    try:
        broker = _broker(args)
    except ModuleNotFoundError as exc:
        return dev_tools_missing("darkroom kafka start", exc)
    try:
        bootstrap = broker.start(timeout_s=args.timeout or 60.0)
    except DarkroomError as exc:
        print(f"darkroom kafka start: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka broker ready at {bootstrap} (logs: {broker.server_log_path})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    if external := os.environ.get(EXTERNAL_ENV):
        print(f"{EXTERNAL_ENV} is set: the external cluster at {external} is not managed here")
        return 0
    if args.brokers != 1:
        return _cluster_command(args)
    try:
        broker = _broker(args)
    except ModuleNotFoundError as exc:
        return dev_tools_missing("darkroom kafka stop", exc)
    if broker.stop(timeout_s=args.timeout):
        print(f"Kafka broker in {broker.state_dir} stopped")
    else:
        print(f"no Kafka broker running in {broker.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    if args.brokers != 1 and not os.environ.get(EXTERNAL_ENV):
        return _cluster_command(args)
    try:
        from darkroom_dev.local.kafka import bootstrap_ready

        if external := os.environ.get(EXTERNAL_ENV):
            body: dict[str, Any] = {
                "external": True,
                "bootstrap": external,
                "running": bootstrap_ready(external),
            }
        else:
            body = {"external": False, **_broker(args).status()}
    except ModuleNotFoundError as exc:
        return dev_tools_missing("darkroom kafka status", exc)
    _print(body)
    return 0 if body["running"] else 1
