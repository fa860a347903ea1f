"""Fire events in PostGIS: recomputed around a published window, stable ids, history kept.

Inside the publish transaction, under the publisher lock of the region and product,
:func:`plan_events` (called by :func:`banet_ops.publish.postgis.apply_cells` once it has read
the window's stored rows, before it writes the new cells):

1. finds the time span to reload: the window widened by the maximum gap, then by every stored
   event within the gap of the span, until no stored event reaches past it (a fixed point: an
   event outside the span cannot be linked to anything the window changed);
2. reads the span's stored cells outside the window with the event each belongs to (binary
   ``COPY``), and takes the product's cells for the window (with the event their key had);
3. labels events in space and time (:mod:`banet_ops.publish.events`) and gives each the stored
   id it shares most cells with (:func:`banet_ops.publish.events.match_ids`); new events get a
   fresh id, stored events no new event took are retired.

The new cells are written with their event ids; then :func:`write_events` writes
``banet.fire_event`` (only rows that changed), a ``banet.fire_event_version`` row for every
event this run created, changed, merged or removed, and the ``event_id`` of the stored cells
outside the window whose event changed.  Re-publishing the same product changes nothing and
records nothing.  :func:`update_events` recomputes a span from the stored cells alone
(``banet-ops db rebuild-events``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from banet_ops.db import events as events_db
from banet_ops.publish import events as ev
from banet_ops.publish import pgcopy
from banet_ops.regions import Region

if TYPE_CHECKING:
    from banet_ops.publish.postgis import CellRows, ScopeRows


@dataclass(frozen=True)
class EventWrite:
    """What :func:`update_events` did: events touching the window, and the changes by kind."""

    n_events: int
    changes: dict[str, int]


def reload_span(cur: Any, region: str, product: str, first: dt.date, last: dt.date, gap: int) -> tuple[dt.date, dt.date, list[int]]:
    """The burn-date span to recompute and the stored events inside it (see the module doc)."""
    lo, hi = first - dt.timedelta(days=gap), last + dt.timedelta(days=gap)
    while True:
        a, b, ids = events_db.events_near(cur, region, product, lo - dt.timedelta(days=gap), hi + dt.timedelta(days=gap))
        new_lo, new_hi = min(lo, a or lo), max(hi, b or hi)
        if (new_lo, new_hi) == (lo, hi):
            return lo, hi, ids
        lo, hi = new_lo, new_hi


def read_cells(cur: Any, region: str, product: str, lo: dt.date, hi: dt.date, skip: tuple[dt.date, dt.date] | None = None) -> tuple[ev.Cells, np.ndarray]:
    """The stored cells of [lo, hi] (less those of ``skip``) and their burn dates as days since 2000-01-01 (for writing back)."""
    skip = skip or (dt.date(1, 1, 2), dt.date(1, 1, 1))  # an empty range
    data = events_db.cells_copy(cur, region, product, lo, hi, skip)
    rec = pgcopy.parse(data, pgcopy.CELL_EVENT_DTYPE, f"the cells of {region} {product}")
    days = rec["date"].astype(np.int64)
    cells = ev.Cells.build(rec["row"], rec["col"], days + pgcopy.PG_EPOCH_DAYS, rec["conf"], rec["area"], rec["event"])
    return cells, days


def _stage_events(cur: Any, found: list[ev.FireEvent], ids: np.ndarray) -> None:
    buf = io.StringIO()
    for e, i in zip(found, ids, strict=True):
        daily = json.dumps(e.daily_area_km2, separators=(",", ":"))
        buf.write(f"{i}\t{e.first_burn_date}\t{e.last_burn_date}\t{e.area_km2!r}\t{e.n_cells}\t{e.mean_confidence!r}\t{daily}\t{e.geojson}\n")
    events_db.stage_events(cur, buf.getvalue())


def _write_cell_events(cur: Any, p: dict[str, Any], days: np.ndarray, cells: ev.Cells, new_ids: np.ndarray) -> None:
    """Set ``event_id`` of the cells whose event changed."""
    changed = np.flatnonzero(new_ids != cells.event_id)
    if changed.size == 0:
        return
    buf = io.StringIO()
    base = dt.date(2000, 1, 1).toordinal()
    for k in changed:
        buf.write(f"{dt.date.fromordinal(base + int(days[k]))}\t{cells.row[k]}\t{cells.col[k]}\t{new_ids[k]}\n")
    events_db.set_cell_events(cur, p, buf.getvalue(), int(changed.size))


@dataclass(frozen=True)
class EventPlan:
    """The events of a publish, computed before its cells are written (see the module doc)."""

    region: Region
    product: str
    window: tuple[dt.date, dt.date]
    span: tuple[dt.date, dt.date]
    found: list[ev.FireEvent]
    ids: np.ndarray  # event id of each label
    retired: dict[int, int]  # stored id -> id it merged into (0: gone)
    n_events: int  # events with a cell in the window
    outside: ev.Cells  # stored cells of the span outside the window
    outside_days: np.ndarray  # their burn dates, days since 2000-01-01
    outside_ids: np.ndarray  # their new event ids
    new_cell_ids: np.ndarray  # event id of each new cell of the window, in the order given


def plan_events(cur: Any, region: Region, product: str, window: tuple[dt.date, dt.date], max_gap_days: int, cells: CellRows, scope: ScopeRows) -> EventPlan:
    """Events of the window's new ``cells`` with the stored cells around it; ids assigned (fresh ones drawn)."""
    from banet_ops.publish.postgis import cell_keys

    lo, hi, stored = reload_span(cur, region.name, product, window[0], window[1], max_gap_days)
    outside, outside_days = read_cells(cur, region.name, product, lo, hi, skip=window)
    keys = cell_keys(cells.days, cells.row, cells.col)
    old = np.zeros(cells.n, dtype=np.int64)
    if scope.n and scope.event_id is not None:
        pos = np.minimum(np.searchsorted(scope.keys, keys), scope.n - 1)
        hit = scope.keys[pos] == keys
        old[hit] = scope.event_id[pos[hit]]
    epoch_days = cells.burn_date.astype("datetime64[D]").astype(np.int64)
    new = ev.Cells.build(cells.row, cells.col, epoch_days, cells.confidence, cells.area_km2, old)
    every = ev.Cells(*(np.concatenate([getattr(outside, f), getattr(new, f)]) for f in ("row", "col", "day", "confidence", "area_km2", "event_id")))
    labels, n = ev.label_cells(every, region.shape, max_gap_days)
    match = ev.match_ids(every, labels, n, set(stored))
    ids = _draw_ids(cur, match.event_ids)
    cell_ids = ids[labels] if n else np.empty(0, np.int64)
    return EventPlan(
        region=region, product=product, window=window, span=(lo, hi), found=ev.summarize(every, labels, n, region), ids=ids,
        retired={sid: (int(ids[home - 1]) if home else 0) for sid, home in match.retired.items()},
        n_events=int(np.unique(labels[outside.n :]).size), outside=outside, outside_days=outside_days,
        outside_ids=cell_ids[: outside.n], new_cell_ids=cell_ids[outside.n :],
    )  # fmt: skip


