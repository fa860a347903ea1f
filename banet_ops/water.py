"""Water masking from the cube's VIIRS bands (DESIGN §6; Sefrin et al. 2021's shoreline mask).

**Index.** The cube has no green band, so McFeeters' NDWI ``(Green − NIR)/(Green + NIR)`` cannot be
formed.  We use the *modified* NDWI of Xu (2006), MNDWI = ``(Green − SWIR)/(Green + SWIR)`` with
SWIR at 1.6 µm (here VIIRS **M10**, 1.61 µm), with VIIRS **M5** (red, 0.672 µm) in place of green
— the visible band nearest to it on VIIRS's 750 m M bands::

    WI = (M5 − M10) / (M5 + M10)

Water absorbs strongly at 1.6 µm (M10 ≈ 0.01) and weakly in the red (≈ 0.03), so WI > 0; vegetation,
soil and burn scars reflect more at 1.6 µm than in the red (WI < 0).  Clouds and snow can also
give WI > 0 but are bright in the NIR, so a cell-day is **water** when ``WI > 0`` and NIR (M7)
< 0.15 (Xu 2006, Fig. 3; a burn scar's NIR stays above it on a bright M10).

**Masks** over a sequence of days, counting clear cell-days only (observed, and red M5 < 0.2: a
brighter red is cloud or snow, which would hide the water under it):
* ``permanent``: water on at least ``permanent_share`` (default 90 %) of its observed days — such
  cells never burn (product mask, and burned targets there are dropped);
* ``shoreline``: water on some days but not on most (between ``min_share`` and
  ``permanent_share``) — an inconsistent water status, excluded from training and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

WATER_INDEX_MIN = 0.0
NIR_MAX = 0.15
BRIGHT_RED_MIN = 0.2  # cloud or snow: the day says nothing about the water below


def water_index(red: NDArray[np.floating], m10: NDArray[np.floating]) -> NDArray[np.float32]:
    """``(M5 − M10) / (M5 + M10)``; NaN where a band is missing or the sum is not positive."""
    r = np.asarray(red, np.float32)
    s = np.asarray(m10, np.float32)
    total = r + s
    with np.errstate(invalid="ignore", divide="ignore"):
        wi = np.where(total > 0, (r - s) / np.where(total > 0, total, 1), np.nan)
    return wi.astype(np.float32)


def is_water(red: NDArray[np.floating], nir: NDArray[np.floating], m10: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Water on each observed cell-day (False where unobserved)."""
    wi = water_index(red, m10)
    with np.errstate(invalid="ignore"):
        return np.asarray((wi > WATER_INDEX_MIN) & (np.asarray(nir) < NIR_MAX), dtype=bool)


@dataclass(frozen=True)
class WaterMask:
    """Per-cell water status over a window of days."""

    share: NDArray[np.float32]  # water days / observed days (NaN: never observed)
    permanent: NDArray[np.bool_]
    shoreline: NDArray[np.bool_]

    @property
    def excluded(self) -> NDArray[np.bool_]:
        """Cells to leave out of training and evaluation (permanent water and inconsistent shorelines)."""
        return np.asarray(self.permanent | self.shoreline, dtype=bool)

    def layer(self) -> NDArray[np.uint8]:
        """0 land, 1 permanent water, 2 inconsistent shoreline (the stored mask layer)."""
        return (self.permanent.astype(np.uint8) + 2 * self.shoreline.astype(np.uint8)).astype(np.uint8)


def water_mask(
    red: NDArray[np.floating],
    nir: NDArray[np.floating],
    m10: NDArray[np.floating],
    *,
    permanent_share: float = 0.9,
    min_share: float = 0.1,
    min_observed: int = 3,
) -> WaterMask:
    """The :class:`WaterMask` of ``(time, y, x)`` bands; cells observed on fewer than ``min_observed`` days are land."""
    if not 0 < min_share < permanent_share <= 1:
        raise ValueError(f"expected 0 < min_share < permanent_share <= 1, found {min_share}, {permanent_share}")
    with np.errstate(invalid="ignore"):
        observed = np.isfinite(red) & np.isfinite(nir) & np.isfinite(m10) & ~(np.asarray(red) >= BRIGHT_RED_MIN)
    n_obs = observed.sum(axis=0)
    wet = (is_water(red, nir, m10) & observed).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(n_obs > 0, wet / np.maximum(n_obs, 1), np.nan).astype(np.float32)
    enough = n_obs >= min_observed
    permanent = enough & (share >= permanent_share)
    shoreline = enough & (share >= min_share) & (share < permanent_share)
    return WaterMask(share=share, permanent=np.asarray(permanent, bool), shoreline=np.asarray(shoreline, bool))


def mask_product(product: Any, mask: WaterMask) -> int:
    """Unburn the permanent-water cells of a :class:`banet_ops.product.Product` (in place); returns how many were burned."""
    water = mask.permanent
    n = int((product.burned & water).sum())
    product.confidence[water] = 0.0
    product.burned[water] = False
    product.burn_date[water] = np.datetime64("NaT")
    return n
