"""Train the demo weights: BA-Net on the project's synthetic scenario ONLY (not for real fire mapping).

Writes ``banet_ops/data/weights/banet_synthetic_demo_ONLY.pth`` (the state_dict, float32) and a
sidecar ``.json`` (what it was trained on, how, how it scored, its sha256, software versions).
Run from the repository root::

    .venv/bin/python scripts/train_demo_weights.py [--budget-min 30] [--work /tmp/banet-demo-weights]

Steps, all through the retraining code of the tree:

1. a synthetic world (``banet_ops.retrain.synthetic_world.build_world``): six 192 × 192-cell
   training regions and one 128 × 128 validation region, each with its own generator seed and
   box (none is the demo's seed 7 or overlaps the demo's box); daily images → region cubes,
   true burn dates → MCD64A1 HDF4 tiles → label cubes (``make_labels``);
2. samples of 32 × 32 cells × 32 days (``build_dataset``) from the training regions' June, July
   and August; the validation region's July and August are held out;
3. training from scratch (``banet_ops.training.train.train``) in stages of ``--stage-steps``
   steps, each stage starting from the previous stage's weights (cosine schedule restarted,
   optimiser state fresh); after each stage the weights are evaluated
   (``banet_ops.training.evaluate``) on the held-out region-months with 64-day windows, as the
   products run; training stops at validation Dice >= ``--target-dice`` or when the next stage
   would overrun ``--budget-min`` minutes of training; the best stage is kept;
4. held-out check on the demo itself (``DemoConfig``: 128 × 128 cells over central Portugal,
   80 days from 2024-06-01, seed 7): its daily images are written to a cube and the real
   inference run (``banet_ops.inference.run.run_inference``, NRT, no publishing) maps the demo's
   inference days; each product is compared with ``true_burn_dates``.  With ``--ingested-check``
   the demo's VIIRS/FIRMS files are also written and ingested through the real pipeline first.

Everything lives under ``--work``; a re-run resumes (finished stages are reused, an interrupted
stage continues from its checkpoint).  BA-Net is fully convolutional in space and runs its LSTM
and temporal convolutions over any multiple-of-16 length, so weights trained on 32 × 32 × 32
samples apply to the demo's 128 × 128 × 64 tiles; step 4 measures that.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import hashlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from banet_ops.regions import Region  # noqa: E402
from banet_ops.retrain.synthetic_world import WorldRegion, build_world, environment  # noqa: E402

WEIGHTS_NAME = "banet_synthetic_demo_ONLY"
PURPOSE = "trained on synthetic data only, not for real fire mapping"
START = dt.date(2023, 5, 25)  # scenario start; its fires fall between this and START + DAYS
DAYS = 119  # to 2023-09-20: covers the 64-day evaluation windows of July and August
TRAIN_MONTHS = ("2023-06", "2023-07", "2023-08")
VAL_MONTHS = ("2023-07", "2023-08")
PX = 0.01


def _box(name: str, left: float, bottom: float, size: int) -> Region:
    return Region(name=name, bbox=(left, bottom, round(left + size * PX, 6), round(bottom + size * PX, 6)), pixel_size=PX)


# (region, seed): boxes over Iberia away from the demo box (-8.30..-7.02 E, 39.12..40.40 N); seeds != 7
TRAIN_REGIONS = (
    WorldRegion(_box("S1", -6.90, 39.00, 192), 11),
    WorldRegion(_box("S2", -4.90, 39.00, 192), 12),
    WorldRegion(_box("S3", -2.90, 39.00, 192), 13),
    WorldRegion(_box("S4", -6.90, 37.00, 192), 15),
    WorldRegion(_box("S5", -4.90, 37.00, 192), 17),
    WorldRegion(_box("S6", -8.90, 37.00, 192), 18),
)
VAL_REGIONS = (WorldRegion(_box("V", -4.90, 41.00, 128), 16),)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def software_versions() -> dict[str, str]:
    import icechunk
    import zarr

    from banet_ops import __version__ as banet_version

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "zarr": zarr.__version__,
        "icechunk": getattr(icechunk, "__version__", "unknown"),
        "banet_ops": banet_version,
        "platform": platform.platform(),
    }


def _check_world_is_held_out() -> None:
    """The demo must stay a held-out check: no training/validation seed 7, no box overlapping the demo's."""
    from banet_ops.demo import DemoConfig

    demo = DemoConfig().region
    for wr in (*TRAIN_REGIONS, *VAL_REGIONS):
        a, b = wr.region.bbox, demo.bbox
        overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
        if wr.seed == DemoConfig().seed or overlap:
            raise SystemExit(f"region {wr.region.name} (seed {wr.seed}, box {a}) is not held out from the demo (seed 7, box {b})")


