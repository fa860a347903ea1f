"""The burned-area product of one inference run: what the engine makes and publishing stores."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import ValidationError
from banet_ops.regions import Region

ProductMode = Literal["nrt", "monthly"]
NO_BURN = 0  # burn_doy / burn_yyyyddd value of unburned cells (day-of-year is 1..366)
UNOBSERVED = -1  # burn_yyyyddd value (the COG's NoData) of cells without a valid observation in the window


@dataclass(frozen=True)
class ModelRef:
    """One weight file of the ensemble: registry id (None for ad-hoc files), path and sha256."""

    sha256: str
    path: str
    model_id: str | None = None


@dataclass
class Product:
    """Confidence and burn date of one region, product mode and target date.

    ``target_date`` is day D for NRT and the first day of month M for monthly.  ``burn_date``
    holds real calendar dates as ``datetime64[D]`` (NaT where unburned); ``burned`` is
    ``confidence >= threshold`` with the window-edge rule applied.  ``nir`` is the NIR
    reflectance of the target day's neighbourhood, for the quicklook background (optional).
    ``observed`` is False where the window had no valid observation at all (the model's output
    there means nothing: NoData in the files); None means every cell was observed.
    ``tiling`` and ``observed_days`` are recorded in the run row, STAC item and COG tags.
    """

    region: Region
    mode: ProductMode
    target_date: dt.date
    window_start: dt.date
    window_end: dt.date
    confidence: NDArray[np.float32]
    burn_date: NDArray[np.datetime64]
    burned: NDArray[np.bool_]
    threshold: float
    models: list[ModelRef]
    cube_snapshot: str
    timings: dict[str, float] = field(default_factory=dict)
    nir: NDArray[np.float32] | None = None
    observed: NDArray[np.bool_] | None = None
    tiling: str = ""  # inference tiling preset (``published``, ``fast``, ``custom:…``); "" when unknown
    observed_days: int | None = None  # ingested days of the window; None when unknown

    def __post_init__(self) -> None:
        shape = self.region.shape
        for name in ("confidence", "burn_date", "burned", "observed"):
            arr = getattr(self, name)
            if arr is not None and arr.shape != shape:
                raise ValidationError(f"product {self.region.name} {self.target_date}: expected {name} of shape {shape}, found {arr.shape}")

    @property
    def burn_doy(self) -> NDArray[np.uint16]:
        """Day of year of the burn date (1..366), :data:`NO_BURN` where not burned."""
        out = np.zeros(self.region.shape, dtype=np.uint16)
        dates = self.burn_date[self.burned]
        years = dates.astype("datetime64[Y]")
        out[self.burned] = (dates - years.astype("datetime64[D]")).astype(np.int64) + 1
        return out

    @property
    def observed_mask(self) -> NDArray[np.bool_]:
        """Cells with at least one valid observation in the window (all of them when ``observed`` is None)."""
        return np.ones(self.region.shape, dtype=bool) if self.observed is None else np.asarray(self.observed, dtype=bool)

    @property
    def burn_yyyyddd(self) -> NDArray[np.int32]:
        """Burn date as year * 1000 + day of year (2024204 = 2024-07-22), :data:`NO_BURN` where
        observed and not burned, :data:`UNOBSERVED` where not observed: unambiguous across years."""
        out = np.zeros(self.region.shape, dtype=np.int32)
        dates = self.burn_date[self.burned].astype("datetime64[D]")
        years = dates.astype("datetime64[Y]")
        doy = (dates - years.astype("datetime64[D]")).astype(np.int64) + 1
        out[self.burned] = (years.astype(np.int64) + 1970) * 1000 + doy
        out[~self.observed_mask] = UNOBSERVED
        return out

    @property
    def n_burned(self) -> int:
        return int(self.burned.sum())
