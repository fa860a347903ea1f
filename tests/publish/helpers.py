"""Synthetic products for the publishing tests (numpy, small regions)."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np

from banet_ops.product import ModelRef, Product
from banet_ops.regions import Region

SHA_A = "a" * 64
SHA_B = "b" * 64


def new_region(rows: int = 60, cols: int = 80, left: float = -8.0, top: float = 41.0, prefix: str = "T") -> Region:
    """A small region with a unique name (the test database is shared by the session)."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    return Region(name=name, bbox=(left, top - rows * 0.01, left + cols * 0.01, top), pixel_size=0.01)


def window(mode: str, target: dt.date) -> tuple[dt.date, dt.date]:
    if mode == "monthly":
        prev = (target.replace(day=1) - dt.timedelta(days=1)).replace(day=15)
        return prev, prev + dt.timedelta(days=63)
    return target - dt.timedelta(days=63), target


def build_product(
    region: Region,
    burn_dates: np.ndarray,
    *,
    mode: str = "nrt",
    target: dt.date = dt.date(2017, 10, 27),
    confidence: np.ndarray | None = None,
    shas: tuple[str, ...] = (SHA_A,),
    snapshot: str = "snap-1",
    seed: int = 0,
) -> Product:
    """A product whose burned cells are the non-NaT cells of ``burn_dates``."""
    burned = ~np.isnat(burn_dates)
    rng = np.random.default_rng(seed)
    if confidence is None:
        confidence = np.where(burned, rng.uniform(0.5, 1.0, region.shape), rng.uniform(0.0, 0.5, region.shape)).astype(np.float32)
    ws, we = window(mode, target)
    return Product(
        region=region,
        mode=mode,  # type: ignore[arg-type]
        target_date=target,
        window_start=ws,
        window_end=we,
        confidence=confidence.astype(np.float32),
        burn_date=burn_dates.astype("datetime64[D]"),
        burned=burned,
        threshold=0.5,
        models=[ModelRef(sha256=s, path=f"/weights/{s[:6]}.pth", model_id=f"m-{s[:6]}") for s in shas],
        cube_snapshot=snapshot,
        timings={"predict": 1.5},
        nir=rng.uniform(0.05, 0.4, region.shape).astype(np.float32),
        tiling="published",
        observed_days=61,
    )


def blob_dates(region: Region, target: dt.date, n_blobs: int = 6, seed: int = 0, first: dt.date | None = None) -> np.ndarray:
    """Burn dates of a few disc-shaped fires spreading outwards, inside the NRT window of ``target``."""
    rng = np.random.default_rng(seed)
    rows, cols = region.shape
    out = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    yy, xx = np.mgrid[0:rows, 0:cols]
    start = np.datetime64(first or (target - dt.timedelta(days=50)))
    for _ in range(n_blobs):
        cy, cx, r = rng.integers(0, rows), rng.integers(0, cols), rng.uniform(2, 9)
        d = np.hypot(yy - cy, xx - cx)
        inside = d < r
        ignition = start + np.timedelta64(int(rng.integers(0, 30)), "D")
        out[inside] = ignition + (d[inside] / 2).astype("timedelta64[D]")
    return out
