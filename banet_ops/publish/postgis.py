"""PostGIS side of publishing: run record, burned cells and fire events, in one transaction.

The cells of a product replace those of its *scope*: the (region, product) rows whose burn date
lies in the product's effective window (NRT: the window less its first day; monthly: the month).
After the scope's publisher lock, :func:`apply_cells` reads the scope's current rows (binary
``COPY … TO STDOUT``) and compares them with the new cells in numpy, by key (burn_date, row, col):

* cells the product no longer has are deleted (their count is ``n_deleted``);
* cells whose confidence, area or run changed are updated in place: only non-indexed columns
  change and partitions keep free room (fillfactor 50), so these are HOT updates that touch no
  index (migration 0005);
* new cells go straight into their yearly partition by binary ``COPY`` (batched heap inserts),
  with the cell polygon sent as EWKB built by numpy, sorted by primary key;
* identical rows are not written at all, so an idempotent re-run writes nothing.

The whole product then equals the scope, whatever it was before.  Foreign keys of
``banet.burned_cell`` are checked once per statement by triggers (migration 0005), and the new
BRIN block ranges are summarised after the commit (:func:`summarize_cells`).  The fire events
around the window are then recomputed from the stored cells, keeping their ids
(:mod:`banet_ops.publish.event_db`).  Callers own the transaction
(:func:`write_product` never commits), so a failure anywhere leaves the previous state.
The statements themselves live in the db layer (:mod:`banet_ops.db.cells`, :mod:`banet_ops.db.runs`);
this module plans what they write.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from banet_ops.db import cells as cells_db
from banet_ops.db import runs
from banet_ops.db.regions_repo import ensure_region
from banet_ops.errors import DatabaseError, DatabaseUnavailableError, RegionError, SchemaError, ValidationError
from banet_ops.product import Product
from banet_ops.publish import event_db
from banet_ops.publish.cells import (
    KEY_MAX,
    PG_EPOCH,
    CellPlan,
    CellRows,
    ScopeRows,
    cell_copy_buffer,
    cell_keys,
    cell_rows,
    parse_scope_copy,
    plan_cells,
    stage_copy_buffer,
)
from banet_ops.regions import Region, grid_lines
from banet_ops.util import timed

log = logging.getLogger(__name__)
# re-exported: the cell encoding lives in banet_ops.publish.cells
__all__ = [
    "PG_EPOCH", "CellPlan", "CellRows", "ScopeRows", "cell_copy_buffer", "cell_keys", "cell_rows", "grid_lines", "parse_scope_copy", "plan_cells",
    "stage_copy_buffer",
]  # fmt: skip

# Work memory of the publish transaction: the transition table of the key-check trigger (one
# tuple per written row) and the hash joins of updates and deletes stay in memory.
WORK_MEM = "256MB"
# Longest wait for any lock of the publish transaction (another publisher of the scope, a DDL
# lock of a new partition): then a retryable error, never a wait without end.
LOCK_TIMEOUT = "120s"


def effective_window(product: Product) -> tuple[dt.date, dt.date]:
    """The burn dates a product speaks for: NRT (start, end] (the first day is discarded), monthly its month."""
    if product.mode == "monthly":
        first = product.target_date.replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        return first, nxt - dt.timedelta(days=1)
    return product.window_start + dt.timedelta(days=1), product.window_end


# --- error mapping -----------------------------------------------------------------------


def wrap_db_error(exc: BaseException, what: str) -> Exception:
    """A project error for a psycopg error (retryable for connection losses, deadlocks, conflicts)."""
    import psycopg
    from psycopg import errors as pgerr

    detail = " ".join(str(exc).split())[:400]
    if isinstance(exc, psycopg.OperationalError | pgerr.SerializationFailure | pgerr.DeadlockDetected | pgerr.LockNotAvailable):
        return DatabaseUnavailableError(f"{what}: expected the database to complete it, found: {detail}", hint="retry the task")
    if isinstance(exc, pgerr.UndefinedTable | pgerr.UndefinedFunction | pgerr.UndefinedColumn | pgerr.InvalidSchemaName):
        return SchemaError(f"{what}: expected the banet schema, found: {detail}", hint="run `banet-ops db upgrade`")
    return DatabaseError(f"{what} failed: {detail}", hint="see the database log")


# --- statements --------------------------------------------------------------------------


def scope_name(product: Product) -> str:
    """``{region}/{mode}``: what one publisher lock (and one file journal scope) covers."""
    return f"{product.region.name}/{product.mode}"


def lock_scope(cur: Any, product: Product) -> None:
    """Serialise publishers of the same region and product (released at commit/rollback).

    Every lock wait of the transaction is bounded by :data:`LOCK_TIMEOUT` (then a retryable
    :class:`DatabaseUnavailableError`), and the lock is a row of ``banet.publish_lock`` that
    only writers may lock (migration 0008), not an advisory lock any login could hold.
    """
    runs.set_lock_timeout(cur, LOCK_TIMEOUT)
    runs.lock_publish_scope(cur, scope_name(product))


def fetch_scope(cur: Any, product: Product) -> ScopeRows:
    """The current rows of the product's scope (region, product, effective window)."""
    first, last = effective_window(product)
    return parse_scope_copy(cells_db.scope_copy(cur, product.region.name, product.mode, first, last))


