"""Bad FIRMS inputs: each is rejected per row (or per file), counted, and never fails the day."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from banet_ops.cli import main
from banet_ops.ingest.pipeline import count_detections, ingest_day
from banet_ops.ingest.readers.firms_csv import NOT_UTF8, grid_frp, read_firms_csv
from banet_ops.regions import load_region
from banet_ops.settings import Settings
from banet_ops.synthetic import Scenario, write_scenario
from faults.scenarios import FIGURES

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
FIRMS_GZ = FIX / "firms" / "J1_VIIRS_C2_Global_VJ114IMGTDL_NRT_2023313.txt.gz"
PI = load_region(FIX / "R_PI.json")
DAY = dt.date(2023, 11, 9)


@pytest.fixture(scope="module")
def lance_lines() -> list[bytes]:
    """The real 47,906-row LANCE file of 2023-11-09, as lines of bytes."""
    return gzip.decompress(FIRMS_GZ.read_bytes()).splitlines(keepends=True)


def _write(tmp_path: Path, lines: list[bytes], name: str = "J1_VIIRS_C2_Global_VJ114IMGTDL_NRT_2023313.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(lines))
    return path


def test_points_on_grid_lines_go_to_the_cell_they_start() -> None:
    """Every line of the PI grid, as the decimals FIRMS writes: column k and row k exactly."""
    FIGURES["bad_inputs"].add("detections exactly on grid lines")
    rows, cols = PI.shape
    k_col, k_row = np.arange(cols), np.arange(rows)
    lon = np.array([float(f"{-10 + k / 100:.2f}") for k in k_col])  # -10.00, -9.99, ... parsed like the CSV
    lat = np.array([float(f"{44 - k / 100:.2f}") for k in k_row])
    naive = np.floor((lon - PI.left) / PI.pixel_size).astype(int)
    assert (naive != k_col).any()  # plain float arithmetic puts some of them in the neighbour cell
    r, c, inside = PI.rowcol(lon, np.full(cols, 40.005))
    assert inside.all() and (c == k_col).all()
    r, c, inside = PI.rowcol(np.full(rows, -5.005), lat)
    assert inside.all() and (r == k_row).all()
    # the east and south edges start no cell of the grid
    assert not PI.rowcol(np.array([5.0]), np.array([40.0]))[2][0] and not PI.rowcol(np.array([0.0]), np.array([36.0]))[2][0]


def test_frp_of_a_detection_on_a_line_is_summed_in_its_own_cell() -> None:
    det = pd.DataFrame({"latitude": [40.0], "longitude": [-9.97], "acq_date": np.array(["2023-11-09"], dtype="datetime64[D]"), "frp": [51.0]})
    frp = grid_frp(det, PI, DAY)
    assert frp[400, 3] == 51.0 and frp.sum() == 51.0


@pytest.mark.parametrize(("name", "damage", "reason"), [
    ("non-UTF-8 byte", lambda ln: ln[:20] + b"\xff\xfe" + ln[20:], NOT_UTF8),
    ("unbalanced quote", lambda ln: ln.replace(b",nominal,", b',"nominal,'), None),
    ("FRP 1e39", lambda ln: ln.replace(ln.split(b",")[11], b"1e39"), "frp not a number within"),
    ("cut daynight", lambda ln: ln.rstrip(b"N\n") + b"\n", "daynight not D or N"),
])
def test_one_bad_row_rejects_that_row_only(name: str, damage, reason: str | None, lance_lines: list[bytes], tmp_path: Path) -> None:
    FIGURES["bad_inputs"].add(f"FIRMS row: {name}")
    lines = list(lance_lines)
    target = 1000
    lines[target] = damage(lines[target])
    table = read_firms_csv(_write(tmp_path, lines))
    n = len(lance_lines) - 1
    assert table.report.n_rows == n
    assert table.report.n_rejected <= 1 and table.report.n_valid == n - table.report.n_rejected
    if reason is not None:
        assert table.report.n_rejected == 1 and table.report.rejected[0][0] == target + 1 and reason in table.report.rejected[0][1]
    assert np.isfinite(table.detections["frp"].to_numpy(np.float32)).all()


def test_a_file_that_is_not_firms_rejects_that_file_only(tmp_path: Path) -> None:
    from banet_ops.errors import DataFormatError

    FIGURES["bad_inputs"].add("FIRMS file: binary content")
    path = tmp_path / "x.txt"
    path.write_bytes(gzip.compress(b"latitude,longitude\n"))
    with pytest.raises(DataFormatError, match="expected a FIRMS CSV header"):
        read_firms_csv(path)


def test_detections_are_counted_in_the_region(lance_lines: list[bytes], tmp_path: Path) -> None:
    FIGURES["bad_inputs"].add("FIRMS file of the whole globe for one region")
    table = read_firms_csv(_write(tmp_path, lance_lines))
    in_pi = count_detections(table.detections, PI, DAY)
    d = table.detections
    lon, lat = d["longitude"].to_numpy(), d["latitude"].to_numpy()
    expected = int(((lon >= -10) & (lon < 5) & (lat > 36) & (lat <= 44) & (d["acq_date"].to_numpy() == np.datetime64(DAY))).sum())
    assert in_pi == expected and 0 < in_pi < len(d) // 100


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    box = PI.subregion("FXfirms", 300, 600, 32, 32)
    return write_scenario(tmp_path_factory.mktemp("fx-firms"), box, dt.date(2024, 7, 1), 1, seed=6, formats=("l1b", "firms"))


def test_an_empty_file_in_the_firms_folder_is_rejected_and_the_day_goes_on(scenario: Scenario, tmp_path: Path, banet_home: Path) -> None:
    FIGURES["bad_inputs"].add("FIRMS folder: zero-byte file")
    shutil.copytree(scenario.root / "firms", tmp_path / "firms")
    empty = tmp_path / "firms" / "SUOMI_VIIRS_C2_Global_VNP14IMGTDL_NRT_2024183.txt"
    empty.write_bytes(b"")
    settings = Settings(home=banet_home, archive_url=scenario.archive_url, firms_url=(tmp_path / "firms").as_uri(), cmr_url="",
                        cube_root=str(tmp_path / "cube"))
    result = ingest_day(scenario.region, dt.date(2024, 7, 1), settings=settings, record=False)
    assert [name for name, _ in result.rejected] == [empty.name]
    assert "empty file" in result.rejected[0][1]
    assert result.status == "partial" and result.snapshot


def test_a_malformed_firms_row_makes_the_day_partial_until_the_file_is_fixed(
    scenario: Scenario, tmp_path: Path, banet_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # the row is outside the region: fixing it changes no value of the day, only what the day may claim
    FIGURES["bad_inputs"].add("FIRMS row: malformed, then fixed")
    shutil.copytree(scenario.root / "firms", tmp_path / "firms")
    csv = next((tmp_path / "firms").glob("*.csv"))
    good = csv.read_text()
    far_away = good.splitlines()[1].replace("41.05000,-3.70793", "10.00000,10.00000")
    settings = Settings(home=banet_home, archive_url=scenario.archive_url, firms_url=(tmp_path / "firms").as_uri(), cmr_url="",
                        cube_root=str(tmp_path / "cube"))
    csv.write_text(good + far_away[:-1] + "X\n")  # daynight X
    # the operator's command: the day's line and the run's last line say why the day is partial
    for key, value in {**scenario.env(), "BANET_FIRMS_URL": settings.firms_url, "BANET_CMR_URL": "", "BANET_CUBE_ROOT": str(settings.cube_root)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("BANET_DATABASE_URL", raising=False)
    assert main(["ingest", "--region", scenario.region.name, "--date", "2024-07-01"]) == 0
    out = capsys.readouterr().out
    assert "partial" in out and "(1 bad FIRMS rows)" in out and "1 days (1 partial), 0 files rejected, 1 bad FIRMS rows" in out
    broken = ingest_day(scenario.region, dt.date(2024, 7, 1), settings=settings, record=False)
    assert broken.status == "partial" and broken.snapshot
    csv.write_text(good + far_away + "\n")
    fixed = ingest_day(scenario.region, dt.date(2024, 7, 1), settings=settings, record=False)
    assert fixed.status == "complete" and fixed.snapshot != broken.snapshot
    again = ingest_day(scenario.region, dt.date(2024, 7, 1), settings=settings, record=False)
    assert again.status == "complete" and again.snapshot == fixed.snapshot  # and then unchanged again
    # broken again, outside the region: the stored day holds the same values and stays as it is
    csv.write_text(good + far_away[:-1] + "X\n")
    rebroken = ingest_day(scenario.region, dt.date(2024, 7, 1), settings=settings, record=False)
    assert rebroken.status == "complete" and rebroken.snapshot == fixed.snapshot
