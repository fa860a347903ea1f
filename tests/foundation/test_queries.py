"""The example analyst queries in sql/queries run with psql and give the expected answers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from .seed import PT, QUERIES, Seed, cell_area, psql_query, seed

# exact answers on hand-made rows; tests/publish/test_analyst.py runs every file with its defaults as a reader
TESTED = {
    "burned_area_in_polygon",
    "largest_fire_events_of_month",
    "cells_burned_twice",
    "burned_area_per_region_month",
    "burned_area_per_week_in_polygon",
    "large_fire_events",
    "fire_event_daily_growth",
}


@pytest.fixture(scope="module")
def seeded(migrated_db: str) -> tuple[str, Seed]:
    engine = sa.create_engine(migrated_db)
    with engine.begin() as conn:
        s = seed(conn)
    engine.dispose()
    return migrated_db, s


def test_every_query_is_documented_and_tested() -> None:
    files = {p.stem for p in QUERIES.glob("*.sql")}
    assert files == TESTED
    for name in files:
        text = (QUERIES / f"{name}.sql").read_text()
        assert text.startswith("-- "), name
        assert "Parameters" in text and "Example:" in text, name


def test_burned_area_in_polygon(seeded: tuple[str, Seed]) -> None:
    url, _ = seeded
    px = PT.pixel_size
    west, east = PT.left + 100 * px, PT.left + 102.5 * px  # cols 100 and 101 whole, half of 102
    south, north = PT.top - 101 * px - 0.002, PT.top - 100 * px + 0.002  # row 100 (rows 99/101 are empty)
    polygon = f"POLYGON(({west} {south},{east} {south},{east} {north},{west} {north},{west} {south}))"
    rows = psql_query(url, "burned_area_in_polygon", polygon=polygon, first_day="2023-08-01", last_day="2023-08-31", product="monthly")
    assert len(rows) == 1
    region, n_cells, km2, first, last = rows[0]
    assert (region, int(n_cells), first, last) == ("PT", 3, "2023-08-05", "2023-08-05")
    assert float(km2) == pytest.approx(2.5 * cell_area(PT, 100), rel=1e-4)
    # outside the period: nothing
    assert psql_query(url, "burned_area_in_polygon", polygon=polygon, first_day="2023-09-01", last_day="2023-09-30", product="monthly") == []
    # the nrt product has its own cell there
    nrt = psql_query(url, "burned_area_in_polygon", polygon=polygon, first_day="2023-08-01", last_day="2023-08-31", product="nrt")
    assert [r[:2] for r in nrt] == [["PT", "1"]]


def test_largest_fire_events_of_month(seeded: tuple[str, Seed]) -> None:
    url, s = seeded
    rows = psql_query(url, "largest_fire_events_of_month", month="2023-08-15", product="monthly")
    assert [int(r[0]) for r in rows] == [s.events["e2"], s.events["e1"]]
    assert [float(r[5]) for r in rows] == [50.0, 10.0] and [int(r[4]) for r in rows] == [11, 3]  # area, duration
    assert psql_query(url, "largest_fire_events_of_month", month="2023-08-01", n=1, product="monthly")[0][0] == str(s.events["e2"])
    september = psql_query(url, "largest_fire_events_of_month", month="2023-09-01", product="monthly")
    assert [int(r[0]) for r in september] == [s.events["e4"], s.events["e3"]]


def test_cells_burned_twice(seeded: tuple[str, Seed]) -> None:
    url, s = seeded
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the events the publisher would have given the cells
        for row, burn, event in ((200, "2023-08-20", "e2"), (200, "2023-10-25", "e4"), (300, "2023-08-10", "e1"), (300, "2023-08-14", "e1")):
            conn.execute(sa.text('UPDATE banet.burned_cell SET event_id = :e WHERE product = \'monthly\' AND "row" = :r AND burn_date = :d'),
                         {"e": s.events[event], "r": row, "d": burn})  # fmt: skip
    engine.dispose()
    rows = psql_query(url, "cells_burned_twice", product="monthly")
    # (300, 60) has two dates 4 days apart in one fire: not twice
    assert [r[:4] + r[5:8] for r in rows] == [["PT", "200", "50", "2", "2023-08-20", "2023-10-25", "66"]]
    assert sorted(int(x) for x in rows[0][4].strip("{}").split(",")) == sorted([s.events["e2"], s.events["e4"]])
    lon, lat = PT.xy(200, 50)
    assert (float(rows[0][8]), float(rows[0][9])) == pytest.approx((float(lon), float(lat)), abs=1e-4)
    assert psql_query(url, "cells_burned_twice", last_day="2023-09-30", product="monthly") == []  # a period holding one of the fires


def test_burned_area_per_region_month(seeded: tuple[str, Seed]) -> None:
    url, _ = seeded
    rows = psql_query(url, "burned_area_per_region_month", first_month="2023-01-01", last_month="2023-12-01", product="monthly")
    assert [(r[0], r[1], int(r[2])) for r in rows] == [("PT", "2023-08", 6), ("PT", "2023-10", 1)]
    aug_area = 3 * cell_area(PT, 100) + cell_area(PT, 200) + 2 * cell_area(PT, 300)
    assert float(rows[0][3]) == pytest.approx(aug_area, abs=1e-3)
    region_area = float(PT.row_cell_area_km2().sum()) * PT.shape[1]
    assert float(rows[0][4]) == pytest.approx(100 * aug_area / region_area, rel=1e-3)
