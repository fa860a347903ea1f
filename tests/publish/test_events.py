"""Fire events in space and time: hand-made scenes, in memory and through publishing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import sqlalchemy as sa

from banet_ops.db.engine import get_engine
from banet_ops.publish import publish_product
from banet_ops.publish.events import Cells, _pair_counts, fire_events, label_cells, match_ids, summarize

from .helpers import build_product, new_region

NAT = np.datetime64("NaT")


def _dates(region, cells: dict[tuple[int, int], str]) -> np.ndarray:
    out = np.full(region.shape, NAT, dtype="datetime64[D]")
    for (r, c), d in cells.items():
        out[r, c] = np.datetime64(d)
    return out


def test_fires_touching_in_space_weeks_apart_are_two_events():
    region = new_region(rows=10, cols=20)
    cells = {(3, c): "2017-09-05" for c in range(2, 6)} | {(3, c): "2017-10-01" for c in range(6, 10)}  # side by side, 26 days apart
    events = fire_events(build_product(region, _dates(region, cells), target=dt.date(2017, 10, 27)))
    assert [(e.first_burn_date, e.last_burn_date, e.n_cells) for e in events] == [
        (dt.date(2017, 9, 5), dt.date(2017, 9, 5), 4),
        (dt.date(2017, 10, 1), dt.date(2017, 10, 1), 4),
    ]


def test_a_fire_growing_for_six_days_is_one_event_with_its_daily_growth():
    region = new_region(rows=10, cols=20)
    cells = {(4, 2 + 2 * d + k): f"2017-10-{10 + d:02d}" for d in range(6) for k in (0, 1)}
    cells[5, 3] = "2017-10-10"
    (event,) = fire_events(build_product(region, _dates(region, cells), target=dt.date(2017, 10, 27)))
    a4, a5 = region.row_cell_area_km2()[[4, 5]]
    assert (event.first_burn_date, event.last_burn_date, event.n_cells) == (dt.date(2017, 10, 10), dt.date(2017, 10, 15), 13)
    assert list(event.daily_area_km2) == [f"2017-10-{d}" for d in range(10, 16)]
    assert event.daily_area_km2["2017-10-10"] == pytest.approx(2 * a4 + a5)
    assert event.daily_area_km2["2017-10-15"] == pytest.approx(2 * a4)
    assert sum(event.daily_area_km2.values()) == pytest.approx(event.area_km2)


def test_gap_rule_is_inclusive_and_a_re_dated_cell_counts_once():
    cells = Cells.build([0, 0, 0, 0], [0, 1, 1, 5], [100, 105, 108, 100], [0.6, 0.8, 0.9, 1.0], [1.0, 1.0, 1.0, 1.0])
    labels, n = label_cells(cells, (10, 10), max_gap_days=5)
    assert n == 2 and labels.tolist() == [0, 0, 0, 1]  # 5 days apart: linked; the far cell alone
    labels, n = label_cells(cells, (10, 10), max_gap_days=4)
    assert labels.tolist() == [0, 2, 2, 1]  # (0,1) re-dated 3 days later stays with itself; numbered by first cell
    region = new_region(rows=10, cols=10)
    from banet_ops.publish.events import summarize

    first, *_ = summarize(cells, *label_cells(cells, (10, 10), 5), region)
    assert first.n_cells == 2 and first.mean_confidence == pytest.approx(0.7)  # (0,1) counts once, at its first date


def test_neighbours_do_not_wrap_across_the_grid_edge():
    cells = Cells.build([0, 1], [9, 0], [100, 100], [1, 1], [1, 1])  # last column of row 0, first of row 1
    assert label_cells(cells, (10, 10))[1] == 2


def test_ids_follow_the_largest_overlap_and_merges_keep_the_larger_event():
    # stored events 7 (3 cells) and 9 (1 cell) are joined by a new cell: 7 stays, 9 is merged into it
    cells = Cells.build([0, 0, 0, 0, 0], [0, 1, 2, 3, 4], [100] * 5, [1] * 5, [1] * 5, [7, 7, 7, 0, 9])
    labels, n = label_cells(cells, (10, 10))
    match = match_ids(cells, labels, n, {7, 9, 11})
    assert match.event_ids.tolist() == [7] and match.retired == {9: 1, 11: 0}


def _events(url, region):
    with get_engine(url).connect() as conn:
        return conn.execute(
            sa.text("SELECT id, first_burn_date, last_burn_date, n_cells, duration_days, run_id FROM banet.fire_event WHERE region = :r ORDER BY id"),
            {"r": region},
        ).all()


def test_pair_counts_equal_numpy_unique_of_the_pairs():
    rng = np.random.default_rng(3)
    for a_max, b_max in ((50, 7), (3, 2**40), (2**33, 2**33)):  # the last one does not fit one int64 key
        a, b = rng.integers(0, a_max, 5000), rng.integers(1, b_max, 5000)
        pairs, counts = _pair_counts(a, b)
        want_pairs, want_counts = np.unique(np.stack([a, b], axis=1), axis=0, return_counts=True)
        np.testing.assert_array_equal(pairs, want_pairs)
        np.testing.assert_array_equal(counts, want_counts)
    empty_pairs, empty_counts = _pair_counts(np.empty(0, np.int64), np.empty(0, np.int64))
    assert empty_pairs.shape == (0, 2) and empty_counts.size == 0


def test_daily_areas_of_random_events_sum_to_their_areas():
    rng = np.random.default_rng(5)
    region = new_region(rows=40, cols=50)
    n = 600
    cells = Cells(
        row=rng.integers(0, 40, n), col=rng.integers(0, 50, n), day=rng.integers(8000, 8030, n),
        confidence=rng.random(n).astype(np.float32), area_km2=rng.random(n) + 0.5, event_id=np.zeros(n, np.int64),
    )
    labels, n_events = label_cells(cells, region.shape)
    events = summarize(cells, labels, n_events, region)
    assert len(events) == n_events > 1
    assert any(len(e.daily_area_km2) > 1 for e in events)  # events span days, so the per-day split is tested
    for e in events:
        assert sum(e.daily_area_km2.values()) == pytest.approx(e.area_km2)
        days = sorted(e.daily_area_km2)
        assert days[0] == e.first_burn_date.isoformat() and days[-1] == e.last_burn_date.isoformat()


def test_nrt_runs_one_day_apart_keep_one_row_per_fire_with_a_stable_id(db_url, make_settings):
    """Five daily NRT runs over a growing fire: one event row, same id, plausible dates; history per run."""
    region = new_region(rows=20, cols=30)
    settings = make_settings(db_url)
    start = dt.date(2017, 10, 10)
    runs = []
    for k in range(5):
        target = start + dt.timedelta(days=k + 1)
        cells = {(5 + r, 3 + 2 * d + j): (start + dt.timedelta(days=d)).isoformat() for d in range(k + 1) for j in (0, 1) for r in (0, 1)}
        cells[15, 25] = "2017-09-01"  # an unrelated fire, also in every window
        runs.append(publish_product(build_product(region, _dates(region, cells), target=target, seed=k), settings=settings))
    rows = _events(db_url, region.name)
    fire = [r for r in rows if r[1] == start]
    assert len(fire) == 1 and len(rows) == 2  # the fire once, plus the other fire once
    fid, first, last, n_cells, duration, run_id = fire[0]
    assert (first, last, n_cells, duration, run_id) == (start, start + dt.timedelta(days=4), 20, 5, runs[-1].run_id)
    with get_engine(db_url).connect() as conn:
        history = conn.execute(sa.text("SELECT run_id, change, n_cells FROM banet.fire_event_version WHERE event_id = :e ORDER BY run_id"), {"e": fid}).all()
        growth = conn.execute(
            sa.text("SELECT burn_date, round(cumulative_area_km2::numeric, 6) FROM banet.fire_event_growth WHERE event_id = :e ORDER BY burn_date"),
            {"e": fid},
        ).all()
        cell_events = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT event_id) FROM banet.burned_cell WHERE region = :r AND burn_date >= :d"), {"r": region.name, "d": start}
        ).one()
    assert history == [(runs[0].run_id, "created", 4)] + [(runs[k].run_id, "updated", 4 * (k + 1)) for k in range(1, 5)]
    a = region.row_cell_area_km2()
    assert [g[0] for g in growth] == [start + dt.timedelta(days=d) for d in range(5)]
    assert float(growth[-1][1]) == pytest.approx(10 * (a[5] + a[6]), abs=1e-5)
    assert tuple(cell_events) == (20, 1)


def test_republishing_a_window_that_splits_an_event(db_url, make_settings):
    """A bridge cell disappears in a re-run: the larger piece keeps the id, the other gets a new one."""
    region = new_region(rows=10, cols=30)
    settings = make_settings(db_url)
    target = dt.date(2017, 10, 27)
    cells = {(3, c): "2017-10-05" for c in range(2, 9)} | {(3, c): "2017-10-05" for c in range(10, 13)} | {(3, 9): "2017-10-06"}
    first = publish_product(build_product(region, _dates(region, cells), target=target), settings=settings)
    ((eid, *_),) = _events(db_url, region.name)
    del cells[3, 9]
    second = publish_product(build_product(region, _dates(region, cells), target=target, snapshot="snap-2"), settings=settings)
    rows = _events(db_url, region.name)
    assert [(r[0] == eid, r[3]) for r in rows] == [(True, 7), (False, 3)]
    assert second.event_changes == {"created": 1, "updated": 1, "retired": 0, "unchanged": 0} and first.n_events == 1


def test_rebuild_events_after_the_migration_restores_the_events_and_keeps_ids_later(db_url, make_settings):
    from banet_ops.publish.event_db import rebuild_events

    region = new_region(rows=10, cols=30)
    settings = make_settings(db_url)
    cells = {(3, c): "2017-10-05" for c in range(2, 6)} | {(3, c): "2017-09-01" for c in range(6, 9)}
    publish_product(build_product(region, _dates(region, cells), target=dt.date(2017, 10, 27)), settings=settings)
    before = [r[1:5] for r in _events(db_url, region.name)]
    with get_engine(db_url).begin() as conn:  # as migration 0009 leaves a database: cells without events
        conn.execute(sa.text("DELETE FROM banet.fire_event WHERE region = :r"), {"r": region.name})
        conn.execute(sa.text("UPDATE banet.burned_cell SET event_id = NULL WHERE region = :r"), {"r": region.name})
    assert rebuild_events(db_url, 5, region.name) == [(region.name, "nrt", 2)]
    rebuilt = _events(db_url, region.name)
    assert [r[1:5] for r in rebuilt] == before
    assert rebuild_events(db_url, 5, region.name) == [(region.name, "nrt", 2)] and _events(db_url, region.name) == rebuilt  # ids kept
    assert rebuild_events(db_url, 40, region.name) == [(region.name, "nrt", 1)]  # a wider gap joins the two fires
    ((eid, first, last, n_cells, *_),) = _events(db_url, region.name)
    assert eid in {r[0] for r in rebuilt} and (first, last, n_cells) == (dt.date(2017, 9, 1), dt.date(2017, 10, 5), 7)
