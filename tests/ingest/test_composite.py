"""The MIR formula and the composite of overpasses by smallest sensor zenith."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from banet_ops.ingest.composite import Compositor, Observations, brightness_temperature, m12_for_mir, mir_reflectance, planck_radiance
from banet_ops.regions import Region

REGION = Region(name="C", bbox=(0.0, 0.0, 0.03, 0.02), pixel_size=0.01)  # 2 x 3 cells


def test_mir_against_a_hand_computed_value() -> None:
    # L12 = 0.5, L15 = 9.0 W m-2 sr-1 um-1, sza = 30°:
    # T = c2 / (10.7343 ln(c1 / (10.7343^5 * 9.0) + 1)) = 295.1595 K
    # E = c1 / (3.6966^5 (exp(c2 / (3.6966 T)) - 1)) = 0.3229709
    # rho = (0.5 - E) / (11.7881 cos 30° / pi - E) = 0.0604899
    assert float(brightness_temperature(9.0, 10.7343)) == pytest.approx(295.1595, abs=1e-4)
    assert float(planck_radiance(295.1595360240651, 3.6966)) == pytest.approx(0.3229709, rel=1e-6)
    rho = mir_reflectance(np.array([0.5]), np.array([9.0]), np.array([30.0]))
    assert rho.dtype == np.float32
    assert float(rho[0]) == pytest.approx(0.0604899, rel=1e-5)


def test_mir_missing_and_negative() -> None:
    rho = mir_reflectance(np.array([0.0, 0.5, -1.0, 0.1]), np.array([9.0, 0.0, 9.0, 9.0]), np.array([30.0, 30.0, 30.0, 30.0]))
    assert np.isnan(rho[:3]).all()  # non-positive radiances are missing
    assert rho[3] == 0  # L12 below the thermal part: negative reflectance -> 0


def test_m12_for_mir_inverts_the_formula() -> None:
    mir = np.array([0.0, 0.05, 0.2])
    t = np.array([290.0, 300.0, 320.0])
    sza = np.array([20.0, 40.0, 60.0])
    np.testing.assert_allclose(mir_reflectance(m12_for_mir(mir, t, sza), planck_radiance(t, 10.7343), sza), mir, atol=1e-6)


def _obs(key: str, cells: list[int], sz: float, red: float, sza: float = 30.0) -> Observations:
    n = len(cells)
    values = {
        "M05": np.full(n, red, np.float32),
        "M07": np.full(n, red + 0.2, np.float32),
        "M10": np.full(n, red + 0.1, np.float32),
        "M12": np.full(n, 0.5, np.float32),
        "M15": np.full(n, 9.0, np.float32),
        "solar_zenith": np.full(n, sza, np.float32),
        "sensor_zenith": np.full(n, sz, np.float32),
    }
    return Observations(key=key, cells=np.array(cells, np.int64), values=values, files=[f"{key}.nc"])


def test_composite_keeps_the_smallest_sensor_zenith() -> None:
    comp = Compositor(REGION)
    comp.add(_obs("A", [0, 1, 2], sz=40.0, red=0.1))
    comp.add(_obs("B", [1, 2, 3], sz=10.0, red=0.2))
    comp.add(_obs("C", [2, 3], sz=25.0, red=0.3))
    night = _obs("N", [0, 4], sz=1.0, red=0.9, sza=95.0)
    comp.add(night)  # night: ignored
    broken = _obs("X", [0], sz=0.5, red=0.9)
    broken.values["M05"][:] = np.nan
    comp.add(broken)  # no valid red: ignored
    img = comp.image(dt.date(2024, 7, 1), frp=np.ones(REGION.shape, np.float32))
    red = img.variables["Red"].ravel()
    np.testing.assert_allclose(red[:4], [0.1, 0.2, 0.2, 0.2])
    assert np.isnan(red[4:]).all()
    np.testing.assert_allclose(img.variables["sensor_zenith"].ravel()[:4], [40, 10, 10, 10])
    np.testing.assert_array_equal(img.variables["n_obs"].ravel(), [1, 2, 3, 2, 0, 0])
    np.testing.assert_allclose(img.variables["NIR"].ravel()[:4], [0.3, 0.4, 0.4, 0.4])
    assert img.variables["MIR"].ravel()[0] == pytest.approx(0.0604899, rel=1e-5)
    assert img.variables["FRP"].sum() == 6
    assert img.granules == ["A.nc", "B.nc", "C.nc"]  # overpasses that gave nothing are not listed
