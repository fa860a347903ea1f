"""A few rows of every table, with known answers, for the schema, view and query tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from banet_ops.localstack.postgres import pg_bin
from banet_ops.regions import Region

PT = Region(name="PT", bbox=(-10, 36, -6, 44), pixel_size=0.01)
QUERIES = Path(__file__).resolve().parents[2] / "sql" / "queries"


def cell_wkt(region: Region, row: int, col: int) -> str:
    px = region.pixel_size
    w, n = region.left + col * px, region.top - row * px
    e, s = w + px, n - px
    return f"POLYGON(({w} {s},{e} {s},{e} {n},{w} {n},{w} {s}))"


def cell_area(region: Region, row: int) -> float:
    return float(region.row_cell_area_km2()[row])


def insert_region(conn: sa.Connection, region: Region = PT) -> None:
    rows, cols = region.shape
    conn.execute(
        sa.text(
            "INSERT INTO banet.region (name, bbox, pixel_size, n_rows, n_cols, definition) "
            "VALUES (:n, ST_MakeEnvelope(:l, :b, :r, :t, 4326), :px, :rows, :cols, CAST(:d AS jsonb)) ON CONFLICT DO NOTHING"
        ),
        {"n": region.name, "l": region.left, "b": region.bottom, "r": region.right, "t": region.top, "px": region.pixel_size,
         "rows": rows, "cols": cols, "d": f'{{"name": "{region.name}", "bbox": {list(region.bbox)}, "pixel_size": {region.pixel_size}}}'},
    )


def insert_run(conn: sa.Connection, target: date, *, product: str = "monthly", status: str = "succeeded", region: str = "PT", snapshot: str = "snap") -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, model_ids, cube_snapshot, status, finished_at) "
                "VALUES (:region, :product, :t, :t - 63, :t, 'abc', ARRAY['m1'], :snap, :status, "
                "CASE WHEN :status = 'running' THEN NULL ELSE now() END) RETURNING id"
            ),
            {"region": region, "product": product, "t": target, "snap": snapshot, "status": status},
        ).scalar_one()
    )


def insert_cell(
    conn: sa.Connection, run_id: int, row: int, col: int, burn: date, *, product: str = "monthly", confidence: float = 0.9, region: Region = PT
) -> None:
    conn.execute(
        sa.text(
            'INSERT INTO banet.burned_cell (region, product, burn_date, "row", col, geom, confidence, run_id, area_km2) '
            "VALUES (:region, :product, :burn, :row, :col, ST_GeomFromText(:wkt, 4326), :conf, :run, :area)"
        ),
        {"region": region.name, "product": product, "burn": burn, "row": row, "col": col, "wkt": cell_wkt(region, row, col),
         "conf": confidence, "run": run_id, "area": cell_area(region, row)},
    )


def insert_event(conn: sa.Connection, run_id: int, first: date, last: date, area: float, *, product: str = "monthly", row: int = 10, col: int = 10) -> int:
    return int(
        conn.execute(
            sa.text(
                "INSERT INTO banet.fire_event (run_id, region, product, geom, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence) "
                "VALUES (:run, 'PT', :product, ST_Multi(ST_GeomFromText(:wkt, 4326)), :first, :last, :area, 1, 0.8) RETURNING id"
            ),
            {"run": run_id, "product": product, "wkt": cell_wkt(PT, row, col), "first": first, "last": last, "area": area},
        ).scalar_one()
    )


@dataclass
class Seed:
    runs: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)


def seed(conn: sa.Connection) -> Seed:
    """Region PT, four runs, burned cells and fire events (see the comments for what they test)."""
    s = Seed()
    insert_region(conn)
    s.runs["aug"] = insert_run(conn, date(2023, 8, 1))
    s.runs["sep"] = insert_run(conn, date(2023, 9, 1))  # latest succeeded monthly run
    s.runs["oct_failed"] = insert_run(conn, date(2023, 10, 1), status="failed")
    s.runs["nrt"] = insert_run(conn, date(2023, 8, 6), product="nrt")
    aug = s.runs["aug"]
    for col in (100, 101, 102):  # one fire of three cells in row 100
        insert_cell(conn, aug, 100, col, date(2023, 8, 5))
    insert_cell(conn, aug, 200, 50, date(2023, 8, 20))  # burned twice: 66 days apart
    insert_cell(conn, s.runs["sep"], 200, 50, date(2023, 10, 25))
    insert_cell(conn, aug, 300, 60, date(2023, 8, 10))  # re-dated, 4 days apart: not twice
    insert_cell(conn, aug, 300, 60, date(2023, 8, 14))
    insert_cell(conn, s.runs["nrt"], 100, 100, date(2023, 8, 5), product="nrt")
    s.events["e1"] = insert_event(conn, aug, date(2023, 8, 5), date(2023, 8, 7), 10.0)
    s.events["e2"] = insert_event(conn, aug, date(2023, 8, 20), date(2023, 8, 30), 50.0)
    s.events["e3"] = insert_event(conn, aug, date(2023, 9, 2), date(2023, 9, 3), 5.0)
    s.events["e4"] = insert_event(conn, s.runs["sep"], date(2023, 9, 10), date(2023, 9, 12), 20.0)
    s.events["e5"] = insert_event(conn, s.runs["oct_failed"], date(2023, 10, 1), date(2023, 10, 2), 99.0)
    s.events["e6"] = insert_event(conn, s.runs["nrt"], date(2023, 8, 5), date(2023, 8, 5), 1.0, product="nrt")
    return s


def psql_query(url: str, name: str, **variables: object) -> list[list[str]]:
    """Run ``sql/queries/<name>.sql`` with psql as an analyst would; rows as lists of strings."""
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    cmd = [str(pg_bin() / "psql"), "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1"]
    for key, value in variables.items():
        cmd += ["-v", f"{key}={value}"]
    cmd += ["-f", str(QUERIES / f"{name}.sql"), dsn]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"psql failed on {name}.sql: {out.stderr}")
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()]
