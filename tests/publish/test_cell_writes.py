"""The cell write path without a database: primary-key order, binary COPY layouts, the write plan."""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
import shapely

from banet_ops.errors import DatabaseError
from banet_ops.publish.postgis import (
    PG_EPOCH,
    CellRows,
    ScopeRows,
    cell_copy_buffer,
    cell_keys,
    cell_rows,
    grid_lines,
    parse_scope_copy,
    plan_cells,
    stage_copy_buffer,
)

from .helpers import build_product, new_region

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


def _dates(region, cells):
    out = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    for (r, c), d in cells.items():
        out[r, c] = np.datetime64(d)
    return out


def _cells(keys: list[tuple[str, int, int]], conf: list[float] | None = None) -> CellRows:
    n = len(keys)
    return CellRows(
        row=np.array([k[1] for k in keys], dtype=np.int32),
        col=np.array([k[2] for k in keys], dtype=np.int32),
        burn_date=np.array([k[0] for k in keys], dtype="datetime64[D]"),
        confidence=np.array(conf or [0.5] * n, dtype=np.float32),
        area_km2=np.full(n, 1.2),
    )


def test_cell_rows_are_in_primary_key_order():
    region = new_region(rows=5, cols=5)
    cells = {(0, 4): "2017-10-09", (1, 1): "2017-10-08", (4, 0): "2017-10-08", (2, 3): "2017-10-09", (3, 3): "2017-10-01"}
    product = build_product(region, _dates(region, cells), target=dt.date(2017, 10, 27))
    rows = cell_rows(product)
    got = [(str(d), int(r), int(c)) for d, r, c in zip(rows.burn_date, rows.row, rows.col, strict=True)]
    assert got == [("2017-10-01", 3, 3), ("2017-10-08", 1, 1), ("2017-10-08", 4, 0), ("2017-10-09", 0, 4), ("2017-10-09", 2, 3)]
    np.testing.assert_array_equal(rows.confidence, product.confidence[rows.row, rows.col])
    np.testing.assert_array_equal(rows.area_km2, region.row_cell_area_km2()[rows.row])
    keys = cell_keys(rows.days, rows.row, rows.col)
    assert np.all(np.diff(keys) > 0)


def test_cell_copy_buffer_layout_and_polygons():
    region = new_region(rows=4, cols=4)
    product = build_product(region, _dates(region, {(1, 2): "2000-01-03", (3, 0): "1999-12-31"}), target=dt.date(2000, 1, 20))
    rows = cell_rows(product)  # 1999-12-31 first
    buf = bytes(cell_copy_buffer(rows, region, "nrt", 42))
    assert buf.startswith(HEADER) and buf.endswith(b"\xff\xff")
    body = buf[len(HEADER) : -2]
    name = region.name.encode()
    size = 2 + (4 + len(name)) + (4 + 3) + 3 * 8 + (4 + 97) + 8 + 12 + 12
    assert len(body) == 2 * size
    for i, (r, c, days) in enumerate([(3, 0, -1), (1, 2, 2)]):
        t = body[i * size : (i + 1) * size]
        assert struct.unpack(">h", t[:2])[0] == 9
        off = 2
        fields = []
        for _ in range(9):
            (n,) = struct.unpack(">i", t[off : off + 4])
            fields.append(t[off + 4 : off + 4 + n])
            off += 4 + n
        assert off == size
        assert fields[0] == name and fields[1] == b"nrt"
        assert [struct.unpack(">i", f)[0] for f in fields[2:5]] == [days, r, c]
        geom = shapely.from_wkb(fields[5])
        assert shapely.get_srid(geom) == 4326
        left, top, px = Decimal(repr(region.left)), Decimal(repr(region.top)), Decimal(repr(region.pixel_size))
        west, east = float(left + c * px), float(left + (c + 1) * px)  # exact decimals, rounded once
        south, north = float(top - (r + 1) * px), float(top - r * px)
        # the corners of ST_MakeEnvelope, in its order
        assert list(geom.exterior.coords) == [(west, south), (west, north), (east, north), (east, south), (west, south)]
        assert struct.unpack(">f", fields[6])[0] == pytest.approx(product.confidence[r, c])
        assert struct.unpack(">q", fields[7])[0] == 42
        assert struct.unpack(">d", fields[8])[0] == region.row_cell_area_km2()[r]


def test_grid_lines_are_the_exact_decimal_coordinates():
    idx = np.arange(0, 3000)
    got = grid_lines(-8.0, 0.01, idx)
    assert list(got) == [float(Decimal("-8.0") + int(i) * Decimal("0.01")) for i in idx]
    assert grid_lines(41.0, -0.01, np.array([3]))[0] == 40.97
    assert list(grid_lines(0.1, 1 / 3, np.array([0, 3]))) == [0.1, 0.1 + 3 * (1 / 3)]  # too many digits: plain floats


def test_stage_copy_buffer_layout():
    cells = _cells([("2021-08-01", 7, 9)], [0.75])
    buf = bytes(stage_copy_buffer(cells))
    assert buf.startswith(HEADER) and buf.endswith(b"\xff\xff")
    fields = struct.unpack(">hiiiiiiifidiq", buf[len(HEADER) : -2])
    assert fields[0] == 6 and fields[11:] == (8, 0)  # no events assigned: 0
    assert fields[2] == (np.datetime64("2021-08-01") - PG_EPOCH).astype(int) and fields[4] == 7 and fields[6] == 9
    assert (fields[8], fields[10]) == (0.75, 1.2)


