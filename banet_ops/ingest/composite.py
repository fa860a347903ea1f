"""The daily image of a region (DESIGN §1): MIR reflectance and the per-cell composite of overpasses.

Each overpass reaches the compositor as *sparse* observations: flat cell indices of the region
grid with the swath variables sampled there (M05, M07, M10 reflectance, M12 and M15 radiance,
solar and sensor zenith).  A cell keeps the observation of the overpass with the smallest sensor
zenith angle among the overpasses that saw it in daylight (solar zenith < 85°) with valid red
and NIR; ``n_obs`` counts those overpasses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from banet_ops.bands import M12_WAVELENGTH_UM, M15_WAVELENGTH_UM, PLANCK_C1, PLANCK_C2, SOLAR_E0_M12
from banet_ops.daily_image import DailyImage
from banet_ops.regions import Region

MAX_SOLAR_ZENITH = 85.0
#: sparse observation variables, in the order stored by the compositor
OBS_VARIABLES: tuple[str, ...] = ("M05", "M07", "M10", "M12", "M15", "solar_zenith", "sensor_zenith")


def planck_radiance(temperature_k: NDArray[np.floating] | float, wavelength_um: float) -> NDArray[np.float64]:
    """Blackbody spectral radiance (W m⁻² sr⁻¹ µm⁻¹) at ``wavelength_um`` (BA-Net constants c1, c2)."""
    t = np.asarray(temperature_k, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return PLANCK_C1 / (wavelength_um**5 * (np.exp(PLANCK_C2 / (wavelength_um * t)) - 1.0))


def brightness_temperature(radiance: NDArray[np.floating] | float, wavelength_um: float) -> NDArray[np.float64]:
    """Inverse Planck: the temperature (K) of a blackbody with that spectral radiance."""
    r = np.asarray(radiance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return PLANCK_C2 / (wavelength_um * np.log(PLANCK_C1 / (wavelength_um**5 * r) + 1.0))


def mir_reflectance(m12_radiance: NDArray[np.floating], m15_radiance: NDArray[np.floating], solar_zenith_deg: NDArray[np.floating]) -> NDArray[np.float32]:
    """The 3.7 µm reflective component (BA-Net formula).

    T = inverse Planck of M15 at 10.7343 µm; E = Planck(T) at 3.6966 µm (the thermal part of M12);
    ρ = (L12 − E) / (E0·cos(sza)/π − E) with E0 = 11.7881.  Non-positive radiances give NaN,
    negative reflectances are set to 0.
    """
    l12 = np.asarray(m12_radiance, dtype=np.float64)
    l15 = np.asarray(m15_radiance, dtype=np.float64)
    sza = np.asarray(solar_zenith_deg, dtype=np.float64)
    l12 = np.where(l12 > 0, l12, np.nan)
    l15 = np.where(l15 > 0, l15, np.nan)
    emitted = planck_radiance(brightness_temperature(l15, M15_WAVELENGTH_UM), M12_WAVELENGTH_UM)
    with np.errstate(divide="ignore", invalid="ignore"):
        refl = (l12 - emitted) / (SOLAR_E0_M12 * np.cos(np.radians(sza)) / np.pi - emitted)
    refl = np.where(refl < 0, 0.0, refl)
    return refl.astype(np.float32)


def m12_for_mir(
    mir: NDArray[np.floating] | float, temperature_k: NDArray[np.floating] | float, solar_zenith_deg: NDArray[np.floating] | float
) -> NDArray[np.float64]:
    """M12 radiance that makes :func:`mir_reflectance` return ``mir`` for a surface at ``temperature_k``.

    The exact inverse of the formula (used by the synthetic generator).
    """
    emitted = planck_radiance(temperature_k, M12_WAVELENGTH_UM)
    return np.asarray(mir, np.float64) * (SOLAR_E0_M12 * np.cos(np.radians(np.asarray(solar_zenith_deg, np.float64))) / np.pi - emitted) + emitted


@dataclass
class Observations:
    """One overpass on the region grid: flat cell indices and the variables sampled there."""

    key: str
    cells: NDArray[np.int64]
    values: Mapping[str, NDArray[np.float32]]
    files: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.cells.size)


class Compositor:
    """Accumulates overpasses of one region-day; the smallest sensor zenith wins per cell."""

    def __init__(self, region: Region) -> None:
        self.region = region
        n = region.shape[0] * region.shape[1]
        self._best_sz = np.full(n, np.inf, dtype=np.float32)
        self._values = {name: np.full(n, np.nan, dtype=np.float32) for name in OBS_VARIABLES}
        self._n_obs = np.zeros(n, dtype=np.float32)
        self.granules: list[str] = []
        self.n_overpasses = 0

    def add(self, obs: Observations) -> int:
        """Merge one overpass; returns the number of cells where it won."""
        if len(obs) == 0:
            return 0
        sz = obs.values["sensor_zenith"]
        sza = obs.values["solar_zenith"]
        usable = np.isfinite(sz) & (sza < MAX_SOLAR_ZENITH) & np.isfinite(obs.values["M05"]) & np.isfinite(obs.values["M07"])
        cells = obs.cells[usable]
        sz_u = sz[usable]
        self._n_obs[cells] += 1
        wins = sz_u < self._best_sz[cells]
        won = cells[wins]
        self._best_sz[won] = sz_u[wins]
        for name in OBS_VARIABLES:
            self._values[name][won] = obs.values[name][usable][wins]
        if cells.size:
            self.granules.extend(obs.files)
            self.n_overpasses += 1
        return int(won.size)

    def image(self, day: dt.date, frp: NDArray[np.float32] | None = None, sources: dict[str, str] | None = None) -> DailyImage:
        """The daily image: Red=M5, NIR=M7, MIR (BA-Net formula), FRP, M10, n_obs, sensor_zenith."""
        shape = self.region.shape
        v = self._values
        variables = {
            "Red": v["M05"].reshape(shape).copy(),
            "NIR": v["M07"].reshape(shape).copy(),
            "MIR": mir_reflectance(v["M12"], v["M15"], v["solar_zenith"]).reshape(shape),
            "FRP": np.zeros(shape, np.float32) if frp is None else frp.astype(np.float32, copy=False),
            "M10": v["M10"].reshape(shape).copy(),
            "n_obs": self._n_obs.reshape(shape).copy(),
            "sensor_zenith": v["sensor_zenith"].reshape(shape).copy(),
        }
        return DailyImage(region=self.region, day=day, variables=variables, granules=sorted(set(self.granules)), sources=dict(sources or {}))