def _check_count(what: str, expected: int, found: int) -> None:
    if found != expected:
        raise DatabaseUnavailableError(
            f"{what}: expected {expected} rows of the scope (read under the publisher lock), found {found}: "
            "the cells were changed concurrently by another writer",
            hint="retry the task",
        )


def apply_cells(
    cur: Any,
    product: Product,
    run_id: int,
    timings: dict[str, float] | None = None,
    events: Callable[[CellRows, ScopeRows], np.ndarray] | None = None,
) -> dict[str, int]:
    """Make the scope's rows equal the product's cells; counts of deleted, updated, inserted and unchanged rows.

    ``events`` (if given) maps the new cells and the scope's stored rows to each new cell's fire
    event id, written with the cells (a cell whose event changed is rewritten).  ``timings`` (if
    given) receives the seconds of each step: ``db_read`` (scope rows and plan, events included),
    ``db_delete``, ``db_update`` and ``db_insert``.
    """
    timings = {} if timings is None else timings
    r = product.region
    first, last = effective_window(product)
    with timed(timings, "db_read"):
        saved, plan = _read_and_plan(cur, product, run_id, events)
    with timed(timings, "db_delete"):
        if plan.delete.n:
            cells_db.stage(cur, "banet_gone_cell", stage_copy_buffer(plan.delete))
            n = cells_db.delete_staged(cur, "banet_gone_cell", r.name, product.mode, first, last)
            _check_count("deleting the cells the product no longer has", plan.delete.n, n)
    with timed(timings, "db_update"):
        if plan.update.n:
            cells_db.stage(cur, "banet_stage_cell", stage_copy_buffer(plan.update))
            n = cells_db.update_staged(cur, "banet_stage_cell", r.name, product.mode, (first, last), run_id, events=events is not None)
            _check_count("updating the re-estimated cells", plan.update.n, n)
        cells_db.set_planner(cur, *saved)
    with timed(timings, "db_insert"):
        if plan.insert.n:
            _insert_cells(cur, plan.insert, r, product.mode, run_id)
    return {"deleted": plan.delete.n, "updated": plan.update.n, "inserted": plan.insert.n, "unchanged": plan.n_unchanged}


def _read_and_plan(
    cur: Any, product: Product, run_id: int, events: Callable[[CellRows, ScopeRows], np.ndarray] | None
) -> tuple[tuple[str, str], CellPlan]:
    """Check the product, set the transaction's planner settings, read the scope and plan the writes.

    Returns the settings to restore (work_mem, enable_nestloop) and the plan.
    """
    r = product.region
    if max(r.shape) >= KEY_MAX:
        raise RegionError(f"region {r.name}: expected at most {KEY_MAX - 1} rows and columns, found a {r.shape[0]}x{r.shape[1]} grid")
    first, last = effective_window(product)
    cells_db.ensure_partitions(cur, first, last)
    saved = cells_db.planner_settings(cur)
    # A partition filled moments ago has no statistics yet, and the planner then picks nested
    # loops over the staging table (quadratic); the set-based plan is always right here.
    cells_db.set_planner(cur, WORK_MEM, "off")
    cells = cell_rows(product)
    if cells.n and (cells.burn_date[0] < np.datetime64(first) or cells.burn_date[-1] > np.datetime64(last)):
        raise ValidationError(
            f"product {r.name} {product.mode} {product.target_date}: expected burn dates within the effective window "
            f"{first}..{last}, found {cells.burn_date[0]}..{cells.burn_date[-1]}",
            hint="apply the window rules (NRT: first day discarded; monthly: the month only) before publishing",
        )
    scope = fetch_scope(cur, product)
    if events is not None:
        cells = replace(cells, event_id=events(cells, scope))
    return saved, plan_cells(cells, scope, run_id)


