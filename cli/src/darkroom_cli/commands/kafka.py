"""``darkroom kafka start|stop|status``: the local single-node Kafka broker.

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
        help="run the local single-node Kafka broker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="kafka_command", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="broker config, data, pid file and logs (default: <repo>/.darkroom/kafka)",
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
        "--timeout", type=float, default=60.0, help="seconds to wait for readiness (default 60)"
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


def _print(body: dict[str, Any]) -> None:
    print(json.dumps(body, indent=2, sort_keys=True))


def _start(args: argparse.Namespace) -> int:
    if external := os.environ.get(EXTERNAL_ENV):
        print(f"{EXTERNAL_ENV} is set: using the external Kafka cluster at {external}")
        return 0
    from darkroom_common.errors import DarkroomError

    try:
        broker = _broker(args)
    except ModuleNotFoundError as exc:
        return dev_tools_missing("darkroom kafka start", exc)
    try:
        bootstrap = broker.start(timeout_s=args.timeout)
    except DarkroomError as exc:
        print(f"darkroom kafka start: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka broker ready at {bootstrap} (logs: {broker.server_log_path})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    if external := os.environ.get(EXTERNAL_ENV):
        print(f"{EXTERNAL_ENV} is set: the external cluster at {external} is not managed here")
        return 0
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
