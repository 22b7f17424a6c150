"""Entry point of the ``darkroom`` operator CLI.

Each module in :mod:`darkroom_cli.commands` adds its subcommands through a
``register(subparsers)`` function; the parser it builds sets ``func`` to a
callable taking the parsed :class:`argparse.Namespace` and returning an exit
status.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from darkroom_cli import commands


def build_parser() -> argparse.ArgumentParser:
    """Return the full ``darkroom`` parser with every command module registered."""
    parser = argparse.ArgumentParser(
        prog="darkroom", description="Darkroom photo pipeline: operator commands."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``darkroom`` command and return its exit status (0 = success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
