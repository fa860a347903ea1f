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

from banet_ops.db.copy import copy_in, copy_out
from banet_ops.errors import DatabaseUnavailableError
from banet_ops.publish import events as ev
from banet_ops.publish import pgcopy
from banet_ops.regions import Region

if TYPE_CHECKING:
    from banet_ops.publish.postgis import CellRows, ScopeRows

_EVENT_COLUMNS = "first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence, daily_area_km2, geom"
_STAGED_COLUMNS = ", ".join(f"s.{c.strip()}" for c in _EVENT_COLUMNS.split(","))


@dataclass(frozen=True)
class EventWrite:
    """What :func:`update_events` did: events touching the window, and the changes by kind."""

    n_events: int
    changes: dict[str, int]


def reload_span(cur: Any, region: str, product: str, first: dt.date, last: dt.date, gap: int) -> tuple[dt.date, dt.date, list[int]]:
    """The burn-date span to recompute and the stored events inside it (see the module doc)."""
    lo, hi = first - dt.timedelta(days=gap), last + dt.timedelta(days=gap)
    while True:
        cur.execute(
            """
            SELECT min(first_burn_date), max(last_burn_date), coalesce(array_agg(id ORDER BY id), '{}')
            FROM banet.fire_event
            WHERE region = %s AND product = %s AND last_burn_date >= %s AND first_burn_date <= %s
            """,
            (region, product, lo - dt.timedelta(days=gap), hi + dt.timedelta(days=gap)),
        )
        a, b, ids = cur.fetchone()
        new_lo, new_hi = min(lo, a or lo), max(hi, b or hi)
        if (new_lo, new_hi) == (lo, hi):
            return lo, hi, [int(i) for i in ids]
        lo, hi = new_lo, new_hi


def read_cells(cur: Any, region: str, product: str, lo: dt.date, hi: dt.date, skip: tuple[dt.date, dt.date] | None = None) -> tuple[ev.Cells, np.ndarray]:
    """The stored cells of [lo, hi] (less those of ``skip``) and their burn dates as days since 2000-01-01 (for writing back)."""
    skip = skip or (dt.date(1, 1, 2), dt.date(1, 1, 1))  # an empty range
    data = copy_out(
        cur,
        """
        COPY (SELECT burn_date, "row", col, confidence, area_km2, coalesce(event_id, 0) FROM banet.burned_cell
              WHERE region = %s AND product = %s AND burn_date BETWEEN %s AND %s AND NOT (burn_date BETWEEN %s AND %s))
        TO STDOUT WITH (FORMAT binary)
        """,
        (region, product, lo, hi, skip[0], skip[1]),
    )
    rec = pgcopy.parse(data, pgcopy.CELL_EVENT_DTYPE, f"the cells of {region} {product}")
    days = rec["date"].astype(np.int64)
    cells = ev.Cells.build(rec["row"], rec["col"], days + pgcopy.PG_EPOCH_DAYS, rec["conf"], rec["area"], rec["event"])
    return cells, days


def _stage_events(cur: Any, found: list[ev.FireEvent], ids: np.ndarray) -> None:
    cur.execute(
        """
        CREATE TEMP TABLE banet_stage_event (
            id bigint PRIMARY KEY, first_burn_date date, last_burn_date date, area_km2 double precision, n_cells integer,
            mean_confidence real, daily_area_km2 jsonb, geom geometry(MultiPolygon, 4326)
        ) ON COMMIT DROP
        """
    )
    buf = io.StringIO()
    for e, i in zip(found, ids, strict=True):
        daily = json.dumps(e.daily_area_km2, separators=(",", ":"))
        buf.write(f"{i}\t{e.first_burn_date}\t{e.last_burn_date}\t{e.area_km2!r}\t{e.n_cells}\t{e.mean_confidence!r}\t{daily}\t{e.geojson}\n")
    cur.execute("CREATE TEMP TABLE banet_stage_event_raw (LIKE banet_stage_event) ON COMMIT DROP")
    cur.execute("ALTER TABLE banet_stage_event_raw ALTER COLUMN geom TYPE text")
    copy_in(cur, "COPY banet_stage_event_raw FROM STDIN", buf.getvalue())
    cur.execute(
        "INSERT INTO banet_stage_event SELECT id, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence, daily_area_km2, "
        "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(geom), 4326)) FROM banet_stage_event_raw"
    )


