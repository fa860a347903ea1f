"""`banet-ops models archs`: the registered model architectures with their parameter counts."""

from __future__ import annotations

import argparse
import json


def _archs(ns: argparse.Namespace) -> int:
    from banet_ops.models.zoo import describe

    rows = describe()
    if getattr(ns, "json_out", False):
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'architecture':<18} {'parameters':>11}  description")
    for r in rows:
        print(f"{r['name']:<18} {r['parameters']:>11,}  {r['summary']}")
    return 0


def add_archs(msub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``archs`` under ``banet-ops models``."""
    p = msub.add_parser("archs", help="model architectures (default configs) with parameter counts")
    p.add_argument("--json", dest="json_out", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_archs)
