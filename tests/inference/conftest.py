"""Fixtures of the inference tests: few threads, a calibrated BA-Net, tiny windows."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from banet_ops.models.banet import BANet
from banet_ops.models.weights import initialise_model


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def banet() -> BANet:
    """A BA-Net with calibrated norm statistics (seed 0): its outputs vary with the input."""
    return initialise_model(0).eval()


@pytest.fixture(scope="session")
def banet_b(banet: BANet) -> BANet:
    """A second, different ensemble member: ``banet`` with other head weights (cheap to make)."""
    other = copy.deepcopy(banet)
    with torch.no_grad():
        other.final_conv.weight.mul_(-1.5)
        other.final_conv.bias.add_(1.0)  # type: ignore[union-attr]
    return other


def _make_window(height: int, width: int, *, days: int = 64, seed: int = 0, scar: bool = True) -> np.ndarray:
    """A raw (T, band, H, W) window: smooth reflectances, a few NaN days, and a burn scar with fires."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(yy / 17.0) * np.cos(xx / 23.0)
    win = np.empty((days, 4, height, width), dtype=np.float32)
    for t in range(days):
        noise = rng.normal(0, 0.01, size=(height, width)).astype(np.float32)
        win[t, 0] = 0.12 * base + noise
        win[t, 1] = 0.30 * base + noise
        win[t, 2] = 0.10 * base + noise
        win[t, 3] = 0.0
    if scar:
        cy, cx, rad = height // 2, width // 3, max(4, min(height, width) // 5)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < rad**2
        burn = days // 2
        for t in range(burn, days):
            win[t, 1][inside] *= 0.5
            win[t, 2][inside] += 0.05
        win[burn, 3][inside] = 40.0
    win[5, :, : height // 3] = np.nan  # a partly missing day
    win[12] = np.nan  # a fully missing day
    return win


@pytest.fixture(scope="session")
def make_window():  # type: ignore[no-untyped-def]
    """Factory of raw windows: ``make_window(height, width, days=64, seed=0, scar=True)``."""
    return _make_window
