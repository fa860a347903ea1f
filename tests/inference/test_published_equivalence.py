"""Default inference = the published BA-Net procedure (the independent yardstick of published_yardstick.py).

Scenes whose sizes are not multiples of the 100-px stride, so the last tiles run past the edges
and are padded; probabilities within 1e-5, identical NRT decisions and burn dates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from banet_ops.bands import MODEL_BANDS
from banet_ops.demo import DemoConfig
from banet_ops.inference.engine import predict_probabilities
from banet_ops.inference.products import nrt_product
from banet_ops.inference.tiling import DEFAULT_PRESET, PRESETS, tiling_preset
from banet_ops.models.banet import BANet
from banet_ops.models.weights import load_weights
from banet_ops.settings import Settings
from banet_ops.synthetic import synthetic_daily_images
from tests.inference.published_yardstick import published_nrt, published_probabilities

WEIGHTS = Path(__file__).resolve().parents[2] / "banet_ops" / "data" / "weights" / "banet_synthetic_demo_ONLY.pth"
TOL = 1e-5


def test_published_is_the_default_everywhere() -> None:
    assert DEFAULT_PRESET == "published" == Settings().tiling
    published = PRESETS["published"]
    assert (published.tile, published.step, published.blend, published.starts) == (128, 100, "uniform", "baseline")
    assert published.label == "published" and PRESETS["fast"].label == "fast"
    assert tiling_preset("published", tile=64).label == "custom:64/28/uniform/baseline"


def test_engine_matches_the_yardstick_on_a_scene_off_the_stride(banet: BANet, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window(229, 131, days=16, seed=5)  # tiles at rows 0, 100, 200 and columns 0, 100
    ref = published_probabilities(win, [banet])
    ours = predict_probabilities(win, [banet], batch=4)  # default tiling and engine options
    assert np.abs(ours - ref).max() <= TOL
    assert ref.std() > 1e-3  # the outputs vary: the comparison is not between constants


@pytest.fixture(scope="module")
def demo_crop() -> np.ndarray:
    """64 days of the demo scenario (held out from training), a 101 x 127 crop holding fires."""
    cfg = DemoConfig()
    images = list(synthetic_daily_images(cfg.region, cfg.start, 80, cfg.seed))[16:]
    return np.stack([np.stack([im.variables[b][20:121, 1:128] for b in MODEL_BANDS]) for im in images]).astype(np.float32)


def test_default_nrt_product_has_the_published_decisions_and_dates(demo_crop: np.ndarray) -> None:
    cfg = DemoConfig()
    model, _ = load_weights(WEIGHTS, "cpu")
    ref = published_probabilities(demo_crop, [model])
    ours = predict_probabilities(demo_crop, [model])
    assert np.abs(ours - ref).max() <= TOL
    day = cfg.start + np.timedelta64(79, "D").astype(object)
    product = nrt_product(cfg.region.subregion("CROP", 20, 1, 101, 127), day, ours)
    confidence, burned, index = published_nrt(ref)
    assert 50 < burned.sum() < burned.size // 2  # fires and unburned land: decisions can differ
    np.testing.assert_array_equal(product.burned, burned)
    np.testing.assert_allclose(product.confidence, confidence, atol=TOL)
    dates = np.datetime64(cfg.start, "D") + 16 + index
    np.testing.assert_array_equal(product.burn_date[burned], dates[burned])
    # the yardstick tells tilings apart: the fast preset is not the published product
    fast = predict_probabilities(demo_crop, [model], tiling=PRESETS["fast"])
    assert np.abs(fast - ref).max() > 1e-3


def test_a_scene_without_fire_maps_no_burned_cell_borders_included() -> None:
    """The demo's world without its fires: no burned cell anywhere, the region's top and left edges
    included (where the published grid's tiles start and their zero padding meets the region)."""
    from banet_ops.synthetic.scenario import truth_image
    from banet_ops.synthetic.scene import Scene

    cfg = DemoConfig()
    scene = Scene(cfg.region, cfg.start, 80, cfg.seed)
    scene.burn_day[:] = -1  # the demo's surface, clouds and overpasses, without fires
    window = np.stack([np.stack([truth_image(scene, d).variables[b] for b in MODEL_BANDS]) for d in range(16, 80)]).astype(np.float32)
    model, _ = load_weights(WEIGHTS, "cpu")
    day = cfg.start + np.timedelta64(79, "D").astype(object)
    product = nrt_product(cfg.region, day, predict_probabilities(window, [model]))
    rows, cols = np.nonzero(product.burned)
    assert product.n_burned == 0, f"{product.n_burned} burned cells, {(rows < 3).sum()} in the top 3 rows, {(cols < 3).sum()} in the left 3 columns"
