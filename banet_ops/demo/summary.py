"""The demo's closing summary, read back from PostGIS (what an analyst would query)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from banet_ops.regions import Region
from banet_ops.settings import get_settings


def print_summary(engine: Engine, region: Region, settings_products_root: str) -> None:
    """Days ingested, burned area per day, the largest fire events, output paths."""
    with engine.connect() as conn:
        days = conn.execute(sa.text("SELECT count(*), min(day), max(day) FROM banet.cube_day WHERE region = :r"), {"r": region.name}).one()
        print(f"  cube days ingested : {days[0]} ({days[1]} .. {days[2]})")
        runs = conn.execute(
            sa.text("SELECT count(*), max(target_date) FROM banet.run WHERE region = :r AND product = 'nrt' AND status = 'succeeded'"), {"r": region.name}
        ).one()
        print(f"  NRT runs           : {runs[0]} (latest for {runs[1]})")
        per_day = conn.execute(
            sa.text(
                "SELECT burn_date, count(*) AS cells, round(sum(area_km2)::numeric, 1) AS km2 FROM banet.burned_cell "
                "WHERE region = :r AND product = 'nrt' GROUP BY burn_date ORDER BY burn_date"
            ),
            {"r": region.name},
        ).all()
        total = sum(float(r.km2) for r in per_day)
        print(f"  burned area (NRT)  : {total:.1f} km² over {len(per_day)} burn dates")
        for row in per_day[-10:]:
            print(f"      {row.burn_date}  {row.cells:6d} cells  {row.km2:8} km²")
        events = conn.execute(
            sa.text(
                "SELECT id, first_burn_date, last_burn_date, round(area_km2::numeric, 1) AS km2, n_cells, round(mean_confidence::numeric, 2) AS conf "
                "FROM banet.fire_event WHERE region = :r AND product = 'nrt' ORDER BY area_km2 DESC LIMIT 5"
            ),
            {"r": region.name},
        ).all()
        print("  largest fire events (one row per fire, banet.fire_event):")
        for ev in events:
            print(f"      #{ev.id}: {ev.first_burn_date} .. {ev.last_burn_date}, {ev.km2} km², {ev.n_cells} cells, mean confidence {ev.conf}")
        outputs = conn.execute(
            sa.text("SELECT outputs FROM banet.run WHERE region = :r AND product = 'nrt' AND status = 'succeeded' ORDER BY target_date DESC, id DESC LIMIT 1"),
            {"r": region.name},
        ).scalar()
    if outputs:
        print("  latest product files:")
        for name, path in sorted(dict(outputs).items()):
            print(f"      {name:12s} {path}")
    else:
        print(f"  products under     : {Path(settings_products_root) / region.name}")
    url_file = get_settings().home / "pg" / "url"  # the libpq URL is the SQLAlchemy one without its "+driver"
    print(f"  query it yourself  : psql \"$(sed 's/+[a-z0-9]*:/:/' {url_file})\" -c 'SELECT * FROM banet.v_burned_area_monthly ORDER BY month'")
