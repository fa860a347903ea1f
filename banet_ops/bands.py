"""Band names, physical constants and the BA-Net input normalisation (DESIGN §1)."""

from __future__ import annotations

from typing import Final

# Variables of a daily image and of the cube, in storage order.
REFLECTANCE_BANDS: Final = ("Red", "NIR", "MIR")
CUBE_VARIABLES: Final = ("Red", "NIR", "MIR", "FRP", "M10", "n_obs", "sensor_zenith")
# Model input bands, in order.
MODEL_BANDS: Final = ("Red", "NIR", "MIR", "FRP")
BANET_MEAN: Final = (0.2349, 0.3548, 0.1128, 0.0016)
BANET_STD: Final = (0.1879, 0.1660, 0.0547, 0.0776)
SEQUENCE_DAYS: Final = 64

# MIR reflectance from M12/M15 (BA-Net formula)
M12_WAVELENGTH_UM: Final = 3.6966
M15_WAVELENGTH_UM: Final = 10.7343
SOLAR_E0_M12: Final = 11.7881
PLANCK_C1: Final = 1.1911e8
PLANCK_C2: Final = 1.439e4

CF_ATTRS: Final[dict[str, dict[str, str]]] = {
    "Red": {"long_name": "VIIRS M5 top-of-atmosphere reflectance (0.672 um)", "units": "1"},
    "NIR": {"long_name": "VIIRS M7 top-of-atmosphere reflectance (0.865 um)", "units": "1"},
    "MIR": {"long_name": "3.7 um reflective component from VIIRS M12 and M15 (BA-Net formula)", "units": "1"},
    "FRP": {"long_name": "sum of VIIRS active-fire radiative power detected in the cell that day", "units": "MW"},
    "M10": {"long_name": "VIIRS M10 top-of-atmosphere reflectance (1.61 um)", "units": "1"},
    "n_obs": {"long_name": "number of day overpasses that observed the cell", "units": "1"},
    "sensor_zenith": {"long_name": "sensor zenith angle of the observation kept", "units": "degree"},
}
