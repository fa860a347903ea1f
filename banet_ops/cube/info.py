"""Coverage of a cube: which days are present, missing or partial, and what it stores."""

from __future__ import annotations

import calendar
import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from banet_ops.cube import layout as L
from banet_ops.cube.storage import (
    BRANCH,
    CubeLocation,
    cube_location,
    get_array,
    open_repository,
    open_root_group,
    readonly_session,
    written_indexes,
)
from banet_ops.settings import Settings

# Calendar characters: one per day.
CHAR_COMPLETE = "#"
CHAR_PARTIAL = "+"
CHAR_EMPTY = "o"
CHAR_MISSING = "."
LEGEND = f"{CHAR_COMPLETE} complete  {CHAR_PARTIAL} partial  {CHAR_EMPTY} empty (written, nothing valid)  {CHAR_MISSING} missing"


@dataclass(frozen=True)
class DayRecord:
    """One written day: what ``banet.cube_day`` mirrors."""

    region: str
    day: dt.date
    valid_fraction: float
    status: str
    snapshot_id: str
    granules: tuple[str, ...] = ()
    committed_at: dt.datetime | None = None


@dataclass(frozen=True)
class CommitSummary:
    id: str
    written_at: dt.datetime
    message: str


@dataclass
class CubeInfo:
    """What ``banet-ops cube info`` reports."""

    region: str
    url: str
    snapshot: str
    days: list[DayRecord]
    stored_bytes: int
    chunk_bytes: int
    last_commit: CommitSummary
    n_snapshots: int
    time_extent: tuple[dt.date, dt.date]
    missing: list[dt.date] = field(default_factory=list)

    @property
    def first_day(self) -> dt.date | None:
        return self.days[0].day if self.days else None

    @property
    def last_day(self) -> dt.date | None:
        return self.days[-1].day if self.days else None

    @property
    def partial(self) -> list[dt.date]:
        return [d.day for d in self.days if d.status != "complete"]

    @property
    def complete(self) -> list[dt.date]:
        return [d.day for d in self.days if d.status == "complete"]


def _day_fractions(session: Any, group: Any, loc: CubeLocation) -> dict[dt.date, float]:
    indexes = written_indexes(session)
    if not indexes:
        return {}
    fractions = get_array(group, L.VALID_VARIABLE, loc).get_coordinate_selection(np.asarray(indexes))
    return {L.index_day(i): float(f) for i, f in zip(indexes, fractions) if np.isfinite(f)}


def day_records(region: str, *, settings: Settings | None = None, snapshot: str | None = None) -> list[DayRecord]:
    """Every written day of the cube with the snapshot, granules and time of the commit that wrote it.

    Days whose commit has expired from history keep their values (the data is still there) but
    get the read snapshot as ``snapshot_id`` and no granules.
    """

    loc = cube_location(region, settings=settings)
    repo = open_repository(loc)
    session = readonly_session(repo, loc, snapshot)
    group = open_root_group(session, loc)
    fractions = _day_fractions(session, group, loc)
    commits: dict[dt.date, tuple[str, tuple[str, ...], dt.datetime, str | None]] = {}
    for snap in repo.ancestry(snapshot_id=session.snapshot_id):
        meta = snap.metadata or {}
        if meta.get("kind") != "day":
            continue
        try:
            day = dt.date.fromisoformat(str(meta["day"]))
        except (KeyError, ValueError):
            continue
        if day not in commits:
            status = meta.get("status") if "rejected" in meta else None  # the status of the commit (with its rejected files)
            commits[day] = (snap.id, tuple(str(g) for g in meta.get("granules", [])), snap.written_at, status)
    records = []
    for day in sorted(fractions):
        vf = min(1.0, max(0.0, fractions[day]))
        snap_id, granules, at, status = commits.get(day, (session.snapshot_id, (), None, None))
        records.append(DayRecord(region, day, vf, status if status in L.STATUS_RANK else L.day_status(vf), snap_id, granules, at))
    return records


def _stored_bytes(loc: CubeLocation) -> int:
    if loc.path is not None:
        total = 0
        for folder, _dirs, files in os.walk(loc.path):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)  # noqa: PTH118, PTH202
        return total
    import boto3

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    client = boto3.client("s3", endpoint_url=endpoint)
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=f"{loc.prefix}/"):
        total += sum(int(obj["Size"]) for obj in page.get("Contents", []))
    return total


def _chunk_bytes(repo: Any) -> int:
    # the type stub declares a property, icechunk 1.1 implements a method
    value = repo.chunk_storage_stats().non_virtual_bytes
    return int(value() if callable(value) else value)


def cube_info(region: str, *, settings: Settings | None = None) -> CubeInfo:
    """Coverage, size and last commit of a region's cube."""

    loc = cube_location(region, settings=settings)
    repo = open_repository(loc)
    session = readonly_session(repo, loc, None)
    group = open_root_group(session, loc)
    length = get_array(group, "time", loc).shape[0]
    records = day_records(region, settings=settings, snapshot=session.snapshot_id)
    history = list(repo.ancestry(branch=BRANCH))
    tip = history[0]
    present = {r.day for r in records}
    missing: list[dt.date] = []
    if records:
        day = records[0].day
        while day <= records[-1].day:
            if day not in present:
                missing.append(day)
            day += dt.timedelta(days=1)
    return CubeInfo(
        region=region,
        url=loc.url,
        snapshot=session.snapshot_id,
        days=records,
        stored_bytes=_stored_bytes(loc),
        chunk_bytes=_chunk_bytes(repo),
        last_commit=CommitSummary(tip.id, tip.written_at, tip.message),
        n_snapshots=len(history),
        time_extent=(L.TIME_ORIGIN, L.index_day(length - 1)),
        missing=missing,
    )


def render_calendar(info: CubeInfo) -> str:
    """Month rows × day columns, one character per day (see :data:`LEGEND`)."""
    if not info.days:
        return "(no days written)"
    status = {r.day: r.status for r in info.days}
    chars = {"complete": CHAR_COMPLETE, "partial": CHAR_PARTIAL, "empty": CHAR_EMPTY}
    first, last = info.days[0].day, info.days[-1].day
    header = "         " + "".join(str(d // 10) if d >= 10 else " " for d in range(1, 32))
    header2 = "         " + "".join(str(d % 10) for d in range(1, 32))
    lines = [header, header2]
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        n = calendar.monthrange(year, month)[1]
        row = []
        for d in range(1, 32):
            if d > n:
                row.append(" ")
                continue
            day = dt.date(year, month, d)
            if day < first or day > last:
                row.append(" ")
            else:
                row.append(chars[status[day]] if day in status else CHAR_MISSING)
        lines.append(f"{year:04d}-{month:02d}  " + "".join(row))
        month += 1
        if month > 12:
            year, month = year + 1, 1
    lines.append(LEGEND)
    return "\n".join(lines)
