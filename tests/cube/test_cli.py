"""`banet-ops import-legacy`, `cube info`, `cube sync`, `cube gc` end to end."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from banet_ops.cli import main
from banet_ops.cube import latest_snapshot, read_window, write_day
from banet_ops.settings import get_settings

from ._workers import REGION, make_image


@pytest.fixture
def regions_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_root: str) -> Path:
    folder = tmp_path / "regions"
    folder.mkdir()
    (folder / "R_TC.json").write_text(json.dumps(REGION.to_file_dict()))
    monkeypatch.setenv("BANET_REGIONS_DIR", str(folder))
    get_settings.cache_clear()
    return folder


def _legacy(folder: Path, day: dt.date, seed: int, **overrides: object) -> tuple[Path, dict[str, np.ndarray]]:
    image = make_image(day, seed)
    content = {name: image.variables[name].astype(np.float64) for name in ("Red", "NIR", "MIR", "FRP")}
    content["FRP"][0, :3] = np.nan  # legacy files may carry NaN for "no fire"
    content.update(overrides)  # type: ignore[arg-type]
    path = folder / f"VIIRS750TC_{day:%Y%m%d}.mat"
    savemat(path, content)
    return path, content


def test_import_legacy_validates_and_skips(regions_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "mat"
    folder.mkdir()
    good1, c1 = _legacy(folder, dt.date(2017, 10, 26), 1)
    good2, _ = _legacy(folder, dt.date(2017, 10, 28), 2)
    bad_shape, _ = _legacy(folder, dt.date(2017, 10, 29), 3, Red=np.zeros((40, 59)))
    missing = folder / "VIIRS750TC_20171030.mat"
    savemat(missing, {"Red": c1["Red"], "NIR": c1["NIR"]})
    wrong_region = folder / "VIIRS750PT_20171031.mat"
    savemat(wrong_region, c1)
    bad_date = folder / "VIIRS750TC_20171332.mat"
    savemat(bad_date, c1)
    not_mat = folder / "VIIRS750TC_20171101.mat"
    not_mat.write_text("<html>login</html>")

    files = [good1, bad_shape, missing, wrong_region, bad_date, not_mat, good2]
    code = main(["import-legacy", "--region", "TC", "--no-db", *map(str, files)])
    out, err = capsys.readouterr()
    assert code == 1
    assert "imported 2 of 7" in out and "skipped 5" in out
    for path, why in [(bad_shape, "shape (40, 60)"), (missing, "missing ['MIR', 'FRP']"), (wrong_region, "VIIRS750TC_YYYYMMDD"),
                      (bad_date, "valid date"), (not_mat, "MATLAB v5")]:
        assert f"skipped {path.name}: " in err and why in err, (path.name, err)
    assert "import TC" in err  # the progress bar

    window = read_window("TC", dt.date(2017, 10, 26), dt.date(2017, 10, 29), variables=("Red", "FRP", "M10", "n_obs", "sensor_zenith"))
    assert window.available.tolist() == [True, False, True, False]
    red = c1["Red"].astype(np.float32)
    np.testing.assert_allclose(window.data[0, 0], red, atol=5.1e-5, equal_nan=True)
    frp = np.nan_to_num(c1["FRP"].astype(np.float32))
    np.testing.assert_array_equal(window.data[0, 1], frp)
    assert np.isnan(window.data[0, 2]).all() and np.isnan(window.data[0, 4]).all()
    np.testing.assert_array_equal(window.data[0, 3], np.isfinite(red).astype(np.float32))

    assert main(["import-legacy", "--region", "TC", "--no-db", str(good1)]) == 0


def test_cube_info_calendar_and_gc(local_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    from banet_ops.daily_image import DailyImage

    full = make_image(dt.date(2023, 1, 30))
    for name in ("Red", "NIR", "MIR", "M10"):
        full.variables[name] = np.nan_to_num(full.variables[name], nan=0.1)
    write_day(full)
    write_day(make_image(dt.date(2023, 2, 1)))
    write_day(DailyImage.empty(REGION, dt.date(2023, 2, 3)))
    assert main(["cube", "info", "--region", "TC"]) == 0
    out = capsys.readouterr().out
    assert "days: 3 written from 2023-01-30 to 2023-02-03: 1 complete, 2 partial/empty, 2 missing in between" in out
    lines = out.splitlines()
    jan = next(ln for ln in lines if ln.startswith("2023-01"))
    feb = next(ln for ln in lines if ln.startswith("2023-02"))
    assert jan[9:].rstrip() == " " * 29 + "#."
    assert feb[9:].rstrip() == "+.o"
    assert f"last commit: {latest_snapshot('TC')}" in out and "TC 2023-02-03" in out
    assert "stored: " in out

    assert main(["cube", "info", "--region", "TC", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["missing"] == ["2023-01-31", "2023-02-02"] and info["stored_bytes"] > info["chunk_bytes"] > 0

    keep = latest_snapshot("TC")
    assert main(["cube", "gc", "--region", "TC", "--older-than", "0", "--grace-minutes", "0", "--no-db", "--keep", keep]) == 0
    assert "kept 1" in capsys.readouterr().out
    assert read_window("TC", dt.date(2023, 1, 30), dt.date(2023, 1, 30), snapshot=keep).available.all()

    assert main(["cube", "info", "--region", "NOPE"]) == 1
    assert "expected an Icechunk repository" in capsys.readouterr().err
    assert main(["cube", "info", "--region", "bad name"]) == 1
