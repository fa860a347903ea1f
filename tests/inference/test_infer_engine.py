"""Tiling engine: seams, agreement with the published procedure, determinism, ensembles, memory."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from banet_ops.errors import ModelError, ValidationError
from banet_ops.inference.engine import (
    EngineOptions,
    EngineStats,
    iter_probability_strips,
    predict_probabilities,
    preprocess_window,
    reference_probabilities,
)
from banet_ops.inference.tiling import Tiling, plan_tiles, ramp, tile_starts
from banet_ops.models.banet import BANet

# Documented tolerances (benchmarks/README.md): same tiling as the published procedure → the
# only difference is float rounding of the fused model; own tiling (larger tiles, cosine
# blending) changes the context the U-Net sees near tile borders.
SAME_TILING_ATOL = 1e-4
OWN_TILING_MEAN_ATOL = 2e-3


class PointwiseNet(nn.Module):
    """A small model that is exactly translation-equivariant in space (no spatial kernel)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.time = nn.Conv3d(4, 8, (5, 1, 1), padding=(2, 0, 0))
        self.head = nn.Conv3d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.time(x)))


def test_tile_starts() -> None:
    assert tile_starts(256, 128, 100, "baseline") == [0, 100, 200]
    assert tile_starts(100, 128, 100, "baseline") == [0]
    assert tile_starts(300, 128, 96, "snap") == [0, 96, 172]
    assert tile_starts(100, 128, 96, "snap") == [0]
    assert tile_starts(128, 128, 96, "snap") == [0]
    w = ramp(128, 32, "cosine")
    assert w.min() > 0 and w.max() == 1 and np.allclose(w, w[::-1])
    with pytest.raises(ValidationError, match="multiple of 32"):
        Tiling(tile=100)
    with pytest.raises(ValidationError, match="overlap"):
        Tiling(tile=64, overlap=64)


def test_small_regions_are_padded_into_one_small_tile() -> None:
    plan = plan_tiles(40, 70, Tiling(tile=256, overlap=32))
    assert (plan.tile_h, plan.tile_w, len(plan)) == (64, 96, 1)


def test_preprocessing_matches_the_banet_recipe() -> None:
    raw = np.zeros((16, 4, 1, 2), dtype=np.float32)
    raw[:, :, 0, 1] = np.nan
    raw[:, 3, 0, 0] = np.e - 1  # FRP: log1p → 1
    x = preprocess_window(raw)
    mean, std = np.array([0.2349, 0.3548, 0.1128, 0.0016]), np.array([0.1879, 0.1660, 0.0547, 0.0776])
    np.testing.assert_allclose(x[:3, 0, 0, 0], -mean[:3] / std[:3], rtol=1e-6)
    np.testing.assert_allclose(x[3, 0, 0, 0], (1 - mean[3]) / std[3], rtol=1e-6)
    np.testing.assert_allclose(x[:, 0, 0, 1], -mean / std, rtol=1e-6)  # missing = raw zeros


@pytest.mark.parametrize("blend", ["cosine", "linear", "uniform"])
def test_no_seams_on_a_uniform_input(blend: str) -> None:
    t = np.linspace(0.1, 0.4, 16, dtype=np.float32)
    win = np.broadcast_to(t[:, None, None, None], (16, 4, 150, 230)).copy()
    tiling = Tiling(tile=64, overlap=24, blend=blend)  # type: ignore[arg-type]
    assert len(plan_tiles(150, 230, tiling)) > 9
    out = predict_probabilities(win, [PointwiseNet()], tiling=tiling, batch=3)
    spread = out.max(axis=(1, 2)) - out.min(axis=(1, 2))
    assert out.std() > 0.001  # varies over time, so a seam could show
    assert spread.max() < 1e-6


def test_same_tiling_as_published_matches_it(banet: BANet, make_window) -> None:  # type: ignore[no-untyped-def]
    # 16 days instead of 64 keeps the real model affordable in CI (the tiling is in space only);
    # benchmarks/infer.py makes the same comparison on a 256 x 256 x 64 window.
    win = make_window(100, 200, days=16)
    ref = reference_probabilities(win, [banet])
    stats = EngineStats()
    ours = predict_probabilities(win, [banet], tiling=Tiling.baseline(), batch=2, stats=stats)
    assert stats.tiles == 2 and ref.std() > 1e-3
    np.testing.assert_allclose(ours, ref, atol=SAME_TILING_ATOL)
    # own tiling: 128 tiles snapped to the edge, cosine blending
    own = predict_probabilities(win, [banet], tile=128, overlap=32, batch=2)
    diff = np.abs(own - ref)
    assert diff.mean() < OWN_TILING_MEAN_ATOL
    conf_ref, conf_own = np.minimum(ref.sum(0), 1), np.minimum(own.sum(0), 1)
    assert np.abs(conf_own - conf_ref).mean() < 16 * OWN_TILING_MEAN_ATOL


