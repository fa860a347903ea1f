"""A synthetic retraining world: cubes, MCD64A1 tiles and label cubes for synthetic regions.

For tests, benchmarks and the demo.  Each region gets a synthetic scenario (its own seed); its
daily images are committed to the region cube, its true burn dates are written as real MCD64A1
HDF4 tiles into an archive mirror (the scenario's water as MCD64A1 water), and the label cube is
built from those tiles through the same code path as production (``make_labels``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from banet_ops.regions import Region
from banet_ops.settings import get_settings


@dataclass(frozen=True)
class WorldRegion:
    """A synthetic region and the scenario parameters that make its fires."""

    region: Region
    seed: int


@dataclass
class World:
    """Where a built world lives and the settings (``BANET_*``) that point at it."""

    root: Path
    regions: list[WorldRegion]
    start: dt.date
    days: int
    env: dict[str, str]
    burn_dates: dict[str, NDArray[np.datetime64]]


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Temporarily set environment variables (and re-read settings)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


def build_world(
    root: str | Path,
    regions: Sequence[WorldRegion],
    *,
    start: dt.date,
    days: int,
    cube_first: dt.date,
    cube_last: dt.date,
    label_months: Sequence[str],
) -> World:
    """Write cubes (days ``cube_first..cube_last``), MCD64A1 tiles and labels (``label_months`` as ``R:YYYY-MM``)."""
    from banet_ops.cube import write_day
    from banet_ops.mcd64.synthetic import months_between, write_mcd64a1
    from banet_ops.retrain.pipeline import LabelsStep, make_labels
    from banet_ops.synthetic import synthetic_daily_images
    from banet_ops.synthetic.scene import Scene

    base = Path(root)
    regions_dir = base / "regions"
    regions_dir.mkdir(parents=True, exist_ok=True)
    env = {"BANET_HOME": str(base / "home"), "BANET_REGIONS_DIR": str(regions_dir), "BANET_ARCHIVE_URL": (base / "mirror").as_uri()}
    truths: dict[str, NDArray[np.datetime64]] = {}
    last = start + dt.timedelta(days=days - 1)
    with environment(env):
        for wr in regions:
            region = wr.region
            (regions_dir / f"R_{region.name}.json").write_text(json.dumps(region.to_file_dict()))
            for image in synthetic_daily_images(region, start, days, wr.seed):
                if cube_first <= image.day <= cube_last:
                    write_day(image)
            scene = Scene(region, start, days, wr.seed)
            # every burn of each cell: a month's tile holds the burn of that month, as MCD64A1 does
            write_mcd64a1(base / "mirror", region, scene.all_burn_dates(), months_between(start, last), water=scene.water)
            truths[region.name] = scene.burn_dates()
        if label_months:
            make_labels(LabelsStep(region_months=list(label_months)))
    return World(base, list(regions), start, days, env, truths)
