"""Fault suite: prints the figures docs/reliability.md quotes (run it alone, without -n, to see them)."""

from __future__ import annotations

from typing import Any

from faults.scenarios import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if any(FIGURES.values()):
        terminalreporter.write_line("fault suite figures: " + ", ".join(f"{name} {len(values)}" for name, values in FIGURES.items()))