_VERSION_CONFLICT = """
    ON CONFLICT (event_id, run_id) DO UPDATE SET
        change = CASE WHEN banet.fire_event_version.change = 'created' AND EXCLUDED.change = 'updated' THEN 'created' ELSE EXCLUDED.change END,
        merged_into = EXCLUDED.merged_into, geom = EXCLUDED.geom, first_burn_date = EXCLUDED.first_burn_date,
        last_burn_date = EXCLUDED.last_burn_date, area_km2 = EXCLUDED.area_km2, n_cells = EXCLUDED.n_cells,
        mean_confidence = EXCLUDED.mean_confidence, daily_area_km2 = EXCLUDED.daily_area_km2, recorded_at = now()
"""


def _write_events(cur: Any, p: dict[str, Any], retired: dict[int, int]) -> dict[str, int]:
    """Rows of banet.fire_event and their versions, from the staged events; counts by change."""
    cur.execute("CREATE TEMP TABLE banet_retired_event (id bigint PRIMARY KEY, merged_into bigint) ON COMMIT DROP")
    if retired:
        cur.execute("INSERT INTO banet_retired_event SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
                    (list(retired), [v or None for v in retired.values()]))  # fmt: skip
    cur.execute(
        f"""
        WITH gone AS (DELETE FROM banet.fire_event e USING banet_retired_event r WHERE e.id = r.id
                      RETURNING e.*, r.merged_into)
        INSERT INTO banet.fire_event_version (event_id, run_id, change, merged_into, region, product, {_EVENT_COLUMNS})
        SELECT id, %(run)s, CASE WHEN merged_into IS NULL THEN 'gone' ELSE 'merged' END, merged_into, region, product, {_EVENT_COLUMNS}
        FROM gone {_VERSION_CONFLICT}
        """,
        p,
    )
    n_retired = cur.rowcount
    cur.execute(
        f"""
        WITH upd AS (
            UPDATE banet.fire_event e SET run_id = %(run)s, first_burn_date = s.first_burn_date, last_burn_date = s.last_burn_date,
                   area_km2 = s.area_km2, n_cells = s.n_cells, mean_confidence = s.mean_confidence,
                   daily_area_km2 = s.daily_area_km2, geom = s.geom, updated_at = now()
            FROM banet_stage_event s
            WHERE e.id = s.id AND ((e.first_burn_date, e.last_burn_date, e.area_km2, e.n_cells, e.mean_confidence, e.daily_area_km2)
                                   IS DISTINCT FROM (s.first_burn_date, s.last_burn_date, s.area_km2, s.n_cells, s.mean_confidence, s.daily_area_km2)
                                   OR NOT ST_OrderingEquals(e.geom, s.geom))
            RETURNING e.id
        )
        INSERT INTO banet.fire_event_version (event_id, run_id, change, region, product, {_EVENT_COLUMNS})
        SELECT s.id, %(run)s, 'updated', %(region)s, %(product)s, {_STAGED_COLUMNS}
        FROM banet_stage_event s JOIN upd USING (id) {_VERSION_CONFLICT}
        """,
        p,
    )
    n_updated = cur.rowcount
    cur.execute(
        f"""
        WITH ins AS (
            INSERT INTO banet.fire_event (id, run_id, first_run_id, region, product, {_EVENT_COLUMNS})
            SELECT s.id, %(run)s, %(run)s, %(region)s, %(product)s, {_STAGED_COLUMNS}
            FROM banet_stage_event s WHERE NOT EXISTS (SELECT 1 FROM banet.fire_event e WHERE e.id = s.id)
            ORDER BY s.id
            RETURNING id
        )
        INSERT INTO banet.fire_event_version (event_id, run_id, change, region, product, {_EVENT_COLUMNS})
        SELECT s.id, %(run)s, 'created', %(region)s, %(product)s, {_STAGED_COLUMNS}
        FROM banet_stage_event s JOIN ins USING (id) {_VERSION_CONFLICT}
        """,
        p,
    )
    return {"created": cur.rowcount, "updated": n_updated, "retired": n_retired}


