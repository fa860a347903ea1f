"""Evaluation metrics, and the whole retraining pipeline (labels → dataset → train → evaluate → register → gate)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from banet_ops.regions import Region
from banet_ops.training.dataset import RegionMonth
from banet_ops.training.evaluate import compare

from .conftest import World


def test_compare_counts_dates_and_bias() -> None:
    region = Region(name="E", bbox=(0.0, 0.0, 0.04, 0.02), pixel_size=0.01)  # 2 x 4 cells
    rm = RegionMonth("E", 2020, 8)
    days = [dt.date(2020, 7, 30) + dt.timedelta(days=i) for i in range(8)]  # Jul 30 .. Aug 6
    probs = np.zeros((8, 2, 4), np.float32)
    bafrac = np.zeros((8, 2, 4), np.float32)
    valid = np.ones((8, 2, 4), bool)
    # cell (0,0): both burned, same day; (0,1): both burned, 2 days apart; (0,2): predicted only;
    # (0,3): reference only; (1,0): burned in July only (outside the month) -> not burned;
    # (1,1): reference burned but unmapped -> ignored; (1,2): prediction split over days (conf 0.6)
    probs[3, 0, 0], bafrac[3, 0, 0] = 0.9, 1.0
    probs[5, 0, 1], bafrac[3, 0, 1] = 0.8, 0.7
    probs[4, 0, 2] = 0.7
    bafrac[6, 0, 3] = 0.9
    probs[0, 1, 0], bafrac[0, 1, 0] = 1.0, 1.0
    bafrac[4, 1, 1] = 1.0
    valid[:, 1, 1] = False
    probs[2, 1, 2], probs[4, 1, 2], bafrac[4, 1, 2] = 0.2, 0.4, 0.6
    c = compare(probs, days, bafrac, valid, rm, region.row_cell_area_km2())
    m = c.metrics
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (3, 1, 1, 2)
    assert m["valid_cells"] == 7
    assert m["dice"] == pytest.approx(6 / 8) and m["f1"] == m["dice"]
    assert m["omission"] == pytest.approx(1 / 4) and m["commission"] == pytest.approx(1 / 4)
    assert m["relative_bias"] == pytest.approx(0.0, abs=1e-3)  # 4 predicted vs 4 reference cells of ~equal area
    assert m["n_dated"] == 3 and m["mean_abs_date_error"] == pytest.approx(2 / 3)
    assert (m["date_within_0"], m["date_within_1"], m["date_within_2"], m["date_within_4"]) == pytest.approx((2 / 3, 2 / 3, 1.0, 1.0))
    strict = compare(probs, days, bafrac, valid, rm, region.row_cell_area_km2(), threshold=0.75)
    assert strict.metrics["tp"] == 2


def test_pipeline_end_to_end(world_env: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from banet_ops import registry
    from banet_ops.cli import main
    from banet_ops.db.engine import get_engine
    from banet_ops.retrain import pipeline
    from banet_ops.settings import get_settings
    from banet_ops.training.dataset import DatasetConfig
    from banet_ops.training.train import TrainConfig

    monkeypatch.setenv("BANET_DATABASE_URL", db_url)
    get_settings.cache_clear()
    engine = get_engine(db_url)
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM banet.model"))

    labels = pipeline.make_labels(pipeline.LabelsStep(region_months=["T:2020-08"], neighbours=False))
    assert [r["month"] for r in labels["labelled"]] == ["2020-08"] and labels["labelled"][0]["burned_cells"] > 100
    ds = pipeline.build_dataset(
        DatasetConfig(
            region_months=["T:2020-07"], val_region_months=["T:2020-08"], tile=32, days=32, stride=32, min_burned_cells=10,
            max_samples_per_region_month=2, out_dir=tmp_path / "ds",
        )
    )
    json.dumps(ds)  # XCom-sized, JSON-serialisable
    assert ds["n_train"] >= 1 and ds["val_region_months"] == ["T:2020-08"]

    def one_round(seed: int) -> tuple[dict, dict, dict]:
        trained = pipeline.train(
            TrainConfig(manifest=Path(ds["manifest"]), run_dir=tmp_path / f"run{seed}", steps=2, batch_size=2, seed=seed, device="cpu", threads=1)
        )
        ecfg = pipeline.eval_config_for(ds, device="cpu", tile=96, report_dir=tmp_path / f"report{seed}")
        evaluated = pipeline.evaluate(pipeline.EvaluateStep(weights=Path(trained["weights"]), eval=ecfg))
        assert evaluated["val_set_id"] == ds["val_set_id"]
        reg = pipeline.register(
            pipeline.RegisterStep(
                weights=Path(trained["weights"]), config=trained["config"], data_window=ds["data_window"],
                val_set_id=evaluated["val_set_id"], metrics=evaluated["candidate"]["overall"],
            )
        )
        decision = pipeline.gate(pipeline.GateStep(model_id=reg["model_id"], val_set_id=ds["val_set_id"], margin=0.05))
        for result in (trained, evaluated, reg, decision):
            json.dumps(result)
        return trained, evaluated, decision

    trained, evaluated, decision = one_round(0)
    assert trained["init"] == "scratch"  # no production model yet
    overall = evaluated["candidate"]["overall"]
    assert overall["valid_cells"] > 8000 and overall["tp"] + overall["fn"] > 100
    files = {Path(f).name for f in evaluated["candidate"]["files"]}
    assert files == {"report.json", "date_errors.png", "map_T_2020-08.png"}
    assert (tmp_path / "report0" / "map_T_2020-08.png").read_bytes()[:4] == b"\x89PNG"
    assert decision["promoted"] and decision["production"] is None

    trained2, evaluated2, decision2 = one_round(1)
    assert trained2["init"].startswith("production:")  # fine-tuned from the production model
    assert evaluated2["production"]["model_id"] == decision["candidate"]
    better = evaluated2["candidate"]["overall"]["dice"] >= evaluated["candidate"]["overall"]["dice"] + 0.05
    assert decision2["promoted"] == better
    record = registry.get_model(engine, decision2["candidate"])
    assert record.data_window and record.data_window["val_set_id"] == ds["val_set_id"]
    assert record.config["steps"] == 2

    capsys.readouterr()
    assert main(["evaluate", "--model", "production", "--region-month", "T:2020-08", "--days", "32", "--tile", "96", "--device", "cpu", "--record"]) == 0
    out = capsys.readouterr().out
    assert "Dice" in out and ds["val_set_id"] in out
