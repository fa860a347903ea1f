"""Training data, augmentation, loss, and the resumable training loop (real BA-Net, tiny inputs)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from banet_ops.errors import ValidationError
from banet_ops.training.augment import FRP_INDEX, FRP_ZERO, AugmentConfig, augment
from banet_ops.training.dataset import DatasetConfig, Manifest, RegionMonth, build_dataset, load_sample, prepare_input
from banet_ops.training.loss import auto_pos_weight, masked_bce_loss
from banet_ops.training.train import TrainConfig, lr_factor, train

from .conftest import World


def test_region_month_windows() -> None:
    rm = RegionMonth.parse("PI:2020-08")
    assert str(rm) == "PI:2020-08"
    assert rm.window(64) == (dt.date(2020, 7, 15), dt.date(2020, 9, 16))  # the monthly product's window
    assert rm.window(32) == (dt.date(2020, 7, 31), dt.date(2020, 8, 31))
    assert [str(n) for n in RegionMonth.parse("PI:2021-01").neighbours()] == ["PI:2020-12", "PI:2021-01", "PI:2021-02"]
    with pytest.raises(ValidationError, match="PI:2020-13"):
        RegionMonth.parse("PI:2020-13")


def test_prepare_input_matches_the_inference_engine() -> None:
    from banet_ops.inference.engine import preprocess_window

    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 0.5, (16, 4, 8, 8)).astype(np.float32)
    raw[:, 3] = rng.choice([0.0, 3.0, 250.0], raw[:, 3].shape)
    raw[2, 0, 1, 1] = np.nan
    np.testing.assert_allclose(prepare_input(raw), preprocess_window(raw), rtol=1e-6)


def test_loss_ignores_masked_cells_and_weights_burned() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 8, 4, 4, generator=g, requires_grad=True)
    target = (torch.rand(2, 1, 8, 4, 4, generator=g) < 0.1).float()
    valid = torch.rand(2, 1, 8, 4, 4, generator=g) < 0.7
    loss = masked_bce_loss(logits, target, valid, pos_weight=5.0)
    loss.backward()
    assert logits.grad is not None
    assert torch.all(logits.grad[~valid] == 0) and torch.any(logits.grad[valid] != 0)
    changed = logits.detach().clone()
    changed[~valid] = 100.0
    assert float(masked_bce_loss(changed, target, valid, 5.0)) == pytest.approx(float(loss.detach()))
    with torch.no_grad():
        assert float(masked_bce_loss(logits, target, valid, 10.0)) > float(masked_bce_loss(logits, target, valid, 1.0))
    empty = masked_bce_loss(logits, target, torch.zeros_like(valid), 5.0)
    assert float(empty.detach()) == 0.0
    empty.backward()  # still differentiable
    assert auto_pos_weight([np.array([1.0, 0, 0, 0, 0])], [np.ones(5, bool)]) == pytest.approx(2.0)
    assert auto_pos_weight([np.zeros(5)], [np.ones(5, bool)]) == 1.0


def test_augment_is_consistent_and_seeded() -> None:
    rng = np.random.default_rng(1)
    target = (rng.random((8, 16, 16)) < 0.2).astype(np.float32)
    valid = rng.random((8, 16, 16)) < 0.9
    x = rng.normal(size=(4, 8, 16, 16)).astype(np.float32)
    x[0] = target  # band 0 carries the target pattern: it must move with it
    x[1] = valid
    cfg = AugmentConfig(frp_cutout_p=1.0)
    seen = set()
    for seed in range(12):
        ax, at, av = augment(x.copy(), target.copy(), valid.copy(), np.random.default_rng(seed), cfg)
        np.testing.assert_array_equal(ax[0], at)
        np.testing.assert_array_equal(ax[1].astype(bool), av)
        assert np.isclose(ax[FRP_INDEX], FRP_ZERO).any()
        bx, bt, _ = augment(x.copy(), target.copy(), valid.copy(), np.random.default_rng(seed), cfg)
        np.testing.assert_array_equal(ax, bx)
        np.testing.assert_array_equal(at, bt)
        seen.add(at.tobytes())
        assert at.sum() == target.sum()
    assert len(seen) > 4  # flips and rotations actually vary
    plain, _, _ = augment(x.copy(), target.copy(), valid.copy(), np.random.default_rng(0), AugmentConfig(flips=False, rotations=False, frp_cutout_p=0))
    np.testing.assert_array_equal(plain, x)


def test_lr_schedule_warms_up_and_decays() -> None:
    cfg = TrainConfig(manifest=Path("m.json"), run_dir=Path("r"), steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(10, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.55)
    assert lr_factor(100, cfg) == pytest.approx(0.1)


def test_dataset_split_has_no_overlap(world_env: World, tmp_path: Path) -> None:
    cfg = DatasetConfig(
        region_months=["T:2020-07"],
        val_region_months=["T:2020-08"],
        tile=32,
        days=32,
        stride=16,
        min_burned_cells=10,
        out_dir=tmp_path / "ds",
    )
    manifest = build_dataset(cfg)
    train_s, val_s = manifest.split("train"), manifest.split("val")
    assert train_s and val_s
    assert {s.month for s in train_s}.isdisjoint({s.month for s in val_s})
    assert not any(t.overlaps(v, 32) for t in train_s for v in val_s)
    assert manifest.dropped_for_overlap > 0  # July and August windows share 31 July
    x, target, valid = load_sample(manifest.folder / train_s[0].file)
    assert x.shape == (32, 4, 32, 32) and target.shape == valid.shape == (32, 32, 32)
    assert target.min() >= 0 and target.max() <= 1 and np.all(target[~valid] == 0)
    assert int((target.sum(axis=0) >= 0.5).sum()) == train_s[0].burned_cells >= 10
    first = manifest.path.read_bytes()
    again = build_dataset(cfg)
    assert again.path.read_bytes() == first  # idempotent
    assert Manifest.load(again.path).data_window()["val_set_id"] == manifest.val_set_id
    with pytest.raises(ValueError, match="multiple of 32"):
        DatasetConfig(region_months=["T:2020-07"], tile=48, out_dir=tmp_path)


def _small_dataset(tmp_path: Path) -> Manifest:
    cfg = DatasetConfig(
        region_months=["T:2020-07"],
        val_region_months=["T:2020-08"],
        tile=32,
        days=32,
        stride=32,
        min_burned_cells=10,
        max_samples_per_region_month=3,
        out_dir=tmp_path / "ds",
    )
    return build_dataset(cfg)


def _checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def test_training_resumes_after_sigkill_with_the_same_loss_curve(world_env: World, tmp_path: Path) -> None:
    manifest = _small_dataset(tmp_path)
    steps = 4
    args = ["train", "--manifest", str(manifest.path), "--steps", str(steps), "--batch", "1", "--init", "scratch", "--device", "cpu"]
    args += ["--checkpoint-every", "1", "--threads", "1", "--lr", "3e-4"]
    killed_dir = tmp_path / "killed"
    cmd = [sys.executable, "-c", "import sys; from banet_ops.cli import main; sys.exit(main(sys.argv[1:]))", *args, "--run-dir", str(killed_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.monotonic() + 240
    while _checkpoint_step(killed_dir / "checkpoint.pt") < 1:
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed_dir / "result.json").exists() and not (killed_dir / "weights.pth").exists()
    killed_at = _checkpoint_step(killed_dir / "checkpoint.pt")
    assert 1 <= killed_at < steps

    cfg = TrainConfig(
        manifest=manifest.path, run_dir=killed_dir, steps=steps, batch_size=1, init="scratch", device="cpu", checkpoint_every=1, threads=1, lr=3e-4
    )
    resumed = train(cfg)
    assert resumed.resumed_from_step == killed_at
    straight = train(cfg.model_copy(update={"run_dir": tmp_path / "straight"}))
    assert straight.resumed_from_step == 0
    assert len(resumed.history) == len(straight.history) == steps
    np.testing.assert_allclose(resumed.history, straight.history, rtol=1e-5)
    assert resumed.sha256 == straight.sha256  # bit-identical weights
    assert resumed.val_loss is not None and np.isfinite(resumed.val_loss)
    assert list((killed_dir / "tb").glob("events.out.tfevents.*"))
    # finished: running again returns the same result without training
    again = train(cfg)
    assert again.sha256 == resumed.sha256 and again.history == resumed.history
    # a different configuration must not silently continue this run
    (killed_dir / "result.json").unlink()
    with pytest.raises(ValidationError, match="checkpoint of this configuration"):
        train(cfg.model_copy(update={"lr": 1e-2}))
    with pytest.raises(ValidationError, match="batch norm"):
        train(cfg.model_copy(update={"run_dir": tmp_path / "tiny", "batch_size": 1}).model_copy(update={"manifest": _tiny_manifest(manifest, tmp_path)}))


def _tiny_manifest(manifest: Manifest, tmp_path: Path) -> Path:
    doc = json.loads(manifest.path.read_text())
    doc["config"]["days"] = 16
    path = manifest.folder / "manifest16.json"
    path.write_text(json.dumps(doc))
    return path


def test_seeded_split_is_stable(tmp_path: Path) -> None:
    from banet_ops.training.dataset import split_region_months

    rms = [f"T:2020-{m:02d}" for m in range(1, 13)]
    cfg = DatasetConfig(region_months=rms, val_fraction=0.25, out_dir=tmp_path)
    train_rms, val_rms = split_region_months(cfg)
    assert len(val_rms) == 3 and set(train_rms).isdisjoint(val_rms) and len(train_rms) == 9
    more = DatasetConfig(region_months=[*rms, "U:2020-01"], val_fraction=0.25, out_dir=tmp_path)
    assert set(val_rms) <= set(split_region_months(more)[1]) | set(split_region_months(more)[0])
    assert split_region_months(cfg) == (train_rms, val_rms)
    with pytest.raises(ValueError, match="both the training and the validation"):
        DatasetConfig(region_months=["T:2020-01"], val_region_months=["T:2020-01"], out_dir=tmp_path)


@pytest.mark.slow
def test_cpu_training_converges_on_held_out_synthetic_fires(world_env: World, tmp_path: Path) -> None:
    """From scratch on CPU: train on July's fires, evaluate on August's (never seen) against MCD64A1.

    Small tiles (32 × 32 cells × 32 days) because the full BA-Net costs ~95 GFLOP per 128 × 128 × 64
    tile; ``BANET_SLOW_TRAIN_STEPS`` sets the length (see benchmarks/README.md ``## train``).
    """
    from banet_ops.training.evaluate import EvalConfig, evaluate

    manifest = build_dataset(
        DatasetConfig(region_months=["T:2020-07"], val_region_months=["T:2020-08"], tile=32, days=32, stride=16, min_burned_cells=5, out_dir=tmp_path / "ds")
    )
    steps = int(os.environ.get("BANET_SLOW_TRAIN_STEPS", "200"))
    cfg = TrainConfig(manifest=manifest.path, run_dir=tmp_path / "run", steps=steps, batch_size=4, lr=2e-3, warmup_steps=10, init="scratch", device="cpu")
    result = train(cfg)
    report = evaluate([result.weights], EvalConfig(region_months=["T:2020-08"], days=32, device="cpu", tile=96))
    overall = report.overall
    assert overall["dice"] is not None and overall["dice"] >= 0.8, overall
    assert overall["mean_abs_date_error"] is not None and overall["mean_abs_date_error"] <= 2.0, overall
