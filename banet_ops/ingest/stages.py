"""The stages of ingesting one region-day: discover → fetch → composite → commit.

``banet-ops ingest`` (:func:`banet_ops.ingest.pipeline.ingest_day`) calls them in one process;
the ingest DAG calls one per task (:mod:`banet_ops.orchestration.tasks`), passing
:class:`Found`, :class:`Fetched` and :class:`Committed` as JSON and the gridded day through a
staging file (:mod:`banet_ops.ingest.staging`).  Both paths are these functions.

Failure policy: a *retryable* error (source unavailable, rate limit, truncated download) stops the
day, so that it is retried whole; refused credentials and bad configuration fail it (they would
reject every file); a *permanent* problem with one file (corrupt or truncated NetCDF/HDF4,
mismatched geolocation, missing file, bad FIRMS header) rejects that file, is logged and
reported, and the day goes on with the others (status ``partial``).  The day's status, the
"unchanged" check and the ``banet.cube_day`` row belong to the cube (:func:`banet_ops.cube.writer.commit_day`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from banet_ops.ingest.readers.legacy_hdf4 import LEGACY_PRODUCT
from banet_ops.ingest.reading import IN_PLACE_HINT, image_from_files
from banet_ops.ingest.report import BuildReport, FileOutcome
from banet_ops.regions import Region
from banet_ops.settings import Settings
from banet_ops.util import public_url, timed

log = logging.getLogger(__name__)

Sink = Callable[[DailyImage], str]  # replaces the cube commit (tests)


# --- discover ------------------------------------------------------------------------------------


@dataclass
class Found:
    """What the sources hold for a region-day (JSON round trip: :meth:`to_json`, :meth:`from_json`)."""

    region: str
    day: dt.date
    pairs: list[tuple[Any, Any]] = field(default_factory=list)  # (L1B, geolocation) RemoteItems
    legacy: list[Any] = field(default_factory=list)
    fires: list[Any] = field(default_factory=list)
    night: list[str] = field(default_factory=list)
    unpaired: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # listing entries refused: (name, reason)
    seconds: float = 0.0

    @property
    def discovery_rejected(self) -> list[tuple[str, str]]:
        return [*self.rejected, *((name, "no matching L1B/geolocation file") for name in self.unpaired)]

    def items(self) -> list[Any]:
        return [*(i for pair in self.pairs for i in pair), *self.legacy, *self.fires]

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region, "day": self.day.isoformat(),
            "pairs": [{"key": a.key, "l1b": item_to_json(a), "geo": item_to_json(b)} for a, b in self.pairs],
            "legacy": [item_to_json(i) for i in self.legacy], "fires": [item_to_json(i) for i in self.fires],
            "night": list(self.night), "unpaired": list(self.unpaired),
            "rejected": [{"name": n, "reason": r} for n, r in self.rejected], "seconds": self.seconds,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Found:
        return cls(
            # the fetch stages need only the items: region and day may be left out
            region=str(data.get("region", "")), day=dt.date.fromisoformat(str(data["day"])) if "day" in data else dt.date.min,
            pairs=[(item_from_json(p["l1b"]), item_from_json(p["geo"])) for p in data.get("pairs", [])],
            legacy=[item_from_json(i) for i in data.get("legacy", [])], fires=[item_from_json(i) for i in data.get("fires", [])],
            night=list(data.get("night", [])), unpaired=list(data.get("unpaired", [])),
            rejected=[(r["name"], r["reason"]) for r in data.get("rejected", [])], seconds=float(data.get("seconds", 0.0)),
        )  # fmt: skip


def item_to_json(item: Any) -> dict[str, Any]:
    """A :class:`banet_ops.sources.RemoteItem` as JSON (only the plain values of ``extra``)."""
    import dataclasses

    data = dataclasses.asdict(item)
    data["day"] = item.day.isoformat()
    data["extra"] = {k: v for k, v in dict(item.extra).items() if isinstance(v, (str, int, float, bool, type(None)))}
    return data


def item_from_json(data: Mapping[str, Any]) -> Any:
    from banet_ops.sources import RemoteItem

    return RemoteItem(**{**data, "day": dt.date.fromisoformat(data["day"])})


def discover(region: Region, day: dt.date, *, sources: Any) -> Found:
    """What ``sources`` hold for the region-day: L1B/geolocation pairs, legacy overpasses, FIRMS files.

    Raises as :func:`require_published` says when nothing can be ingested yet.  Legacy gridded
    overpasses (local mirrors only) stand in for Suomi-NPP swaths when there are none.
    """
    require_not_future(region, day)
    timings: dict[str, float] = {}
    with timed(timings, "discover"):
        pairing = sources.viirs_pairs(region, day)
        fires = sources.fire_items(region, day)
        legacy: list[Any] = []
        if not any(p.l1b.name.startswith("VNP") for p in pairing.pairs) and _is_local_mirror(sources.archive):
            try:
                legacy = list(sources.archive.list_day(LEGACY_PRODUCT, day))
            except BanetError as exc:
                log.info("%s %s: no legacy %s files (%s)", region.name, day, LEGACY_PRODUCT, exc)
    refused = [*pairing.rejected, *getattr(fires, "rejected", [])]
    for entry in refused:
        log.warning("rejected listing entry %s at %s: %s", getattr(entry, "name", entry), getattr(entry, "where", ""), getattr(entry, "reason", ""))
    log.info(
        "%s %s: found %d L1B/geolocation pairs, %d legacy files, %d FIRMS files; %d night, %d unpaired, %d rejected, %d missing listings",
        region.name, day, len(pairing.pairs), len(legacy), len(fires), len(pairing.night), len(pairing.unpaired), len(refused), len(pairing.missing),
    )  # fmt: skip
    require_published(region, day, pairing, legacy)
    return Found(
        region=region.name, day=day, pairs=[(p.l1b, p.geo) for p in pairing.pairs], legacy=legacy, fires=list(fires),
        night=[i.name for i in pairing.night], unpaired=[i.name for i in pairing.unpaired],
        rejected=[(str(getattr(r, "name", r)), str(getattr(r, "reason", ""))) for r in refused], seconds=timings["discover"],
    )  # fmt: skip


def _is_local_mirror(archive: Any) -> bool:
    from banet_ops.sources.mirror import LocalMirror

    return isinstance(archive, LocalMirror)


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


# --- fetch ---------------------------------------------------------------------------------------


@dataclass
class Fetched:
    """Local paths of the fetched files (pairs with a rejected member left out) and every file's outcome."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)
    firms: list[str] = field(default_factory=list)
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def merged(self, other: Fetched) -> Fetched:
        return Fetched([*self.pairs, *other.pairs], [*self.legacy, *other.legacy], [*self.firms, *other.firms],
                       [*self.files, *other.files], self.seconds + other.seconds)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"pairs": [list(p) for p in self.pairs], "legacy": self.legacy, "firms": self.firms,
                "files": [f.to_json() for f in self.files], "seconds": self.seconds}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fetched:
        return cls([(str(a), str(b)) for a, b in data.get("pairs", [])], list(data.get("legacy", [])), list(data.get("firms", [])),
                   [FileOutcome.from_json(f) for f in data.get("files", [])], float(data.get("seconds", 0.0)))  # fmt: skip


