"""The demo's closing summary, read back from PostGIS (what an analyst would query)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from banet_ops.db import cells, cube_days, events, runs
from banet_ops.regions import Region
from banet_ops.settings import get_settings


def print_summary(engine: Engine, region: Region, settings_products_root: str) -> None:
    """Days ingested, burned area per day, the largest fire events, output paths."""
    with engine.connect() as conn:
        n_days, first_day, last_day = cube_days.day_span(conn, region.name)
        print(f"  cube days ingested : {n_days} ({first_day} .. {last_day})")
        n_runs, latest = runs.succeeded_summary(conn, region.name, "nrt")
        print(f"  NRT runs           : {n_runs} (latest for {latest})")
        per_day = cells.burned_area_per_day(conn, region.name, "nrt")
        total = sum(km2 for _, _, km2 in per_day)
        print(f"  burned area (NRT)  : {total:.1f} km² over {len(per_day)} burn dates")
        for burn_date, n_cells, km2 in per_day[-10:]:
            print(f"      {burn_date}  {n_cells:6d} cells  {km2:8.1f} km²")
        largest = events.largest_events(conn, region.name, "nrt")
        print("  largest fire events (one row per fire, banet.fire_event):")
        for ev in largest:
            print(
                f"      #{ev.id}: {ev.first_burn_date} .. {ev.last_burn_date}, {ev.area_km2:.1f} km², {ev.n_cells} cells, "
                f"mean confidence {ev.mean_confidence:.2f}"
            )
        outputs = runs.latest_outputs(conn, region.name, "nrt")
    if outputs:
        print("  latest product files:")
        for name, path in sorted(outputs.items()):
            print(f"      {name:12s} {path}")
    else:
        print(f"  products under     : {Path(settings_products_root) / region.name}")
    url_file = get_settings().home / "pg" / "url"  # the libpq URL is the SQLAlchemy one without its "+driver"
    print(f"  query it yourself  : psql \"$(sed 's/+[a-z0-9]*:/:/' {url_file})\" -c 'SELECT * FROM banet.v_burned_area_monthly ORDER BY month'")
