"""The bodies of the DAG tasks: plain functions with JSON-serialisable inputs and outputs.

Nothing here imports Airflow; DAG files call these and pass their results through XCom.
Large intermediate data (a gridded day) goes to a staging file under ``$BANET_HOME/staging``,
written atomically, never through XCom.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.daily_image import DailyImage
from banet_ops.errors import (
    AuthenticationError,
    BanetError,
    ConfigError,
    CubeNotFoundError,
    DataFormatError,
    InsufficientDataError,
    IntegrityError,
    LessCompleteError,
    PermanentError,
    RetryableError,
    ValidationError,
    is_retryable,
)
from banet_ops.regions import get_region
from banet_ops.settings import Settings, get_settings

log = logging.getLogger(__name__)
EXIT_RETRYABLE = 75
EXIT_INSUFFICIENT_DATA = 66  # banet_ops.cli: not enough input data; the DAG skips the task


def _settings() -> Settings:
    """Settings with Airflow Connections (when running under Airflow) overlaid on the environment."""
    from banet_ops.orchestration.connections import apply_airflow_connections

    apply_airflow_connections()
    return get_settings()


# --- ingest ------------------------------------------------------------------------------------


def item_to_json(item: Any) -> dict[str, Any]:
    """A :class:`banet_ops.sources.RemoteItem` as XCom-friendly JSON."""
    data = dataclasses.asdict(item)
    data["day"] = item.day.isoformat()
    data["extra"] = {k: v for k, v in dict(item.extra).items() if isinstance(v, (str, int, float, bool, type(None)))}
    return data


def item_from_json(data: Mapping[str, Any]) -> Any:
    from banet_ops.sources import RemoteItem

    return RemoteItem(**{**data, "day": dt.date.fromisoformat(data["day"])})


def _outcome_json(item: Any, fetch: str, status: str = "ingested", message: str = "", path: Path | None = None) -> dict[str, Any]:
    """A :class:`banet_ops.ingest.pipeline.FileOutcome` of one fetched item, as JSON."""
    size = item.size
    if path is not None:
        try:
            size = path.stat().st_size
        except OSError:
            size = item.size
    return {
        "name": item.name, "product": item.product, "status": status, "fetch": fetch, "message": message,
        "size": size, "checksum": item.md5, "url": _without_credentials(item.url),
    }  # fmt: skip


def discover(region_name: str, day: str) -> dict[str, Any]:
    """What the sources hold for a region and day: L1B/geolocation pairs, legacy overpasses, FIRMS files.

    Raises :class:`RetryableError` when the archive has nothing usable for the day yet (no
    day-time pair, no night granule, no legacy overpass): the scheduled run retries with
    back-off instead of committing an empty day.  A day with only night granules is a real
    (empty) day and goes on.
    """
    from banet_ops.ingest.pipeline import require_published
    from banet_ops.ingest.readers.legacy_hdf4 import LEGACY_PRODUCT
    from banet_ops.sources import LocalMirror, make_sources

    settings = _settings()
    region = get_region(region_name, settings.regions_dir)
    the_day = dt.date.fromisoformat(day)
    sources = make_sources(settings)
    found = sources.viirs_pairs(region, the_day)
    fires = sources.fire_items(region, the_day)
    legacy: list[Any] = []
    # legacy gridded overpasses (mirrors only) stand in for Suomi-NPP swaths, as in `banet-ops ingest`
    if not any(p.l1b.name.startswith("VNP") for p in found.pairs) and isinstance(sources.archive, LocalMirror):
        try:
            legacy = list(sources.archive.list_day(LEGACY_PRODUCT, the_day))
        except BanetError as exc:
            log.info("%s %s: no legacy %s files (%s)", region_name, day, LEGACY_PRODUCT, exc)
    for rejected in [*found.rejected, *getattr(fires, "rejected", [])]:
        log.warning("rejected listing entry %s at %s: %s", rejected.name, rejected.where, rejected.reason)
    log.info(
        "%s %s: %d granule pairs, %d legacy files, %d unpaired, %d night, %d rejected, %d missing listings, %d FIRMS files",
        region_name, day, len(found.pairs), len(legacy), len(found.unpaired), len(found.night), len(found.rejected), len(found.missing), len(fires),
    )  # fmt: skip
    require_published(region, the_day, found, legacy)  # the same rule as `banet-ops ingest`
    return {
        "region": region_name,
        "day": day,
        "pairs": [{"key": p.key, "l1b": item_to_json(p.l1b), "geo": item_to_json(p.geo)} for p in found.pairs],
        "legacy": [item_to_json(i) for i in legacy],
        "fires": [item_to_json(i) for i in fires],
        "night": [i.name for i in found.night],
        "unpaired": [i.name for i in found.unpaired],
        "rejected": [{"name": r.name, "reason": r.reason} for r in [*found.rejected, *getattr(fires, "rejected", [])]],
    }


_FAIL_TASK = (AuthenticationError, ConfigError)  # wrong credentials or setup: every file would fail the same way


def _fetch_all(items: list[Any]) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    """Fetch items in parallel: (paths by name, one outcome per item).

    Retryable failures and credential/configuration errors raise (the task retries or fails
    fast); any other permanent failure of one file rejects that file and the day goes on.
    """
    from banet_ops.sources import make_sources

    sources = make_sources(_settings())
    modes = {}
    for item in items:
        modes[item.name] = "local" if item.source in ("mirror", "firms-folder") else ("reused" if _cached(sources, item) else "downloaded")
    report = sources.fetch_many(items)
    for name, error in report.errors.items():
        log.error("fetching %s failed: %s", name, error)
    fatal: list[BanetError] = [e for e in report.errors.values() if isinstance(e, _FAIL_TASK)]
    # a file read in place that is empty or fails its checksum stays so on a retry: rejected, as in `banet-ops ingest`
    fatal = fatal or [e for n, e in report.errors.items() if is_retryable(e) and not (modes[n] == "local" and isinstance(e, IntegrityError))]
    if fatal:
        raise fatal[0]
    outcomes = []
    for item in items:
        if item.name in report.errors:
            outcomes.append(_outcome_json(item, modes[item.name], "rejected", report.errors[item.name].message))
        else:
            outcomes.append(_outcome_json(item, modes[item.name], path=report.paths[item.name]))
    return report.paths, outcomes


def _cached(sources: Any, item: Any) -> bool:
    try:
        return bool(sources.is_cached(item))
    except BanetError:
        return False


def fetch_viirs(found: Mapping[str, Any]) -> dict[str, Any]:
    """Download (or reuse from the cache) every L1B/geolocation pair and legacy file.

    Returns ``{"pairs": [[l1b, geo], …], "legacy": [path, …], "files": [outcome, …]}``; a pair
    with a rejected file is left out (its partner is marked skipped).
    """
    pair_items = [(item_from_json(p["l1b"]), item_from_json(p["geo"])) for p in found["pairs"]]
    legacy_items = [item_from_json(i) for i in found.get("legacy", [])]
    paths, outcomes = _fetch_all([i for pair in pair_items for i in pair] + legacy_items)
    by_name = {o["name"]: o for o in outcomes}
    pairs: list[list[str]] = []
    for l1b, geo in pair_items:
        if l1b.name in paths and geo.name in paths:
            pairs.append([str(paths[l1b.name]), str(paths[geo.name])])
            continue
        for item, partner in ((l1b, geo), (geo, l1b)):
            if item.name in paths:
                by_name[item.name].update(status="skipped", message=f"its pair {partner.name} was rejected")
    legacy = [str(paths[i.name]) for i in legacy_items if i.name in paths]
    return {"pairs": pairs, "legacy": legacy, "files": outcomes}


def fetch_firms(found: Mapping[str, Any]) -> dict[str, Any]:
    """Download (or reuse) the FIRMS files covering the day: ``{"paths": […], "files": [outcome, …]}``."""
    items = [item_from_json(i) for i in found["fires"]]
    paths, outcomes = _fetch_all(items)
    return {"paths": [str(paths[i.name]) for i in items if i.name in paths], "files": outcomes}


def grid_composite(region_name: str, found: Mapping[str, Any], viirs_paths: Mapping[str, Any], firms_paths: Mapping[str, Any]) -> str:
    """Read, grid and composite the fetched files into the day's image; stage it; return the staged path.

    Uses the same functions as ``banet-ops ingest`` (:func:`banet_ops.ingest.pipeline.image_from_files`):
    a corrupt file is rejected and reported, the day goes on (status ``partial``).
    """
    from banet_ops.ingest.pipeline import BuildReport, FileOutcome, day_status, image_from_files

    settings = _settings()
    region = get_region(region_name, settings.regions_dir)
    day = dt.date.fromisoformat(str(found["day"]))
    report = BuildReport(region=region.name, day=day)
    report.files = [FileOutcome(**o) for o in [*viirs_paths["files"], *firms_paths["files"]]]
    report.discovery_rejected = [(r["name"], r["reason"]) for r in found.get("rejected", [])]
    report.discovery_rejected += [(name, "no matching L1B/geolocation file") for name in found.get("unpaired", [])]
    pairs = [(Path(a), Path(b)) for a, b in viirs_paths["pairs"]]
    origin = {"archive": _without_credentials(settings.archive_url), "firms": _without_credentials(settings.firms_url)}
    image, report = image_from_files(
        region, day, pairs, [Path(p) for p in firms_paths["paths"]], legacy_files=[Path(p) for p in viirs_paths["legacy"]], report=report, sources=origin
    )
    _drop_rejected_cache_copies(report.files, settings)
    status, valid = day_status(image, report)
    meta = {"status": status, "valid_fraction": valid, "files": [dataclasses.asdict(f) for f in report.files], "n_detections": report.n_detections}
    staged = stage_image(image, staging_path(settings, region.name, day), report=meta)
    log.info(
        "%s %s: %s, %.1f%% of cells observed, %d granules used, %d rejected, %d fire detections; staged at %s",
        region.name, day, status, 100 * valid, len(image.granules), len(report.rejected), report.n_detections, staged,
    )  # fmt: skip
    return str(staged)


def _without_credentials(url: str) -> str:
    """A source URL as recorded in the cube: no user info, no query string (tokens live there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _drop_rejected_cache_copies(files: Iterable[Any], settings: Settings) -> None:
    """Delete downloaded (never mirror) copies of rejected files, so that a re-run fetches them again."""
    cache = settings.resolved_cache_dir.resolve()
    for f in files:
        if f.status != "rejected":
            continue
        path = cache / f.product / f.name
        if path.is_file() and cache in path.resolve().parents:
            path.unlink(missing_ok=True)
            log.info("%s: removed the rejected cached copy %s", f.name, path)


def staging_path(settings: Settings, region_name: str, day: dt.date) -> Path:
    return settings.home / "staging" / region_name / f"{day.isoformat()}.npz"


def stage_image(image: DailyImage, path: Path, report: Mapping[str, Any] | None = None) -> Path:
    """Write a gridded day (and what the ingestion found) atomically to a staging file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    meta = json.dumps(
        {
            "region": image.region.to_file_dict(),
            "day": image.day.isoformat(),
            "granules": image.granules,
            "sources": image.sources,
            "report": dict(report or {}),
        }
    )
    with tmp.open("wb") as fh:
        arrays: dict[str, Any] = {"__meta__": np.array(meta), **image.variables}
        np.savez(fh, **arrays)
    tmp.replace(path)
    return path


def _read_staged(path: str | Path) -> tuple[DailyImage, dict[str, Any]]:
    from banet_ops.regions import parse_region

    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            variables = {name: data[name].astype(np.float32) for name in CUBE_VARIABLES}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataFormatError(
            f"staged day {path}: expected an npz written by grid_composite, found unreadable content ({exc})", hint="re-run grid_composite"
        ) from exc
    region = parse_region(meta["region"], path)
    image = DailyImage(region=region, day=dt.date.fromisoformat(meta["day"]), variables=variables, granules=meta["granules"], sources=meta["sources"])
    return image, dict(meta.get("report") or {})


def load_staged(path: str | Path) -> DailyImage:
    """Read a staging file written by :func:`stage_image`."""
    return _read_staged(path)[0]


def identical_cube_day(image: DailyImage, settings: Settings) -> str | None:
    """The snapshot that wrote ``image``'s day when the cube already holds exactly this content, else None.

    Same stored values of every variable, same valid fraction, and a day commit made from the
    same granules: re-ingesting such a day would only add a commit with nothing new in it.
    """
    from banet_ops.cube import layout as cube_layout
    from banet_ops.cube import valid_fraction
    from banet_ops.cube.reader import open_group
    from banet_ops.cube.storage import get_array, open_repository

    try:
        group, snapshot, loc = open_group(image.region.name, settings=settings)
    except CubeNotFoundError:
        return None
    if cube_layout.region_from_attrs(dict(group.attrs)).to_file_dict() != image.region.to_file_dict():
        return None  # write_day reports the mismatch
    index = cube_layout.day_index(image.day)
    if index >= get_array(group, "time", loc).shape[0]:
        return None
    stored_fraction = get_array(group, cube_layout.VALID_VARIABLE, loc)[index]
    if not np.isfinite(stored_fraction) or np.float32(valid_fraction(image)) != np.float32(stored_fraction):
        return None
    for name in CUBE_VARIABLES:
        stored = np.asarray(get_array(group, name, loc)[index])
        if not np.array_equal(stored, cube_layout.encode(name, image.variables[name]), equal_nan=stored.dtype.kind == "f"):
            return None
    for snap in open_repository(loc).ancestry(snapshot_id=snapshot):
        meta = snap.metadata or {}
        if meta.get("kind") == "day" and meta.get("day") == image.day.isoformat():
            same = sorted(str(g) for g in meta.get("granules", [])) == sorted(image.granules)
            return str(snap.id) if same else None
    return None


def _database_configured(settings: Settings) -> bool:
    return settings.database_url is not None or (settings.home / "pg" / "url").is_file()


def _recorded_snapshot(settings: Settings, region_name: str, day: dt.date) -> str | None:
    import sqlalchemy as sa

    from banet_ops.db.engine import get_engine

    with get_engine(settings.resolved_database_url()).connect() as conn:
        row = conn.execute(sa.text("SELECT snapshot_id FROM banet.cube_day WHERE region = :r AND day = :d"), {"r": region_name, "d": day}).first()
    return None if row is None else str(row[0])


def commit(region_name: str, staged: str) -> dict[str, Any]:
    """Write a staged day to the region cube (one commit) and record it in PostGIS.

    Returns ``{day, snapshot, status, changed}``.  When the cube already holds identical content
    for the day (a re-run or a reprocessing backfill), nothing is written: no new commit, no
    changed row, ``changed`` is False and ``snapshot`` is the commit that wrote the day.
    """
    from banet_ops import cube
    from banet_ops.ingest.pipeline import BuildReport, FileOutcome, record_day

    settings = _settings()
    image, meta = _read_staged(staged)
    if image.region.name != region_name:
        raise ValidationError(f"staged file {staged}: expected region {region_name}, found {image.region.name}")
    existing = identical_cube_day(image, settings)
    n_rejected = sum(1 for f in meta.get("files", []) if f.get("status") == "rejected")
    status = str(meta.get("status") or cube.day_status(cube.valid_fraction(image), n_rejected))
    try:
        snapshot = existing or cube.write_day(image, settings=settings, n_rejected=n_rejected)
    except LessCompleteError as exc:  # the stored day stays, and so does its record
        log.warning("%s", exc)
        Path(staged).unlink(missing_ok=True)
        return {"day": image.day.isoformat(), "snapshot": None, "status": "kept", "changed": False}
    if _database_configured(settings) and (existing is None or _recorded_snapshot(settings, region_name, image.day) != existing):
        report = BuildReport(region=region_name, day=image.day, files=[FileOutcome(**f) for f in meta.get("files", [])])
        record_day(settings, image.region, image.day, report, snapshot, status, float(meta.get("valid_fraction", cube.valid_fraction(image))))
    Path(staged).unlink(missing_ok=True)
    if existing:
        log.info("%s %s: the cube already holds identical content (snapshot %s); nothing written", region_name, image.day, snapshot)
    else:
        log.info("committed %s %s (%s) as snapshot %s", region_name, image.day, status, snapshot)
    return {"day": image.day.isoformat(), "snapshot": snapshot, "status": status, "changed": existing is None}


# --- inference ---------------------------------------------------------------------------------


def infer_arguments(region_name: str, day: str, mode: str, snapshot: str | None, device: str = "auto") -> list[str]:
    """``banet-ops`` arguments of one inference (the same list on both backends)."""
    args = ["infer", "--region", region_name, "--date", day, "--mode", mode]
    if snapshot:
        args += ["--snapshot", snapshot]
    return [*args, "--device", device]


def backend_kwargs(region_name: str, day: str, mode: str, snapshot: str | None) -> dict[str, Any]:
    """One inference run (``arguments``, ``labels``, ``name``) for the configured backend."""
    from banet_ops.orchestration.backend import Backend

    backend = Backend.from_settings(get_settings())
    labels = {"banet.io/region": region_name, "banet.io/date": day, "banet.io/mode": mode}
    name = f"banet-infer-{region_name}-{mode}".lower().replace("_", "-")
    return backend.target(infer_arguments(region_name, day, mode, snapshot, backend.device("inference")), labels, name)


def _event_extras(events: Any) -> Iterable[Mapping[str, Any]]:
    if not events:
        return []
    extras: list[Mapping[str, Any]] = []
    for key in events:
        for event in events[key]:
            extra = getattr(event, "extra", None) or (event.get("extra") if isinstance(event, Mapping) else None)
            if extra:
                extras.append(extra)
    return extras


def infer_targets(region_name: str, mode: str, events: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One inference per distinct day: from the ``day`` param, else from the triggering cube events.

    Several events for the same day (re-ingestion) collapse to the last one's snapshot.
    """
    if params.get("day"):
        day = dt.date.fromisoformat(str(params["day"])).isoformat()
        return [backend_kwargs(region_name, day, mode, params.get("snapshot"))]
    by_day: dict[str, str | None] = {}
    for extra in _event_extras(events):
        if "day" in extra:
            by_day[str(extra["day"])] = extra.get("snapshot")
    if not by_day:
        raise PermanentError(
            f"banet_infer_{mode}_{region_name}: expected cube events with a day or a 'day' param, found neither", hint='trigger with {"day": "YYYY-MM-DD"}'
        )
    return [backend_kwargs(region_name, day, mode, snap) for day, snap in sorted(by_day.items())]


def monthly_targets(region_name: str, logical_date: dt.datetime, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The monthly product's target: the ``month`` param, else the month before the logical date."""
    if params.get("month"):
        year, month = (int(x) for x in str(params["month"]).split("-"))
        first = dt.date(year, month, 1)
    else:
        first = (dt.date(logical_date.year, logical_date.month, 1) - dt.timedelta(days=1)).replace(day=1)
    return [backend_kwargs(region_name, first.isoformat(), "monthly", None)]


def banet_ops_executable() -> str:
    """The ``banet-ops`` console script of this environment."""
    beside = Path(sys.executable).with_name("banet-ops")
    return str(beside) if beside.exists() else (shutil.which("banet-ops") or "banet-ops")


def run_local_cli(arguments: list[str]) -> dict[str, Any]:
    """Run ``banet-ops <arguments>`` in a subprocess (the local backend); secrets travel in env only.

    Exit code 75 (EX_TEMPFAIL) raises :class:`RetryableError`, 66 (EX_NOINPUT)
    :class:`InsufficientDataError` (the DAG skips the task), any other failure :class:`PermanentError`.
    """
    _settings()  # overlays connection secrets onto os.environ, inherited by the child
    argv = [banet_ops_executable(), *arguments]
    log.info("running %s", " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy(), check=False)
    for line in proc.stdout.splitlines():
        log.info("%s", line)
    for line in proc.stderr.splitlines():
        log.info("%s", line)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if proc.returncode == EXIT_INSUFFICIENT_DATA:
            raise InsufficientDataError(f"banet-ops {' '.join(arguments[:1])}: {reason.removeprefix('banet-ops: error: ')}")
        # killed by a signal (negative code: OOM killer, worker shutdown) or EX_TEMPFAIL: worth a retry
        error = RetryableError if proc.returncode == EXIT_RETRYABLE or proc.returncode < 0 else PermanentError
        raise error(f"banet-ops {' '.join(arguments[:1])} exited with {proc.returncode}: {reason}")
    return {"returncode": 0, "summary": proc.stdout.strip().splitlines()[-20:]}