_FAIL_DAY = (AuthenticationError, ConfigError)  # wrong credentials or setup: every file would fail the same way


def fetch_mode(sources: Any, item: Any) -> str:
    """``local`` (read in place), ``reused`` (a valid cached copy) or ``downloaded``."""
    if item.source in ("mirror", "firms-folder"):
        return "local"
    try:
        return "reused" if sources.is_cached(item) else "downloaded"
    except BanetError:
        return "downloaded"


def _fetch_items(sources: Any, items: Sequence[Any]) -> tuple[dict[str, Path], dict[str, FileOutcome], float]:
    """Fetch items in parallel: (paths by name, outcomes by name, seconds).  Raises as the module docstring says."""
    modes = {item.name: fetch_mode(sources, item) for item in items}
    timings: dict[str, float] = {}
    with timed(timings, "fetch"):
        report = sources.fetch_many(items)
    errors: dict[str, BanetError] = {}
    for name, exc in report.errors.items():
        # a file read in place that is empty or fails its checksum stays so on a retry: rejected like a corrupt file
        errors[name] = DataFormatError(exc.message, hint=IN_PLACE_HINT) if modes[name] == "local" and isinstance(exc, IntegrityError) else exc
    fatal: list[BanetError] = [e for e in errors.values() if isinstance(e, _FAIL_DAY)] or [e for e in errors.values() if e.retryable]
    if fatal:
        raise fatal[0]
    outcomes: dict[str, FileOutcome] = {}
    for item in items:
        path = report.paths.get(item.name)
        outcomes[item.name] = FileOutcome(
            name=item.name, product=item.product, status="rejected" if item.name in errors else "ingested", fetch=modes[item.name],
            message=errors[item.name].message if item.name in errors else "", size=_size(path, item.size), checksum=item.md5,
            url=public_url(item.url) if item.url else None, path=str(path) if path is not None else None,
        )  # fmt: skip
        if item.name in errors:
            log.warning("rejected %s: %s", item.name, errors[item.name])
    return dict(report.paths), outcomes, timings["fetch"]


