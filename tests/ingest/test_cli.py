"""`banet-ops ingest`: argument validation, dry run, a real ingest into a cube."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from banet_ops.cli import main
from banet_ops.synthetic import Scenario

from .conftest import START


@pytest.fixture
def scenario_env(scenario: Scenario, banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    for key, value in scenario.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BANET_CMR_URL", "")
    monkeypatch.setenv("BANET_CUBE_ROOT", str(banet_home / "cube"))
    return scenario


def test_end_before_start_is_refused(scenario_env: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", "--region", "PIbox", "--date", "2024-07-03", "--end", "2024-07-01"])
    assert code == 1
    assert "--end 2024-07-01 is before --date 2024-07-03" in capsys.readouterr().err


def test_bad_date_and_unknown_region(scenario_env: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "--region", "PIbox", "--date", "2024-13-01"])
    assert exc.value.code == 2
    assert "expected a date YYYY-MM-DD" in capsys.readouterr().err
    assert main(["ingest", "--region", "Nowhere", "--date", "2024-07-01"]) == 1
    assert "expected a region named 'Nowhere'" in capsys.readouterr().err


def test_dry_run_lists_and_writes_nothing(scenario_env: Scenario, banet_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", "--region", "PIbox", "--date", str(START), "--end", str(START + dt.timedelta(days=1)), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 days" in out and "dry run: nothing written" in out and "would commit" in out
    assert ", 0.0% of cells observed" not in out and "100.0% of cells observed" in out  # the mirror's files are read: full days say so
    assert not (banet_home / "cube").exists()


def test_ingest_into_the_cube(scenario_env: Scenario, banet_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from banet_ops import cube

    code = main(["ingest", "--region", "PIbox", "--date", str(START), "--end", str(START + dt.timedelta(days=1))])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 days" in out and "snapshot" in out
    window = cube.read_window(scenario_env.region, START, START + dt.timedelta(days=1))
    truth = scenario_env.truth_image(START)
    assert window.available.all()
    frp = window.data[:, 3]
    day2 = scenario_env.truth_image(START + dt.timedelta(days=1))
    assert float(np.nansum(frp[1])) == pytest.approx(float(day2.variables["FRP"].sum()), rel=1e-4)
    red = window.data[0, 0]
    assert (np.abs(red - truth.variables["Red"]) <= 2e-3).mean() > 0.95