def _insert_cells(cur: Any, cells: CellRows, region: Region, product: str, run_id: int) -> None:
    """Binary COPY of new cells straight into their yearly partitions.

    A COPY into the partitioned parent would insert row by row, as the parent has a trigger with
    a transition table.
    """
    years = cells.burn_date.astype("datetime64[Y]").astype(np.int64) + 1970
    bounds = np.flatnonzero(np.diff(years)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, years.size], strict=True):
        part = cells_db.partition(cur, int(years[lo]))
        buf = cell_copy_buffer(cells.take(np.arange(lo, hi)), region, product, run_id)
        cells_db.copy_cells(cur, part, buf, events=cells.event_id is not None)


def summarize_cells(conn: Any, product: Product) -> float:
    """Summarise the new BRIN block ranges of the product's partitions, in a transaction of its own; seconds.

    Call it after the publish committed.  Best effort: the data are already correct (BRIN
    treats unsummarised ranges as matching, and autovacuum summarises them too); a failure is
    logged, not raised.
    """
    timings: dict[str, float] = {}
    first, last = effective_window(product)
    with timed(timings, "summary"):
        try:
            with conn.cursor() as cur:
                cells_db.summarize(cur, first, last)
            conn.commit()
        except Exception:
            log.warning("summarising the BRIN ranges of banet.burned_cell failed; autovacuum will do it", exc_info=True)
            try:
                conn.rollback()
            except Exception:
                log.debug("rollback after the failed summary failed", exc_info=True)
    return timings["summary"]


@dataclass
class DbWrite:
    """What :func:`write_product` did."""

    run_id: int
    n_burned_cells: int
    burned_area_km2: float
    n_deleted: int
    timings: dict[str, float]
    n_updated: int = 0
    n_inserted: int = 0
    n_unchanged: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)
    n_events: int = 0


def write_product(cur: Any, product: Product, *, started_at: dt.datetime, max_gap_days: int = 5) -> DbWrite:
    """Region row, run row ('running'), cells and events of ``product``; the caller commits.

    Call :func:`finish_run` afterwards (still inside the transaction) to mark the run succeeded.
    """
    timings: dict[str, float] = {}
    with timed(timings, "db_run"):
        lock_scope(cur, product)
        ensure_region(cur, product.region)  # the one region policy
        run_id = runs.upsert_run(cur, product, started_at=started_at)

    planned: list[event_db.EventPlan] = []

    def assign_events(cells: CellRows, scope: ScopeRows) -> np.ndarray:
        with timed(timings, "db_events_plan"):
            planned.append(event_db.plan_events(cur, product.region, product.mode, effective_window(product), max_gap_days, cells, scope))
        return planned[0].new_cell_ids

    with timed(timings, "db_cells"):
        counts = apply_cells(cur, product, run_id, timings, events=assign_events)
    timings["db_cells"] -= timings["db_events_plan"]  # the events' planning counts as events
    with timed(timings, "db_events"):
        events = event_db.write_events(cur, planned[0], run_id)
    timings["db_events"] += timings["db_events_plan"]
    burned = product.burned
    return DbWrite(
        run_id=run_id,
        n_burned_cells=int(burned.sum()),
        burned_area_km2=float(product.region.row_cell_area_km2()[np.nonzero(burned)[0]].sum()),
        n_deleted=counts["deleted"],
        timings=timings,
        n_updated=counts["updated"],
        n_inserted=counts["inserted"],
        n_unchanged=counts["unchanged"],
        event_counts=events.changes,
        n_events=events.n_events,
    )
