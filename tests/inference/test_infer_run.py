"""`run_inference` and `banet-ops infer` on a real (local Icechunk) cube."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from banet_ops import cube
from banet_ops.bands import CUBE_VARIABLES
from banet_ops.cli import main
from banet_ops.daily_image import DailyImage
from banet_ops.errors import InsufficientDataError, ModelError
from banet_ops.inference.engine import predict_probabilities
from banet_ops.inference.products import nrt_product
from banet_ops.inference.run import run_inference
from banet_ops.inference.tiling import tiling_preset
from banet_ops.models.banet import BANet
from banet_ops.models.weights import save_weights
from banet_ops.regions import Region
from banet_ops.settings import get_settings

REGION = Region(name="TINY", bbox=(-8.0, 40.0, -7.7, 40.3), pixel_size=0.01)  # 30 x 30: one 32 x 32 tile
DAY = dt.date(2023, 8, 20)


def _image(win: np.ndarray, t: int, day: dt.date) -> DailyImage:
    variables = {name: np.zeros(REGION.shape, dtype=np.float32) for name in CUBE_VARIABLES}
    for i, name in enumerate(("Red", "NIR", "MIR", "FRP")):
        variables[name] = np.nan_to_num(win[t, i], nan=np.nan if name != "FRP" else 0.0)
    variables["n_obs"][:] = 1
    return DailyImage(region=REGION, day=day, variables=variables, granules=[f"g{t}"])


@pytest.fixture
def cube_with_days(banet_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_window) -> dict[str, object]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BANET_CUBE_ROOT", str(tmp_path / "cubes"))
    get_settings.cache_clear()
    win = make_window(*REGION.shape, days=64, seed=3)
    snaps = [cube.write_day(_image(win, t, DAY - dt.timedelta(days=63 - t))) for t in (40, 48, 60, 63)]
    return {"win": win, "snapshot": snaps[-1]}


def test_run_reads_a_pinned_snapshot_and_matches_the_engine(cube_with_days, tiny_region_file, banet: BANet, tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BANET_MIN_WINDOW_DAYS", "4")
    get_settings.cache_clear()
    weights = tmp_path / "w.pth"
    sha = save_weights(banet, weights)
    result = run_inference(REGION, DAY, "nrt", weights=[weights], device="cpu", tile=32, overlap=8, publish=False)
    product = result.product
    assert result.cube_snapshot == cube_with_days["snapshot"] == product.cube_snapshot
    assert result.available_days == 4 == product.observed_days
    assert product.tiling == "custom:32/8/uniform/baseline"  # the published preset with --tile/--overlap overrides
    assert product.models[0].sha256 == sha
    assert product.window_start == DAY - dt.timedelta(days=63) and product.window_end == DAY
    assert product.nir is not None and np.isfinite(product.nir).all()
    # same numbers as the engine on the full window read directly (missing days are NaN → 0)
    window = cube.read_window(REGION, product.window_start, DAY, snapshot=result.cube_snapshot)
    probs = predict_probabilities(window.data, [banet], tiling=tiling_preset("published", tile=32, overlap=8))
    direct = nrt_product(REGION, DAY, probs)
    np.testing.assert_allclose(product.confidence, direct.confidence, atol=1e-6)
    np.testing.assert_array_equal(product.burned, direct.burned)
    assert product.confidence.std() > 0

    # a later commit does not change a run pinned to the earlier snapshot (via the CLI)
    cube.write_day(DailyImage.empty(REGION, DAY - dt.timedelta(days=1)))
    argv = ["infer", "--region", "TINY", "--date", str(DAY), "--weights", str(weights), "--device", "cpu"]
    code = main([*argv, "--snapshot", result.cube_snapshot, "--tile", "32", "--overlap", "8", "--no-publish"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"cube snapshot   {result.cube_snapshot}" in out
    assert "(4/64 days in cube)" in out and "burned cells" in out and "not published" in out
    assert "tiling          custom:32/8/uniform/baseline" in out


def test_incomplete_window_is_refused_with_exit_66(cube_with_days, tiny_region_file, banet: BANet, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    weights = tmp_path / "w.pth"
    save_weights(banet, weights)
    # the default minimum (48 of 64 days) refuses a window holding 4 days, before loading any model
    with pytest.raises(InsufficientDataError, match=r"expected at least 48 ingested days \(BANET_MIN_WINDOW_DAYS\), found 4"):
        run_inference(REGION, DAY, "nrt", weights=[tmp_path / "absent.pth"], device="cpu", publish=False)
    argv = ["infer", "--region", "TINY", "--date", str(DAY), "--weights", str(weights), "--device", "cpu", "--no-publish"]
    assert main(argv) == 66
    assert "found 4" in capsys.readouterr().err
    monkeypatch.setenv("BANET_MIN_WINDOW_DAYS", "5")
    get_settings.cache_clear()
    with pytest.raises(InsufficientDataError, match="found 4"):
        run_inference(REGION, DAY, "nrt", weights=[weights], device="cpu", publish=False)


@pytest.fixture
def tiny_region_file(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = banet_home / "regions"
    folder.mkdir()
    (folder / "R_TINY.json").write_text(REGION.model_dump_json())
    monkeypatch.setenv("BANET_REGIONS_DIR", str(folder))
    get_settings.cache_clear()


def test_empty_window_and_missing_weights_fail_fast(cube_with_days, tiny_region_file, banet: BANet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    weights = tmp_path / "w.pth"
    save_weights(banet, weights)
    with pytest.raises(InsufficientDataError, match="ingested days"):
        run_inference("TINY", dt.date(2022, 1, 1), "nrt", weights=[weights], device="cpu", publish=False)
    with pytest.raises(ModelError, match="registry"):
        run_inference("TINY", DAY, "nrt", device="cpu", publish=False)  # no weights, no database


def test_cli_validates_its_arguments(tiny_region_file, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["infer", "--region", "TINY", "--date", "2023-02-30", "--no-publish"]) == 1
    assert "--date" in capsys.readouterr().err
    assert main(["infer", "--region", "TINY", "--date", "2023-02-03", "--tile", "100"]) == 1
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["infer", "--region", "TINY", "--date", "2023-02-03", "--weights", "/nonexistent.pth"]) == 1
    assert "existing weight file" in capsys.readouterr().err
