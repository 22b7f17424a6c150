"""A pytest plugin that prints the figures end-to-end tests measure, at the end of the run.

The tests under ``tests/`` (faults, load, security, replay, the pipeline) print what
they measured (recovery times, throughput, percentiles, cases tried). pytest captures
that output and shows it only for failures; this plugin keeps the captured stdout of
every *passed* test under ``tests/`` and prints it in a "figures" section of the
terminal summary, so a CI log carries the numbers the README quotes.
"""

from __future__ import annotations

from typing import Any

import pytest

FIGURE_PATHS = ("tests/",)
"""Node id prefixes whose passed tests' stdout is reported (the end-to-end suite)."""

_figures: list[tuple[str, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the stdout of a passed test call under :data:`FIGURE_PATHS`."""
    if report.when != "call" or not report.passed or not report.nodeid.startswith(FIGURE_PATHS):
        return
    if text := report.capstdout.strip():
        _figures.append((report.nodeid, text))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print each kept test's stdout, headed by its node id."""
    if not _figures:
        return
    terminalreporter.section("figures")
    for nodeid, text in _figures:
        terminalreporter.write_line(f"{nodeid}:")
        for line in text.splitlines():
            terminalreporter.write_line(f"    {line}")
