"""The shipped demo weights (banet_ops/data/weights/banet_synthetic_demo_ONLY.pth, made by
scripts/train_demo_weights.py): present, labelled synthetic-only, intact (sidecar sha256), a
strict BA-Net state_dict in float32, and actually trained: on a 64 × 64 crop of the demo scenario
(seed 7, never seen in training) the NRT rule maps the fires that burned in the window."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from banet_ops.bands import MODEL_BANDS
from banet_ops.demo import DemoConfig
from banet_ops.demo.weights import PACKAGED, demo_weights
from banet_ops.inference.engine import predict_probabilities
from banet_ops.inference.products import nrt_product
from banet_ops.models.banet import PARAMETER_COUNT
from banet_ops.models.weights import load_weights
from banet_ops.synthetic import synthetic_daily_images, true_burn_dates

WEIGHTS = Path(__file__).resolve().parents[2] / "banet_ops" / "data" / "weights" / "banet_synthetic_demo_ONLY.pth"
SIDECAR = WEIGHTS.with_suffix(".json")


@pytest.fixture(scope="module")
def sidecar() -> dict:
    return json.loads(SIDECAR.read_text())


def test_the_weights_ship_with_the_package_and_the_demo_uses_them(tmp_path: Path) -> None:
    assert WEIGHTS.is_file() and SIDECAR.is_file()
    assert PACKAGED == WEIGHTS
    assert demo_weights(tmp_path, DemoConfig()) == WEIGHTS
    assert WEIGHTS.stat().st_size < 16 * 2**20


def test_sidecar_labels_them_synthetic_only_and_matches_the_file(sidecar: dict) -> None:
    assert sidecar["purpose"] == "trained on synthetic data only, not for real fire mapping"
    assert sidecar["sha256"] == hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    assert sidecar["bytes"] == WEIGHTS.stat().st_size
    # the demo scenario (seed 7) is held out: no training or validation region uses its seed
    gen = sidecar["generator"]
    seeds = [r["seed"] for r in gen["train_regions"] + gen["validation_regions"]]
    assert seeds and DemoConfig().seed not in seeds
    for key in ("steps", "training_wall_s", "tile"):
        assert key in sidecar["training"]
    assert sidecar["validation"]["metrics"]["dice"] is not None
    assert {"torch", "numpy", "python"} <= set(sidecar["software"])


def test_strict_load_float32_state_dict(sidecar: dict) -> None:
    model, ref = load_weights(WEIGHTS, "cpu")  # strict: every key and shape
    assert ref.sha256 == sidecar["sha256"]
    assert sum(p.numel() for p in model.parameters()) == PARAMETER_COUNT == sidecar["parameters"]
    raw = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert isinstance(raw, dict) and all(isinstance(v, torch.Tensor) for v in raw.values())  # a bare state_dict
    assert {v.dtype for v in raw.values() if v.is_floating_point()} == {torch.float32}


def test_the_weights_map_held_out_demo_fires() -> None:
    cfg = DemoConfig()
    region = cfg.region
    last = 79  # the demo's last day; its NRT window is days 16..79
    images = list(synthetic_daily_images(region, cfg.start, last + 1, cfg.seed))[last - 63 :]
    truth = true_burn_dates(region, cfg.start, cfg.days, cfg.seed)
    day = images[-1].day
    window_start = np.datetime64(images[0].day, "D")
    ok = ~np.isnat(truth)
    in_window = np.zeros(truth.shape, bool)
    in_window[ok] = (truth[ok] > window_start) & (truth[ok] <= np.datetime64(day, "D"))
    # the 64 x 64 crop (on a 16-cell grid) holding the most cells burned in the window
    r0, c0 = max(((r, c) for r in range(0, 65, 16) for c in range(0, 65, 16)), key=lambda rc: in_window[rc[0] : rc[0] + 64, rc[1] : rc[1] + 64].sum())
    rows, cols = slice(r0, r0 + 64), slice(c0, c0 + 64)
    window = np.stack([np.stack([im.variables[b][rows, cols] for b in MODEL_BANDS]) for im in images]).astype(np.float32)
    model, _ = load_weights(WEIGHTS, "cpu")
    probs = predict_probabilities(window, [model], tile=64, overlap=0, batch=1)
    product = nrt_product(region.subregion("CROP", r0, c0, 64, 64), day, probs)
    ref = in_window[rows, cols]
    assert ref.sum() > 300  # the crop does hold fires
    tp = int((product.burned & ref).sum())
    dice = 2 * tp / (int(product.burned.sum()) + int(ref.sum()))
    errors = np.abs((product.burn_date - truth[rows, cols])[product.burned & ref].astype(np.int64))
    assert dice >= 0.7, dice
    assert errors.mean() <= 2.0, errors.mean()
