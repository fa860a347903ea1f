"""The daily image of one region: the unit that ingestion produces and the cube stores."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.errors import ValidationError
from banet_ops.regions import Region


@dataclass
class DailyImage:
    """Gridded, composited variables of one region and UTC day.

    ``variables`` maps each name of :data:`banet_ops.bands.CUBE_VARIABLES` to a ``float32``
    array of the region's shape, NaN where missing (``n_obs`` is 0, not NaN, where unobserved;
    ``FRP`` is 0 where observed without fire and NaN nowhere: no detection means 0 MW).
    ``granules`` lists the input files used; ``sources`` says where they came from.
    """

    region: Region
    day: dt.date
    variables: dict[str, NDArray[np.float32]]
    granules: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [v for v in CUBE_VARIABLES if v not in self.variables]
        if missing:
            raise ValidationError(f"daily image {self.region.name} {self.day}: expected variables {list(CUBE_VARIABLES)}, missing {missing}")
        for name, arr in self.variables.items():
            if arr.shape != self.region.shape:
                raise ValidationError(f"daily image {self.region.name} {self.day}: expected {name} of shape {self.region.shape}, found {arr.shape}")

    @classmethod
    def empty(cls, region: Region, day: dt.date) -> DailyImage:
        """An image with nothing observed: NaN reflectances, zero FRP and observation count."""
        shape = region.shape
        variables = {name: np.full(shape, np.nan, dtype=np.float32) for name in CUBE_VARIABLES}
        variables["FRP"][:] = 0
        variables["n_obs"][:] = 0
        return cls(region=region, day=day, variables=variables)
