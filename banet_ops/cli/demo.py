"""`banet-ops demo`: the whole pipeline on a synthetic scenario, through Airflow (the README's main command)."""

from __future__ import annotations

import argparse

from banet_ops.demo import DemoConfig, run_demo


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``demo``."""
    parser = sub.add_parser("demo", help="run ingest and NRT inference through Airflow on a synthetic scenario, then summarise")
    parser.add_argument("--days", type=int, default=80, help="scenario length in days (>= 66)")
    parser.add_argument("--size", type=int, default=128, help="box size in 0.01° cells")
    parser.add_argument("--seed", type=int, default=7, help="scenario seed")
    parser.add_argument("--infer-every", type=int, default=4, help="NRT product every N days (plus the last day)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    config = DemoConfig(days=args.days, size=args.size, seed=args.seed, infer_every=args.infer_every)
    return run_demo(config)
