"""The bake-off end to end on a synthetic world (``banet-ops bakeoff --synthetic``), like the demo.

One 96 × 96-cell region with fires in July and August 2020: its cube, MCD64A1 tiles and label
cube (:func:`banet_ops.retrain.synthetic_world.build_world`); training samples from July
(32 × 32 cells × 32 days), evaluation on August, never seen in training.  The zoo models start
from scratch at small widths (CPU); BA-Net is fine-tuned for ``BANET_FINE_TUNE_STEPS`` steps from the
packaged synthetic demo weights (trained on other synthetic regions and seeds), as production
retraining starts from production.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from banet_ops.regions import Region
from banet_ops.retrain.bakeoff import BakeoffConfig, run_bakeoff
from banet_ops.retrain.synthetic_world import WorldRegion, build_world, environment
from banet_ops.training.dataset import DatasetConfig, build_dataset
from banet_ops.training.evaluate import EvalConfig

REGION = Region(name="BAKE", bbox=(-8.3, 39.8, -7.34, 40.76), pixel_size=0.01)
SEED = 1
TRAIN, HELD_OUT = "BAKE:2020-07", "BAKE:2020-08"
DEMO_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "weights" / "banet_synthetic_demo_ONLY.pth"
BANET_FINE_TUNE_STEPS = 20  # BA-Net is already trained: a short fine-tune at the bake-off's lr (the zoo models get ``steps``)
SMALL: dict[str, dict[str, Any]] = {
    "unet_convlstm": {"width": 8, "depth": 2},
    "deepforest_early": {"width": 8, "depth": 2, "lstm_blocks": 2},
    "deepforest_repr": {"width": 8, "thermal_width": 6, "depth": 2},
    "segnet": {"width": 8, "depth": 2, "context": 2},
}


def _world(root: Path) -> dict[str, str]:
    marker = root / "world.json"
    if marker.is_file():
        env: dict[str, str] = json.loads(marker.read_text())["env"]
        return env
    world = build_world(
        root / "world",
        [WorldRegion(REGION, SEED)],
        start=dt.date(2020, 6, 1),
        days=153,
        cube_first=dt.date(2020, 6, 30),
        cube_last=dt.date(2020, 8, 31),
        label_months=[TRAIN, HELD_OUT],
    )
    marker.write_text(json.dumps({"env": world.env}))
    return world.env


def synthetic_bakeoff(
    out_dir: str | Path,
    *,
    architectures: list[str] | None = None,
    steps: int = 60,
    threads: int | None = None,
    register: bool = True,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build (or reuse) the synthetic world under ``out_dir`` and run the bake-off there (``overrides``: BakeoffConfig fields); returns the report."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with environment(_world(out)):
        manifest = build_dataset(
            DatasetConfig(region_months=[TRAIN], val_region_months=[HELD_OUT], tile=32, days=32, stride=16, min_burned_cells=5, out_dir=out / "dataset")
        )
        fields: dict[str, Any] = {
            "arch_configs": SMALL,
            "train_options": {"banet": {"init": str(DEMO_WEIGHTS), "steps": BANET_FINE_TUNE_STEPS}},
            "manifest": manifest.path,
            "eval": EvalConfig(region_months=[HELD_OUT], days=32, device="cpu", tile=96),
            "out_dir": out / "report",
            "steps": steps,
            "threads": threads,
            "register_models": register,
            **({"architectures": architectures} if architectures else {}),
            **(overrides or {}),
        }
        return run_bakeoff(BakeoffConfig.model_validate(fields))
