"""Ingestion of one region-day: discover → fetch → read → grid → composite → commit to the cube.

``build_daily_image`` does everything but the commit; ``ingest_day`` commits the image with
``banet_ops.cube.write_day`` (one cube commit per day, idempotent) and, when a database is
configured, records the granules and the cube day in PostGIS in one transaction.

Failure policy: a *retryable* error (source unavailable, rate limit, truncated download) stops the
day, so that the Airflow task retries it whole; a *permanent* problem with one file (corrupt or
truncated NetCDF/HDF4, mismatched geolocation, missing file, bad FIRMS header) rejects that file,
is logged and reported, and the day goes on with the others (status ``partial``).  Malformed
FIRMS rows are counted and reported, never fatal.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from banet_ops.daily_image import DailyImage
from banet_ops.errors import (
    AuthenticationError,
    BanetError,
    ConfigError,
    DataFormatError,
    IntegrityError,
    LessCompleteError,
    RetryableError,
    ValidationError,
)
from banet_ops.ingest.composite import Compositor, Observations
from banet_ops.ingest.gridding import grid_granule, observations_from_grid
from banet_ops.ingest.readers.firms_csv import FirmsReport, FirmsTable, grid_frp, merge_detections, read_firms_csv
from banet_ops.ingest.readers.legacy_hdf4 import LEGACY_PRODUCT, group_legacy_files, read_legacy_overpass
from banet_ops.ingest.readers.viirs_l1b import granule_key, read_granule
from banet_ops.regions import Region
from banet_ops.settings import Settings, get_settings

log = logging.getLogger(__name__)

Sink = Callable[[DailyImage], str]


@dataclass
class FileOutcome:
    """What happened to one input file."""

    name: str
    product: str
    status: str  # ingested / rejected / skipped
    fetch: str = "local"  # local (mirror, in place) / downloaded / reused (cache)
    message: str = ""
    size: int | None = None
    checksum: str | None = None
    url: str | None = None


@dataclass
class BuildReport:
    """Everything ``build_daily_image`` found, fetched, used and rejected for one region-day."""

    region: str
    day: dt.date
    files: list[FileOutcome] = field(default_factory=list)
    discovery_rejected: list[tuple[str, str]] = field(default_factory=list)
    firms: list[FirmsReport] = field(default_factory=list)
    n_detections: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    kept: str = ""  # why the stored, more complete version of the day was kept
    read_in_dry_run: bool = False  # a dry run whose files were all on disk read them (nothing written)

    def count(self, attr: str, value: str) -> int:
        return sum(1 for f in self.files if getattr(f, attr) == value)

    @property
    def rejected(self) -> list[tuple[str, str]]:
        return [(f.name, f.message) for f in self.files if f.status == "rejected"] + self.discovery_rejected

    @property
    def firms_rows_rejected(self) -> int:
        return sum(r.n_rejected for r in self.firms)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0


@dataclass
class IngestResult:
    """Outcome of ``ingest_day`` (also what ``banet-ops ingest`` prints)."""

    region: str
    day: dt.date
    status: str  # complete / partial / empty (dry runs: what it would be)
    snapshot: str | None
    granules: list[str]
    found: int
    downloaded: int
    reused: int
    rejected: list[tuple[str, str]]
    valid_fraction: float
    n_detections: int
    firms_rows_rejected: int
    timings: dict[str, float]
    dry_run: bool = False

    def summary(self) -> str:
        what = "would commit" if self.dry_run else f"snapshot {self.snapshot}"
        if self.status == "kept":
            what = "nothing committed: the stored version is more complete (--force replaces it)"
        if self.dry_run and self.status == "dry-run":  # files to download: not read, so nothing to say about cells
            return (
                f"{self.region} {self.day}: dry run, {self.found} files found ({self.reused} cached, "
                f"{self.downloaded} to download; not read in a dry run, so cell coverage unknown), would commit the day"
            )
        return (
            f"{self.region} {self.day}: {self.status}, {len(self.granules)} files used of {self.found} found "
            f"({self.downloaded} downloaded, {self.reused} reused), {len(self.rejected)} rejected, "
            f"{self.valid_fraction:.1%} of cells observed, {self.n_detections} fire detections "
            f"({self.firms_rows_rejected} bad FIRMS rows), {what}"
        )


# --- from local files ----------------------------------------------------------------------------


IN_PLACE_HINT = "the file is read in place: re-sync the mirror or replace the file"


def _reject(report: BuildReport, outcome: FileOutcome, exc: BanetError) -> None:
    if outcome.fetch == "local" and exc.hint and "downloaded again" in exc.hint:
        exc = type(exc)(exc.message, hint=IN_PLACE_HINT)  # deleting a mirror file fetches nothing
    outcome.status = "rejected"
    outcome.message = exc.message
    log.warning("%s %s: rejected %s: %s", report.region, report.day, outcome.name, exc)


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
    depend on it.
    Bad files are rejected (reported, not raised); see the module docstring.
    """
    report = report or BuildReport(region=region.name, day=day)
    comp = Compositor(region)
    outcomes = {f.name: f for f in report.files}

    def outcome(path: Path, product: str) -> FileOutcome:
        if path.name not in outcomes:
            outcomes[path.name] = FileOutcome(name=path.name, product=product, status="ingested", size=_size(path))
            report.files.append(outcomes[path.name])
        return outcomes[path.name]

    npp_swaths = 0
    for (l1b, geo), (obs, error, timings) in zip(pairs, _read_and_grid_all(pairs, region, workers)):
        o1, o2 = outcome(l1b, l1b.name.split(".")[0]), outcome(geo, geo.name.split(".")[0])
        for stage, seconds in timings.items():
            report.timings[stage] = report.timings.get(stage, 0.0) + seconds
        if error is not None or obs is None:
            for o in (o1, o2):
                _reject(report, o, error or DataFormatError(f"{l1b.name}: expected a readable granule, found none"))
            continue
        with report.timed("composite"):
            won = comp.add(obs)
        npp_swaths += l1b.name.startswith("VNP")
        log.info("%s %s: %s gives %d cells (%d kept)", region.name, day, obs.key, len(obs), won)

    # legacy gridded overpasses stand in for Suomi-NPP swaths only when there are none that day
    for key, layers in sorted(group_legacy_files(legacy_files).items()):
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
                _reject(report, o, exc)
            continue
        with report.timed("composite"):
            won = comp.add(observations_from_grid(key, overpass.variables, [p.name for p in overpass.files]))
        log.info("%s %s: legacy %s gives %d cells", region.name, day, key, won)

    tables: list[FirmsTable] = []
    for path in firms_files:
        o = outcome(path, "FIRMS")
        try:
            with report.timed("firms"):
                table = read_firms_csv(path)
        except DataFormatError as exc:
            _reject(report, o, exc)
            continue
        tables.append(table)
        report.firms.append(table.report)
        if table.report.n_rejected:
            o.message = f"{table.report.n_rejected} malformed rows rejected (first: line {table.report.rejected[0][0]}: {table.report.rejected[0][1]})"
    with report.timed("firms"):
        detections = merge_detections(tables)
        frp = grid_frp(detections, region, day)
        report.n_detections = count_detections(detections, region, day)
    with report.timed("composite"):
        image = comp.image(day, frp=frp, sources=sources)
    return image, report


