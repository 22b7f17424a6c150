"""Subcommands of the darkroom CLI; each module defines ``register(subparsers)``."""
