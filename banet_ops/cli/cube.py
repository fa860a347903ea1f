"""`banet-ops cube info|sync|gc --region R` and `banet-ops import-legacy --region R FILE…`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from banet_ops.errors import ConfigError
from banet_ops.settings import get_settings

log = logging.getLogger(__name__)
REGION_PATTERN = r"^[A-Za-z0-9_]{1,32}$"


class RegionArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    region: str = Field(pattern=REGION_PATTERN)


class InfoArgs(RegionArgs):
    json_output: bool = False


class GcArgs(RegionArgs):
    older_than: float = Field(ge=0, description="days")
    keep: list[str] = Field(default_factory=list)
    grace_minutes: float = Field(60.0, ge=0)
    use_db: bool = True


class ImportArgs(RegionArgs):
    files: list[Path] = Field(min_length=1)
    use_db: bool = True


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``cube info|sync|gc`` and the top-level ``import-legacy``."""
    parser = sub.add_parser("cube", help="inspect and maintain a region's data cube")
    actions = parser.add_subparsers(dest="cube_action", metavar="ACTION", required=True)

    info = actions.add_parser("info", help="days present/missing/partial as a calendar, bytes stored, last commit")
    info.add_argument("--region", required=True, help="region name (R_{name}.json in BANET_REGIONS_DIR)")
    info.add_argument("--json", dest="json_output", action="store_true", help="machine-readable output")
    info.set_defaults(handler=handle_info)

    sync = actions.add_parser("sync", help="repair banet.cube_day from the cube (the cube is the truth)")
    sync.add_argument("--region", required=True, help="region name (R_{name}.json in BANET_REGIONS_DIR)")
    sync.set_defaults(handler=handle_sync)

    gc = actions.add_parser("gc", help="expire old snapshots and delete unreferenced chunks, keeping snapshots runs used")
    gc.add_argument("--region", required=True, help="region name (R_{name}.json in BANET_REGIONS_DIR)")
    gc.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="expire snapshots older than this many days")
    gc.add_argument("--keep", nargs="*", default=[], metavar="SNAPSHOT", help="snapshot ids to keep besides those of recorded runs")
    gc.add_argument("--grace-minutes", type=float, default=60.0, help="never delete unreferenced objects younger than this (default 60)")
    gc.add_argument("--no-db", dest="use_db", action="store_false", help="do not query banet.run for snapshots to keep")
    gc.set_defaults(handler=handle_gc)

    imp = sub.add_parser("import-legacy", help="load BA-Net dataset files (VIIRS750{R}_{YYYYMMDD}.mat) into the cube")
    imp.add_argument("--region", required=True, help="region name (R_{name}.json in BANET_REGIONS_DIR)")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="VIIRS750{R}_{YYYYMMDD}.mat files of the BA-Net dataset")
    imp.add_argument("--no-db", dest="use_db", action="store_false", help="do not record banet.cube_day rows")
    imp.set_defaults(handler=handle_import_legacy)


def _engine(required: bool) -> Any:
    """The database engine when one is configured; ``None`` (or an error when ``required``) if not."""
    settings = get_settings()
    try:
        url = settings.resolved_database_url()
    except ConfigError:
        if required:
            raise
        return None
    from banet_ops.db.engine import get_engine, require_schema

    engine = get_engine(url)
    require_schema(engine)
    return engine


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def handle_info(ns: argparse.Namespace) -> int:
    from banet_ops.cube import cube_info, render_calendar

    args = InfoArgs(region=ns.region, json_output=ns.json_output)
    info = cube_info(args.region)
    if args.json_output:
        print(json.dumps({
            "region": info.region,
            "url": info.url,
            "snapshot": info.snapshot,
            "first_day": info.first_day.isoformat() if info.first_day else None,
            "last_day": info.last_day.isoformat() if info.last_day else None,
            "days": {r.day.isoformat(): {"status": r.status, "valid_fraction": r.valid_fraction, "snapshot": r.snapshot_id} for r in info.days},
            "missing": [d.isoformat() for d in info.missing],
            "stored_bytes": info.stored_bytes,
            "chunk_bytes": info.chunk_bytes,
            "n_snapshots": info.n_snapshots,
            "last_commit": {"id": info.last_commit.id, "time": info.last_commit.written_at.isoformat(), "message": info.last_commit.message},
        }, indent=2))
        return 0
    print(f"cube {info.region} at {info.url}")
    if info.days:
        print(f"days: {len(info.days)} written from {info.first_day} to {info.last_day}: {len(info.complete)} complete, "
              f"{len(info.partial)} partial/empty, {len(info.missing)} missing in between")
    else:
        print("days: none written")
    print(render_calendar(info))
    print(f"stored: {_size(info.stored_bytes)} in total, {_size(info.chunk_bytes)} of chunks reachable from {info.n_snapshots} snapshots")
    print(f"last commit: {info.last_commit.id} at {info.last_commit.written_at:%Y-%m-%d %H:%M:%S %Z}: {info.last_commit.message}")
    return 0


def handle_sync(ns: argparse.Namespace) -> int:
    from banet_ops.cube import sync_cube_days

    args = RegionArgs(region=ns.region)
    result = sync_cube_days(args.region, _engine(required=True))
    print(f"cube {result.region}: banet.cube_day now has {result.upserted} day(s) from the cube; {result.deleted} stale row(s) removed")
    return 0


def handle_gc(ns: argparse.Namespace) -> int:
    from banet_ops.cube import gc_cube

    args = GcArgs(region=ns.region, older_than=ns.older_than, keep=ns.keep, grace_minutes=ns.grace_minutes, use_db=ns.use_db)
    engine = _engine(required=False) if args.use_db else None
    if args.use_db and engine is None:
        log.warning("no database configured: only --keep snapshots are protected from gc")
    result = gc_cube(
        args.region,
        dt.timedelta(days=args.older_than),
        args.keep,
        engine=engine,
        grace=dt.timedelta(minutes=args.grace_minutes),
    )
    print(f"cube {result.region}: expired {result.expired_snapshots} snapshot(s); kept {len(result.kept)}"
          f"{' (' + ', '.join(result.kept) + ')' if result.kept else ''}; deleted {result.snapshots_deleted} snapshot(s), "
          f"{result.manifests_deleted} manifest(s), {result.chunks_deleted} chunk(s), {_size(result.bytes_deleted)}")
    if result.missing_kept:
        print(f"warning: {len(result.missing_kept)} snapshot(s) recorded by runs were already gone: {', '.join(result.missing_kept)}",
              file=sys.stderr)
    return 0


def handle_import_legacy(ns: argparse.Namespace) -> int:
    from tqdm import tqdm

    from banet_ops.cube import import_legacy
    from banet_ops.regions import get_region

    args = ImportArgs(region=ns.region, files=ns.files, use_db=ns.use_db)
    region = get_region(args.region)
    engine = _engine(required=False) if args.use_db else None

    def progress(paths: Iterable[Path]) -> Iterable[Path]:
        return tqdm(paths, desc=f"import {region.name}", unit="file", file=sys.stderr)

    result = import_legacy(region, args.files, engine=engine, progress=progress)
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(f"imported {len(result.imported)} of {len(args.files)} file(s) into cube {region.name}; skipped {len(result.skipped)}")
    return 1 if result.skipped else 0
