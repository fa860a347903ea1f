"""NRT and monthly products from daily burn probabilities (DESIGN §1).

* NRT for day D: window D−63..D; confidence = min(1, Σ daily probabilities); burn date = the day
  of highest probability; burned = confidence ≥ threshold, except burn dates on the window's first
  day (the model has no "before" for that day).
* Monthly for month M: window = 64 days from the 15th of the previous month; confidence and burn
  date from the days inside M only, so every burn date is a calendar date in M.

:class:`ProductBuilder` reduces probabilities band by band (as the engine releases them), so a
full ``(T, H, W)`` cube is never needed; :func:`nrt_product` / :func:`monthly_product` are the
one-shot forms for a whole array.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from banet_ops.bands import SEQUENCE_DAYS
from banet_ops.errors import ValidationError
from banet_ops.product import ModelRef, Product, ProductMode
from banet_ops.regions import Region

NIR_BACKGROUND_DAYS = 8  # last days of the product period whose NIR median is the quicklook background


def nrt_window(day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the NRT window of ``day`` (64 days ending on it)."""
    return day - dt.timedelta(days=SEQUENCE_DAYS - 1), day


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def monthly_window(month: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the monthly window of the month of ``month`` (64 days from the 15th of the previous month)."""
    first = month_start(month)
    start = (first - dt.timedelta(days=1)).replace(day=15)
    return start, start + dt.timedelta(days=SEQUENCE_DAYS - 1)


def product_window(mode: ProductMode, day: dt.date) -> tuple[dt.date, dt.date]:
    if mode == "nrt":
        return nrt_window(day)
    if mode == "monthly":
        return monthly_window(day)
    raise ValidationError(f"mode: expected 'nrt' or 'monthly', found {mode!r}")


def window_days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


class ProductBuilder:
    """Reduce daily probabilities of one window into a :class:`Product`, band of rows by band of rows."""

    def __init__(self, region: Region, mode: ProductMode, target: dt.date, *, threshold: float = 0.5) -> None:
        if not 0 < threshold <= 1:
            raise ValidationError(f"threshold: expected 0 < threshold <= 1, found {threshold}")
        self.region = region
        self.mode: ProductMode = mode
        self.target = month_start(target) if mode == "monthly" else target
        self.window_start, self.window_end = product_window(mode, target)
        self.days = window_days(self.window_start, self.window_end)
        self.threshold = float(threshold)
        if mode == "monthly":
            self.use = np.array([d.year == self.target.year and d.month == self.target.month for d in self.days])
            self.discard_first = False
        else:
            self.use = np.ones(len(self.days), dtype=bool)
            self.discard_first = True
        self.use_idx = np.flatnonzero(self.use)
        self.dates = np.array(self.days, dtype="datetime64[D]")[self.use_idx]
        h, w = region.shape
        self.confidence = np.zeros((h, w), dtype=np.float32)
        self.best = np.zeros((h, w), dtype=np.int64)  # index into self.dates
        self.covered = np.zeros(h, dtype=bool)
        self.nir: NDArray[np.float32] | None = None
        self.observed: NDArray[np.bool_] | None = None

    @property
    def nir_days(self) -> NDArray[np.int64]:
        """Window indices of the days whose NIR median is the background (last days of the product period)."""
        return self.use_idx[-NIR_BACKGROUND_DAYS:]

    def add(self, rows: slice, probabilities: NDArray[np.floating]) -> None:
        """Reduce the probabilities ``(T, rows, W)`` of a band of rows."""
        n = len(self.days)
        w = self.region.shape[1]
        if probabilities.ndim != 3 or probabilities.shape[0] != n or probabilities.shape[2] != w:
            raise ValidationError(f"expected probabilities of shape ({n}, rows, {w}), found {probabilities.shape}")
        sel = probabilities[self.use_idx] if not self.use.all() else probabilities
        # float64 sum: the cap at 1 must not depend on summation order
        self.confidence[rows] = np.minimum(sel.sum(axis=0, dtype=np.float64), 1.0)
        self.best[rows] = np.argmax(sel, axis=0)
        self.covered[rows] = True

    def add_nir(self, rows: slice, nir: NDArray[np.floating]) -> None:
        """Background from the NIR band ``(len(nir_days), rows, W)`` of :attr:`nir_days` (NaN = missing)."""
        if self.nir is None:
            self.nir = np.full(self.region.shape, np.nan, dtype=np.float32)
        with np.errstate(all="ignore"):
            finite = np.isfinite(nir).any(axis=0)
            med = np.zeros(nir.shape[1:], dtype=np.float32)
            if finite.any():
                med[finite] = np.nanmedian(nir[:, finite], axis=0)
        med[~finite] = np.nan
        self.nir[rows] = med

    def add_observed(self, rows: slice, valid: NDArray[np.bool_]) -> None:
        """Cells of ``rows`` with a valid observation on some day of the window (``valid``: ``(rows, W)``)."""
        if self.observed is None:
            self.observed = np.ones(self.region.shape, dtype=bool)
        self.observed[rows] = valid

    def build(
        self,
        *,
        models: Sequence[ModelRef],
        cube_snapshot: str,
        timings: dict[str, float] | None = None,
        tiling: str = "",
        observed_days: int | None = None,
    ) -> Product:
        if not self.covered.all():
            missing = np.flatnonzero(~self.covered)
            raise ValidationError(f"expected probabilities for all {self.region.shape[0]} rows, rows {missing[0]}..{missing[-1]} missing")
        burned = self.confidence >= self.threshold
        if self.discard_first:
            burned &= self.best != 0
        if self.observed is not None:
            burned &= self.observed
        burn_date = np.full(self.region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
        burn_date[burned] = self.dates[self.best[burned]]
        return Product(
            region=self.region,
            mode=self.mode,
            target_date=self.target,
            window_start=self.window_start,
            window_end=self.window_end,
            confidence=self.confidence,
            burn_date=burn_date,
            burned=burned,
            threshold=self.threshold,
            models=list(models),
            cube_snapshot=cube_snapshot,
            timings=dict(timings or {}),
            nir=self.nir,
            observed=self.observed,
            tiling=tiling,
            observed_days=observed_days,
        )


def _one_shot(
    mode: ProductMode,
    region: Region,
    target: dt.date,
    probabilities: NDArray[np.floating],
    *,
    models: Sequence[ModelRef],
    cube_snapshot: str,
    threshold: float,
    nir: NDArray[np.floating] | None,
    timings: dict[str, float] | None,
) -> Product:
    builder = ProductBuilder(region, mode, target, threshold=threshold)
    builder.add(slice(0, region.shape[0]), probabilities)
    if nir is not None:
        if nir.shape[0] != len(builder.days):
            raise ValidationError(f"nir: expected the window's {len(builder.days)} days, found {nir.shape[0]}")
        builder.add_nir(slice(0, region.shape[0]), nir[builder.nir_days])
    return builder.build(models=models, cube_snapshot=cube_snapshot, timings=timings)


def nrt_product(
    region: Region,
    day: dt.date,
    probabilities: NDArray[np.floating],
    *,
    models: Sequence[ModelRef] = (),
    cube_snapshot: str = "",
    threshold: float = 0.5,
    nir: NDArray[np.floating] | None = None,
    timings: dict[str, float] | None = None,
) -> Product:
    """NRT product of ``day`` from the probabilities ``(64, H, W)`` of the window D−63..D (``nir``: the window's NIR ``(64, H, W)``)."""
    return _one_shot("nrt", region, day, probabilities, models=models, cube_snapshot=cube_snapshot, threshold=threshold, nir=nir, timings=timings)


def monthly_product(
    region: Region,
    month: dt.date,
    probabilities: NDArray[np.floating],
    *,
    models: Sequence[ModelRef] = (),
    cube_snapshot: str = "",
    threshold: float = 0.5,
    nir: NDArray[np.floating] | None = None,
    timings: dict[str, float] | None = None,
) -> Product:
    """Monthly product of the month of ``month`` from the probabilities ``(64, H, W)`` of :func:`monthly_window`."""
    return _one_shot("monthly", region, month, probabilities, models=models, cube_snapshot=cube_snapshot, threshold=threshold, nir=nir, timings=timings)
