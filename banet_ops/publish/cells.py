"""The burned cells of a product as binary COPY rows, and the plan that turns a scope's rows into them.

Columns in numpy (:class:`CellRows`), sorted by key (burn_date, row, col); the binary ``COPY``
tuples of ``banet.burned_cell`` (with the cell polygon as EWKB built by numpy) and of the staging
table; the scope's current rows parsed back (:class:`ScopeRows`); and :func:`plan_cells`, which
splits the new cells into inserts, in-place updates, deletes and unchanged rows.  No database
access here: :mod:`banet_ops.db.cells` runs the statements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from banet_ops.errors import DatabaseError
from banet_ops.product import Product
from banet_ops.publish import pgcopy
from banet_ops.regions import Region, grid_lines

PG_EPOCH = np.datetime64("2000-01-01", "D")
# Keys (burn_date, row, col) packed into one int64, 21 bits each (days offset to stay positive).
_KEY_BITS = 21
KEY_MAX = 1 << _KEY_BITS
_DAY_OFFSET = 1 << 20

# Binary COPY tuples (PostgreSQL's layout: field count, then (length, value) per field, all
# big-endian except the EWKB inside the geometry field, which says little-endian itself).
_STAGE_DTYPE = pgcopy.CELL_EVENT_DTYPE
_SCOPE_DTYPE = np.dtype(
    [
        ("nfields", ">i2"),
        ("l_date", ">i4"), ("date", ">i4"),
        ("l_row", ">i4"), ("row", ">i4"),
        ("l_col", ">i4"), ("col", ">i4"),
        ("l_conf", ">i4"), ("conf", ">f4"),
        ("l_run", ">i4"), ("run", ">i8"),
        ("l_area", ">i4"), ("area", ">f8"),
        ("l_event", ">i4"), ("event", ">i8"),
    ]
)  # fmt: skip
_EWKB_POLYGON = 3 | 0x20000000  # Polygon with an SRID
_EWKB_LEN = 1 + 4 + 4 + 4 + 4 + 5 * 16


def _cell_dtype(region: bytes, product: bytes, with_event: bool = False) -> np.dtype:
    event = [("l_event", ">i4"), ("event", ">i8")] if with_event else []
    return np.dtype(
        [
            ("nfields", ">i2"),
            ("l_region", ">i4"), ("region", f"S{len(region)}"),
            ("l_product", ">i4"), ("product", f"S{len(product)}"),
            ("l_date", ">i4"), ("date", ">i4"),
            ("l_row", ">i4"), ("row", ">i4"),
            ("l_col", ">i4"), ("col", ">i4"),
            ("l_geom", ">i4"), ("byte_order", "u1"), ("wkb_type", "<u4"), ("srid", "<u4"), ("n_rings", "<u4"), ("n_points", "<u4"),
            ("xy", "<f8", (10,)),
            ("l_conf", ">i4"), ("conf", ">f4"),
            ("l_run", ">i4"), ("run", ">i8"),
            ("l_area", ">i4"), ("area", ">f8"),
            *event,
        ]
    )  # fmt: skip


@dataclass(frozen=True)
class CellRows:
    """The burned cells of a product as columns, sorted by (burn_date, row, col)."""

    row: np.ndarray  # int32
    col: np.ndarray  # int32
    burn_date: np.ndarray  # datetime64[D]
    confidence: np.ndarray  # float32
    area_km2: np.ndarray  # float64
    event_id: np.ndarray | None = None  # int64: the cells' fire events (None: not assigned)

    @property
    def n(self) -> int:
        return int(self.row.size)

    @property
    def days(self) -> np.ndarray:
        """Burn dates as days since 2000-01-01 (PostgreSQL's date epoch), int32."""
        return (self.burn_date - PG_EPOCH).astype(np.int32)

    def take(self, idx: np.ndarray) -> CellRows:
        ev = None if self.event_id is None else self.event_id[idx]
        return CellRows(self.row[idx], self.col[idx], self.burn_date[idx], self.confidence[idx], self.area_km2[idx], ev)


def cell_keys(days: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """(burn_date, row, col) packed into int64s that sort like the keys."""
    return ((days.astype(np.int64) + _DAY_OFFSET) << (2 * _KEY_BITS)) | (row.astype(np.int64) << _KEY_BITS) | col.astype(np.int64)


def cell_rows(product: Product) -> CellRows:
    """Columns of the burned cells of ``product``, in primary-key order (burn_date, row, col)."""
    rows, cols = np.nonzero(product.burned)  # row-major: sorted by (row, col)
    dates = product.burn_date[rows, cols].astype("datetime64[D]")
    if dates.size:
        # A stable sort by date keeps (row, col) order within each date; a window spans a few
        # dozen days, so the offsets fit 16 bits and numpy sorts them by radix, in O(n).
        offset = (dates - dates.min()).astype(np.int64)
        order = np.argsort(offset.astype(np.uint16) if offset.max() < (1 << 16) else offset, kind="stable")
        rows, cols, dates = rows[order], cols[order], dates[order]
    return CellRows(
        row=rows.astype(np.int32),
        col=cols.astype(np.int32),
        burn_date=dates,
        confidence=product.confidence[rows, cols].astype(np.float32),
        area_km2=product.region.row_cell_area_km2()[rows],
    )


def cell_copy_buffer(cells: CellRows, region: Region, product: str, run_id: int) -> bytearray:
    """The cells as full ``banet.burned_cell`` rows in binary COPY format, polygons as EWKB
    (with ``event_id`` when the cells have events: columns :data:`banet_ops.db.cells.CELL_COLUMNS_EVENT`).

    The polygon of a cell is its grid square, with the corners in the order ST_MakeEnvelope
    gives them, at the exact decimal grid coordinates (:func:`grid_lines`).
    """
    name, mode = region.name.encode(), product.encode()
    with_event = cells.event_id is not None
    buf, rec = pgcopy.records(cells.n, _cell_dtype(name, mode, with_event))
    rec["nfields"] = 10 if with_event else 9
    if with_event:
        rec["l_event"], rec["event"] = 8, cells.event_id
    rec["l_region"], rec["region"] = len(name), name
    rec["l_product"], rec["product"] = len(mode), mode
    rec["l_date"] = rec["l_row"] = rec["l_col"] = rec["l_conf"] = 4
    rec["l_run"] = rec["l_area"] = 8
    rec["l_geom"] = _EWKB_LEN
    rec["byte_order"], rec["wkb_type"], rec["srid"], rec["n_rings"], rec["n_points"] = 1, _EWKB_POLYGON, 4326, 1, 5
    rec["date"] = cells.days
    rec["row"] = cells.row
    rec["col"] = cells.col
    rec["conf"] = cells.confidence
    rec["run"] = run_id
    rec["area"] = cells.area_km2
    px = region.pixel_size
    west, east = grid_lines(region.left, px, cells.col), grid_lines(region.left, px, cells.col + 1)
    south, north = grid_lines(region.top, -px, cells.row + 1), grid_lines(region.top, -px, cells.row)
    xy = rec["xy"]
    xy[:, 0], xy[:, 1] = west, south
    xy[:, 2], xy[:, 3] = west, north
    xy[:, 4], xy[:, 5] = east, north
    xy[:, 6], xy[:, 7] = east, south
    xy[:, 8], xy[:, 9] = west, south
    return buf


def stage_copy_buffer(cells: CellRows) -> bytearray:
    """The cells as (burn_date, row, col, confidence, area_km2, event_id) tuples in binary COPY format (event 0: none)."""
    buf, rec = pgcopy.records(cells.n, _STAGE_DTYPE)
    rec["nfields"] = 6
    rec["l_date"] = rec["l_row"] = rec["l_col"] = rec["l_conf"] = 4
    rec["l_area"] = rec["l_event"] = 8
    rec["event"] = 0 if cells.event_id is None else cells.event_id
    rec["date"] = cells.days
    rec["row"] = cells.row
    rec["col"] = cells.col
    rec["conf"] = cells.confidence
    rec["area"] = cells.area_km2
    return buf


@dataclass(frozen=True)
class ScopeRows:
    """The rows of a scope as read from the database: keys (sorted), confidence, run, area, event (0: none)."""

    keys: np.ndarray  # int64, see cell_keys
    confidence: np.ndarray
    run_id: np.ndarray
    area_km2: np.ndarray
    event_id: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.keys.size)


def parse_scope_copy(data: bytes | bytearray | memoryview) -> ScopeRows:
    """Rows of a binary ``COPY (SELECT burn_date, row, col, confidence, run_id, area_km2, coalesce(event_id, 0) …) TO STDOUT``."""
    rec = pgcopy.parse(data, _SCOPE_DTYPE, "the published cells")
    keys = cell_keys(rec["date"], rec["row"], rec["col"])
    order = np.argsort(keys, kind="stable")
    return ScopeRows(
        keys=keys[order],
        confidence=rec["conf"][order].astype(np.float32),
        run_id=rec["run"][order].astype(np.int64),
        area_km2=rec["area"][order].astype(np.float64),
        event_id=rec["event"][order].astype(np.int64),
    )


@dataclass(frozen=True)
class CellPlan:
    """What to do with the scope: new cells to insert, changed ones to update, keys to delete."""

    insert: CellRows
    update: CellRows
    delete: CellRows  # only the keys (row, col, burn_date) are meaningful
    n_unchanged: int


def plan_cells(new: CellRows, old: ScopeRows, run_id: int) -> CellPlan:
    """Compare the new cells with the scope's rows, by key."""
    keys = cell_keys(new.days, new.row, new.col)
    if keys.size > 1 and not np.all(keys[1:] > keys[:-1]):
        raise DatabaseError("planning the cell writes: expected cells sorted by (burn_date, row, col) without duplicates, found others")
    pos = np.searchsorted(old.keys, keys)
    inside = pos < old.n
    found = np.zeros(keys.size, dtype=bool)
    found[inside] = old.keys[pos[inside]] == keys[inside]
    p = pos[found]
    same = (old.confidence[p] == new.confidence[found]) & (old.run_id[p] == run_id) & (old.area_km2[p] == new.area_km2[found])
    if new.event_id is not None and old.event_id is not None:
        same &= old.event_id[p] == new.event_id[found]
    changed = np.zeros(keys.size, dtype=bool)
    changed[np.nonzero(found)[0][~same]] = True
    gone = np.ones(old.n, dtype=bool)
    gone[p] = False
    gone_keys = old.keys[gone]
    mask = np.int64(KEY_MAX - 1)
    delete = CellRows(
        row=((gone_keys >> _KEY_BITS) & mask).astype(np.int32),
        col=(gone_keys & mask).astype(np.int32),
        burn_date=PG_EPOCH + ((gone_keys >> (2 * _KEY_BITS)) - _DAY_OFFSET).astype("timedelta64[D]"),
        confidence=old.confidence[gone],
        area_km2=old.area_km2[gone],
    )
    return CellPlan(insert=new.take(~found), update=new.take(changed), delete=delete, n_unchanged=int(same.sum()))
