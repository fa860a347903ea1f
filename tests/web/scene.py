"""A demo-like scene in PostGIS for the map tests: one region, three NRT products, cube days.

Like ``make demo``: a 64x64 box over central Portugal, fires that ignite on different days and
spread outwards (so later products see them larger), published through the real publisher
(COGs, STAC items, cells, events), plus the region's cube days with a gap and a partial day.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import numpy as np

from banet_ops.cube.db import record_cube_day
from banet_ops.db.engine import get_engine
from banet_ops.product import ModelRef, Product
from banet_ops.publish import publish_product
from banet_ops.regions import Region
from banet_ops.settings import Settings

START = dt.date(2024, 6, 1)
TARGETS = (dt.date(2024, 8, 10), dt.date(2024, 8, 14), dt.date(2024, 8, 18))
# (row, col, ignition day offset from START + 40, final radius in cells)
FIRES = ((14, 16, 0, 8.0), (44, 40, 9, 11.0), (50, 12, 20, 5.0), (22, 50, 31, 3.0))
MISSING_DAY = dt.date(2024, 7, 3)
PARTIAL_DAY = dt.date(2024, 7, 4)


@dataclass(frozen=True)
class Scene:
    region: Region
    run_ids: tuple[int, ...]


def burn_dates(region: Region, target: dt.date) -> np.ndarray:
    """Cells burned by ``target``: each fire spreads one cell every three days up to its radius."""
    out = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    yy, xx = np.mgrid[0 : region.shape[0], 0 : region.shape[1]]
    for row, col, offset, radius in FIRES:
        ignition = START + dt.timedelta(days=40 + offset)
        d = np.hypot(yy - row, xx - col)
        day = np.datetime64(ignition) + (d * 3).astype("timedelta64[D]")
        burned = (day <= np.datetime64(target)) & (d <= radius)
        out[burned] = day[burned]
    return out


def product(region: Region, target: dt.date) -> Product:
    dates = burn_dates(region, target)
    dates[:, :3] = np.datetime64("NaT")  # a strip the model had no data for: NoData in the COGs
    burned = ~np.isnat(dates)
    rng = np.random.default_rng(target.toordinal())
    confidence = np.where(burned, rng.uniform(0.6, 1.0, region.shape), rng.uniform(0.0, 0.3, region.shape)).astype(np.float32)
    confidence[:, :3] = np.nan
    return Product(
        region=region,
        mode="nrt",
        target_date=target,
        window_start=target - dt.timedelta(days=63),
        window_end=target,
        confidence=confidence,
        burn_date=dates,
        burned=burned,
        threshold=0.5,
        models=[ModelRef(sha256="c" * 64, path="/weights/demo.pth", model_id="demo")],
        cube_snapshot=f"snap-{target:%m%d}",
        nir=rng.uniform(0.05, 0.4, region.shape).astype(np.float32),
    )


def publish_scene(db_url: str, settings: Settings) -> Scene:
    """Publish the scene under a fresh region name; returns it with its run ids (oldest first)."""
    region = Region(name=f"W{uuid.uuid4().hex[:8]}", bbox=(-8.30, 39.76, -7.66, 40.40), pixel_size=0.01)
    engine = get_engine(db_url)
    for i in range(80):
        day = START + dt.timedelta(days=i)
        if day != MISSING_DAY:
            record_cube_day(engine, region, day, f"{i:020d}", valid_fraction=0.4 if day == PARTIAL_DAY else 1.0)
    runs = tuple(publish_product(product(region, t), settings=settings).run_id for t in TARGETS)
    return Scene(region, runs)
