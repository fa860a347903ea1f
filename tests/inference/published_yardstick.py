"""The published BA-Net prediction procedure, written from its description for the tests only.

It shares no code with ``banet_ops.inference`` (nor the standardisation constants of
``banet_ops.bands``), so a change of the engine's tiling, padding, preprocessing or product rule
cannot go unnoticed.  The description:

* tiles of 128 x 128 pixels start every 100 pixels from the origin on both axes
  (``range(0, size - 1, 100)``); the last ones run past the region's edge;
* each tile is cut from the raw ``(T, band, H, W)`` window and padded with raw zeros past the edge,
  *then* preprocessed: missing values (NaN) → 0, FRP → log(1 + FRP), band-wise
  ``(x - mean) / std`` with the published means and standard deviations;
* every tile runs alone (batch 1) through the plain module; the sigmoid probabilities of
  overlapping tiles are averaged uniformly; an ensemble is the mean of its members;
* NRT product: confidence = min(1, sum of the daily probabilities), burn date = the day of the
  highest probability, burned = confidence >= threshold unless that day is the window's first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

TILE = 128
STEP = 100
# Red, NIR, MIR, FRP (log1p) of the published BA-Net data set
MEAN = np.array([0.2349, 0.3548, 0.1128, 0.0016], dtype=np.float32)
STD = np.array([0.1879, 0.1660, 0.0547, 0.0776], dtype=np.float32)


def _prepare(raw: np.ndarray) -> torch.Tensor:
    """One raw ``(T, band, 128, 128)`` tile → the model input ``(1, band, T, 128, 128)``."""
    x = np.where(np.isnan(raw), np.float32(0), raw).astype(np.float32)
    x[:, 3] = np.log1p(x[:, 3])
    x = (x - MEAN[None, :, None, None]) / STD[None, :, None, None]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2, 3)[None]))


def published_probabilities(window: np.ndarray, models: Sequence[nn.Module]) -> np.ndarray:
    """Daily burn probabilities ``(T, H, W)`` float64 of a raw ``(T, band, H, W)`` window."""
    n_time, n_band, height, width = window.shape
    total = np.zeros((n_time, height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.float64)
    for r in range(0, height - 1, STEP):
        for c in range(0, width - 1, STEP):
            h, w = min(TILE, height - r), min(TILE, width - c)
            raw = np.zeros((n_time, n_band, TILE, TILE), dtype=np.float32)
            raw[:, :, :h, :w] = window[:, :, r : r + h, c : c + w]
            x = _prepare(raw)
            p = np.zeros((n_time, TILE, TILE), dtype=np.float64)
            for model in models:
                model.eval()
                with torch.no_grad():
                    p += torch.sigmoid(model(x))[0, 0].double().numpy()
            total[:, r : r + h, c : c + w] += p[:, :h, :w] / len(models)
            count[r : r + h, c : c + w] += 1
    return total / count


def published_nrt(probabilities: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(confidence, burned, burn-day index into the window) of the NRT rule."""
    confidence = np.minimum(probabilities.sum(axis=0), 1.0)
    day = probabilities.argmax(axis=0)
    burned = (confidence >= threshold) & (day != 0)
    return confidence, burned, day
