"""banet.cube_day kept in step with the cube; gc keeps the snapshots recorded runs used."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from banet_ops.cube import day_records, gc_cube, read_window, record_cube_day, sync_cube_days, valid_fraction, write_day
from banet_ops.daily_image import DailyImage
from banet_ops.db.engine import get_engine

from ._workers import REGION, make_image

D1, D2, D3 = dt.date(2022, 7, 1), dt.date(2022, 7, 2), dt.date(2022, 7, 3)


@pytest.fixture
def engine(db_url: str, banet_home, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BANET_DATABASE_URL", db_url)
    eng = get_engine(db_url)
    with eng.begin() as conn:
        for table in ("run", "cube_day"):
            conn.execute(sa.text(f"DELETE FROM banet.{table} WHERE region = 'TC'"))
    return eng


def _rows(engine) -> dict[dt.date, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT day, snapshot_id, granules, valid_fraction, status FROM banet.cube_day WHERE region = 'TC' ORDER BY day")
        ).all()
    return {r.day: (r.snapshot_id, list(r.granules), round(r.valid_fraction, 5), r.status) for r in rows}


def test_record_after_write_then_sync_repairs(local_root: str, engine) -> None:
    images = [make_image(D1), make_image(D2), DailyImage.empty(REGION, D3)]
    for image in images:
        snap = write_day(image)
        record_cube_day(engine, image.region, image.day, snap, valid_fraction=valid_fraction(image), granules=image.granules)
    rows = _rows(engine)
    assert sorted(rows) == [D1, D2, D3]
    assert rows[D3][3] == "empty" and rows[D1][3] == "partial"  # a fifth of each image is a gap
    assert rows[D1][1] == images[0].granules
    expected = {r.day: (r.snapshot_id, list(r.granules), round(r.valid_fraction, 5), r.status) for r in day_records("TC")}
    assert rows == expected
    # an older commit of the same day never overwrites a newer row
    record_cube_day(engine, "TC", D1, "ABCDEFGHJKMNPQRSTVWX", valid_fraction=0.5, committed_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert _rows(engine)[D1] == expected[D1]

    # damage the table: a missing row, a wrong row, a row for a day the cube does not have
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM banet.cube_day WHERE region = 'TC' AND day = :d"), {"d": D2})
        conn.execute(sa.text("UPDATE banet.cube_day SET status = 'complete', valid_fraction = 1 WHERE region = 'TC' AND day = :d"), {"d": D3})
        conn.execute(sa.text("INSERT INTO banet.cube_day (region, day, snapshot_id, valid_fraction, status) "
                             "VALUES ('TC', '2022-08-01', 'ABCDEFGHJKMNPQRSTVWX', 1, 'complete')"))
    result = sync_cube_days("TC", engine)
    assert result.upserted == 3 and result.deleted == 1
    assert _rows(engine) == expected


def test_gc_keeps_snapshots_of_recorded_runs(local_root: str, engine) -> None:
    used = write_day(make_image(D1, seed=1))
    write_day(make_image(D1, seed=2), force=True)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot) "
                "VALUES ('TC', 'nrt', :d, :s, :d, 'k', :snap)"
            ),
            {"d": D1, "s": D1 - dt.timedelta(days=63), "snap": used},
        )
    result = gc_cube("TC", dt.timedelta(0), engine=engine, grace=dt.timedelta(0))
    assert result.kept == [used]
    assert read_window("TC", D1, D1, snapshot=used).available.all()


def test_cli_import_records_and_sync(local_root: str, engine, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import json

    import numpy as np
    from scipy.io import savemat

    from banet_ops.cli import main
    from banet_ops.settings import get_settings

    folder = tmp_path / "regions"
    folder.mkdir()
    (folder / "R_TC.json").write_text(json.dumps(REGION.to_file_dict()))
    monkeypatch.setenv("BANET_REGIONS_DIR", str(folder))
    get_settings.cache_clear()
    image = make_image(D2)
    path = tmp_path / f"VIIRS750TC_{D2:%Y%m%d}.mat"
    savemat(path, {k: image.variables[k].astype(np.float64) for k in ("Red", "NIR", "MIR", "FRP")})
    assert main(["import-legacy", "--region", "TC", str(path)]) == 0
    rows = _rows(engine)
    assert list(rows) == [D2] and rows[D2][1] == [path.name]
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM banet.cube_day WHERE region = 'TC'"))
    assert main(["cube", "sync", "--region", "TC"]) == 0
    assert "1 day(s)" in capsys.readouterr().out
    assert _rows(engine) == rows
