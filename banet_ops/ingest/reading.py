"""Read, grid and composite the local files of one region-day into its daily image.

Bad files are rejected (reported in the :class:`BuildReport`, never raised): the day goes on
with the others (status ``partial``).  Malformed FIRMS rows are counted, never fatal.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from banet_ops.daily_image import DailyImage
from banet_ops.errors import BanetError, DataFormatError
from banet_ops.ingest.composite import Compositor, Observations
from banet_ops.ingest.gridding import grid_granule, observations_from_grid
from banet_ops.ingest.readers.firms_csv import FirmsTable, grid_frp, merge_detections, read_firms_csv
from banet_ops.ingest.readers.legacy_hdf4 import LEGACY_PRODUCT, group_legacy_files, read_legacy_overpass
from banet_ops.ingest.readers.viirs_l1b import read_granule
from banet_ops.ingest.report import BuildReport, FileOutcome
from banet_ops.regions import Region
from banet_ops.util import timed

log = logging.getLogger(__name__)

IN_PLACE_HINT = "the file is read in place: re-sync the mirror or replace the file"
GridOutcome = tuple[Observations | None, DataFormatError | None, dict[str, float]]


def reject(report: BuildReport, outcome: FileOutcome, exc: BanetError) -> None:
    """Mark one file rejected with the error's message (a file read in place gets the in-place hint)."""
    if outcome.fetch == "local" and exc.hint and "downloaded again" in exc.hint:
        exc = type(exc)(exc.message, hint=IN_PLACE_HINT)  # deleting a mirror file fetches nothing
    outcome.status = "rejected"
    outcome.message = exc.message
    log.warning("%s %s: rejected %s: %s", report.region, report.day, outcome.name, exc)


class _Outcomes:
    """The report's file outcomes by name; files read without a fetch stage get one here."""

    def __init__(self, report: BuildReport) -> None:
        self.report = report
        self.by_name = {f.name: f for f in report.files}

    def __call__(self, path: Path, product: str) -> FileOutcome:
        if path.name not in self.by_name:
            self.by_name[path.name] = FileOutcome(name=path.name, product=product, status="ingested", size=file_size(path), path=str(path))
            self.report.files.append(self.by_name[path.name])
        return self.by_name[path.name]


def image_from_files(
    region: Region,
    day: dt.date,
    pairs: Sequence[tuple[Path, Path]],
    firms_files: Sequence[Path],
    *,
    legacy_files: Sequence[Path] = (),
    report: BuildReport | None = None,
    sources: dict[str, str] | None = None,
    workers: int | None = None,
) -> tuple[DailyImage, BuildReport]:
    """Read, grid and composite local files of one region-day into its daily image.

    Granules are read and gridded in up to ``workers`` processes (default: one per granule, at
    most the CPU count minus one and 4); compositing stays in order, so the result does not
    depend on it.  Legacy gridded overpasses stand in for Suomi-NPP swaths only when there are
    none that day.
    """
    report = report or BuildReport(region=region.name, day=day)
    comp = Compositor(region)
    outcome = _Outcomes(report)
    npp_swaths = _add_swaths(comp, region, day, pairs, report, outcome, workers)
    _add_legacy(comp, region, day, legacy_files, report, outcome, npp_swaths)
    tables = _read_firms(firms_files, report, outcome)
    with report.timed("firms"):
        detections = merge_detections(tables)
        frp = grid_frp(detections, region, day)
        report.n_detections = count_detections(detections, region, day)
    with report.timed("composite"):
        image = comp.image(day, frp=frp, sources=sources)
    return image, report


