"""`banet-ops` commands: cube (being built; see the issue that owns it)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this group's sub-commands to the top-level parser."""
