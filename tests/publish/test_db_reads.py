"""The demo's summary reads back what a publish wrote, through the db layer's typed reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from banet_ops.db import cells, events, runs
from banet_ops.db.engine import get_engine
from banet_ops.demo.summary import print_summary
from banet_ops.publish import publish_product
from banet_ops.settings import Settings
from publish.helpers import blob_dates, build_product, new_region

TARGET = dt.date(2023, 8, 31)


def test_summary_reads_what_was_published(db_url: str, tmp_path: Path, banet_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    region = new_region()
    settings = Settings(home=banet_home, database_url=db_url, products_root=str(tmp_path / "products"))
    result = publish_product(build_product(region, blob_dates(region, TARGET), target=TARGET), settings=settings)
    engine = get_engine(db_url)
    with engine.connect() as conn:
        per_day = cells.burned_area_per_day(conn, region.name, "nrt")
        assert sum(n for _, n, _ in per_day) == result.n_burned_cells
        assert sum(km2 for _, _, km2 in per_day) == pytest.approx(result.burned_area_km2)
        assert runs.succeeded_summary(conn, region.name, "nrt") == (1, TARGET)
        assert runs.latest_outputs(conn, region.name, "nrt") == result.outputs
        largest = events.largest_events(conn, region.name, "nrt", limit=2)
        assert len(largest) == min(2, result.n_events) and largest[0].area_km2 >= largest[-1].area_km2
        assert runs.recorded_snapshots(conn, region.name) == {"snap-1"}
    print_summary(engine, region, settings.resolved_products_root)
    out = capsys.readouterr().out
    assert f"NRT runs           : 1 (latest for {TARGET})" in out
    assert f"{result.burned_area_km2:.1f} km² over {len(per_day)} burn dates" in out
    assert "sed 's/+[a-z0-9]*:/:/'" in out
