"""Sample augmentation: flips, 90° rotations and FRP cutout, driven by a seeded generator.

Every random choice comes from the generator passed in, so a sample seen at step ``k`` gets the
same augmentation after a resume as in an uninterrupted run.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from banet_ops.bands import BANET_MEAN, BANET_STD

FRP_INDEX = 3
#: the standardised value of FRP = 0 (log1p(0) = 0): what "no detection" looks like to the model
FRP_ZERO = (0.0 - BANET_MEAN[FRP_INDEX]) / BANET_STD[FRP_INDEX]


class AugmentConfig(BaseModel):
    """Which augmentations to apply and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    flips: bool = True
    rotations: bool = True
    frp_cutout_p: float = Field(0.3, ge=0, le=1, description="Probability of blanking the FRP band in a random rectangle.")
    frp_cutout_max: float = Field(0.5, gt=0, le=1, description="Largest side of the cutout, as a share of the tile.")


def augment(
    x: NDArray[np.float32],
    target: NDArray[np.float32],
    valid: NDArray[np.bool_],
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """Augment one standardised sample ``x`` (band, time, y, x) with its ``target``/``valid`` (time, y, x).

    The same spatial transform is applied to all three; the FRP cutout touches ``x`` only (the
    fire happened even when the active-fire product missed it).
    """
    spatial = (-2, -1)
    if cfg.flips:
        if rng.random() < 0.5:
            x, target, valid = x[..., ::-1], target[..., ::-1], valid[..., ::-1]
        if rng.random() < 0.5:
            x, target, valid = x[..., ::-1, :], target[..., ::-1, :], valid[..., ::-1, :]
    if cfg.rotations and x.shape[-1] == x.shape[-2]:
        k = int(rng.integers(0, 4))
        if k:
            x, target, valid = np.rot90(x, k, axes=spatial), np.rot90(target, k, axes=spatial), np.rot90(valid, k, axes=spatial)
    x = np.ascontiguousarray(x)
    if cfg.frp_cutout_p > 0 and rng.random() < cfg.frp_cutout_p:
        h, w = x.shape[-2:]
        ch = max(1, int(rng.integers(1, max(2, round(h * cfg.frp_cutout_max) + 1))))
        cw = max(1, int(rng.integers(1, max(2, round(w * cfg.frp_cutout_max) + 1))))
        r0 = int(rng.integers(0, h - ch + 1))
        c0 = int(rng.integers(0, w - cw + 1))
        x[FRP_INDEX, :, r0 : r0 + ch, c0 : c0 + cw] = FRP_ZERO
    return x, np.ascontiguousarray(target), np.ascontiguousarray(valid)