def _size(path: Path | None, default: int | None) -> int | None:
    try:
        return path.stat().st_size if path is not None else default
    except OSError:
        return default


def fetch_viirs(found: Found, sources: Any) -> Fetched:
    """Download (or reuse from the cache, or find in place) every L1B/geolocation pair and legacy file.

    A pair with a rejected file is left out and its partner marked ``skipped``.
    """
    paths, outcomes, seconds = _fetch_items(sources, [*(i for pair in found.pairs for i in pair), *found.legacy])
    pairs: list[tuple[str, str]] = []
    for l1b, geo in found.pairs:
        if l1b.name in paths and geo.name in paths:
            pairs.append((str(paths[l1b.name]), str(paths[geo.name])))
            continue
        for item, partner in ((l1b, geo), (geo, l1b)):
            if item.name in paths:
                outcomes[item.name].status, outcomes[item.name].message = "skipped", f"its pair {partner.name} was rejected"
    legacy = [str(paths[i.name]) for i in found.legacy if i.name in paths]
    return Fetched(pairs=pairs, legacy=legacy, files=list(outcomes.values()), seconds=seconds)


def fetch_firms(found: Found, sources: Any) -> Fetched:
    """Download (or reuse, or find in place) the FIRMS files covering the day."""
    paths, outcomes, seconds = _fetch_items(sources, found.fires)
    return Fetched(firms=[str(paths[i.name]) for i in found.fires if i.name in paths], files=list(outcomes.values()), seconds=seconds)


def fetch(found: Found, sources: Any) -> Fetched:
    """Both fetches of a day (the DAG runs them as two parallel tasks)."""
    return fetch_viirs(found, sources).merged(fetch_firms(found, sources))


# --- composite -----------------------------------------------------------------------------------


def composite(region: Region, found: Found, fetched: Fetched, *, settings: Settings, workers: int | None = None) -> tuple[DailyImage, BuildReport]:
    """Read, grid and composite the fetched files into the day's image, with the report of every file.

    A corrupt file is rejected and reported and the day goes on; the cached (never in-place)
    copies of rejected files are deleted, so that a re-run fetches them again.
    """
    report = BuildReport(region=region.name, day=found.day, files=list(fetched.files), discovery_rejected=found.discovery_rejected)
    report.timings.update(discover=found.seconds, fetch=fetched.seconds)
    origin = {"archive": public_url(settings.archive_url), "firms": public_url(settings.firms_url)}
    image, report = image_from_files(
        region, found.day, [(Path(a), Path(b)) for a, b in fetched.pairs], [Path(p) for p in fetched.firms],
        legacy_files=[Path(p) for p in fetched.legacy], report=report, sources=origin, workers=workers,
    )  # fmt: skip
    _drop_rejected_cache_copies(report, settings.resolved_cache_dir)
    log.info(
        "%s %s: %d files downloaded, %d reused from the cache, %d read in place, %d rejected; %d granules used, %d fire detections",
        region.name, found.day, report.count("fetch", "downloaded"), report.count("fetch", "reused"), report.count("fetch", "local"),
        len(report.rejected), len(image.granules), report.n_detections,
    )  # fmt: skip
    return image, report


def _drop_rejected_cache_copies(report: BuildReport, cache_dir: Path) -> None:
    cache = Path(cache_dir).resolve()
    for f in report.files:
        path = Path(f.path) if f.path else None
        if f.status == "rejected" and path is not None and cache in path.resolve().parents:
            path.unlink(missing_ok=True)
            log.info("%s: removed the rejected cached copy %s", f.name, path)


