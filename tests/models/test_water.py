"""The water index on hand-made scenes: a lake, a moving shoreline, a burn scar that is not water, clouds."""

from __future__ import annotations

import numpy as np
import pytest

from banet_ops.water import is_water, water_index, water_mask

T, H, W = 20, 6, 8
LAND = {"red": 0.08, "nir": 0.30, "m10": 0.22}
WATER = {"red": 0.03, "nir": 0.015, "m10": 0.01}
SCAR = {"red": 0.06, "nir": 0.12, "m10": 0.17}  # burned vegetation: dark in NIR, yet bright at 1.6 um
CLOUD = {"red": 0.42, "nir": 0.46, "m10": 0.33}


def _scene() -> dict[str, np.ndarray]:
    bands = {k: np.full((T, H, W), v, np.float32) for k, v in LAND.items()}
    return bands


def _paint(bands: dict[str, np.ndarray], surface: dict[str, float], where: tuple[slice | int, ...]) -> None:
    for k, v in surface.items():
        bands[k][where] = v


def test_index_signs_and_missing_values() -> None:
    assert water_index(np.float32(0.03), np.float32(0.01)) == pytest.approx(0.5)
    assert water_index(np.float32(0.06), np.float32(0.17)) < 0  # burn scar
    assert np.isnan(water_index(np.array([np.nan, 0.0]), np.array([0.1, 0.0]))).all()
    red, nir, m10 = (np.array([d[k] for d in (LAND, WATER, SCAR, CLOUD)], np.float32) for k in ("red", "nir", "m10"))
    assert is_water(red, nir, m10).tolist() == [False, True, False, False]  # the cloud has WI > 0 but a bright NIR


def test_lake_shoreline_burn_scar_and_clouds() -> None:
    b = _scene()
    _paint(b, WATER, (slice(None), slice(0, 3), slice(0, 3)))  # a lake, every day
    for t in range(T):  # a shoreline that moves: column 4 is flooded on the first 8 days only
        if t < 8:
            _paint(b, WATER, (t, slice(0, 3), 4))
    _paint(b, SCAR, (slice(5, None), slice(4, 6), slice(5, 8)))  # a fire on day 5 leaves a scar
    _paint(b, CLOUD, (slice(0, 6), slice(None), 7))  # clouds over column 7 early on
    for k in b:
        b[k][3::4, 0:3, 0:3] = np.nan  # the lake is unobserved one day in four
    _paint(b, CLOUD, (slice(0, 4), 0, slice(0, 3)))  # and under clouds on the first days: still permanent water
    m = water_mask(b["red"], b["nir"], b["m10"])
    assert m.permanent[0:3, 0:3].all() and m.permanent.sum() == 9
    assert m.shoreline[0:3, 4].all() and m.shoreline.sum() == 3 and not (m.permanent & m.shoreline).any()
    assert not m.excluded[4:6, 5:8].any()  # the burn scar stays land, so it can be learnt and mapped
    assert not m.excluded[:, 7][3:].any()
    assert m.share[0, 4] == pytest.approx(8 / T)
    layer = m.layer()
    assert layer[0, 0] == 1 and layer[0, 4] == 2 and layer[5, 6] == 0


def test_rarely_observed_cells_are_land_and_bad_shares_are_refused() -> None:
    b = _scene()
    _paint(b, WATER, (slice(None), 0, 0))
    for k in b:
        b[k][2:, 0, 0] = np.nan  # seen on two days only
    assert not water_mask(b["red"], b["nir"], b["m10"]).permanent[0, 0]
    assert water_mask(b["red"], b["nir"], b["m10"], min_observed=2).permanent[0, 0]
    with pytest.raises(ValueError, match="min_share"):
        water_mask(b["red"], b["nir"], b["m10"], min_share=0.95)


def test_training_labels_drop_shorelines_and_zero_permanent_water() -> None:
    from banet_ops.training.dataset import mask_water

    b = _scene()
    _paint(b, WATER, (slice(None), 0, slice(0, 2)))  # lake
    _paint(b, WATER, (slice(0, 10), 1, slice(0, 2)))  # shoreline
    bands = np.stack([b["red"], b["nir"], np.full((T, H, W), 0.1, np.float32), np.zeros((T, H, W), np.float32), b["m10"]], axis=1)
    target = np.full((T, H, W), 0.5, np.float32)  # noisy coarse labels claim a burn everywhere
    valid = np.ones((T, H, W), bool)
    x, t, v, layer = mask_water(bands, target, valid)
    assert x.shape == (T, 4, H, W)
    assert (t[:, 0, 0:2] == 0).all() and v[:, 0, 0:2].all()  # permanent water: a true negative
    assert not v[:, 1, 0:2].any() and (t[:, 1, 0:2] == 0.5).all()  # shoreline: out of the loss
    assert v[:, 3:].all() and (t[:, 3:] == 0.5).all()
    assert layer[0, 0] == 1 and layer[1, 0] == 2 and layer[4, 4] == 0
