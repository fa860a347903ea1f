"""Image factory and process entry points shared by the cube tests (importable by spawned workers)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.daily_image import DailyImage
from banet_ops.regions import Region, load_region

REPO = Path(__file__).resolve().parents[2]
PI = load_region(REPO / "banet_ops" / "data" / "regions" / "R_PI.json")
# 40 x 60 cells of the PI grid
REGION = PI.subregion("TC", 300, 700, 40, 60)


def make_image(day: dt.date, seed: int = 0, region: Region = REGION) -> DailyImage:
    """A deterministic daily image: reflectances with gaps, sparse FRP, observation layers."""
    rng = np.random.default_rng([seed, day.toordinal()])
    shape = region.shape
    gap = np.zeros(shape, dtype=bool)
    c0 = int(rng.integers(0, shape[1]))
    gap[:, c0 : c0 + shape[1] // 5] = True
    v: dict[str, np.ndarray] = {}
    for name, hi in (("Red", 0.4), ("NIR", 0.6), ("MIR", 0.3), ("M10", 0.5)):
        a = rng.uniform(0, hi, shape).astype(np.float32)
        a[gap] = np.nan
        v[name] = a
    frp = np.zeros(shape, dtype=np.float32)
    hot = rng.random(shape) < 0.02
    frp[hot] = rng.gamma(2.0, 15.0, int(hot.sum())).astype(np.float32)
    v["FRP"] = frp
    n_obs = rng.integers(1, 4, shape).astype(np.float32)
    n_obs[gap] = 0
    v["n_obs"] = n_obs
    zen = rng.uniform(0, 70, shape).astype(np.float32)
    zen[gap] = np.nan
    v["sensor_zenith"] = zen
    assert set(v) == set(CUBE_VARIABLES)
    return DailyImage(region, day, v, granules=[f"VNP02MOD.A{day:%Y%j}.1200.nc", f"seed{seed}"], sources={"archive": "file:///mirror"})


def expected(image: DailyImage, name: str) -> np.ndarray:
    """What the cube gives back for ``name``: reflectances on the 1e-4 grid, angles on 0.01."""
    a = image.variables[name].astype(np.float64)
    scale = {"Red": 1e-4, "NIR": 1e-4, "MIR": 1e-4, "M10": 1e-4, "sensor_zenith": 0.01}.get(name)
    if scale is None:
        return a.astype(np.float32)
    return (np.round(a / scale) * scale).astype(np.float32)


def write_worker(args: tuple[str, str, int, str | None]) -> str:
    """Spawned process: write one day into the cube at ``root`` and return the snapshot id.

    With a barrier folder, wait after writing the data until every writer of that barrier has
    written, so that their commits race.
    """
    from banet_ops.cube import write_day
    from banet_ops.settings import Settings

    root, day_iso, seed, barrier = args
    hook = None
    if barrier is not None:
        folder = Path(barrier)

        def hook() -> None:
            (folder / f"{seed}.ready").touch()
            deadline = time.monotonic() + 30
            while len(list(folder.glob("*.ready"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)

    return write_day(make_image(dt.date.fromisoformat(day_iso), seed), settings=Settings(cube_root=root), before_commit=hook)


def raw_cube(root: str, days: slice, region: str = "TC") -> dict[str, np.ndarray]:
    """Every array of a cube as stored (integers undecoded), data variables over the time indexes
    ``days`` only (reading thousands of never-written chunks is slow), plus the group attributes."""
    import json

    import zarr

    from banet_ops.cube.info import day_records
    from banet_ops.cube.layout import VALID_VARIABLE as VALID
    from banet_ops.cube.reader import open_group
    from banet_ops.settings import Settings

    group, _snap, _loc = open_group(region, settings=Settings(cube_root=root))
    out = {name: np.asarray(arr[days] if name in CUBE_VARIABLES else arr[...]) for name, arr in group.arrays() if name != VALID}
    records = day_records(region, settings=Settings(cube_root=root))  # every written day, from the manifest
    out[VALID] = np.array([(r.day.toordinal(), r.valid_fraction) for r in records])
    out["__shapes__"] = np.array([arr.shape for _name, arr in sorted(group.arrays())], dtype=object)
    out["__attrs__"] = np.array(json.dumps(dict(group.attrs), sort_keys=True))
    assert isinstance(group, zarr.Group)
    return out


if __name__ == "__main__":  # the crash test: write a day, then sleep before committing
    import sys

    from banet_ops.cube import write_day

    day_iso, seed, marker = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])

    def stall() -> None:
        marker.touch()
        time.sleep(120)

    write_day(make_image(dt.date.fromisoformat(day_iso), seed), before_commit=stall)
