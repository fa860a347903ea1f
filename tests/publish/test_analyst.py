"""The analyst's journey on a demo-like database: a `banet_reader` login with a password runs every
file of sql/queries with its defaults and gets rows; one row per fire; OGR lists the layers cleanly.

The data are published like the demo's: five NRT runs four days apart (64-day windows) over a
region with a fire growing for six days, a small June fire and an August fire that touches it
and re-burns 15 of its cells, and a run that re-dates a few cells by a day (the next one undoes it).
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa

from banet_ops.localstack.postgres import pg_bin
from banet_ops.publish import publish_product
from banet_ops.regions import Region
from banet_ops.settings import Settings

from .helpers import QUERIES, analyst_database, build_product, psql, reader_login

REGION = Region(name="DEMO", bbox=(-8.30, 39.80, -7.70, 40.40), pixel_size=0.01)
TARGETS = [dt.date(2024, 8, 3) + dt.timedelta(days=4 * k) for k in range(5)]
MAIN, JUNE, AUGUST = dt.date(2024, 7, 22), dt.date(2024, 6, 3), dt.date(2024, 8, 9)


def scene(target: dt.date, k: int) -> np.ndarray:
    """Burn dates the NRT run of ``target`` sees (the fires up to that day)."""
    dates = np.full(REGION.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    yy, xx = np.mgrid[0 : REGION.shape[0], 0 : REGION.shape[1]]
    dist = np.hypot(yy - 20, xx - 20)
    for d in range(6):  # main fire: a disc growing for six days
        ring = (dist < 3 + 2 * d) & np.isnat(dates)
        dates[ring] = np.datetime64(MAIN + dt.timedelta(days=d))
    if k % 2:  # odd runs date a few edge cells one day later: the same fire
        dates[20, 31:33] = np.datetime64(MAIN + dt.timedelta(days=6))
    for d in range(3):  # June fire, rows 40-42: inside the first run's window only (it stays from that run)
        dates[40 + d, 10:20] = np.datetime64(JUNE + dt.timedelta(days=d))
    for d in range(4):  # August fire: starts east of the June scar, spreads over part of it
        day = AUGUST + dt.timedelta(days=d)
        if day <= target:
            dates[40:46, 24 - 3 * d : 27 - 3 * d] = np.datetime64(day)
    outside = (dates > np.datetime64(target)) | (dates <= np.datetime64(target - dt.timedelta(days=63)))  # NRT effective window
    dates[outside] = np.datetime64("NaT")
    return dates


@pytest.fixture(scope="module")
def demo_db(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[int]]]:
    with analyst_database(pg_url) as url:
        settings = Settings(home=tmp_path_factory.mktemp("home"), database_url=url, products_root=str(tmp_path_factory.mktemp("products")))
        runs = [publish_product(build_product(REGION, scene(t, k), target=t, seed=k), settings=settings).run_id for k, t in enumerate(TARGETS)]
        yield url, runs


@pytest.fixture(scope="module")
def reader(demo_db: tuple[str, list[int]]) -> Iterator[sa.URL]:
    """A login in banet_reader with a password, as docs/analysts.md adds one."""
    with reader_login(demo_db[0]) as url:
        yield url


@pytest.mark.parametrize("name", sorted(p.stem for p in QUERIES.glob("*.sql")))
def test_every_query_returns_rows_with_its_defaults_as_a_reader(reader: sa.URL, name: str) -> None:
    text = (QUERIES / f"{name}.sql").read_text()
    assert text.startswith("-- ") and "Parameters" in text and "Example:" in text
    assert psql(reader, name), f"{name}.sql returned no rows with its defaults"


def test_a_wrong_password_is_refused(reader: sa.URL) -> None:
    out = subprocess.run([str(pg_bin() / "psql"), "-w", "-X", "-c", "SELECT 1", reader.set(password="wrong").render_as_string(hide_password=False)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert out.returncode != 0 and "password authentication failed" in out.stderr


def test_one_row_per_fire_with_plausible_dates_and_no_double_counting(demo_db: tuple[str, list[int]], reader: sa.URL) -> None:
    engine = sa.create_engine(reader.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        fires = conn.execute(
            sa.text("SELECT id, first_burn_date, last_burn_date, duration_days, area_km2 FROM banet.fire_event ORDER BY first_burn_date")
        ).all()
        cell_area = conn.execute(sa.text('SELECT sum(a) FROM (SELECT DISTINCT ON (event_id, "row", col) area_km2 a FROM banet.burned_cell) c')).scalar_one()
        history = conn.execute(sa.text("SELECT count(*), count(DISTINCT event_id) FROM banet.fire_event_version")).one()
        ids = conn.execute(sa.text("SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE event_id IS NULL) FROM banet.v_burned_cell")).one()
    engine.dispose()
    assert [(f[1], f[2], f[3]) for f in fires] == [
        (JUNE, JUNE + dt.timedelta(days=2), 3),
        (MAIN, MAIN + dt.timedelta(days=5), 6),  # the cells one run re-dated to 07-28 are back on 07-27
        (AUGUST, AUGUST + dt.timedelta(days=3), 4),
    ]
    assert sum(f[4] for f in fires) == pytest.approx(cell_area)
    assert history[1] == 3 and history[0] > 3  # versions of the same three fires across the runs
    assert ids[0] == ids[1] > 0 and ids[2] == 0  # the GIS layer's integer key is unique; every cell names its fire
    largest = psql(reader, "largest_fire_events_of_month", month="2024-07-01")
    assert [int(r[0]) for r in largest] == [fires[1][0]]  # the main fire once, not once per run
    twice = psql(reader, "cells_burned_twice")
    assert len(twice) == 3 * 5 and {(r[3], r[5], r[6]) for r in twice} == {
        ("2", "2024-06-03", "2024-08-11"),
        ("2", "2024-06-04", "2024-08-11"),
        ("2", "2024-06-05", "2024-08-11"),
        ("2", "2024-06-03", "2024-08-12"),
        ("2", "2024-06-04", "2024-08-12"),
        ("2", "2024-06-05", "2024-08-12"),
    }
    growth = psql(reader, "fire_event_daily_growth", event_id=fires[1][0])
    assert [r[1] for r in growth] == [(MAIN + dt.timedelta(days=d)).isoformat() for d in range(6)]
    assert float(growth[-1][4]) == pytest.approx(fires[1][4], abs=1e-3)


@pytest.mark.parametrize("schemas", ["", " schemas=banet"], ids=["plain", "schemas=banet"])
def test_ogrinfo_as_the_reader_lists_the_analyst_layers_without_warnings(reader: sa.URL, schemas: str) -> None:
    """Plain ``PG:…`` is what QGIS's and GDAL's layer discovery does by default: the same five layers, no partition, no warning."""
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo is None:
        pytest.fail("expected ogrinfo (Debian gdal-bin, installed by scripts/install.sh), found none")
    conn = f"PG:host={reader.host} port={reader.port} dbname={reader.database} user={reader.username} password={reader.password}{schemas}"
    listing = subprocess.run([ogrinfo, "-ro", conn], capture_output=True, text=True, check=False, timeout=120)
    assert listing.returncode == 0 and not listing.stderr, listing.stderr
    layers = sorted(line.split(": ", 1)[1].split(" (")[0].removeprefix("banet.") for line in listing.stdout.splitlines() if line[:1].isdigit())
    assert layers == ["fire_event", "fire_event_version", "region", "v_burned_cell", "v_latest_fire_events"]
    full = subprocess.run([ogrinfo, "-ro", "-so", "-al", conn], capture_output=True, text=True, check=False, timeout=120)
    assert full.returncode == 0 and not full.stderr, full.stderr  # no warning, no error (permission denied, multi-column key)
    fids = {block.split("\n", 1)[0].strip().removeprefix("banet."): line.split(" = ", 1)[1]
            for block in full.stdout.split("Layer name: ")[1:] for line in block.splitlines() if line.startswith("FID Column = ")}  # fmt: skip
    assert fids == {"fire_event": "id", "fire_event_version": "id", "region": "id"}  # tables: their integer primary key
    engine = sa.create_engine(reader.set(drivername="postgresql+psycopg"))
    with engine.connect() as c:  # what QGIS lists: geometry_columns, filtered by the reader's privileges
        listed = c.execute(sa.text("SELECT f_table_schema || '.' || f_table_name FROM geometry_columns ORDER BY 1")).scalars().all()
    engine.dispose()
    assert not [t for t in listed if "burned_cell_" in t or not t.startswith("banet.")], listed


def test_weekly_area_and_large_events_add_up(reader: sa.URL) -> None:
    engine = sa.create_engine(reader.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT sum(area_km2) FROM banet.burned_cell")).scalar_one()
        fires = conn.execute(sa.text("SELECT id, duration_days, area_km2 FROM banet.fire_event WHERE area_km2 >= 5 ORDER BY area_km2 DESC")).all()
    engine.dispose()
    weeks = psql(reader, "burned_area_per_week_in_polygon")  # the region's bbox, the last 365 days
    assert [w[1] for w in weeks] == ["2024-W23", "2024-W30", "2024-W32", "2024-W33"]
    assert float(weeks[-1][4]) == pytest.approx(total, abs=2e-3) and sum(float(w[3]) for w in weeks) == pytest.approx(total, abs=5e-3)
    half = "POLYGON((-8.30 39.80,-8.00 39.80,-8.00 40.40,-8.30 40.40,-8.30 39.80))"  # west half: cols 0-29
    west = psql(reader, "burned_area_per_week_in_polygon", polygon=half)
    assert float(west[-1][4]) < total
    large = psql(reader, "large_fire_events", min_km2=5)
    assert [(int(r[0]), int(r[4])) for r in large] == [(f[0], f[1]) for f in fires] and fires
    main = large[0]
    assert float(main[7]) == pytest.approx(float(main[5]) / int(main[4]), abs=1e-3)  # mean growth = area / duration
    assert main[8] == "2024-07-27"  # the largest ring burns last