def nrt_scores(product: Any, truth: np.ndarray) -> dict[str, Any]:
    """Compare an NRT product with the true burn dates: cells that burned inside its window (first day excepted)."""
    start = np.datetime64(product.window_start, "D")
    end = np.datetime64(product.target_date, "D")
    ok = ~np.isnat(truth)
    ref = np.zeros(truth.shape, bool)
    ref[ok] = (truth[ok] > start) & (truth[ok] <= end)
    pred = np.asarray(product.burned, bool)
    tp, fp, fn = int((pred & ref).sum()), int((pred & ~ref).sum()), int((~pred & ref).sum())
    both = pred & ref
    errors = np.abs((product.burn_date[both] - truth[both]).astype("timedelta64[D]").astype(np.int64))
    return {
        "day": str(product.target_date),
        "window": f"{product.window_start}..{product.window_end}",
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "dice": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        "omission": fn / (tp + fn) if tp + fn else None,
        "commission": fp / (tp + fp) if tp + fp else None,
        "mean_abs_date_error": float(errors.mean()) if errors.size else None,
        "date_within_1": float((errors <= 1).mean()) if errors.size else None,
        "errors": errors,
    }


def pool_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
    errors = np.concatenate([r["errors"] for r in rows]) if rows else np.zeros(0, np.int64)
    return {
        "dice": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        "omission": fn / (tp + fn) if tp + fn else None,
        "commission": fp / (tp + fp) if tp + fp else None,
        "mean_abs_date_error": float(errors.mean()) if errors.size else None,
        "date_within_1": float((errors <= 1).mean()) if errors.size else None,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def demo_check(weights: Path, work: Path, *, ingested: bool) -> dict[str, Any]:
    """Run the real NRT inference on the demo scenario's inference days and score it against the truth."""
    from banet_ops.demo import DemoConfig
    from banet_ops.inference.run import run_inference
    from banet_ops.synthetic import synthetic_daily_images, true_burn_dates

    cfg = DemoConfig()
    region = cfg.region
    truth = true_burn_dates(region, cfg.start, cfg.days, cfg.seed)
    home = work / ("demo-ingested" if ingested else "demo-images")
    env = {"BANET_HOME": str(home / "home"), "BANET_CUBE_ROOT": str(home / "home" / "cube")}
    t0 = time.perf_counter()
    marker = home / "cube-complete.json"
    if ingested:
        from banet_ops.ingest.pipeline import ingest_day
        from banet_ops.synthetic import write_scenario

        if not marker.is_file():
            scenario = write_scenario(home / "scenario", region, cfg.start, cfg.days, seed=cfg.seed)
            env |= scenario.env()
            with environment(env):
                for day in cfg.ingest_days:
                    ingest_day(region, day, record=False)
            marker.write_text(json.dumps({"env": env, "seconds": time.perf_counter() - t0}))
    elif not marker.is_file():
        from banet_ops.cube import write_day

        with environment(env):
            for image in synthetic_daily_images(region, cfg.start, cfg.days, cfg.seed):
                write_day(image)
        marker.write_text(json.dumps({"env": env, "seconds": time.perf_counter() - t0}))
    made = json.loads(marker.read_text())  # the cube is made once per work folder; its time is that of the first run
    env, prep_s = made["env"], made["seconds"]
    rows = []
    t0 = time.perf_counter()
    with environment(env):
        for day in cfg.infer_days:
            res = run_inference(region, day, "nrt", weights=[weights], device="cpu", publish=False)
            rows.append(nrt_scores(res.product, truth))
            r = rows[-1]
            print(f"  demo NRT {day}: Dice {r['dice']:.3f}, date MAE {r['mean_abs_date_error']} d ({r['tp']} TP, {r['fp']} FP, {r['fn']} FN)", flush=True)
    infer_s = time.perf_counter() - t0
    return {
        "source": "VIIRS/FIRMS files of write_scenario ingested by ingest_day" if ingested else "synthetic_daily_images written to a cube",
        "region_bbox": list(region.bbox),
        "seed": cfg.seed,
        "scenario": f"{cfg.start}, {cfg.days} days",
        "days": [str(d) for d in cfg.infer_days],
        "pooled": pool_scores(rows),
        "per_day": [{k: v for k, v in r.items() if k != "errors"} for r in rows],
        "prepare_s": round(prep_s, 1),
        "inference_s": round(infer_s, 1),
    }


def _reuse_dataset(dcfg: Any) -> Any | None:
    """The dataset already built in the work folder with the same configuration (a re-run resumes), else None."""
    from banet_ops.errors import DataFormatError
    from banet_ops.training.dataset import Manifest

    try:
        manifest = Manifest.load(Path(dcfg.out_dir) / "manifest.json")
    except DataFormatError:
        return None
    keys = ("region_months", "val_region_months", "tile", "days", "stride", "min_burned_cells")
    wanted = dcfg.model_dump(mode="json")
    if any(manifest.config.get(k) != wanted.get(k) for k in keys) or not all((manifest.folder / s.file).is_file() for s in manifest.samples):
        return None
    print(f"dataset: reusing {manifest.path}", flush=True)
    return manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "banet-demo-weights", help="work folder (re-runs resume from it)")
    ap.add_argument("--out", type=Path, default=REPO / "banet_ops" / "data" / "weights", help="folder receiving the .pth and .json")
    ap.add_argument("--budget-min", type=float, default=30.0, help="training wall-time budget (minutes)")
    ap.add_argument("--target-dice", type=float, default=0.85, help="stop once validation Dice reaches this")
    ap.add_argument("--stage-steps", type=int, default=30)
    ap.add_argument("--max-stages", type=int, default=12)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3, help="learning rate of the first stage (later stages: half)")
    ap.add_argument("--init", type=Path, default=None, help="start stage 0 from these weights instead of scratch (fine-tuning)")
    ap.add_argument("--warmup-steps", type=int, default=None, help="warm-up steps per stage (default 10 for stage 0, 5 later)")
    ap.add_argument("--tile", type=int, default=32)
    ap.add_argument("--days", type=int, default=32)
    ap.add_argument("--threads", type=int, default=int(os.environ["OMP_NUM_THREADS"]))
    ap.add_argument(
        "--ingested-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also check on the demo's VIIRS/FIRMS files ingested through the real pipeline (~3 min)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    _check_world_is_held_out()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    regions = [*TRAIN_REGIONS, *VAL_REGIONS]
    train_rms = [f"{wr.region.name}:{m}" for wr in TRAIN_REGIONS for m in TRAIN_MONTHS]
    val_rms = [f"{wr.region.name}:{m}" for wr in VAL_REGIONS for m in VAL_MONTHS]
    t = time.perf_counter()
    world_marker = work / "world-complete.json"
    if world_marker.is_file():
        print(f"world: reusing {work / 'world'}", flush=True)
    else:
        world = build_world(
            work / "world",
            regions,
            start=START,
            days=DAYS,
            cube_first=START,
            cube_last=START + dt.timedelta(days=DAYS - 1),
            label_months=[*train_rms, *val_rms],
        )
        world_marker.write_text(json.dumps({"env": world.env, "seconds": time.perf_counter() - t}))
        print(
            f"world: {len(TRAIN_REGIONS)} training + {len(VAL_REGIONS)} validation regions, {DAYS} days from {START}, in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
    made = json.loads(world_marker.read_text())  # built once per work folder; its time is that of the first run
    world_env, world_s = made["env"], made["seconds"]

    from banet_ops.models.weights import load_weights, save_weights
    from banet_ops.training.dataset import DatasetConfig, build_dataset
    from banet_ops.training.evaluate import EvalConfig, evaluate
    from banet_ops.training.train import TrainConfig, TrainResult, train

    with environment(world_env):
        t = time.perf_counter()
        dcfg = DatasetConfig(
            region_months=train_rms,
            val_region_months=val_rms,
            tile=args.tile,
            days=args.days,
            stride=args.tile // 2,
            min_burned_cells=5,
            out_dir=work / "dataset",
        )
        manifest = _reuse_dataset(dcfg) or build_dataset(dcfg)
        n_train, n_val = len(manifest.split("train")), len(manifest.split("val"))
        dataset_s = time.perf_counter() - t
        print(
            f"dataset: {n_train} training and {n_val} validation samples of {args.tile}x{args.tile} cells x {args.days} days"
            f" in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
        ecfg = EvalConfig(region_months=val_rms, days=64, device="cpu", tile=128, overlap=32, batch=1)

        budget_s = args.budget_min * 60
        stages: list[dict[str, Any]] = []
        train_s = 0.0
        best: tuple[float, int, TrainResult] | None = None
        prev: TrainResult | None = None
        stop_reason = f"reached --max-stages {args.max_stages}"
        for k in range(args.max_stages):
            cfg = TrainConfig(
                manifest=manifest.path,
                run_dir=work / "run" / f"stage{k:02d}",
                steps=args.stage_steps,
                batch_size=args.batch,
                lr=args.lr if k == 0 else args.lr / 2,
                warmup_steps=args.warmup_steps if args.warmup_steps is not None else (10 if k == 0 else 5),
                seed=k,  # a different batch order and augmentation per stage
                init=(str(args.init) if args.init else "scratch") if prev is None else prev.weights,
                device="cpu",
                threads=args.threads,
                checkpoint_every=10,
            )
            res = train(cfg, progress=True)
            train_s += res.duration_s
            t = time.perf_counter()
            report = evaluate([res.weights], ecfg.model_copy(update={"report_dir": work / "run" / f"stage{k:02d}" / "eval"}))
            eval_s = time.perf_counter() - t
            m = report.overall
            dice = float(m["dice"] or 0.0)
            stages.append(
                {
                    "stage": k,
                    "steps": res.steps,
                    "lr": cfg.lr,
                    "train_s": res.duration_s,
                    "final_loss": res.final_loss,
                    "val_loss": res.val_loss,
                    "val_dice": m["dice"],
                    "val_mean_abs_date_error": m["mean_abs_date_error"],
                    "eval_s": round(eval_s, 1),
                }
            )
            print(
                f"stage {k}: {res.steps} steps in {res.duration_s:.0f} s (training total {train_s / 60:.1f} min), loss {res.final_loss:.4f}, "
                f"val loss {res.val_loss}, validation Dice {m['dice']}, date MAE {m['mean_abs_date_error']} d (eval {eval_s:.0f} s)",
                flush=True,
            )
            if best is None or dice > best[0]:
                best = (dice, k, res)
            prev = res
            if dice >= args.target_dice:
                stop_reason = f"validation Dice {dice:.3f} >= {args.target_dice}"
                break
            per_stage = train_s / (k + 1)
            if train_s + per_stage > budget_s:
                stop_reason = f"training budget: {train_s / 60:.1f} min spent, the next stage would pass {args.budget_min:g} min"
                break
        if best is None:
            raise SystemExit("no training stage ran")
        _, best_k, best_res = best
        final_eval = evaluate([best_res.weights], ecfg.model_copy(update={"report_dir": work / "eval-final"}))
    print(f"stopped: {stop_reason}; keeping stage {best_k}", flush=True)

    # the shipped file: the state_dict only, every floating tensor float32
    model, _ = load_weights(best_res.weights, "cpu")
    if any(v.is_floating_point() and v.dtype != torch.float32 for v in model.state_dict().values()):
        raise SystemExit("expected float32 weights")
    args.out.mkdir(parents=True, exist_ok=True)
    pth = args.out / f"{WEIGHTS_NAME}.pth"
    sha = save_weights(model, pth)
    pth.chmod(0o644)  # save_weights writes through mkstemp (0600); the file ships in the package
    load_weights(pth, "cpu")  # strict reload
    size = pth.stat().st_size
    if size >= 16 * 2**20:
        raise SystemExit(f"{pth}: expected < 16 MiB, found {size} bytes")

    checks = {"images": demo_check(pth, work, ingested=False)}
    p = checks["images"]["pooled"]
    print(f"demo held-out check (cube of synthetic images): Dice {p['dice']:.3f}, date MAE {p['mean_abs_date_error']} d", flush=True)
    if args.ingested_check:
        checks["ingested"] = demo_check(pth, work, ingested=True)
        p = checks["ingested"]["pooled"]
        print(f"demo held-out check (files ingested by the pipeline): Dice {p['dice']:.3f}, date MAE {p['mean_abs_date_error']} d", flush=True)

    from banet_ops.demo import DemoConfig

    demo = DemoConfig()
    sidecar = {
        "purpose": PURPOSE,
        "file": pth.name,
        "sha256": sha,
        "bytes": size,
        "parameters": int(sum(t.numel() for t in model.parameters())),
        "dtype": "float32",
        "format": "torch.save(state_dict) of banet_ops.models.banet.BANet(4, 1, 64); loads with banet_ops.models.weights.load_weights (strict)",
        "architecture": "banet",
        "arch_config": {"in_channels": 4, "sequence_len": 64},
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": "scripts/train_demo_weights.py",
        "command": " ".join(sys.argv[1:]),
        "generator": {
            "module": "banet_ops.synthetic (synthetic_daily_images, true_burn_dates) via banet_ops.retrain.synthetic_world.build_world",
            "start": str(START),
            "days": DAYS,
            "labels": "true burn dates written as MCD64A1 HDF4 tiles, gridded to label cubes by make_labels",
            "train_regions": [
                {"name": wr.region.name, "bbox": list(wr.region.bbox), "shape": list(wr.region.shape), "seed": wr.seed, "months": list(TRAIN_MONTHS)}
                for wr in TRAIN_REGIONS
            ],
            "validation_regions": [
                {"name": wr.region.name, "bbox": list(wr.region.bbox), "shape": list(wr.region.shape), "seed": wr.seed, "months": list(VAL_MONTHS)}
                for wr in VAL_REGIONS
            ],
        },
        "held_out_demo": {
            "region_bbox": list(demo.region.bbox),
            "seed": demo.seed,
            "start": str(demo.start),
            "days": demo.days,
            "note": "never used in training or model selection",
        },
        "dataset": {"tile": args.tile, "days": args.days, "stride": args.tile // 2, "min_burned_cells": 5, "n_train": n_train, "n_val": n_val},
        "training": {
            "from": (
                f"{args.init.name} (sha256 {sha256_file(args.init)}), fine-tuned"
                if args.init
                else "scratch (banet_ops.models.weights.initialise_model, seed 0)"
            ),
            "steps": sum(s["steps"] for s in stages),
            "kept_stage": best_k,
            "batch_size": args.batch,
            "tile": args.tile,
            "days": args.days,
            "stage_steps": args.stage_steps,
            "schedule": "stages of warm-up + cosine (restarted per stage, AdamW state fresh); stage 0 lr=lr, later lr/2",
            "lr": args.lr,
            "pos_weight": best_res.pos_weight,
            "device": "cpu",
            "threads": args.threads,
            "training_wall_s": round(train_s, 1),
            "budget_min": args.budget_min,
            "target_dice": args.target_dice,
            "stopped_because": stop_reason,
            "stages": stages,
            "seconds_per_step": round(train_s / max(1, sum(s["steps"] for s in stages)), 2),
            "world_build_s": round(world_s, 1),
            "dataset_build_s": round(dataset_s, 1),
            "total_wall_s": round(time.perf_counter() - t_all, 1),
        },
        "validation": {
            "region_months": val_rms,
            "window_days": 64,
            "reference": "label cube (MCD64A1 of the true burn dates), monthly-product rule",
            "metrics": {
                k: final_eval.overall[k]
                for k in ("dice", "omission", "commission", "relative_bias", "mean_abs_date_error", "date_within_0", "date_within_1", "n_dated")
            },
        },
        "demo_check": checks,
        "software": software_versions(),
    }
    tmp = pth.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(sidecar, indent=1) + "\n")
    tmp.replace(pth.with_suffix(".json"))
    print(f"wrote {pth} ({size / 2**20:.1f} MiB, sha256 {sha[:16]}…) and {pth.with_suffix('.json').name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