def _draw_ids(cur: Any, matched: np.ndarray) -> np.ndarray:
    """``matched`` with a fresh id from the event sequence for each 0."""
    ids = matched.copy()
    fresh = np.flatnonzero(ids == 0)
    if fresh.size:
        ids[fresh] = events_db.next_event_ids(cur, int(fresh.size))
    return ids


def write_events(cur: Any, plan: EventPlan, run_id: int) -> EventWrite:
    """The planned events' rows and history, and the event ids of the stored cells outside the window."""
    p = {"region": plan.region.name, "product": plan.product, "run": run_id, "lo": plan.span[0], "hi": plan.span[1]}
    _stage_events(cur, plan.found, plan.ids)
    changes = events_db.write_staged_events(cur, p, plan.retired)
    _write_cell_events(cur, p, plan.outside_days, plan.outside, plan.outside_ids)
    changes["unchanged"] = len(plan.found) - changes["created"] - changes["updated"]
    return EventWrite(n_events=plan.n_events, changes=changes)


def update_events(cur: Any, region: Region, product: str, window: tuple[dt.date, dt.date], run_id: int, max_gap_days: int) -> EventWrite:
    """Recompute the events around ``window`` from the stored cells; see the module doc."""
    lo, hi, stored = reload_span(cur, region.name, product, window[0], window[1], max_gap_days)
    cells, days = read_cells(cur, region.name, product, lo, hi)
    labels, n = ev.label_cells(cells, region.shape, max_gap_days)
    found = ev.summarize(cells, labels, n, region)
    match = ev.match_ids(cells, labels, n, set(stored))
    ids = _draw_ids(cur, match.event_ids)
    retired = {sid: (int(ids[home - 1]) if home else 0) for sid, home in match.retired.items()}
    p = {"region": region.name, "product": product, "run": run_id, "lo": lo, "hi": hi}
    _stage_events(cur, found, ids)
    changes = events_db.write_staged_events(cur, p, retired)
    cell_ids = ids[labels] if n else np.empty(0, np.int64)
    _write_cell_events(cur, p, days, cells, cell_ids)
    w0 = (window[0] - dt.date(1970, 1, 1)).days
    w1 = (window[1] - dt.date(1970, 1, 1)).days
    inside = (cells.day >= w0) & (cells.day <= w1)
    changes["unchanged"] = n - changes["created"] - changes["updated"]
    return EventWrite(n_events=int(np.unique(labels[inside]).size), changes=changes)


def rebuild_events(url: str, max_gap_days: int, region_name: str | None = None) -> list[tuple[str, str, int]]:
    """Recompute the events of every region and product from all their cells (after migration 0009,
    or after changing ``BANET_EVENT_MAX_GAP_DAYS``); ids are kept where cells still match.

    One transaction per (region, product), under the publisher's lock; the history rows name
    the latest succeeded run.  ``region_name`` limits it to one region.  Returns (region,
    product, number of events).
    """
    from banet_ops.db import cells as cells_db
    from banet_ops.db import runs
    from banet_ops.db.engine import get_engine
    from banet_ops.db.regions_repo import region_by_name
    from banet_ops.publish.postgis import LOCK_TIMEOUT

    out = []
    raw = get_engine(url).raw_connection()
    try:
        cur: Any = raw.cursor()
        for name, product in runs.published_scopes(cur, region_name):
            runs.set_lock_timeout(cur, LOCK_TIMEOUT)
            runs.lock_publish_scope(cur, f"{name}/{product}")  # the publishers' lock row (migration 0008)
            first, last = cells_db.burn_date_range(cur, name, product)
            run_id = runs.latest_succeeded_run(cur, name, product)
            region = region_by_name(cur, name)
            n = 0 if first is None or last is None else update_events(cur, region, product, (first, last), run_id, max_gap_days).n_events
            raw.commit()
            out.append((name, product, n))
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return out
