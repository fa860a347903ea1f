"""A promoted non-BA-Net model (``unet_convlstm``) runs through `banet-ops infer`; the optional water mask of products."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from banet_ops import cube, registry
from banet_ops.bands import CUBE_VARIABLES
from banet_ops.cli import main
from banet_ops.daily_image import DailyImage
from banet_ops.inference.run import run_inference
from banet_ops.models.weights import initialise_model, save_weights
from banet_ops.regions import Region
from banet_ops.settings import get_settings

REGION = Region(name="ZOO", bbox=(-8.0, 40.0, -7.7, 40.3), pixel_size=0.01)  # 30 x 30
DAY = dt.date(2023, 8, 20)
LAKE = (slice(2, 9), slice(3, 12))
TINY = {"width": 4, "depth": 2}


def _image(win: np.ndarray, t: int, day: dt.date) -> DailyImage:
    variables = {name: np.zeros(REGION.shape, dtype=np.float32) for name in CUBE_VARIABLES}
    for i, name in enumerate(("Red", "NIR", "MIR", "FRP")):
        variables[name] = np.nan_to_num(win[t, i], nan=np.nan if name != "FRP" else 0.0)
    variables["M10"] = np.where(np.isfinite(win[t, 0]), 0.22, np.nan).astype(np.float32)
    for name, value in (("Red", 0.03), ("NIR", 0.015), ("M10", 0.01)):
        variables[name][LAKE] = value
    variables["n_obs"][:] = 1
    return DailyImage(region=REGION, day=day, variables=variables, granules=[f"g{t}"])


@pytest.fixture
def zoo_cube(banet_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_window) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BANET_CUBE_ROOT", str(tmp_path / "cubes"))
    monkeypatch.setenv("BANET_MIN_WINDOW_DAYS", "1")  # a short test cube, not a 64-day window
    folder = banet_home / "regions"
    folder.mkdir()
    (folder / "R_ZOO.json").write_text(REGION.model_dump_json())
    monkeypatch.setenv("BANET_REGIONS_DIR", str(folder))
    get_settings.cache_clear()
    win = make_window(*REGION.shape, days=64, seed=3)
    for t in (40, 48, 56, 60, 63):
        cube.write_day(_image(win, t, DAY - dt.timedelta(days=63 - t)))


def test_water_mask_unburns_the_lake(zoo_cube: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "u.pth"
    save_weights(initialise_model(0, prior=0.2, architecture="unet_convlstm", config=TINY), weights)  # burns everything
    plain = run_inference(REGION, DAY, "nrt", weights=[weights], device="cpu", tile=32, overlap=8, publish=False).product
    assert plain.burned[LAKE].sum() > 20  # most of the lake burns without the mask
    monkeypatch.setenv("BANET_WATER_MASK", "1")
    get_settings.cache_clear()
    masked = run_inference(REGION, DAY, "nrt", weights=[weights], device="cpu", tile=32, overlap=8, publish=False).product
    lake = np.zeros(REGION.shape, bool)
    lake[LAKE] = True
    assert not masked.burned[lake].any() and (masked.confidence[lake] == 0).all() and np.isnat(masked.burn_date[lake]).all()
    np.testing.assert_array_equal(masked.burned[~lake], plain.burned[~lake])  # land is untouched


def test_promoted_unet_convlstm_runs_through_banet_ops_infer(zoo_cube: None, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from banet_ops.db.engine import get_engine

    monkeypatch.setenv("BANET_DATABASE_URL", db_url)
    get_settings.cache_clear()
    engine = get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM banet.model"))
    weights = tmp_path / "u.pth"
    model = initialise_model(1, architecture="unet_convlstm", config=TINY)
    save_weights(model, weights)
    rec = registry.register_candidate(engine, weights, name="unet_convlstm", metrics={"validation": {"vs-z": {"dice": 0.8}}})
    assert registry.gate(engine, rec.id, val_set_id="vs-z").promoted
    code = main(["infer", "--region", "ZOO", "--date", str(DAY), "--device", "cpu", "--tile", "32", "--overlap", "8", "--no-publish"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert rec.id in out or rec.sha256[:12] in out
    direct = run_inference(REGION, DAY, "nrt", weights=[weights], device="cpu", tile=32, overlap=8, publish=False).product
    via_registry = run_inference(REGION, DAY, "nrt", device="cpu", tile=32, overlap=8, publish=False).product
    assert via_registry.models[0].model_id == rec.id
    np.testing.assert_allclose(via_registry.confidence, direct.confidence, atol=1e-6)
    assert direct.confidence.std() > 0
