"""Subcommands of the darkroom CLI; each module defines ``register(subparsers)``."""

import argparse
from datetime import UTC, datetime


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
