"""Training options: day subsets, incomplete tiles (no-data weighs 0), two-head loss, 2-D pre-training, zoo models in `train`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from banet_ops.models import zoo
from banet_ops.models.weights import load_weights
from banet_ops.training.augment import AugmentConfig
from banet_ops.training.dataset import MANIFEST_VERSION, Manifest, save_sample
from banet_ops.training.loss import masked_bce_loss
from banet_ops.training.options import day_subset, model_loss
from banet_ops.training.train import SampleSet, TrainConfig, train

T, S = 16, 16
TINY = {"width": 4, "depth": 2}


def _sample(seed: int, half_nodata: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw (time, band, y, x): a scar on the right half from day 6; the left half has no data (NaN) when asked."""
    rng = np.random.default_rng(seed)
    x = np.empty((T, 4, S, S), np.float32)
    x[:, 0], x[:, 1], x[:, 2], x[:, 3] = 0.08, 0.30, 0.10, 0.0
    x += rng.normal(0, 0.005, x.shape).astype(np.float32)
    x[:, 3] = 0.0
    rows, cols = slice(4, 12), slice(9, 14)
    x[6:, 1, rows, cols] = 0.12
    x[6, 3, rows, cols] = 30.0
    target = np.zeros((T, S, S), np.float32)
    target[6, rows, cols] = 1.0
    if half_nodata:
        x[:, :, :, : S // 2] = np.nan
        target[6, 2:8, 0:6] = 1.0  # labels under the no-data half (e.g. MCD64A1 saw a fire the cube did not)
    return x, target, np.ones((T, S, S), bool)


def _manifest(folder: Path, half_nodata: bool = True) -> Path:
    samples = []
    for i, split in enumerate(("train", "train", "val")):
        name = f"s{i}.npz"
        save_sample(folder / name, *_sample(i, half_nodata))
        samples.append({"file": name, "region": "H", "month": "2023-07", "split": split, "first_day": "2023-07-01",
                        "last_day": "2023-07-16", "row0": 0, "col0": 20 * i, "burned_cells": 40})  # fmt: skip
    path = folder / "manifest.json"
    doc = {"version": MANIFEST_VERSION, "config": {"tile": S, "days": T}, "samples": samples, "val_set_id": "vs-h", "dropped_for_overlap": 0}
    path.write_text(json.dumps(doc))
    return path


def test_day_subset_keeps_order_and_is_seeded() -> None:
    x = np.arange(T, dtype=np.float32)[None, :, None, None] * np.ones((4, T, 2, 2), np.float32)
    t = np.arange(T, dtype=np.float32)[:, None, None] * np.ones((T, 2, 2), np.float32)
    v = np.ones((T, 2, 2), bool)
    a = day_subset(x, t, v, 6, np.random.default_rng(1))
    b = day_subset(x, t, v, 6, np.random.default_rng(1))
    days = a[0][0, :, 0, 0]
    assert len(days) == 6 and (np.diff(days) > 0).all() and np.array_equal(days, a[1][:, 0, 0])
    assert np.array_equal(a[0], b[0])
    assert not np.array_equal(days, day_subset(x, t, v, 6, np.random.default_rng(2))[0][0, :, 0, 0])


def test_a_half_no_data_tile_trains_on_its_valid_half(tmp_path: Path) -> None:
    manifest = Manifest.load(_manifest(tmp_path))
    ds = SampleSet(manifest, manifest.split("train"), None, ignore_nodata=True)
    x, y, v = ds[(0, -1)]
    assert not v[..., : S // 2].any() and v[..., S // 2 :].all()
    assert y[..., : S // 2].sum() > 0  # the labels under the no-data half are there, but weigh 0
    torch.manual_seed(0)
    model = zoo.build_model("unet_convlstm", TINY).train()
    xb, yb, vb = x[None], y[None], v[None]
    logits = model(xb)
    logits.retain_grad()
    loss = masked_bce_loss(logits, yb, vb, 3.0)
    loss.backward()
    assert logits.grad is not None and (logits.grad[..., : S // 2] == 0).all() and (logits.grad[..., S // 2 :] != 0).any()
    keep = SampleSet(manifest, manifest.split("train"), None, ignore_nodata=False)[(0, -1)][2]
    assert keep.all()  # without the option the bogus labels under no data would be learnt


def test_train_a_zoo_model_with_every_option(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "ds")
    cfg = TrainConfig(
        manifest=manifest, run_dir=tmp_path / "run", steps=12, batch_size=2, lr=0.01, warmup_steps=0, pos_weight=3.0, init="scratch",
        device="cpu", threads=1, augment=AugmentConfig(), architecture="unet_convlstm", arch_config=TINY, day_subset=12,
        ignore_nodata=True, pretrain_2d_steps=4,
    )  # fmt: skip
    result = train(cfg)
    assert np.mean(result.history[-3:]) < np.mean(result.history[:3])
    model, _ = load_weights(result.weights, "cpu", architecture="unet_convlstm")
    assert zoo.architecture_of(model)[1]["width"] == 4
    assert json.loads(Path(result.weights).with_suffix(".json").read_text())["architecture"] == "unet_convlstm"
    # resuming a finished run returns it; the checkpoint rebuilds the recorded architecture
    assert train(cfg).sha256 == result.sha256


def test_representation_fusion_adds_its_weighted_heads() -> None:
    torch.manual_seed(0)
    model = zoo.build_model("deepforest_repr", {"width": 4, "thermal_width": 3, "depth": 1}).eval()
    x = torch.randn(1, 4, 5, 8, 8)
    y = (torch.rand(1, 1, 5, 8, 8) < 0.2).float()
    v = torch.ones_like(y, dtype=torch.bool)
    with torch.no_grad():
        main, aux = model.forward_with_aux(x)
        assert [w for _, w in aux] == [0.7, 0.3]
        expected = masked_bce_loss(main, y, v, 2.0) + 0.7 * masked_bce_loss(aux[0][0], y, v, 2.0) + 0.3 * masked_bce_loss(aux[1][0], y, v, 2.0)
        assert float(model_loss(model, x, y, v, 2.0)) == pytest.approx(float(expected), rel=1e-6)
        assert torch.equal(model(x), main)


def test_training_options_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pretrain_2d_steps"):
        TrainConfig(manifest=tmp_path, run_dir=tmp_path, architecture="segnet", pretrain_2d_steps=3)
    with pytest.raises(ValueError, match="multiple of 16 for banet"):
        TrainConfig(manifest=tmp_path, run_dir=tmp_path, day_subset=20)
    with pytest.raises(ValueError, match="widht"):
        TrainConfig(manifest=tmp_path, run_dir=tmp_path, architecture="segnet", arch_config={"widht": 3})
