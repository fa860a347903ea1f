"""The smaller promises: one day status, strict dates, short errors, no credentials in roots."""

from __future__ import annotations

import datetime as dt

import pytest

from banet_ops.cli import main
from banet_ops.daily_image import DailyImage
from banet_ops.ingest.pipeline import BuildReport, FileOutcome, day_status
from banet_ops.regions import Region
from faults.scenarios import FIGURES

REGION = Region(name="TS", bbox=(0.0, 0.0, 0.2, 0.2), pixel_size=0.01)


def _full_image() -> DailyImage:
    image = DailyImage.empty(REGION, dt.date(2024, 7, 1))
    for name in ("Red", "NIR", "MIR", "M10", "sensor_zenith"):
        image.variables[name][:] = 0.1
    image.variables["n_obs"][:] = 1
    return image


def test_one_status_definition() -> None:
    report = BuildReport(region="TS", day=dt.date(2024, 7, 1))
    report.discovery_rejected = [("../evil.nc", "unsafe name")]  # refused before any download
    report.files = [FileOutcome("a.nc", "VNP02MOD", "ingested")]
    assert day_status(_full_image(), report) == ("complete", 1.0)
    report.files.append(FileOutcome("b.nc", "VNP02MOD", "rejected", message="truncated"))
    assert day_status(_full_image(), report)[0] == "partial"
    from banet_ops.cube.writer import commit_metadata

    assert commit_metadata(_full_image(), 1.0, n_rejected=1)["status"] == "partial"  # what the cube records


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--date", "20240601"], 2, "expected a date YYYY-MM-DD, found '20240601'"),
    (["--date", "9999-12-31"], 1, "expected a day no later than today"),
    (["--date", "2099-01-01", "--end", "2099-01-02"], 1, "expected a day no later than today"),
])
def test_dates_are_strict_and_bounded(argv: list[str], code: int, message: str, banet_home: object, capsys: pytest.CaptureFixture[str]) -> None:
    FIGURES["bad_inputs"].add(f"ingest {' '.join(argv)}")
    try:
        rc = main(["ingest", "--region", "PI", *argv])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    assert rc == code and message in err and "Traceback" not in err and "out of range" not in err


def test_a_tiny_pixel_size_gives_a_short_error(tmp_path, banet_home: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    FIGURES["bad_inputs"].add("region file with pixel_size 1e-300")
    (tmp_path / "R_TT.json").write_text('{"name": "TT", "bbox": [0, 0, 1, 1], "pixel_size": 1e-300}')
    monkeypatch.setenv("BANET_REGIONS_DIR", str(tmp_path))
    assert main(["ingest", "--region", "TT", "--date", "2024-01-01"]) == 1
    err = capsys.readouterr().err.strip()
    assert "exceeds 50,000,000" in err and len(err) < 300


@pytest.mark.parametrize("variable", ["BANET_CUBE_ROOT", "BANET_PRODUCTS_ROOT"])
def test_roots_with_credentials_are_refused_without_echoing_them(variable: str, banet_home: object, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    FIGURES["bad_inputs"].add(f"{variable}=s3://KEY:SECRET@bucket")
    monkeypatch.setenv(variable, "s3://AKIAEXAMPLE:s3cr3tVALUE@bucket/prefix")
    assert main(["ingest", "--region", "PI", "--date", "2024-01-01"]) == 1
    err = capsys.readouterr().err
    assert "without credentials" in err and "s3cr3tVALUE" not in err and "AKIAEXAMPLE" not in err
