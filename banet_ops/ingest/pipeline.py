"""``banet-ops ingest``: one region-day through the stages discover → fetch → composite → commit.

The stages are :mod:`banet_ops.ingest.stages`, the same functions the ingest DAG's tasks call
(see its docstring for the failure policy); ``build_daily_image`` runs all but the commit.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from banet_ops.daily_image import DailyImage
from banet_ops.ingest import stages
from banet_ops.ingest.reading import count_detections, image_from_files
from banet_ops.ingest.report import BuildReport, FileOutcome, IngestResult
from banet_ops.ingest.stages import Sink, record_day, require_not_future, require_published
from banet_ops.regions import Region
from banet_ops.settings import Settings, get_settings
from banet_ops.util import timed

log = logging.getLogger(__name__)


def _sources(settings: Settings, sources: Any) -> Any:
    if sources is not None:
        return sources
    from banet_ops.sources import make_sources

    return make_sources(settings)


def build_daily_image_with_report(
    region: Region, day: dt.date, *, settings: Settings | None = None, sources: Any = None, workers: int | None = None
) -> tuple[DailyImage, BuildReport]:
    """Discover, fetch, read, grid and composite one region-day: its image and the report of every file."""
    settings = settings or get_settings()
    sources = _sources(settings, sources)
    found = stages.discover(region, day, sources=sources)
    return stages.composite(region, found, stages.fetch(found, sources), settings=settings, workers=workers)


def build_daily_image(region: Region, day: dt.date, *, settings: Settings | None = None) -> DailyImage:
    """Discover, fetch, read, grid and composite one region-day (docs/contracts.md)."""
    return build_daily_image_with_report(region, day, settings=settings)[0]


def day_status(image: DailyImage, report: BuildReport) -> tuple[str, float]:
    """(status, valid fraction) of a built day by the cube's rule (:func:`banet_ops.cube.layout.day_status`)."""
    from banet_ops.cube import layout

    fraction = layout.valid_fraction(image)
    return layout.day_status(fraction, report.n_rejected_files), fraction


def _dry_run(region: Region, day: dt.date, settings: Settings, sources: Any, workers: int | None) -> tuple[DailyImage, BuildReport]:
    """What would be fetched; when every file is already on disk (a mirror, the cache) they are read too."""
    found = stages.discover(region, day, sources=sources)
    modes = [(item, stages.fetch_mode(sources, item)) for item in found.items()]
    if modes and all(mode in ("local", "reused") for _item, mode in modes):
        image, report = stages.composite(region, found, stages.fetch(found, sources), settings=settings, workers=workers)
        report.read_in_dry_run = True
        return image, report
    report = BuildReport(region=region.name, day=day, discovery_rejected=found.discovery_rejected)
    report.files = [FileOutcome(i.name, i.product, "discovered", mode, size=i.size, url=i.url) for i, mode in modes]
    return DailyImage.empty(region, day), report


def ingest_day(
    region: Region,
    day: dt.date,
    *,
    settings: Settings | None = None,
    dry_run: bool = False,
    sink: Sink | None = None,
    sources: Any = None,
    record: bool | None = None,
    workers: int | None = None,
    force: bool = False,
) -> IngestResult:
    """Build the region-day image and commit it to the cube (docs/contracts.md).

    ``sink`` replaces the cube commit (tests); ``sources`` replaces ``make_sources(settings)``;
    ``record`` forces (True) or skips (False) the PostGIS records, which by default are written
    when a database is configured; ``workers`` bounds the processes that read and grid granules
    in parallel.  A day already in the cube is only replaced by a version at least as complete
    unless ``force`` (else status ``kept``: the stored version and its snapshot stay, nothing is
    recorded).  A dry run writes nothing.
    """
    settings = settings or get_settings()
    sources = _sources(settings, sources)
    timings: dict[str, float] = {}
    with timed(timings, "total"):
        if dry_run:
            image, report = _dry_run(region, day, settings, sources, workers)
            status, fraction = day_status(image, report) if report.read_in_dry_run else ("dry-run", 0.0)
            snapshot = None
        else:
            image, report = build_daily_image_with_report(region, day, settings=settings, sources=sources, workers=workers)
            with report.timed("commit"):
                done = stages.commit(image, report, settings=settings, force=force, sink=sink, record=record)
            status, fraction, snapshot, report.kept = done.status, done.valid_fraction, done.snapshot, done.kept
    result = IngestResult(
        region=region.name, day=day, status=status, snapshot=snapshot,
        granules=report.used if not dry_run else sorted(f.name for f in report.files),
        found=len(report.files), downloaded=report.count("fetch", "downloaded"), reused=report.count("fetch", "reused"),
        rejected=report.rejected, valid_fraction=fraction, n_detections=report.n_detections,
        firms_rows_rejected=report.firms_rows_rejected, timings={k: round(v, 3) for k, v in {**report.timings, **timings}.items()},
        dry_run=dry_run,
    )  # fmt: skip
    log.debug("%s", result.summary())  # the CLI prints it; a second INFO copy would interleave with its progress bar
    return result


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


__all__ = [
    "BuildReport",
    "FileOutcome",
    "IngestResult",
    "build_daily_image",
    "build_daily_image_with_report",
    "count_detections",
    "day_status",
    "days_between",
    "image_from_files",
    "ingest_day",
    "record_day",
    "require_not_future",
    "require_published",
]
