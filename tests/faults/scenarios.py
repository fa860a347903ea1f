"""Shared pieces of the fault suite: the synthetic products, child runs and consistency checks."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import sqlalchemy as sa
from publish.helpers import blob_dates, build_product

from banet_ops.db.engine import get_engine
from banet_ops.publish import product_keys
from banet_ops.publish.storage import ObjectStore, S3Store
from banet_ops.regions import Region

TARGET = dt.date(2017, 10, 27)
CHILD = Path(__file__).resolve().parent / "_child.py"
REPO = Path(__file__).resolve().parents[2]
# figures for docs/reliability.md, filled by the tests that ran (see conftest.py)
FIGURES: dict[str, set[str]] = {"crash_points": set(), "faults": set(), "bad_inputs": set(), "lost": set(), "inconsistent": set()}


def region_spec(region: Region) -> dict[str, Any]:
    return {"name": region.name, "bbox": list(region.bbox), "pixel_size": region.pixel_size}


def product_for(spec: dict[str, Any]) -> Any:
    """The synthetic product a spec names: region, seed (burn dates and confidences), snapshot."""
    r = spec["region"]
    region = Region(name=r["name"], bbox=tuple(r["bbox"]), pixel_size=r["pixel_size"])
    return build_product(region, blob_dates(region, TARGET, seed=spec["seed"]), target=TARGET, seed=spec["seed"], snapshot=spec["snapshot"])


def run_child(args: list[str], *, crash_at: str = "", env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``_child.py`` with the crash points armed; its completed process."""
    full = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    full["BANET_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, str(CHILD), *args], env=full, capture_output=True, text=True, timeout=timeout, check=False)


def killed(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode == -9 and "crash point" in proc.stderr


# --- publish state -----------------------------------------------------------------------------


def _raster(data: bytes) -> np.ndarray:
    with rasterio.open(io.BytesIO(data)) as ds:
        return ds.read(1)


def publish_state(db_url: str, store: ObjectStore, region: Region) -> dict[str, Any]:
    """What a reader sees of a region's NRT product, without ids and times (comparable across regions)."""
    with get_engine(db_url).connect() as conn:
        cells = conn.execute(
            sa.text('SELECT "row", col, burn_date, confidence, run_id FROM banet.burned_cell WHERE region = :r ORDER BY 3, 1, 2'), {"r": region.name}
        ).all()
        events = conn.execute(
            sa.text("SELECT run_id, first_burn_date, last_burn_date, n_cells, ST_AsText(geom) FROM banet.fire_event WHERE region = :r ORDER BY 2, 4, 5"),
            {"r": region.name},
        ).all()
        runs = conn.execute(
            sa.text("SELECT id, cube_snapshot, status, n_burned_cells, n_events FROM banet.run WHERE region = :r AND status = 'succeeded'"), {"r": region.name}
        ).all()
    keys = store.list(region.name)
    files = {k.replace(region.name, "R"): store.get_bytes(k) for k in keys}
    return {"cells": cells, "events": events, "runs": runs, "files": files, "hidden": hidden_keys(store)}


def hidden_keys(store: ObjectStore) -> list[str]:
    """Every object with a hidden part in its key (backups, journals, temp files), straight from the storage."""
    if isinstance(store, S3Store):
        pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=store.prefix)
        keys = [str(o["Key"]).removeprefix(f"{store.prefix}/") for page in pages for o in page.get("Contents", [])]
    else:
        keys = [p.relative_to(store.root).as_posix() for p in Path(store.root).rglob("*") if p.is_file()]
    return sorted(k for k in keys if any(part.startswith(".") for part in k.split("/")))


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without run ids and the STAC item's own ids: equal for equal products in two regions."""
    item = json.loads(next(v for k, v in state["files"].items() if k.endswith(".json")))
    props = item["properties"]
    return {
        "cells": [(r, c, d, conf) for r, c, d, conf, _run in state["cells"]],
        "events": [e[1:] for e in state["events"]],
        "rasters": {k: _raster(v).tobytes() for k, v in state["files"].items() if k.endswith(".tif")},
        "files": sorted(state["files"]),  # the quicklook shows the region name: compared by presence
        "stac": (props["banet:cube_snapshot"], props["banet:n_burned_cells"], props["banet:n_events"]),
        "hidden": state["hidden"],
    }


def publish_inconsistencies(db_url: str, store: ObjectStore, region: Region) -> list[str]:
    """Disagreements between the files, the STAC item and PostGIS of a region's NRT product (empty: consistent)."""
    state = publish_state(db_url, store, region)
    problems = []
    items = {k: json.loads(v) for k, v in state["files"].items() if k.endswith(".json")}
    if len(items) != 1:
        return [f"expected one STAC item, found {sorted(items)}"]
    props = next(iter(items.values()))["properties"]
    run = {r[0]: r for r in state["runs"]}.get(props["banet:run_id"])
    if run is None:
        return [f"STAC item names run {props['banet:run_id']}, which is not a succeeded run"]
    _id, snapshot, _status, n_cells, n_events = run
    if props["banet:cube_snapshot"] != snapshot:
        problems.append(f"STAC snapshot {props['banet:cube_snapshot']} != run snapshot {snapshot}")
    if (props["banet:n_burned_cells"], props["banet:n_events"]) != (n_cells, n_events) or n_cells != len(state["cells"]) or n_events != len(state["events"]):
        stac_counts = f"{props['banet:n_burned_cells']}/{props['banet:n_events']}"
        problems.append(f"cells/events: STAC {stac_counts}, run {n_cells}/{n_events}, rows {len(state['cells'])}/{len(state['events'])}")
    if {r[4] for r in state["cells"]} - {_id}:
        problems.append("cells of another run in the scope")
    raster = _raster(next(v for k, v in state["files"].items() if k.endswith("_burndate.tif")))
    expected = np.minimum(raster, 0)  # YYYYDDD where burned; 0 observed, -1 unobserved elsewhere (docs/analysts.md)
    for r, c, d, _conf, _run in state["cells"]:
        expected[r, c] = d.year * 1000 + d.timetuple().tm_yday
    if not np.array_equal(expected, raster):
        problems.append("burn-date COG differs from the cells in PostGIS")
    conf = _raster(next(v for k, v in state["files"].items() if k.endswith("_confidence.tif")))
    if any(abs(conf[r, c] - cf) > 1e-6 for r, c, _d, cf, _run in state["cells"]):
        problems.append("confidence COG differs from the cells in PostGIS")
    if state["hidden"]:
        problems.append(f"backup or journal objects left: {state['hidden']}")
    return problems


def keys_of(region: Region) -> dict[str, str]:
    return product_keys(product_for({"region": region_spec(region), "seed": 0, "snapshot": "x"}))


# --- ingest state ------------------------------------------------------------------------------


def cube_day_row(db_url: str, region: str, day: dt.date) -> tuple[Any, ...] | None:
    with get_engine(db_url).connect() as conn:
        row = conn.execute(
            sa.text("SELECT snapshot_id, status, valid_fraction, granules, committed_at FROM banet.cube_day WHERE region = :r AND day = :d"),
            {"r": region, "d": day},
        ).first()
    return None if row is None else tuple(row)


def cube_inconsistencies(db_url: str, region: str, settings: Any) -> list[str]:
    """Disagreements between a region's cube and its ``banet.cube_day`` rows (empty: consistent).

    For every day the cube holds, the row must name the commit that wrote the day (the cube's
    own record, :func:`banet_ops.cube.day_records`), with its status and valid fraction.
    """
    from banet_ops.cube import day_records
    from banet_ops.cube.storage import cube_location, open_repository
    from banet_ops.cube.writer import stored_day

    loc = cube_location(region, settings=settings)
    repo = open_repository(loc)
    with get_engine(db_url).connect() as conn:
        rows = {r.day: r for r in conn.execute(sa.text("SELECT * FROM banet.cube_day WHERE region = :r"), {"r": region})}
    problems = []
    for rec in day_records(region, settings=settings):
        row = rows.pop(rec.day, None)
        stored = stored_day(repo, loc, rec.day)
        if row is None or stored is None:
            problems.append(f"{rec.day}: in the cube, no cube_day row")
            continue
        if (row.snapshot_id, row.status) != (stored.snapshot_id, stored.status) or abs(row.valid_fraction - stored.valid_fraction) > 1e-6:
            problems.append(f"{rec.day}: cube {stored.snapshot_id}/{stored.status}/{stored.valid_fraction:.4f}, "
                            f"cube_day {row.snapshot_id}/{row.status}/{row.valid_fraction:.4f}")
    problems += [f"{day}: a cube_day row, no day in the cube" for day in rows]
    return problems
