"""`banet-ops bakeoff`: config, report table, tile timing; the synthetic end-to-end run is marked slow."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from banet_ops.models import zoo
from banet_ops.retrain.bakeoff import BakeoffConfig, _maps, markdown_table, time_tile
from banet_ops.training.evaluate import EvalConfig


def test_config_refuses_unknown_or_repeated_architectures(tmp_path: Path) -> None:
    base = {"manifest": tmp_path / "m.json", "eval": EvalConfig(region_months=["A:2020-08"]), "out_dir": tmp_path}
    assert BakeoffConfig.model_validate(base).architectures == list(zoo.ARCHS)
    with pytest.raises(ValueError, match="expected an architecture in"):
        BakeoffConfig.model_validate({**base, "architectures": ["resnet"]})
    with pytest.raises(ValueError, match="distinct"):
        BakeoffConfig.model_validate({**base, "architectures": ["segnet", "segnet"]})


def test_markdown_table_lists_every_architecture() -> None:
    rows = [
        {"architecture": "banet", "parameters": 3415361, "dice": 0.91, "omission": 0.01, "commission": 0.15, "relative_bias": 0.17,
         "date_within_1": 0.99, "mean_abs_date_error": 0.2, "infer_s_per_tile": 12.3, "train_s": 400.0, "gate": "promoted"},
        {"architecture": "segnet", "parameters": 585105, "dice": None, "gate": "refused"},
    ]  # fmt: skip
    table = markdown_table(rows).splitlines()
    assert table[0].startswith("| architecture | parameters | Dice |") and len(table) == 4
    assert "| banet | 3,415,361 | 0.910 |" in table[2] and "+0.170" in table[2] and table[2].endswith("| promoted |")
    assert "| segnet | 585,105 | – |" in table[3]


def test_time_tile_runs_the_inference_form() -> None:
    torch.manual_seed(0)
    model = zoo.build_model("segnet", {"width": 2, "depth": 1, "context": 0})
    assert 0 < time_tile(model, tile=32, days=16) < 60


def test_a_changed_config_trains_in_its_own_run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from banet_ops.retrain import bakeoff
    from banet_ops.training import train as train_mod

    seen: list[Path] = []
    monkeypatch.setattr(train_mod, "train", lambda tc: seen.append(tc.run_dir) or SimpleNamespace(duration_s=12.5))
    base = {"manifest": tmp_path / "m.json", "eval": EvalConfig(region_months=["A:2020-08"]), "out_dir": tmp_path}
    for fields in (base, base, {**base, "train_options": {"segnet": {"lr": 0.01}}}):
        assert bakeoff._train_one(BakeoffConfig.model_validate(fields), "segnet")[1] == 12.5  # the run's recorded time
    assert seen[0] == seen[1] != seen[2] and all(p.parent == tmp_path / "segnet" and p.name.startswith("run-") for p in seen)


def test_every_bakeoff_model_is_registered_and_gated(db_url: str, banet_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import sqlalchemy as sa

    from banet_ops.db.engine import get_engine
    from banet_ops.models.weights import save_weights
    from banet_ops.retrain import bakeoff
    from banet_ops.settings import get_settings
    from banet_ops.training.evaluate import EvalReport

    monkeypatch.setenv("BANET_DATABASE_URL", db_url)
    get_settings.cache_clear()
    with get_engine(db_url).begin() as conn:
        conn.execute(sa.text("DELETE FROM banet.model"))
    manifest = tmp_path / "manifest.json"
    sample = {"file": "t.npz", "region": "A", "month": "2020-07", "split": "train", "first_day": "2020-07-01", "last_day": "2020-07-31",
              "row0": 0, "col0": 0, "burned_cells": 9}  # fmt: skip
    manifest.write_text(json.dumps({"version": 1, "config": {}, "samples": [sample], "val_set_id": "vs-b"}))
    cfg = BakeoffConfig.model_validate({"manifest": manifest, "eval": EvalConfig(region_months=["A:2020-08"]), "out_dir": tmp_path})
    decisions = {}
    for arch, dice in (("segnet", 0.80), ("unet_convlstm", 0.85), ("deepforest_early", 0.855)):
        torch.manual_seed(0)
        weights = tmp_path / f"{arch}.pth"
        save_weights(zoo.build_model(arch, {"width": 2, "depth": 1}), weights)
        report = EvalReport(val_set_id="vs-b", weights=[str(weights)], overall={"dice": dice}, per_region_month={})
        decisions[arch] = bakeoff._register(cfg, arch, str(weights), report, get_settings())
    assert [d["promoted"] for d in decisions.values()] == [True, True, False]  # first, better by the margin, not by the margin
    assert "refused" in decisions["deepforest_early"]["reason"]
    with get_engine(db_url).connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT architecture, status FROM banet.model")).all())
    assert rows == {"segnet": "retired", "unet_convlstm": "production", "deepforest_early": "candidate"}  # a promotion retires the former production
    get_settings.cache_clear()


@pytest.mark.slow
def test_synthetic_bakeoff_every_architecture_maps_held_out_fires(tmp_path: Path) -> None:
    """The whole `bakeoff --synthetic` on CPU; ``BANET_BAKEOFF_STEPS`` sets the length (benchmarks/README.md ``## bakeoff``)."""
    from banet_ops.retrain.synthetic_bakeoff import synthetic_bakeoff

    report = synthetic_bakeoff(tmp_path, steps=int(os.environ.get("BANET_BAKEOFF_STEPS", "100")), register=False)
    assert [r["architecture"] for r in report["rows"]] == list(zoo.ARCHS)
    for row in report["rows"]:
        assert row["dice"] is not None and row["dice"] >= 0.7, row
    assert all(Path(f).is_file() for f in report["files"])


def test_the_comparison_maps_have_a_panel_per_model_and_month(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:32, 0:32]
    ref = (yy - 15) ** 2 + (xx - 15) ** 2 < 60

    def comparison(month: str, shift: int) -> SimpleNamespace:
        pred = (yy - 15 - shift) ** 2 + (xx - 16) ** 2 < 55
        return SimpleNamespace(region_month=month, ref_burned=ref, ref_day=np.where(ref, 200 + xx // 8, 0), pred_burned=pred, metrics={"dice": 0.8})

    reports = {arch: SimpleNamespace(comparisons=[comparison("PI 2024-08", k), comparison("PI 2024-09", k)]) for k, arch in enumerate(("banet", "segnet"))}
    out = Path(_maps(tmp_path / "maps.png", reports))  # type: ignore[arg-type]
    with Image.open(out) as png:
        assert png.size == (int(2.6 * 3 * 80), int(2.8 * 2 * 80))  # 3 columns (MCD64A1 + 2 models), 2 region-months, dpi 80
