"""`banet-ops bakeoff`: train and compare model architectures against MCD64A1 on the same held-out region-months."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _bakeoff(ns: argparse.Namespace) -> int:
    archs = ns.arch or None
    extra = json.loads(ns.config.read_text()) if ns.config else {}
    if ns.synthetic:
        from banet_ops.retrain.synthetic_bakeoff import synthetic_bakeoff

        report = synthetic_bakeoff(ns.out, architectures=archs, steps=ns.steps, threads=ns.threads, register=not ns.no_register, overrides=extra)
    else:
        from banet_ops.errors import ValidationError
        from banet_ops.retrain.bakeoff import BakeoffConfig, run_bakeoff
        from banet_ops.training.evaluate import EvalConfig

        if ns.manifest is None or not ns.val:
            raise ValidationError("bakeoff: expected --manifest and --val R:YYYY-MM (or --synthetic), found neither", hint="see banet-ops bakeoff -h")
        cfg = BakeoffConfig.model_validate(
            {
                "manifest": ns.manifest,
                "eval": EvalConfig(region_months=ns.val, days=ns.days, tile=ns.tile, device="cpu"),
                "out_dir": ns.out,
                "steps": ns.steps,
                "threads": ns.threads,
                "register_models": not ns.no_register,
                **({"architectures": archs} if archs else {}),
                **extra,
            }
        )
        report = run_bakeoff(cfg)
    from banet_ops.retrain.bakeoff import markdown_table

    print(markdown_table(report["rows"]), end="")
    print(f"wall time {report['wall_s']:.0f} s; report: {', '.join(report['files'])}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``bakeoff`` to the top-level parser."""
    p = sub.add_parser("bakeoff", help="train model architectures on the same data and compare them against MCD64A1")
    p.add_argument("--synthetic", action="store_true", help="build a synthetic world and run the whole bake-off on it")
    p.add_argument("--arch", action="append", default=[], help="architecture to include (repeat; default: all of `models archs`)")
    p.add_argument("--manifest", type=Path, help="dataset manifest.json (from `banet-ops train`/build_dataset)")
    p.add_argument("--val", action="append", default=[], metavar="R:YYYY-MM", help="held-out region-month (repeat)")
    p.add_argument("--days", type=int, default=64, help="days of the input window of a sample (default 64)")
    p.add_argument("--tile", type=int, default=128, help="sample tile side in cells (default 128)")
    p.add_argument("--steps", type=int, default=60, help="optimiser steps per architecture (default 60)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=Path("bakeoff"), help="output folder (report, runs, synthetic world)")
    p.add_argument("--no-register", action="store_true", help="do not register the models as candidates")
    p.add_argument("--config", type=Path, help="JSON of BakeoffConfig fields (arch_configs, train_options …)")
    p.set_defaults(handler=_bakeoff)