def _scope_stream(rows: list[tuple]) -> bytes:
    """Scope rows (date, row, col, confidence, run, area[, event]) as the binary COPY of fetch_scope."""
    out = bytearray(HEADER)
    for d, r, c, conf, run, area, *event in rows:
        days = int((np.datetime64(d) - PG_EPOCH).astype(int))
        out += struct.pack(">hiiiiiiifiqidiq", 7, 4, days, 4, r, 4, c, 4, conf, 8, run, 8, area, 8, event[0] if event else 0)
    return bytes(out + b"\xff\xff")


def test_parse_scope_copy_sorts_by_key_and_rejects_other_streams():
    old = parse_scope_copy(_scope_stream([("2021-08-02", 1, 1, 0.5, 3, 1.0), ("2021-08-01", 5, 5, 0.25, 4, 2.0)]))
    assert old.n == 2
    assert list(old.run_id) == [4, 3] and list(old.confidence) == [0.25, 0.5] and list(old.area_km2) == [2.0, 1.0]
    assert old.keys[0] == cell_keys(np.array([(np.datetime64("2021-08-01") - PG_EPOCH).astype(int)]), np.array([5]), np.array([5]))[0]
    assert parse_scope_copy(_scope_stream([])).n == 0
    with pytest.raises(DatabaseError, match="binary COPY"):
        parse_scope_copy(b"row\tcol\n")
    with pytest.raises(DatabaseError, match="bytes"):
        parse_scope_copy(_scope_stream([("2021-08-01", 1, 1, 0.5, 3, 1.0)])[:-5] + b"\xff\xff")


def test_plan_cells_inserts_updates_deletes_and_skips_identical_rows():
    old = parse_scope_copy(
        _scope_stream([
            ("2021-08-01", 1, 1, 0.5, 7, 1.2),  # same values, same run: untouched
            ("2021-08-01", 2, 2, 0.5, 7, 1.2),  # new confidence: update
            ("2021-08-02", 3, 3, 0.5, 6, 1.2),  # same values, older run: update (run_id)
            ("2021-08-03", 4, 4, 0.5, 7, 1.2),  # re-dated in the new product: delete + insert
            ("1999-12-31", 0, 0, 0.5, 7, 1.2),  # gone
        ])
    )  # fmt: skip
    new = _cells(
        [("2021-08-01", 1, 1), ("2021-08-01", 2, 2), ("2021-08-02", 3, 3), ("2021-08-04", 4, 4), ("2021-08-05", 9, 9)],
        [0.5, 0.875, 0.5, 0.5, 0.5],
    )
    plan = plan_cells(new, old, run_id=7)
    key = lambda c: [(str(d), int(r), int(k)) for d, r, k in zip(c.burn_date, c.row, c.col, strict=True)]  # noqa: E731
    assert key(plan.insert) == [("2021-08-04", 4, 4), ("2021-08-05", 9, 9)]
    assert key(plan.update) == [("2021-08-01", 2, 2), ("2021-08-02", 3, 3)]
    assert list(plan.update.confidence) == [0.875, 0.5]
    assert key(plan.delete) == [("1999-12-31", 0, 0), ("2021-08-03", 4, 4)]
    assert plan.n_unchanged == 1
    # nothing in the scope yet: everything is inserted
    empty = plan_cells(new, ScopeRows(np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0)), run_id=7)
    assert (empty.insert.n, empty.update.n, empty.delete.n, empty.n_unchanged) == (5, 0, 0, 0)
    # the same product again: nothing to write
    again = parse_scope_copy(_scope_stream([(d, r, c, 0.5, 7, 1.2) for d, r, c in key(new)]))
    same = plan_cells(_cells(key(new)), again, run_id=7)
    assert (same.insert.n, same.update.n, same.delete.n, same.n_unchanged) == (0, 0, 0, 5)
    # ... unless a cell's fire event changed: that cell is rewritten, with its new event
    with_events = parse_scope_copy(_scope_stream([(d, r, c, 0.5, 7, 1.2, 40 + i) for i, (d, r, c) in enumerate(key(new))]))
    cells = replace(_cells(key(new)), event_id=np.array([40, 41, 99, 43, 44], dtype=np.int64))
    moved = plan_cells(cells, with_events, run_id=7)
    assert key(moved.update) == [("2021-08-02", 3, 3)] and list(moved.update.event_id) == [99] and moved.n_unchanged == 4


def test_plan_cells_refuses_unsorted_cells():
    cells = _cells([("2021-08-02", 1, 1), ("2021-08-01", 1, 1)])
    empty = ScopeRows(np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0))
    with pytest.raises(DatabaseError, match="sorted"):
        plan_cells(cells, empty, run_id=1)


def test_cell_copy_buffer_carries_the_event_ids():
    region = new_region(rows=4, cols=4)
    product = build_product(region, _dates(region, {(1, 2): "2000-01-03", (3, 0): "1999-12-31"}), target=dt.date(2000, 1, 20))
    rows = replace(cell_rows(product), event_id=np.array([7, 9], dtype=np.int64))
    plain, with_events = bytes(cell_copy_buffer(replace(rows, event_id=None), region, "nrt", 42)), bytes(cell_copy_buffer(rows, region, "nrt", 42))
    size = (len(plain) - len(HEADER) - 2) // 2
    assert len(with_events) == len(plain) + 2 * 12
    for i, event in enumerate((7, 9)):
        t = with_events[len(HEADER) + i * (size + 12) : len(HEADER) + (i + 1) * (size + 12)]
        assert struct.unpack(">h", t[:2])[0] == 10 and struct.unpack(">iq", t[-12:]) == (8, event)
