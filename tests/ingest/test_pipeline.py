"""The ingest pipeline over a synthetic local mirror in the real formats.

Round-trip tolerance (documented here and in banet_ops.ingest.gridding): each cell takes the swath
pixel nearest its centre, and the generator gives each pixel the surface of the cell holding the
pixel's centre; so a cell normally shows its own value (to the uint16 quantisation, ~3e-5), and
at sharp edges (cloud borders, burn scars, lakes) it may show a neighbour's value, from at most
two cells away at the scan edge.  Hence: >= 97 % of cells equal the truth within 2e-3, every cell
equals the truth of a cell within 2 cells, n_obs and the observed mask agree on >= 99 % of cells,
FRP is exact.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from banet_ops.cube.layout import day_status as cube_day_status
from banet_ops.daily_image import DailyImage
from banet_ops.ingest.pipeline import image_from_files, ingest_day
from banet_ops.regions import Region
from banet_ops.settings import Settings
from banet_ops.synthetic import Scenario, write_scenario

from .conftest import START, copy_mirror


def _settings(tmp_path: Path, archive_url: str, firms_url: str) -> Settings:
    return Settings(home=tmp_path / "home", archive_url=archive_url, firms_url=firms_url, cmr_url="")


def _ingest(scenario: Scenario, settings: Settings, day: dt.date) -> tuple[DailyImage, object]:
    images: list[DailyImage] = []
    result = ingest_day(scenario.region, day, settings=settings, sink=lambda im: images.append(im) or f"snap-{day}", record=False)
    assert result.snapshot == f"snap-{day}"
    return images[0], result


def _near_any(got: np.ndarray, truth: np.ndarray, radius: int, tol: float) -> np.ndarray:
    """Cells whose value equals the truth of some cell within ``radius`` cells."""
    ok = np.zeros(got.shape, bool)
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            shifted = ndimage.shift(truth, (dr, dc), order=0, mode="nearest", cval=np.nan)
            ok |= np.abs(got - shifted) <= tol
    return ok


def test_round_trip_through_the_files(scenario: Scenario, tmp_path: Path) -> None:
    settings = _settings(tmp_path, scenario.archive_url, scenario.firms_url)
    exact_fractions = []
    for day in scenario.day_list:
        image, result = _ingest(scenario, settings, day)
        truth = scenario.truth_image(day)
        seen_t = truth.variables["n_obs"] > 0
        seen_i = image.variables["n_obs"] > 0
        assert (seen_t == seen_i).mean() >= 0.99
        assert (truth.variables["n_obs"] == image.variables["n_obs"]).mean() >= 0.99
        np.testing.assert_allclose(image.variables["FRP"], truth.variables["FRP"], atol=1e-3)
        both = seen_t & seen_i
        for name in ("Red", "NIR", "MIR", "M10"):
            got, want = image.variables[name], truth.variables[name]
            assert np.isfinite(got[both]).all()
            exact_fractions.append((np.abs(got - want)[both] <= 2e-3).mean())
            assert _near_any(got, want, 2, 2e-3)[both].mean() >= 0.999, (day, name)
        dz = np.abs(image.variables["sensor_zenith"] - truth.variables["sensor_zenith"])[both]
        assert np.quantile(dz, 0.99) < 0.5
        # one status definition, the cube's: complete only with >= 95 % observed (the gap day is partial)
        assert result.status == cube_day_status(result.valid_fraction) and not result.rejected
        assert result.valid_fraction == pytest.approx(seen_i.mean())
    assert min(exact_fractions) >= 0.9 and np.mean(exact_fractions) >= 0.97
    # the scenario has a gap day and a day with fires: both made it through
    fractions = [_ingest(scenario, settings, d)[1].valid_fraction for d in scenario.day_list]  # type: ignore[attr-defined]
    assert min(fractions) < 0.5 and max(fractions) == 1.0
    assert sum(float(scenario.truth_image(d).variables["FRP"].sum()) for d in scenario.day_list) > 100


def test_burned_cells_show_the_burn(scenario: Scenario, tmp_path: Path) -> None:
    settings = _settings(tmp_path, scenario.archive_url, scenario.firms_url)
    day = START + dt.timedelta(days=3)
    before, _ = _ingest(scenario, settings, START)
    after, _ = _ingest(scenario, settings, day)
    burned = ~np.isnat(scenario.burn_dates) & (scenario.burn_dates <= np.datetime64(day))
    clear = burned & (after.variables["NIR"] < 0.4) & (before.variables["NIR"] < 0.4)  # not cloudy either day
    assert clear.sum() > 50
    assert np.median(after.variables["NIR"][clear] - before.variables["NIR"][clear]) < -0.05
    assert np.median(after.variables["MIR"][clear] - before.variables["MIR"][clear]) > 0.04


def test_legacy_files_round_trip(tmp_path: Path, box: Region) -> None:
    sub = box.subregion("PIleg", 0, 0, 48, 48)
    scenario = write_scenario(tmp_path / "scen", sub, START, 2, seed=0, formats=("legacy", "firms"))
    settings = _settings(tmp_path, scenario.archive_url, scenario.firms_url)
    image, result = _ingest(scenario, settings, START)
    truth = scenario.truth_image(START, platforms=("VNP",))
    assert any(name.startswith("NPP_VMAES_L1") for name in result.granules)  # type: ignore[attr-defined]
    seen = truth.variables["n_obs"] > 0
    assert seen.mean() > 0.5
    np.testing.assert_array_equal(image.variables["n_obs"], truth.variables["n_obs"])
    for name in ("Red", "NIR", "M10", "MIR"):
        np.testing.assert_allclose(image.variables[name][seen], truth.variables[name][seen], atol=1e-4)
    np.testing.assert_allclose(image.variables["sensor_zenith"][seen], truth.variables["sensor_zenith"][seen], atol=1e-4)


def test_bad_files_are_rejected_and_reported(scenario: Scenario, tmp_path: Path) -> None:
    archive_url, firms_url = copy_mirror(scenario, tmp_path)
    archive = Path(archive_url.removeprefix("file://"))
    firms = Path(firms_url.removeprefix("file://"))
    day = START
    doy = f"{day.timetuple().tm_yday:03d}"
    vnp = next(archive.glob(f"*/VNP02MOD/*/{doy}/*.nc"))
    vnp.write_bytes(vnp.read_bytes()[:5000])  # truncated L1B
    vj1_geo = next(archive.glob(f"*/VJ103MOD/*/{doy}/*.nc"))
    other_day_geo = next(archive.glob(f"*/VJ103MOD/*/{(day + dt.timedelta(days=2)).timetuple().tm_yday:03d}/*.nc"))
    shutil.copyfile(other_day_geo, vj1_geo)  # geolocation of another granule under this granule's name
    lance = next(firms.glob(f"*{day:%Y}{doy}.txt"))
    with lance.open("a") as f:
        f.write("91.0,-3.5,330.1,0.4,0.5,2024-07-01,13:42,N,nominal,2.0NRT,299.0,2.0,D\n")
        f.write("40.1,-3.5,330.1,0.4,0.5,2024-07-01,13:42,N,nominal,2.0NRT,299.0,-2.0,D\n")
    settings = _settings(tmp_path, archive_url, firms_url)
    image, result = _ingest(scenario, settings, day)
    reasons = dict(result.rejected)  # type: ignore[attr-defined]
    assert vnp.name in reasons and "NetCDF4" in reasons[vnp.name]
    assert vj1_geo.name in reasons and "do not belong together" in reasons[vj1_geo.name]
    assert result.status == "empty"  # type: ignore[attr-defined]
    assert result.firms_rows_rejected == 2  # type: ignore[attr-defined]
    assert image.variables["n_obs"].max() == 0  # both swaths of the day were rejected
    np.testing.assert_allclose(image.variables["FRP"], scenario.truth_image(day).variables["FRP"], atol=1e-3)
    # the mirror is never modified by ingestion
    assert vnp.stat().st_size == 5000

    # another day: one bad granule of two -> the day is built from the other one, status partial
    day2 = START + dt.timedelta(days=2)
    bad = next(archive.glob(f"*/VJ102MOD/*/{day2.timetuple().tm_yday:03d}/*.nc"))
    bad.write_bytes(b"<!DOCTYPE html><html>Earthdata Login</html>")
    image2, result2 = _ingest(scenario, settings, day2)
    assert result2.status == "partial"  # type: ignore[attr-defined]
    assert bad.name in dict(result2.rejected)  # type: ignore[attr-defined]
    assert image2.variables["n_obs"].max() == 1 and (image2.variables["n_obs"] > 0).mean() > 0.9


def test_dry_run_reads_and_writes_nothing(scenario: Scenario, tmp_path: Path) -> None:
    settings = _settings(tmp_path, scenario.archive_url, scenario.firms_url)
    calls: list[DailyImage] = []
    result = ingest_day(scenario.region, START, settings=settings, dry_run=True, sink=calls.append, record=False)  # type: ignore[arg-type]
    assert calls == [] and result.snapshot is None and result.dry_run
    assert result.found == 6 and any(n.startswith("VNP02MOD") for n in result.granules)
    assert "would commit" in result.summary()
    # every file is on disk (a mirror): the dry run reads them and says what would be committed
    assert result.status == "complete" and result.valid_fraction > 0.9 and ", 0.0% of cells" not in result.summary()


def test_image_from_files_with_nothing(box: Region) -> None:
    image, report = image_from_files(box, START, [], [])
    assert image.variables["n_obs"].max() == 0 and np.isnan(image.variables["Red"]).all()
    assert image.variables["FRP"].sum() == 0 and report.n_detections == 0


def test_records_granules_and_cube_day(scenario: Scenario, tmp_path: Path, db_url: str) -> None:
    import sqlalchemy as sa

    settings = Settings(home=tmp_path / "home", archive_url=scenario.archive_url, firms_url=scenario.firms_url, cmr_url="", database_url=db_url)
    images: list[DailyImage] = []
    for _ in range(2):  # idempotent: the second run updates the same rows
        ingest_day(scenario.region, START, settings=settings, sink=lambda im: images.append(im) or "snap-1")
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        cube_day = conn.execute(
            sa.text("SELECT snapshot_id, status, valid_fraction, granules FROM banet.cube_day WHERE region = :r"), {"r": scenario.region.name}
        ).all()
        # granules are global (other tests of the session ingest the same day for other regions)
        rows = conn.execute(
            sa.text("SELECT file_name, status FROM banet.granule WHERE day = :d AND file_name = ANY(:names) ORDER BY file_name"),
            {"d": START, "names": list(cube_day[0][3]) if cube_day else []},
        ).all()
    engine.dispose()
    assert len(rows) == 6 and {s for _, s in rows} == {"ingested"}
    assert len(cube_day) == 1
    snapshot, status, valid, granules = cube_day[0]
    assert snapshot == "snap-1" and status == "complete" and valid == pytest.approx(1.0) and len(granules) == 6


def test_worker_processes_give_the_same_image(scenario: Scenario, tmp_path: Path) -> None:
    archive = scenario.root / "archive"
    day = START
    doy = f"{day.timetuple().tm_yday:03d}"
    pairs = []
    for l1b in sorted(archive.glob(f"*/V*02MOD/*/{doy}/*.nc")):
        key = ".".join(l1b.name.split(".")[1:3])
        pairs.append((l1b, next(archive.glob(f"*/{l1b.name[:3]}03MOD/*/{doy}/*{key}*.nc"))))
    bad_l1b = tmp_path / pairs[0][0].name.replace(".nc", ".x.nc")
    bad_l1b.write_bytes(b"garbage")
    firms = sorted((scenario.root / "firms").glob("*"))
    one, _ = image_from_files(scenario.region, day, pairs, firms, workers=1)
    two, report = image_from_files(scenario.region, day, [*pairs, (bad_l1b, pairs[0][1])], firms, workers=2)
    for name in one.variables:
        np.testing.assert_array_equal(one.variables[name], two.variables[name])
    reasons = dict(report.rejected)
    assert bad_l1b.name in reasons and "expected a NetCDF4 file" in reasons[bad_l1b.name]


def test_refused_credentials_fail_the_day_instead_of_committing_it(scenario: Scenario, tmp_path: Path) -> None:
    from banet_ops.errors import AuthenticationError
    from banet_ops.sources import make_sources

    settings = _settings(tmp_path, scenario.archive_url, scenario.firms_url)
    sources = make_sources(settings)

    def refuse(item: object) -> Path:
        raise AuthenticationError(f"{getattr(item, 'name', item)}: expected data, found an HTML login page")

    sources.fetch = refuse  # type: ignore[method-assign]
    committed: list[DailyImage] = []
    with pytest.raises(AuthenticationError, match="login page"):
        ingest_day(scenario.region, START, settings=settings, sources=sources, sink=committed.append, record=False)  # type: ignore[arg-type]
    assert committed == []