def _add_swaths(
    comp: Compositor, region: Region, day: dt.date, pairs: Sequence[tuple[Path, Path]], report: BuildReport, outcome: _Outcomes, workers: int | None
) -> int:
    """Composite the L1B/geolocation pairs; the number of Suomi-NPP swaths used."""
    npp_swaths = 0
    for (l1b, geo), (obs, error, timings) in zip(pairs, _read_and_grid_all(pairs, region, workers)):
        o1, o2 = outcome(l1b, l1b.name.split(".")[0]), outcome(geo, geo.name.split(".")[0])
        for stage, seconds in timings.items():
            report.timings[stage] = report.timings.get(stage, 0.0) + seconds
        if error is not None or obs is None:
            for o in (o1, o2):
                reject(report, o, error or DataFormatError(f"{l1b.name}: expected a readable granule, found none"))
            continue
        with report.timed("composite"):
            won = comp.add(obs)
        npp_swaths += l1b.name.startswith("VNP")
        log.debug("%s %s: %s gives %d cells (%d kept)", region.name, day, obs.key, len(obs), won)
    return npp_swaths


def _add_legacy(comp: Compositor, region: Region, day: dt.date, files: Sequence[Path], report: BuildReport, outcome: _Outcomes, npp_swaths: int) -> None:
    for key, layers in sorted(group_legacy_files(files).items()):
        outs = [outcome(p, LEGACY_PRODUCT) for p in layers.values()]
        if npp_swaths:
            for o in outs:
                o.status, o.message = "skipped", "Suomi-NPP L1B swaths of the day were used instead"
            continue
        try:
            with report.timed("read"):
                overpass = read_legacy_overpass(layers, region)
        except DataFormatError as exc:
            for o in outs:
                reject(report, o, exc)
            continue
        with report.timed("composite"):
            won = comp.add(observations_from_grid(key, overpass.variables, [p.name for p in overpass.files]))
        log.debug("%s %s: legacy %s gives %d cells", region.name, day, key, won)


def _read_firms(files: Sequence[Path], report: BuildReport, outcome: _Outcomes) -> list[FirmsTable]:
    tables: list[FirmsTable] = []
    for path in files:
        o = outcome(path, "FIRMS")
        try:
            with report.timed("firms"):
                table = read_firms_csv(path)
        except DataFormatError as exc:
            reject(report, o, exc)
            continue
        tables.append(table)
        report.firms.append(table.report)
        if table.report.n_rejected:
            first = table.report.rejected[0]
            o.message = f"{table.report.n_rejected} malformed rows rejected (first: line {first[0]}: {first[1]})"
    return tables


def count_detections(detections: Any, region: Region, day: dt.date) -> int:
    """Detections of ``day`` inside the region (those :func:`grid_frp` sums), not every row of the files."""
    if not len(detections):
        return 0
    on_day = detections["acq_date"].to_numpy().astype("datetime64[D]") == np.datetime64(day, "D")
    _r, _c, inside = region.rowcol(detections["longitude"].to_numpy(np.float64), detections["latitude"].to_numpy(np.float64))
    return int((on_day & inside).sum())


def _read_and_grid(l1b: Path, geo: Path, region: Region) -> GridOutcome:
    """Read one granule near the region and grid it (runs in a worker process)."""
    timings: dict[str, float] = {}
    try:
        with timed(timings, "read"):
            granule = read_granule(l1b, geo, bbox=region.bbox)
        with timed(timings, "grid"):
            obs = grid_granule(granule, region)
    except DataFormatError as exc:
        # rebuilt so that it crosses the process boundary with its class, message and hint
        return None, type(exc)(exc.message, hint=exc.hint), timings
    return obs, None, timings


def _read_and_grid_all(pairs: Sequence[tuple[Path, Path]], region: Region, workers: int | None) -> list[GridOutcome]:
    # by default one core is left to the parent and to other work (on 2 cores: no pool at all)
    n = workers if workers is not None else min(len(pairs), max(1, (os.cpu_count() or 1) - 1), 4)
    if n <= 1 or len(pairs) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [_read_and_grid(l1b, geo, region) for l1b, geo in pairs]
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_read_and_grid, [p[0] for p in pairs], [p[1] for p in pairs], [region] * len(pairs)))


def file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
