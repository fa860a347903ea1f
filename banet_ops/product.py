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
NO_BURN = 0  # burn_doy value of unburned cells (day-of-year is 1..366)


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
    reflectance of the target day's neighbourhood, for the quicklook background (optional);
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
    tiling: str = ""  # inference tiling preset (``published``, ``fast``, ``custom:…``); "" when unknown
    observed_days: int | None = None  # ingested days of the window; None when unknown

    def __post_init__(self) -> None:
        shape = self.region.shape
        for name in ("confidence", "burn_date", "burned"):
            arr = getattr(self, name)
            if arr.shape != shape:
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
    def n_burned(self) -> int:
        return int(self.burned.sum())
