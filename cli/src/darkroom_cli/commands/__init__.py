"""Subcommands of the darkroom CLI; each module defines ``register(subparsers)``.

Building the parser imports every module here, so a module keeps at its top only
what ``register`` needs (argparse, its help texts, the standard library) and imports
the engine, the Kafka clients, the models and the services inside the functions that
run its command: ``darkroom --help`` then loads nothing else (``cli/tests/test_main.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

DEV_PACKAGE = "darkroom_dev"
"""Import name of the development-only workspace package (``tools/devkit``)."""


def iso_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 time argument (``--since``, ``--from-time``); UTC when it has no offset.

    Raises:
        argparse.ArgumentTypeError: ``text`` is not an ISO 8601 time.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LazyChoices:
    """An argparse ``choices`` container whose values come from ``load()`` on first use.

    argparse reads choices to format that command's help or usage and to check a given
    value, so a registry behind ``load`` is imported then, not for ``darkroom --help``. Set
    it on the action returned by ``add_argument`` (``action.choices = LazyChoices(…)``):
    ``add_argument`` itself formats the new argument once, which would read the choices.
    """

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._values: tuple[str, ...] | None = None

    def _all(self) -> tuple[str, ...]:
        if self._values is None:
            self._values = tuple(self._load())
        return self._values

    def __contains__(self, value: object) -> bool:
        return value in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def dev_tools_missing(command: str, exc: ModuleNotFoundError) -> int:
    """Say that ``command`` needs the development package, and return exit status 2.

    Call it from ``except ModuleNotFoundError`` around the command's ``darkroom_dev``
    imports: the local broker, s3proxy and service managers live in that package,
    which only the workspace's ``dev`` group installs.

    Raises:
        ModuleNotFoundError: ``exc`` again when the missing module is not ``darkroom_dev``
            (a broken installation is not hidden behind this message).
    """
    if (exc.name or "").partition(".")[0] != DEV_PACKAGE:
        raise exc
    print(
        f"{command} needs the development tools ({DEV_PACKAGE}): uv sync --all-groups",
        file=sys.stderr,
    )
    return 2