def count_detections(detections: Any, region: Region, day: dt.date) -> int:
    """Detections of ``day`` inside the region (those :func:`grid_frp` sums), not every row of the files."""
    if not len(detections):
        return 0
    on_day = detections["acq_date"].to_numpy().astype("datetime64[D]") == np.datetime64(day, "D")
    _r, _c, inside = region.rowcol(detections["longitude"].to_numpy(np.float64), detections["latitude"].to_numpy(np.float64))
    return int((on_day & inside).sum())


GridOutcome = tuple[Observations | None, DataFormatError | None, dict[str, float]]


def _read_and_grid(l1b: Path, geo: Path, region: Region) -> GridOutcome:
    """Read one granule near the region and grid it (runs in a worker process)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        granule = read_granule(l1b, geo, bbox=region.bbox)
        timings["read"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        obs = grid_granule(granule, region)
        timings["grid"] = time.perf_counter() - t1
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


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


# --- with the configured sources -------------------------------------------------------------------


def _fetch_mode(sources: Any, item: Any) -> str:
    if item.source in ("mirror", "firms-folder"):
        return "local"
    from banet_ops.sources.base import cache_path, cached_ok

    try:
        return "reused" if cached_ok(cache_path(item, sources.cache_dir), item.size, item.md5) else "downloaded"
    except BanetError:
        return "downloaded"


def _fetch(sources: Any, item: Any, report: BuildReport) -> Path | None:
    """Fetch one item: its path, or None when a permanent error rejected it (retryable errors raise)."""
    mode = _fetch_mode(sources, item)
    outcome = FileOutcome(name=item.name, product=item.product, status="ingested", fetch=mode, size=item.size, checksum=item.md5, url=item.url)
    report.files.append(outcome)
    try:
        with report.timed("fetch"):
            path: Path = sources.fetch(item)
    except BanetError as exc:
        # transient errors retry the day; refused credentials or bad configuration fail it (they
        # would reject every file, and committing an empty day would hide the real problem).  A
        # file read in place (mirror, FIRMS folder) that is empty or fails its size or checksum
        # stays so on a retry: it is rejected like a corrupt file.
        if mode == "local" and isinstance(exc, IntegrityError):
            exc = DataFormatError(exc.message, hint=IN_PLACE_HINT)
        elif exc.retryable or isinstance(exc, (AuthenticationError, ConfigError)):
            raise
        _reject(report, outcome, exc)
        return None
    outcome.size = _size(path)
    log.debug("%s %s: %s %s", report.region, report.day, mode, item.name)
    return path


def _drop_bad_cache(report: BuildReport, paths: dict[str, Path], sources: Any) -> None:
    """Delete cached (never mirror) copies of files that were rejected as corrupt, so that they are fetched again."""
    cache = Path(sources.cache_dir).resolve()
    for f in report.files:
        path = paths.get(f.name)
        if f.status == "rejected" and path is not None and cache in path.resolve().parents:
            path.unlink(missing_ok=True)
            log.info("%s: removed the corrupt cached copy %s", f.name, path)


def build_daily_image_with_report(
    region: Region, day: dt.date, *, settings: Settings | None = None, sources: Any = None, fetch: bool = True, workers: int | None = None
) -> tuple[DailyImage, BuildReport]:
    """``build_daily_image`` plus the report of what was found, fetched, used and rejected.

    With ``fetch=False`` (dry run) nothing is downloaded or read: the image is empty and the
    report lists what would be fetched.
    """
    settings = settings or get_settings()
    if sources is None:
        from banet_ops.sources import make_sources

        sources = make_sources(settings)
    require_not_future(region, day)
    report = BuildReport(region=region.name, day=day)
    with report.timed("discover"):
        pairing = sources.viirs_pairs(region, day)
        fires = sources.fire_items(region, day)
        legacy_items: list[Any] = []
        if not any(p.l1b.name.startswith("VNP") for p in pairing.pairs) and _is_local_mirror(sources.archive):
            try:
                legacy_items = list(sources.archive.list_day(LEGACY_PRODUCT, day))
            except (BanetError, ConfigError) as exc:
                log.info("%s %s: no legacy %s files (%s)", region.name, day, LEGACY_PRODUCT, exc)
    require_published(region, day, pairing, legacy_items)
    report.discovery_rejected += [(str(getattr(r, "name", r)), str(getattr(r, "reason", ""))) for r in pairing.rejected]
    report.discovery_rejected += [(i.name, "no matching L1B/geolocation file") for i in pairing.unpaired]
    report.discovery_rejected += [(str(getattr(r, "name", r)), str(getattr(r, "reason", ""))) for r in getattr(fires, "rejected", [])]
    log.info(
        "%s %s: found %d L1B/geolocation pairs, %d legacy files, %d FIRMS files; %d night, %d unpaired, %d rejected in listings",
        region.name,
        day,
        len(pairing.pairs),
        len(legacy_items),
        len(fires),
        len(pairing.night),
        len(pairing.unpaired),
        len(pairing.rejected),
    )
    if not fetch:
        for pair in pairing.pairs:
            for item in (pair.l1b, pair.geo):
                report.files.append(FileOutcome(item.name, item.product, "discovered", _fetch_mode(sources, item), size=item.size, url=item.url))
        for item in [*legacy_items, *fires]:
            report.files.append(FileOutcome(item.name, item.product, "discovered", _fetch_mode(sources, item), size=item.size, url=item.url))
        return DailyImage.empty(region, day), report

    paths: dict[str, Path] = {}
    local_pairs: list[tuple[Path, Path]] = []
    for pair in pairing.pairs:
        l1b, geo = _fetch(sources, pair.l1b, report), _fetch(sources, pair.geo, report)
        if l1b is not None and geo is not None:
            paths[pair.l1b.name], paths[pair.geo.name] = l1b, geo
            local_pairs.append((l1b, geo))
    legacy_paths = [p for p in (_fetch(sources, item, report) for item in legacy_items) if p is not None]
    firms_paths = []
    for item in fires:
        path = _fetch(sources, item, report)
        if path is not None:
            paths[item.name] = path
            firms_paths.append(path)
    origin = {"archive": _redacted(settings.archive_url), "firms": _redacted(settings.firms_url)}
    image, report = image_from_files(region, day, local_pairs, firms_paths, legacy_files=legacy_paths, report=report, sources=origin, workers=workers)
    _drop_bad_cache(report, paths, sources)
    log.info(
        "%s %s: %d files downloaded, %d reused from the cache, %d read in place, %d rejected",
        region.name,
        day,
        report.count("fetch", "downloaded"),
        report.count("fetch", "reused"),
        report.count("fetch", "local"),
        len(report.rejected),
    )
    return image, report


def _is_local_mirror(archive: Any) -> bool:
    from banet_ops.sources.mirror import LocalMirror

    return isinstance(archive, LocalMirror)


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def build_daily_image(region: Region, day: dt.date, *, settings: Settings | None = None) -> DailyImage:
    """Discover, fetch, read, grid and composite one region-day (docs/contracts.md)."""
    return build_daily_image_with_report(region, day, settings=settings)[0]


# --- commit -------------------------------------------------------------------------------------


def day_status(image: DailyImage, report: BuildReport) -> tuple[str, float]:
    """(status, valid fraction) by the cube's definition (:func:`banet_ops.cube.layout.day_status`).

    The valid fraction is the cube's (cells with a finite Red reflectance); the rejected files
    are those fetched and found unreadable (a listing entry refused before any download is not).
    """
    from banet_ops.cube import layout

    red = image.variables["Red"]
    valid = float(np.count_nonzero(np.isfinite(red))) / red.size
    return layout.day_status(valid, n_rejected_files(report)), valid


def n_rejected_files(report: BuildReport) -> int:
    """Input files of the day that were fetched (or found in place) and could not be read."""
    return report.count("status", "rejected")


def require_not_future(region: Region, day: dt.date, *, today: dt.date | None = None) -> None:
    """Refuse a day after today (UTC): nothing can be published for it yet (checked before any discovery)."""
    today = today or dt.datetime.now(dt.UTC).date()
    if day > today:
        raise ValidationError(f"{region.name} {day}: expected a day no later than today ({today} UTC), found {day}", hint="nothing can be published for it yet")


def require_published(region: Region, day: dt.date, pairing: Any, legacy: Sequence[Any], *, today: dt.date | None = None) -> None:
    """The one "nothing published yet" rule of ``banet-ops ingest`` and the ingest DAG.

    A day after today (UTC) is refused (:class:`ValidationError`); a day for which the archive has
    neither a day-time L1B/geolocation pair, nor a night granule, nor a legacy overpass is not yet
    available (:class:`RetryableError`: retry later; nothing is committed).  A day with only
    night granules is a real, empty day.
    """
    require_not_future(region, day, today=today)
    if not pairing.pairs and not pairing.night and not legacy:
        what = f"{len(pairing.unpaired)} unpaired files" if pairing.unpaired else "no granule"
        raise RetryableError(
            f"{region.name} {day}: expected VIIRS day-time granules with their geolocation in the archive, found {what} "
            f"({len(pairing.missing)} day listings missing): the day is not yet available",
            hint="retry later (the DAG retries with back-off until the data arrives); nothing was committed",
        )


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

    ``sink`` replaces ``banet_ops.cube.write_day`` (tests); ``sources`` replaces
    ``make_sources(settings)``; ``record`` forces (True) or skips (False) the PostGIS records,
    which by default are written when a database is configured; ``workers`` bounds the
    processes that read and grid granules in parallel.  A day already in the cube is only
    replaced by a version at least as complete unless ``force`` (else status ``kept``: the
    stored version and its snapshot stay, nothing is recorded).
    """
    settings = settings or get_settings()
    t0 = time.perf_counter()
    image, report = build_daily_image_with_report(region, day, settings=settings, sources=sources, fetch=not dry_run, workers=workers)
    if dry_run and report.files and all(f.fetch in ("local", "reused") for f in report.files):
        # every file is already on disk (a mirror or the cache): read them, so the dry run says
        # what would be committed; nothing is downloaded or written
        image, report = build_daily_image_with_report(region, day, settings=settings, sources=sources, fetch=True, workers=workers)
        report.read_in_dry_run = True
    status, valid = day_status(image, report)
    used = sorted(f.name for f in report.files if f.status == "ingested")
    snapshot: str | None = None
    if not dry_run:
        with report.timed("commit"):
            if sink is None:
                # imported lazily: the cube (icechunk, zarr) is only needed when committing
                cube = importlib.import_module("banet_ops.cube")
                try:
                    snapshot = str(cube.write_day(image, settings=settings, n_rejected=n_rejected_files(report), force=force))
                except LessCompleteError as exc:
                    log.warning("%s", exc)
                    report.kept = exc.message
                    status = "kept"
            else:
                snapshot = sink(image)
        if status != "kept" and record is not False and (record or _database_configured(settings)):
            with report.timed("record"):
                record_day(settings, region, day, report, snapshot, status, valid)
    report.timings["total"] = time.perf_counter() - t0
    result = IngestResult(
        region=region.name,
        day=day,
        status=status if not dry_run or report.read_in_dry_run else "dry-run",
        snapshot=snapshot,
        granules=used if not dry_run else sorted(f.name for f in report.files),
        found=len(report.files),
        downloaded=report.count("fetch", "downloaded"),
        reused=report.count("fetch", "reused"),
        rejected=report.rejected,
        valid_fraction=valid,
        n_detections=report.n_detections,
        firms_rows_rejected=report.firms_rows_rejected,
        timings={k: round(v, 3) for k, v in report.timings.items()},
        dry_run=dry_run,
    )
    log.debug("%s", result.summary())  # the CLI prints it; a second INFO copy would interleave with its progress bar
    return result