# --- commit --------------------------------------------------------------------------------------


@dataclass
class Committed:
    """What :func:`commit` did (``status`` ``kept``: the stored, more complete version stays; ``snapshot`` None)."""

    day: dt.date
    snapshot: str | None
    status: str
    valid_fraction: float
    changed: bool
    kept: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "snapshot": self.snapshot, "status": self.status, "changed": self.changed}


def commit(
    image: DailyImage, report: BuildReport, *, settings: Settings, force: bool = False, sink: Sink | None = None, record: bool | None = None
) -> Committed:
    """Commit the day to its cube (one commit, none when the cube already holds this version) and record it.

    The records (granule rows and the ``banet.cube_day`` row, one transaction) are written when a
    database is configured (``record`` True/False forces/skips them), unless the day did not
    change and its row already names the snapshot.  ``sink`` replaces the cube commit (tests).
    """
    from banet_ops.cube import layout

    fraction = layout.valid_fraction(image)
    if sink is not None:
        snapshot, written_at = str(sink(image)), None
        done = Committed(image.day, snapshot, layout.day_status(fraction, report.n_rejected_files), fraction, True)
    else:
        cube = importlib.import_module("banet_ops.cube")  # lazily: icechunk and zarr only when committing
        try:
            dc = cube.commit_day(image, settings=settings, n_rejected=report.n_rejected_files, force=force)
        except LessCompleteError as exc:  # the stored day stays, and so does its record
            log.warning("%s", exc)
            return Committed(image.day, None, "kept", fraction, False, kept=exc.message)
        done, written_at = Committed(image.day, dc.snapshot, dc.status, dc.valid_fraction, dc.changed), dc.written_at
    if record is not False and (record or _database_configured(settings)) and (done.changed or _recorded(settings, image) != done.snapshot):
        record_day(settings, image.region, image.day, report, done.snapshot, done.status, done.valid_fraction, committed_at=written_at)
    if done.changed:
        log.info("committed %s %s (%s) as snapshot %s", image.region.name, image.day, done.status, done.snapshot)
    else:
        log.info("%s %s: the cube already holds identical content (snapshot %s); nothing written", image.region.name, image.day, done.snapshot)
    return done


def _database_configured(settings: Settings) -> bool:
    from banet_ops.db.engine import database_configured

    return database_configured(settings)


def _recorded(settings: Settings, image: DailyImage) -> str | None:
    from banet_ops.db import cube_days
    from banet_ops.db.engine import get_engine

    with get_engine(settings.resolved_database_url()).connect() as conn:
        return cube_days.snapshot_of(conn, image.region.name, image.day)


def record_day(
    settings: Settings, region: Region, day: dt.date, report: BuildReport, snapshot: str | None, status: str, valid: float,
    committed_at: dt.datetime | None = None,
) -> None:  # fmt: skip
    """Upsert the granule rows and the cube_day row of one ingested day, in one transaction.

    ``committed_at`` is the time of the cube commit (default: looked up in the cube): the row is
    only replaced by a record of a commit at least as recent, so two writers of the same day
    whose records land out of order leave the row of the commit the cube holds.
    """
    from banet_ops.db import cube_days, granules
    from banet_ops.db.engine import get_engine
    from banet_ops.db.regions_repo import upsert_region

    engine = get_engine(settings.resolved_database_url())
    upsert_region(engine, region)
    rows = [
        {"name": f.name, "product": f.product, "day": day, "size": f.size, "checksum": f.checksum, "url": public_url(f.url) if f.url else None,
         "status": "ingested" if f.status == "ingested" else "rejected", "message": f.message or None}
        for f in report.files
        if f.status in ("ingested", "rejected")
    ]  # fmt: skip
    at = committed_at if committed_at is not None else _commit_time(settings, region, snapshot)
    with engine.begin() as conn:
        granules.upsert(conn, rows)
        cube_days.upsert(conn, [cube_days.row(region.name, day, snapshot or "", report.used, valid, status, at)])


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


__all__ = ["Committed", "Fetched", "Found", "commit", "composite", "discover", "fetch", "fetch_firms", "fetch_mode", "fetch_viirs", "record_day"]
