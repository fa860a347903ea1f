"""Benchmark of the inference engine's tiling presets against the literal published BA-Net procedure.

Literal = the published procedure as published: 128 x 128 tiles every 100 px, one tile at a time
(batch 1), the plain module under ``torch.no_grad`` (no fusion, contiguous tensors), overlaps
averaged (``reference_probabilities``).  Variants, interleaved round by round in one process:

* ``published``: the default preset, same grid, engine defaults (fused norms, ``channels_last_3d``,
  batching, encoder levels 1-3 computed once per region cell, per-pixel layers in their CPU forms);
* ``published, level 1 shared``: the same with only encoder level 1 computed once per region cell;
* ``published, no level shared``: every tile computed on its own;
* ``published, CPU forms off``: the same with torch's own layers (oneDNN's temporal convolutions
  and LSTM) instead of the matrix-product forms (``inference/cpu_forms.py``);
* ``fast``: 256-px tiles, cosine blending;
* ``literal, heap allocator``: the literal procedure with the engine's allocator setting
  (``inference/allocator.py``), to show how much of the speed-up that setting alone gives.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/infer.py                   # CPU, 228 x 260 x 64 window
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/infer.py --threads 1       # one thread (the faster on a shared 2-core machine)
    .venv/bin/python benchmarks/infer.py --device cuda --region-size 800x1500 --skip-literal

Prints the median wall and process-CPU seconds of ``--runs`` rounds, the speed-ups over the
literal procedure and each variant's difference from it: max |Δ probability|, NRT decisions and
burn dates that differ, max |Δ confidence|.  Weights: the packaged demo weights when present
(trained, so decisions vary), else an initialised BA-Net.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from banet_ops.demo.weights import PACKAGED
from banet_ops.inference.allocator import heap_allocator
from banet_ops.inference.engine import EngineOptions, predict_probabilities, reference_probabilities
from banet_ops.inference.products import nrt_product
from banet_ops.inference.tiling import PRESETS, plan_tiles
from banet_ops.models.weights import initialise_model, load_weights
from banet_ops.regions import Region

TARGET_SPEEDUP = 3.0
EXACT_TOL = 1e-5  # max |Δ probability| of the published preset against the literal procedure


def synthetic_window(height: int, width: int, days: int = 64, seed: int = 0) -> np.ndarray:
    """Raw (T, band, H, W) window: smooth reflectances, noise, missing days, two burn scars with fires."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(yy / 37.0) * np.cos(xx / 53.0)
    win = np.empty((days, 4, height, width), dtype=np.float32)
    for t in range(days):
        noise = rng.normal(0, 0.01, size=(height, width)).astype(np.float32)
        win[t, 0] = 0.12 * base + noise
        win[t, 1] = 0.30 * base + noise
        win[t, 2] = 0.10 * base + noise
        win[t, 3] = 0
    for cy, cx, rad, day in ((height * 0.3, width * 0.4, min(height, width) * 0.15, 20), (height * 0.7, width * 0.7, min(height, width) * 0.1, 45)):
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < rad**2
        for t in range(day, days):
            win[t, 1][inside] *= 0.5
            win[t, 2][inside] += 0.05
        win[day, 3][inside] = 30.0  # MW; the engine applies log1p
    win[7, :, : height // 2] = np.nan
    win[33] = np.nan
    return win


class Timer:
    """Wall and process-CPU seconds of named variants, run interleaved round by round.

    On a shared machine the load changes from minute to minute; alternating the variants within
    each round exposes them to the same load, and CPU time is reported beside wall time.
    """

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.out: dict[str, np.ndarray] = {}

    def run(self, name: str, fn: Callable[[], np.ndarray]) -> None:
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.wall.setdefault(name, []).append(time.perf_counter() - w0)
        self.cpu.setdefault(name, []).append(time.process_time() - c0)
        self.out[name] = np.asarray(out)

    def median(self, name: str) -> tuple[float, float]:
        return statistics.median(self.wall[name]), statistics.median(self.cpu[name])


def difference(region: Region, day: dt.date, probs: np.ndarray, ref: np.ndarray) -> str:
    """Max |Δp|, NRT decisions and burn dates that differ, max |Δ confidence| of ``probs`` against ``ref``."""
    a, b = nrt_product(region, day, probs), nrt_product(region, day, ref)
    both = a.burned & b.burned
    dates = int((a.burn_date[both] != b.burn_date[both]).sum())
    return (
        f"max|dp| {np.abs(probs - ref).max():.1e}; decisions differ {int((a.burned != b.burned).sum())}/{a.burned.size} "
        f"(ref burned {int(b.burned.sum())}); dates differ {dates}; max|dconf| {np.abs(a.confidence - b.confidence).max():.3f}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--region-size", default="228x260", help="HxW of the window (default 228x260, not a multiple of the stride; PI is 800x1500)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--skip-literal", action="store_true", help="time the engine only (large regions)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.region_size.lower().split("x"))
    model = load_weights(PACKAGED, "cpu")[0] if PACKAGED.is_file() else initialise_model(0).eval()
    print(
        f"# infer benchmark: window 64 x {h} x {w}, device {args.device}, {args.threads} threads, torch {torch.__version__}, "
        f"weights {PACKAGED.name if PACKAGED.is_file() else 'initialised (seed 0)'}, median of {args.runs}; "
        f"tiles: published {len(plan_tiles(h, w, PRESETS['published']))}, fast {len(plan_tiles(h, w, PRESETS['fast']))}"
    )
    win = synthetic_window(h, w)
    region = Region(name="BENCH", bbox=(0.0, 0.0, w * 0.01, h * 0.01), pixel_size=0.01)
    day = dt.date(2024, 8, 1)
    model.to(args.device)
    variants: dict[str, Callable[[], np.ndarray]] = {
        "published": lambda: predict_probabilities(win, [model], tiling=PRESETS["published"], batch=args.batch, device=args.device),
        "published, level 1 shared": lambda: predict_probabilities(
            win, [model], tiling=PRESETS["published"], batch=args.batch, device=args.device, options=EngineOptions(shared_levels=1)
        ),
        "published, no level shared": lambda: predict_probabilities(
            win, [model], tiling=PRESETS["published"], batch=args.batch, device=args.device, options=EngineOptions(shared_levels=0)
        ),
        "published, CPU forms off": lambda: predict_probabilities(
            win, [model], tiling=PRESETS["published"], batch=args.batch, device=args.device, options=EngineOptions(time_gemm=False)
        ),
        "fast": lambda: predict_probabilities(win, [model], tiling=PRESETS["fast"], batch=args.batch, device=args.device),
    }
    if not args.skip_literal:

        def literal_heap() -> np.ndarray:
            with heap_allocator():
                return reference_probabilities(win, [model])

        # the literal procedure as published (default allocator), and with the engine's allocator setting
        variants = {"literal published procedure": lambda: reference_probabilities(win, [model]), "literal, heap allocator": literal_heap, **variants}
    timer = Timer()
    for _ in range(args.runs):
        for name, fn in variants.items():
            timer.run(name, fn)
    literal = timer.out.get("literal published procedure")
    base_wall = base_cpu = None
    if literal is not None:
        base_wall, base_cpu = timer.median("literal published procedure")
    for name in variants:
        wall, cpu = timer.median(name)
        note = ""
        if base_wall is not None and base_cpu is not None and name != "literal published procedure":
            note = f"x{base_wall / wall:.2f} wall, x{base_cpu / cpu:.2f} cpu; " + difference(region, day, timer.out[name], literal)  # type: ignore[arg-type]
        print(f"  {name:<30} {wall:8.2f} s wall {cpu:8.2f} s cpu  {note}", flush=True)
    if base_wall is not None and literal is not None:
        wall = timer.median("published")[0]
        exact = float(np.abs(timer.out["published"] - literal).max())
        # each round's ratio: the two ran within a minute of each other, so a drift of the machine between rounds cancels
        paired = [a / b for a, b in zip(timer.wall["literal published procedure"], timer.wall["published"], strict=True)]
        print(
            f"published preset: x{base_wall / wall:.2f} the literal procedure (target >= {TARGET_SPEEDUP:g}: "
            f"{'OK' if base_wall / wall >= TARGET_SPEEDUP else 'MISSED'}), max|dp| {exact:.1e} (<= {EXACT_TOL:g}: {'OK' if exact <= EXACT_TOL else 'FAIL'}); "
            f"round by round x{', x'.join(f'{r:.2f}' for r in paired)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
