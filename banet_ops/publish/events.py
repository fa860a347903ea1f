"""Fire events in space and time: burned cells linked by 8-neighbourhood and burn-date proximity.

Two burned cells belong to the same event when they are 8-neighbours (or the same cell) and
their burn dates differ by at most ``max_gap_days`` (``BANET_EVENT_MAX_GAP_DAYS``, default 5);
an event is a connected component of that relation.  Space alone merges fires that burn the
same area weeks apart; time alone splits one fire into days.  The rule follows the fire-event
trackers in use: NASA's FEDS / fireatlas (Chen et al. 2022, *Sci. Data* 9:249) joins active-fire
pixels into an existing fire when they are within a few hundred metres and the fire was active
within the last 5 days (``maxoffdays = 5``), and EFFIS merges burnt-area patches of successive
days into one fire when they touch within a few days.  With 0.01° cells, "touching" is the
8-neighbourhood; the 5-day gap bridges cloudy days without chaining separate fires.

Everything here is numpy on arrays of cells (row, col, day); the database side is
:mod:`banet_ops.publish.postgis`.  Links are found by sorting cells by grid position and looking
up the 4 forward neighbour offsets (plus the same cell on another date) with ``searchsorted``;
components come from ``scipy.sparse.csgraph``.  Per event, each grid cell counts once (its
first burn date in the event): area, cell count, mean confidence and the daily growth (area
first burned on each date).  Outlines come from GDAL's polygonize on the event's own bounding
box, so events that reuse a cell on other dates (re-burns) keep separate shapes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from banet_ops.product import Product
from banet_ops.regions import Region

DEFAULT_MAX_GAP_DAYS = 5
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# forward neighbour offsets (drow, dcol): with the same-cell link, every 8-neighbour pair once
_FORWARD = ((0, 1), (1, -1), (1, 0), (1, 1))


@dataclass(frozen=True)
class Cells:
    """Burned cells as columns: grid position, burn date (days since 1970-01-01), confidence,
    area (km²) and the id of the stored event each belongs to (0 = none yet)."""

    row: NDArray[np.int64]
    col: NDArray[np.int64]
    day: NDArray[np.int64]
    confidence: NDArray[np.float64]
    area_km2: NDArray[np.float64]
    event_id: NDArray[np.int64]

    @property
    def n(self) -> int:
        return int(self.row.size)

    @classmethod
    def build(cls, row: object, col: object, day: object, confidence: object, area_km2: object, event_id: object | None = None) -> Cells:
        r = np.asarray(row, dtype=np.int64)
        ev = np.zeros(r.size, dtype=np.int64) if event_id is None else np.asarray(event_id, dtype=np.int64)
        return cls(r, np.asarray(col, dtype=np.int64), np.asarray(day, dtype=np.int64),
                   np.asarray(confidence, dtype=np.float64), np.asarray(area_km2, dtype=np.float64), ev)  # fmt: skip


@dataclass(frozen=True)
class FireEvent:
    """One fire event: its cells' first/last burn dates, area, cell count, mean confidence,
    daily growth (ISO date -> km² first burned that day) and outline (GeoJSON MultiPolygon)."""

    label: int
    first_burn_date: dt.date
    last_burn_date: dt.date
    area_km2: float
    n_cells: int
    mean_confidence: float
    daily_area_km2: dict[str, float]
    geojson: str


def _day_to_date(day: int) -> dt.date:
    return dt.date.fromordinal(int(day) + _EPOCH_ORDINAL)


DENSE_LOOKUP_MAX_CELLS = 64_000_000  # grids up to this size look neighbours up in a dense table


class _KeyIndex:
    """Where each grid cell's rows start in a key-sorted array, and how many there are."""

    def __init__(self, keys: NDArray[np.int64], n_keys: int) -> None:
        self.keys = keys
        self.dense = n_keys <= DENSE_LOOKUP_MAX_CELLS
        if self.dense:
            self.count = np.bincount(keys, minlength=n_keys)
            self.start = np.cumsum(self.count) - self.count

    def ranges(self, targets: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        if self.dense:
            lo = self.start[targets]
            return lo, lo + self.count[targets]
        return np.searchsorted(self.keys, targets, side="left"), np.searchsorted(self.keys, targets, side="right")


def _pairs(index: _KeyIndex, targets: NDArray[np.int64], valid: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Index pairs (i, j) with keys[j] == targets[i] (keys sorted), for valid i."""
    src = np.flatnonzero(valid)
    lo, hi = index.ranges(targets[src])
    counts = hi - lo
    if counts.sum() == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    i = np.repeat(src, counts)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    j = starts + np.arange(int(counts.sum()))
    return i, j


def label_cells(cells: Cells, shape: tuple[int, int], max_gap_days: int = DEFAULT_MAX_GAP_DAYS) -> tuple[NDArray[np.int64], int]:
    """Event label (0..n-1) of every cell and the number of events ``n``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if cells.n == 0:
        return np.empty(0, np.int64), 0
    n_cols = shape[1]
    key = cells.row * n_cols + cells.col
    order = np.lexsort((cells.day, key))
    skey, sday, srow, scol = key[order], cells.day[order], cells.row[order], cells.col[order]
    index = _KeyIndex(skey, shape[0] * n_cols)
    src: list[NDArray[np.int64]] = []
    dst: list[NDArray[np.int64]] = []
    same = (skey[1:] == skey[:-1]) & (sday[1:] - sday[:-1] <= max_gap_days)  # one cell, dates chained
    idx = np.flatnonzero(same)
    src.append(idx)
    dst.append(idx + 1)
    for dr, dc in _FORWARD:
        valid = (scol + dc >= 0) & (scol + dc < n_cols) & (srow + dr < shape[0])
        i, j = _pairs(index, (srow + dr) * n_cols + scol + dc, valid)
        near = np.abs(sday[i] - sday[j]) <= max_gap_days
        src.append(i[near])
        dst.append(j[near])
    a, b = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(cells.n, cells.n))
    n, sorted_labels = connected_components(graph, directed=False)
    labels = np.empty(cells.n, dtype=np.int64)
    labels[order] = sorted_labels
    return _relabel_by_first_cell(labels, cells, int(n), shape), int(n)


def _relabel_by_first_cell(labels: NDArray[np.int64], cells: Cells, n: int, shape: tuple[int, int]) -> NDArray[np.int64]:
    """Renumber events by their first cell (date, row, col), so labels do not depend on input order."""
    day0 = int(cells.day.min())
    rank_key = (cells.day - day0) * (shape[0] * shape[1]) + cells.row * shape[1] + cells.col  # sorts like (date, row, col)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, labels, rank_key)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(n)
    return rank[labels]


def first_burns(cells: Cells, labels: NDArray[np.int64]) -> NDArray[np.int64]:
    """Indices of the cells that count for their event: each grid cell's first burn date in it."""
    span = int(cells.col.max()) + 1 if cells.n else 1
    cell_in_event = labels * (int(cells.row.max()) + 1 if cells.n else 1) * span + cells.row * span + cells.col
    order = np.lexsort((cells.day, cell_in_event))
    key = cell_in_event[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = key[1:] != key[:-1]
    return order[new]


def _polygonize(label: NDArray[np.int64], rows: NDArray[np.int64], cols: NDArray[np.int64], region: Region, n: int) -> list[list[object]]:
    """Polygons of each label's cells (no cell twice in a label), by GDAL's polygonize (4-connected).

    Labels that share no cell with another label go through one raster (one pass over their
    bounding box); the few that do (a cell re-burned in another event) get a pass each.
    """
    from rasterio.features import shapes
    from rasterio.transform import Affine

    polys: list[list[object]] = [[] for _ in range(n)]
    pixel = rows * region.shape[1] + cols
    _, inverse, counts = np.unique(pixel, return_inverse=True, return_counts=True)
    overlapping = np.zeros(n, dtype=bool)
    overlapping[label[counts[inverse] > 1]] = True
    groups = [~overlapping[label]] + [label == e for e in np.flatnonzero(overlapping)]
    for sel in groups:
        if not sel.any():
            continue
        r, c, v = rows[sel], cols[sel], label[sel]
        r0, c0 = int(r.min()), int(c.min())
        raster = np.zeros((int(r.max()) - r0 + 1, int(c.max()) - c0 + 1), dtype=np.int32)
        raster[r - r0, c - c0] = v + 1
        transform = region.affine() @ Affine.translation(c0, r0)
        for geom, value in shapes(raster, mask=raster > 0, connectivity=4, transform=transform):
            polys[int(value) - 1].append(geom["coordinates"])
    return polys


def summarize(cells: Cells, labels: NDArray[np.int64], n: int, region: Region) -> list[FireEvent]:
    """The statistics and outline of each of the ``n`` labelled events, in label order."""
    keep = first_burns(cells, labels)
    order = np.lexsort((cells.day[keep], labels[keep]))
    keep = keep[order]
    lab, day, area = labels[keep], cells.day[keep], cells.area_km2[keep]
    bounds = np.searchsorted(lab, np.arange(n + 1))
    n_cells = np.diff(bounds)
    total = np.bincount(lab, weights=area, minlength=n)
    conf = np.bincount(lab, weights=cells.confidence[keep], minlength=n)
    # (label, day) is sorted, so each distinct pair starts where either changes
    starts = np.ones(lab.size, dtype=bool)
    starts[1:] = (lab[1:] != lab[:-1]) | (day[1:] != day[:-1])
    first_of_pair = np.flatnonzero(starts)
    pairs = np.stack([lab[first_of_pair], day[first_of_pair]], axis=1)
    per_day = np.add.reduceat(area, first_of_pair) if area.size else area
    day_bounds = np.searchsorted(pairs[:, 0], np.arange(n + 1))
    polys = _polygonize(lab, cells.row[keep], cells.col[keep], region, n)
    out = []
    for e in range(n):
        d0, d1 = day_bounds[e], day_bounds[e + 1]
        out.append(
            FireEvent(
                label=e,
                first_burn_date=_day_to_date(int(pairs[d0, 1])),
                last_burn_date=_day_to_date(int(pairs[d1 - 1, 1])),
                area_km2=float(total[e]),
                n_cells=int(n_cells[e]),
                mean_confidence=float(conf[e] / n_cells[e]),
                daily_area_km2={_day_to_date(int(pairs[k, 1])).isoformat(): float(per_day[k]) for k in range(d0, d1)},
                geojson=json.dumps({"type": "MultiPolygon", "coordinates": polys[e]}, separators=(",", ":")),
            )
        )
    return out


@dataclass(frozen=True)
class IdMatch:
    """How new events take over stored ids: ``event_ids[label]`` (0 = a new event); ``retired``:
    stored ids no event kept -> 1 + the label that took most of their cells (0 = none did)."""

    event_ids: NDArray[np.int64]
    retired: dict[int, int]


def _pair_counts(a: NDArray[np.int64], b: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The distinct pairs ``(a, b)`` (non-negative), sorted, and how often each occurs.

    Packed into one int64 key when it fits (a 1-D sort is several times faster than
    ``np.unique(axis=0)``, which sorts the pairs as opaque records).
    """
    if a.size == 0:
        return np.empty((0, 2), np.int64), np.empty(0, np.int64)
    base = int(b.max()) + 1
    if (int(a.max()) + 1) * base >= 2**63:
        return np.unique(np.stack([a, b], axis=1), axis=0, return_counts=True)  # type: ignore[no-any-return]
    keys, counts = np.unique(a.astype(np.int64) * base + b, return_counts=True)
    return np.stack([keys // base, keys % base], axis=1), counts


def match_ids(cells: Cells, labels: NDArray[np.int64], n: int, stored: set[int]) -> IdMatch:
    """Give each new event the stored id it shares most cells with (ties: the oldest id).

    Greedy over (shared cells desc, stored id asc): an event extended by a day keeps its id,
    two events joined by new cells keep the larger one's id, and the other pieces of a split
    event get new ids.  Stored ids in ``stored`` that no event takes are retired.
    """
    old = cells.event_id
    has = old > 0
    combos, counts = _pair_counts(labels[has], old[has])
    order = np.lexsort((combos[:, 1], -counts)) if counts.size else np.empty(0, np.int64)
    event_ids = np.zeros(n, dtype=np.int64)
    taken: set[int] = set()
    best_home: dict[int, int] = {}
    for k in order:
        label, sid = int(combos[k, 0]), int(combos[k, 1])
        best_home.setdefault(sid, label)
        if event_ids[label] == 0 and sid not in taken:
            event_ids[label] = sid
            taken.add(sid)
    retired = {sid: (best_home[sid] + 1 if sid in best_home else 0) for sid in sorted(stored - taken)}
    return IdMatch(event_ids=event_ids, retired=retired)


def product_cells(product: Product) -> Cells:
    """The burned cells of one product (no stored events)."""
    rows, cols = np.nonzero(product.burned)
    days = product.burn_date[rows, cols].astype("datetime64[D]").astype(np.int64)
    area = product.region.row_cell_area_km2()[rows]
    return Cells.build(rows, cols, days, product.confidence[rows, cols], area)


def fire_events(product: Product, max_gap_days: int = DEFAULT_MAX_GAP_DAYS) -> list[FireEvent]:
    """The fire events of one product on its own (the publisher uses the stored cells around it)."""
    cells = product_cells(product)
    labels, n = label_cells(cells, product.region.shape, max_gap_days)
    return summarize(cells, labels, n, product.region)