def _database_configured(settings: Settings) -> bool:
    if settings.database_url is not None:
        return True
    return (settings.home / "pg" / "url").is_file()


def record_day(
    settings: Settings, region: Region, day: dt.date, report: BuildReport, snapshot: str | None, status: str, valid: float,
    committed_at: dt.datetime | None = None,
) -> None:
    """Upsert the granule rows and the cube_day row of one ingested day, in one transaction.

    ``committed_at`` is the time of the cube commit (default: looked up in the cube): the row is
    only replaced by a record of a commit at least as recent, so two writers of the same day
    whose records land out of order leave the row of the commit the cube holds.
    """
    import sqlalchemy as sa

    from banet_ops.db.engine import get_engine
    from banet_ops.db.regions_repo import upsert_region

    engine = get_engine(settings.resolved_database_url())
    upsert_region(engine, region)
    granule_sql = sa.text(
        """
        INSERT INTO banet.granule (file_name, product, day, size_bytes, checksum, source_url, status, message, updated_at)
        VALUES (:name, :product, :day, :size, :checksum, :url, :status, :message, now())
        ON CONFLICT (file_name) DO UPDATE SET product = EXCLUDED.product, day = EXCLUDED.day,
            size_bytes = COALESCE(EXCLUDED.size_bytes, banet.granule.size_bytes),
            checksum = COALESCE(EXCLUDED.checksum, banet.granule.checksum),
            source_url = EXCLUDED.source_url, status = EXCLUDED.status, message = EXCLUDED.message, updated_at = now()
        """
    )
    rows = [
        {
            "name": f.name,
            "product": f.product,
            "day": day,
            "size": f.size,
            "checksum": f.checksum,
            "url": _redacted(f.url) if f.url else None,
            "status": "ingested" if f.status == "ingested" else "rejected",
            "message": f.message or None,
        }
        for f in report.files
        if f.status in ("ingested", "rejected")
    ]
    used = sorted(f.name for f in report.files if f.status == "ingested")
    with engine.begin() as conn:
        if rows:
            conn.execute(granule_sql, rows)
        conn.execute(
            sa.text(
                """
                INSERT INTO banet.cube_day (region, day, snapshot_id, granules, valid_fraction, status, committed_at)
                VALUES (:region, :day, :snapshot, :granules, :valid, :status, COALESCE(:at, now()))
                ON CONFLICT (region, day) DO UPDATE SET snapshot_id = EXCLUDED.snapshot_id, granules = EXCLUDED.granules,
                    valid_fraction = EXCLUDED.valid_fraction, status = EXCLUDED.status, committed_at = EXCLUDED.committed_at
                WHERE banet.cube_day.committed_at <= EXCLUDED.committed_at
                """
            ),
            {"region": region.name, "day": day, "snapshot": snapshot or "", "granules": used, "valid": min(1.0, max(0.0, valid)), "status": status,
             "at": committed_at if committed_at is not None else _commit_time(settings, region, snapshot)},
        )


def _commit_time(settings: Settings, region: Region, snapshot: str | None) -> dt.datetime | None:
    """When the cube commit ``snapshot`` was written (None when there is no such cube commit, e.g. a test sink)."""
    from banet_ops.cube.storage import cube_location, open_repository, snapshot_info
    from banet_ops.errors import StorageError

    if not snapshot:
        return None
    try:
        loc = cube_location(region.name, settings=settings)
        return snapshot_info(open_repository(loc), loc, snapshot).written_at  # type: ignore[no-any-return]
    except (StorageError, ValidationError):
        return None


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


__all__ = [
    "BuildReport",
    "FileOutcome",
    "IngestResult",
    "build_daily_image",
    "build_daily_image_with_report",
    "days_between",
    "granule_key",
    "image_from_files",
    "ingest_day",
    "record_day",
]
