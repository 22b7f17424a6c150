"""Fault-injection tests: print every recorded :class:`FaultReport` at the end of the run."""

from __future__ import annotations

from typing import Any

from .checks import REPORTS, FaultReport


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the recorded fault reports as one table under a "fault injection" heading."""
    if not REPORTS:
        return
    terminalreporter.section("fault injection")
    terminalreporter.write_line(FaultReport.header())
    for report in REPORTS:
        terminalreporter.write_line(report.line())
    survived = sum(not r.problems for r in REPORTS)
    terminalreporter.write_line(
        f"faults survived: {survived}/{len(REPORTS)}; uploads {sum(r.uploads for r in REPORTS)}, "
        f"lost {sum(r.lost for r in REPORTS)}, duplicates {sum(r.duplicates for r in REPORTS)}"
    )