def _write_cell_events(cur: Any, p: dict[str, Any], days: np.ndarray, cells: ev.Cells, new_ids: np.ndarray) -> None:
    """Set ``event_id`` of the cells whose event changed."""
    changed = np.flatnonzero(new_ids != cells.event_id)
    if changed.size == 0:
        return
    cur.execute('CREATE TEMP TABLE banet_cell_event (burn_date date, "row" integer, col integer, event_id bigint) ON COMMIT DROP')
    buf = io.StringIO()
    base = dt.date(2000, 1, 1).toordinal()
    for k in changed:
        buf.write(f"{dt.date.fromordinal(base + int(days[k]))}\t{cells.row[k]}\t{cells.col[k]}\t{new_ids[k]}\n")
    copy_in(cur, "COPY banet_cell_event FROM STDIN", buf.getvalue())
    cur.execute(
        """
        UPDATE banet.burned_cell b SET event_id = s.event_id FROM banet_cell_event s
        WHERE b.region = %(region)s AND b.product = %(product)s AND b.burn_date BETWEEN %(lo)s AND %(hi)s
          AND b.burn_date = s.burn_date AND b."row" = s."row" AND b.col = s.col
        """,
        p,
    )
    if cur.rowcount != changed.size:
        raise DatabaseUnavailableError(
            f"setting the events of {p['region']} {p['product']} cells: expected {changed.size} rows, found {cur.rowcount}: "
            "the cells were changed concurrently by another writer",
            hint="retry the task",
        )


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
        cur.execute("SELECT nextval('banet.fire_event_id_seq') FROM generate_series(1, %s)", (int(fresh.size),))
        ids[fresh] = [int(r[0]) for r in cur.fetchall()]
    return ids


def write_events(cur: Any, plan: EventPlan, run_id: int) -> EventWrite:
    """The planned events' rows and history, and the event ids of the stored cells outside the window."""
    p = {"region": plan.region.name, "product": plan.product, "run": run_id, "lo": plan.span[0], "hi": plan.span[1]}
    _stage_events(cur, plan.found, plan.ids)
    changes = _write_events(cur, p, plan.retired)
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
    changes = _write_events(cur, p, retired)
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
    from banet_ops.db.engine import get_engine
    from banet_ops.publish.postgis import LOCK_TIMEOUT, lock_publish_scope
    from banet_ops.regions import parse_region

    out = []
    raw = get_engine(url).raw_connection()
    try:
        cur: Any = raw.cursor()
        cur.execute(
            "SELECT DISTINCT region, product FROM banet.run WHERE status = 'succeeded' AND (%(r)s::text IS NULL OR region = %(r)s) ORDER BY 1, 2",
            {"r": region_name},
        )
        for name, product in cur.fetchall():
            cur.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
            lock_publish_scope(cur, f"{name}/{product}")  # the publishers' lock row (migration 0008)
            cur.execute("SELECT min(burn_date), max(burn_date) FROM banet.burned_cell WHERE region = %s AND product = %s", (name, product))
            first, last = cur.fetchone()
            cur.execute(
                "SELECT id FROM banet.run WHERE region = %s AND product = %s AND status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1",
                (name, product),
            )
            run_id = int(cur.fetchone()[0])
            cur.execute("SELECT definition FROM banet.region WHERE name = %s", (name,))
            region = parse_region(cur.fetchone()[0], f"banet.region {name}")
            n = 0 if first is None else update_events(cur, region, product, (first, last), run_id, max_gap_days).n_events
            raw.commit()
            out.append((name, product, n))
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return out
