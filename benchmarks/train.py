"""Benchmark and convergence check of the retraining loop (CPU; see benchmarks/README.md ``## train``).

Stages, each printed as the median of ``--runs`` runs beside a baseline measured in this process
and the issue's target:

1. labels — one region-month of MCD64A1 (two 2400 × 2400 HDF4 tiles) onto a 96 × 96 grid of
   0.01° cells: the pixel → cell mapping (ours) vs GDAL ``reproject(Resampling.average)`` of each
   day's indicator (the baseline the issue describes); also the burned-area difference.
2. train step — one optimiser step of the real BA-Net on ``tile`` × ``tile`` × ``days`` samples:
   the full loop (npz loading, augmentation, masked loss, clipping, schedule) vs a bare
   forward/backward/step on random tensors of the same shape (loop overhead).
3. convergence — a short CPU run from scratch on synthetic fires of some regions, evaluated on
   the held-out fires of another region against its MCD64A1 labels: Dice and mean absolute date
   error (target Dice >= 0.8, MAE <= 2 days) beside the untrained model (baseline).

The full BA-Net costs ~95 GFLOP per 128 × 128 × 64 tile forward, so on CPU the convergence run
uses small tiles (default 32 × 32 × 32).  ``OMP_NUM_THREADS`` defaults to 2.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from banet_ops.regions import Region  # noqa: E402
from banet_ops.retrain.synthetic_world import WorldRegion, build_world, environment  # noqa: E402


def median_time(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_labels(world_root: Path, region: Region, runs: int) -> dict[str, float]:
    from rasterio.crs import CRS
    from rasterio.warp import Resampling, reproject

    from banet_ops.mcd64 import reader
    from banet_ops.mcd64.sinusoidal import SINU_PROJ4

    files = sorted((world_root / "mirror" / "61" / "MCD64A1" / "2020" / "214").glob("*.hdf"))
    ours_labels = reader.labels_from_hdf(region, 2020, 8, files)

    def ours() -> None:
        reader.sinusoidal_mapping.cache_clear()
        reader.labels_from_hdf(region, 2020, 8, files)

    def baseline() -> np.ndarray:
        tiles = [reader.read_hdf_tile(f) for f in files]
        out = np.zeros((31, *region.shape), np.float32)
        cover = np.zeros(region.shape, np.float32)
        for tile in tiles:
            kw = {
                "src_transform": tile.tile.affine(),
                "src_crs": CRS.from_proj4(SINU_PROJ4),
                "dst_transform": region.affine(),
                "dst_crs": CRS.from_epsg(4326),
                "resampling": Resampling.average,
                "dst_nodata": 0,
            }
            dst = np.zeros(region.shape, np.float32)
            reproject(np.ones((2400, 2400), np.float32), dst, **kw)
            cover += dst
            for d in range(31):
                dst = np.zeros(region.shape, np.float32)
                reproject((tile.burn_date == 214 + d).astype(np.float32), dst, **kw)
                out[d] += dst
        return out / np.maximum(cover, 1e-9)

    t_ours = median_time(ours, runs)
    t_base = median_time(baseline, runs)
    areas = region.row_cell_area_km2()[:, None]
    base_km2 = float((baseline().sum(axis=0) * areas).sum())
    return {"ours_s": t_ours, "baseline_s": t_base, "ours_km2": ours_labels.burned_area_km2(), "baseline_km2": base_km2}


def bench_step(manifest_path: Path, runs: int, batch: int) -> dict[str, float]:
    from banet_ops.models.weights import initialise_model
    from banet_ops.training.augment import AugmentConfig
    from banet_ops.training.dataset import Manifest
    from banet_ops.training.loss import masked_bce_loss
    from banet_ops.training.train import SampleSet, StepBatches

    manifest = Manifest.load(manifest_path)
    ds = SampleSet(manifest, manifest.split("train"), AugmentConfig())
    sampler = StepBatches(len(ds), batch, 0, 0, 10_000)
    model = initialise_model(0).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    step = [0]

    def full() -> None:
        items = [ds[k] for k in sampler.batch_for(step[0])]
        step[0] += 1
        x, y, v = (torch.stack([i[j] for i in items]) for j in range(3))
        loss = masked_bce_loss(model(x), y, v, 5.0)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    x0 = ds[(0, -1)][0]
    xr = torch.randn(batch, *x0.shape)

    def bare() -> None:
        loss = model(xr).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    full()  # warm-up
    return {"full_s": median_time(full, runs), "bare_s": median_time(bare, runs), "shape": list(x0.shape)}  # type: ignore[dict-item]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200, help="training steps of the convergence run")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--tile", type=int, default=32)
    ap.add_argument("--days", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", type=Path, help="work folder (default: a temp folder)")
    ap.add_argument("--skip", action="append", default=[], choices=("labels", "step", "converge"))
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    work = args.work or Path(tempfile.mkdtemp(prefix="banet-bench-train-"))

    size = 0.96
    regions = [
        WorldRegion(Region(name="A", bbox=(-8.3, 39.8, -8.3 + size, 39.8 + size), pixel_size=0.01), 1),
        WorldRegion(Region(name="B", bbox=(-7.0, 39.8, -7.0 + size, 39.8 + size), pixel_size=0.01), 2),
        WorldRegion(Region(name="C", bbox=(-5.7, 39.8, -5.7 + size, 39.8 + size), pixel_size=0.01), 3),
        WorldRegion(Region(name="W", bbox=(-7.0, 38.6, -7.0 + size, 38.6 + size), pixel_size=0.01), 4),
        WorldRegion(Region(name="V", bbox=(-8.3, 38.6, -8.3 + size, 38.6 + size), pixel_size=0.01), 0),
    ]
    # months with fires (seed-dependent); V (seed 0) is held out: its August fires are never seen in training
    months = ["A:2020-07", "A:2020-08", "B:2020-09", "C:2020-08", "W:2020-07", "V:2020-08"]
    t = time.perf_counter()
    world = build_world(
        work / "world",
        regions,
        start=dt.date(2020, 6, 1),
        days=153,
        cube_first=dt.date(2020, 5, 31) + dt.timedelta(days=1),
        cube_last=dt.date(2020, 9, 30),
        label_months=months,
    )
    print(f"world: {len(regions)} regions of 96 x 96 cells, 122 cube days, MCD64A1 and labels Jun-Oct 2020 in {time.perf_counter() - t:.1f} s", flush=True)
    results: dict[str, object] = {}
    with environment(world.env):
        from banet_ops.training.dataset import DatasetConfig, build_dataset
        from banet_ops.training.evaluate import EvalConfig, evaluate
        from banet_ops.training.train import TrainConfig, train

        if "labels" not in args.skip:
            r = bench_labels(world.root, regions[-1].region, args.runs)
            results["labels"] = r
            print(
                f"labels (V 2020-08, 2 tiles -> 96x96 cells, 31 days): ours {r['ours_s']:.3f} s | baseline GDAL per-day average "
                f"{r['baseline_s']:.3f} s ({r['baseline_s'] / r['ours_s']:.1f}x) | burned area {r['ours_km2']:.1f} vs {r['baseline_km2']:.1f} km2 "
                f"(target: area within 1%)",
                flush=True,
            )
        manifest = build_dataset(
            DatasetConfig(
                region_months=[m for m in months if not m.startswith("V:")],
                val_region_months=["V:2020-08"],
                tile=args.tile,
                days=args.days,
                stride=args.tile // 2,
                min_burned_cells=5,
                out_dir=work / "dataset",
            )
        )
        print(f"dataset: {len(manifest.split('train'))} training samples, {len(manifest.split('val'))} validation samples", flush=True)
        if "step" not in args.skip:
            r = bench_step(manifest.path, args.runs, args.batch)
            results["step"] = r
            print(
                f"train step (batch {args.batch} x {r['shape']}): full loop {r['full_s']:.2f} s | baseline bare fwd/bwd {r['bare_s']:.2f} s "
                f"(overhead {100 * (r['full_s'] / r['bare_s'] - 1):+.0f}%) (target: none; GPU pods for full tiles)",
                flush=True,
            )
        if "converge" not in args.skip:
            from banet_ops.models.weights import init_weights

            ecfg = EvalConfig(region_months=["V:2020-08"], days=args.days, device="cpu", tile=96, report_dir=work / "report")
            init_path = work / "init.pth"
            init_weights(init_path, seed=0)
            base = evaluate([init_path], ecfg.model_copy(update={"report_dir": None})).overall
            t = time.perf_counter()
            res = train(
                TrainConfig(
                    manifest=manifest.path,
                    run_dir=work / "run",
                    steps=args.steps,
                    batch_size=args.batch,
                    lr=args.lr,
                    warmup_steps=10,
                    init="scratch",
                    device="cpu",
                    checkpoint_every=50,
                ),
                progress=True,
            )
            train_s = time.perf_counter() - t
            got = evaluate([res.weights], ecfg).overall
            results["converge"] = {"train_s": train_s, "steps": res.steps, "trained": got, "untrained": base, "val_loss": res.val_loss}
            ok = (got["dice"] or 0) >= 0.8 and (got["mean_abs_date_error"] if got["mean_abs_date_error"] is not None else 99) <= 2
            print(
                f"convergence ({res.steps} steps, {train_s:.0f} s): Dice {got['dice']:.3f}, date MAE {got['mean_abs_date_error']} d, "
                f"within 1 d {got['date_within_1']} | baseline untrained Dice {base['dice']}, MAE {base['mean_abs_date_error']} "
                f"(target: Dice >= 0.8, MAE <= 2 d) -> {'PASS' if ok else 'FAIL'}",
                flush=True,
            )
    (work / "bench_train.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"results: {work / 'bench_train.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