@pytest.mark.parametrize("shape", [(60, 90), (150, 230), (305, 90)], ids=["inside-one-tile", "tiles-past-both-edges", "four-rows-of-tiles"])
def test_levels_shared_per_row_of_tiles_equal_them_per_tile(banet: BANet, make_window, shape: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    # the region smaller than a tile (its padding fills the rest), and two rows of tiles running
    # past the bottom and right edges, and four rows of tiles handing their overlap down: every
    # ring of inference/shared_levels.py is recomputed somewhere
    win = make_window(*shape, days=16, seed=2)
    per_tile = predict_probabilities(win, [banet], batch=3, options=EngineOptions(shared_levels=0))
    assert per_tile.std() > 1e-3
    # the default (the most the published grid allows), level 1 only, and no memory for handing rows down
    assert EngineOptions().shared_levels == 3
    for options in (EngineOptions(), EngineOptions(shared_levels=1), EngineOptions(carry_mib=0)):
        shared = predict_probabilities(win, [banet], batch=3, options=options)
        np.testing.assert_allclose(shared, per_tile, atol=1e-5, err_msg=str(options))


@pytest.mark.parametrize(("field", "value"), [("shared_levels", -1), ("shared_levels", 6), ("carry_mib", -1)])
def test_engine_options_out_of_range_are_refused(field: str, value: int) -> None:
    with pytest.raises(ValidationError, match=field):
        EngineOptions(**{field: value})


def test_deterministic_on_cpu_and_ensemble_is_the_mean(banet: BANet, banet_b: BANet, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window(64, 64, days=16, seed=1)
    a = predict_probabilities(win, [banet], tile=64, overlap=0)
    again = predict_probabilities(win, [banet], tile=64, overlap=0)
    assert np.array_equal(a, again)
    b = predict_probabilities(win, [banet_b], tile=64, overlap=0)
    assert np.abs(a - b).mean() > 1e-3
    both = predict_probabilities(win, [banet, banet_b], tile=64, overlap=0)
    np.testing.assert_allclose(both, (a + b) / 2, atol=1e-6)


def test_strips_cover_the_region_once_top_to_bottom() -> None:
    win = np.random.default_rng(0).random((16, 4, 200, 70), dtype=np.float32)
    seen = []
    for rows, strip in iter_probability_strips(win, (16, 200, 70), [PointwiseNet()], tiling=Tiling(tile=64, overlap=16), batch=5):
        assert strip.shape == (16, rows.stop - rows.start, 70)
        seen.append((rows.start, rows.stop))
    assert seen[0][0] == 0 and seen[-1][1] == 200
    assert all(a[1] == b[0] for a, b in itertools.pairwise(seen))
    assert len(seen) > 2


def _peak_bytes(height: int) -> int:
    win = np.zeros((16, 4, height, 96), dtype=np.float32)
    model = PointwiseNet()
    tracemalloc.start()
    try:
        for _rows, strip in iter_probability_strips(win, (16, height, 96), [model], tiling=Tiling(tile=64, overlap=16), batch=2):
            float(strip.max())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streaming_memory_stays_flat_as_the_region_grows() -> None:
    small, large = _peak_bytes(96), _peak_bytes(1536)
    band = 16 * 64 * 96 * 4  # one tile-row band of float32 probabilities
    bookkeeping = 512 * (len(plan_tiles(1536, 96, Tiling(tile=64, overlap=16))) - len(plan_tiles(96, 96, Tiling(tile=64, overlap=16))))  # tile boxes
    assert large < small + band + bookkeeping, (small, large)
    assert large < 16 * 1536 * 96 * 4 / 2  # far below a (time, full-region) float32 array


def test_output_is_the_only_full_size_allocation() -> None:
    win = np.zeros((16, 4, 512, 96), dtype=np.float32)
    out_bytes = 16 * 512 * 96 * 4
    predict_probabilities(win[:, :, :64], [PointwiseNet()], tile=64, overlap=16, batch=2)  # lazy imports of a first run
    tracemalloc.start()
    try:
        predict_probabilities(win, [PointwiseNet()], tile=64, overlap=16, batch=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    tile_batch = 2 * 4 * 16 * 64 * 64 * 4  # the raw batch buffer
    band = 16 * 64 * 96 * 4  # one tile-row band of the accumulator
    assert peak - out_bytes < tile_batch + 4 * band, (peak, out_bytes)


def test_bad_shapes_and_empty_ensembles() -> None:
    win = np.zeros((16, 4, 64, 64), dtype=np.float32)
    with pytest.raises(ModelError, match="at least one model"):
        predict_probabilities(win, [])
    with pytest.raises(ValidationError, match="multiple of 16"):
        predict_probabilities(np.zeros((10, 4, 64, 64), np.float32), [PointwiseNet()])
    with pytest.raises(ValidationError, match="expected shape"):
        list(iter_probability_strips(win, (16, 64, 65), [PointwiseNet()]))
