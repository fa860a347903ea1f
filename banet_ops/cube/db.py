"""Keeping ``banet.cube_day`` in PostGIS in step with the cube (the cube is the truth)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from banet_ops.cube import layout as L
from banet_ops.cube.info import DayRecord, day_records
from banet_ops.cube.reader import open_group
from banet_ops.cube.storage import check_region_name, check_snapshot_id
from banet_ops.db import cube_days, regions_repo, runs
from banet_ops.errors import ValidationError
from banet_ops.regions import Region
from banet_ops.settings import Settings


def _ensure_region(engine: Engine, region: Region | str) -> str:
    """A region with its definition is registered (:func:`banet_ops.db.regions_repo.ensure_region`); a bare name must be."""
    if isinstance(region, Region):
        from banet_ops.db.regions_repo import upsert_region

        upsert_region(engine, region)
        return region.name
    name = check_region_name(region)
    with engine.connect() as conn:
        if not regions_repo.is_registered(conn, name):
            raise ValidationError(f"expected region {name!r} registered in banet.region, found no such row", hint="run `banet-ops regions add`")
    return name


def _row(record: DayRecord) -> dict[str, Any]:
    return cube_days.row(record.region, record.day, record.snapshot_id, record.granules, record.valid_fraction, record.status, record.committed_at)


def record_cube_day(
    engine: Engine,
    region: Region | str,
    day: dt.date,
    snapshot_id: str,
    *,
    valid_fraction: float,
    granules: Sequence[str] = (),
    committed_at: dt.datetime | None = None,
) -> None:
    """Upsert the ``banet.cube_day`` row of a day just written (call after :func:`write_day`).

    A row written by a later commit of the same day is never overwritten by an earlier one.
    Registers the region first when given as a :class:`Region` and not yet known.
    """
    check_snapshot_id(snapshot_id)
    if not 0.0 <= valid_fraction <= 1.0:
        raise ValidationError(f"expected valid_fraction in [0, 1], found {valid_fraction}")
    name = _ensure_region(engine, region)
    record = DayRecord(name, day, valid_fraction, L.day_status(valid_fraction), snapshot_id, tuple(granules), committed_at)
    with engine.begin() as conn:
        cube_days.upsert(conn, [_row(record)])


@dataclass(frozen=True)
class SyncResult:
    region: str
    upserted: int
    deleted: int


def _write_all(conn: Connection, region: str, records: list[DayRecord]) -> int:
    existing = cube_days.existing(conn, region)
    merged = []
    for record in records:
        old = existing.get(record.day)
        if record.committed_at is None and old is not None:
            # the commit that wrote this day has expired from history: keep its provenance
            record = DayRecord(record.region, record.day, record.valid_fraction, record.status, old.snapshot_id,
                               tuple(old.granules or ()), old.committed_at)
        merged.append(record)
    deleted = cube_days.delete_other_days(conn, region, [r.day for r in merged])
    cube_days.upsert(conn, [_row(r) for r in merged], force=True)
    return deleted


def sync_cube_days(region: str, engine: Engine, *, settings: Settings | None = None) -> SyncResult:
    """Make ``banet.cube_day`` of ``region`` equal to the cube's days, in one transaction."""
    group, _snap, _loc = open_group(region, settings=settings)
    _ensure_region(engine, L.region_from_attrs(dict(group.attrs)))
    records = day_records(region, settings=settings)
    with engine.begin() as conn:
        deleted = _write_all(conn, region, records)
    return SyncResult(region=region, upserted=len(records), deleted=deleted)


def recorded_snapshots(engine: Engine, region: str) -> set[str]:
    """Cube snapshots that recorded runs of ``region`` read (``banet.run.cube_snapshot``)."""
    with engine.connect() as conn:
        return runs.recorded_snapshots(conn, region)
