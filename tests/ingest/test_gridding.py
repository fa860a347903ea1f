"""Gridding swaths onto the 0.01° grid: no holes inside the footprint, nearest pixel, nothing outside."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from banet_ops.ingest.gridding import bin_naive, grid_granule, max_distance_km
from banet_ops.ingest.readers.viirs_l1b import SwathGranule
from banet_ops.regions import Region
from banet_ops.synthetic.geometry import LINE_SPACING_KM, SAMPLE_CROSS_KM, track_over, unit_vectors, zenith_from_cross_track

REGION = Region(name="G", bbox=(-4.0, 39.7, -3.4, 40.3), pixel_size=0.01)
WHEN = dt.datetime(2024, 7, 1, 13, 0, tzinfo=dt.UTC)


def _granule(offset_km: float, sza: float = 30.0) -> tuple[SwathGranule, object, np.ndarray, np.ndarray]:
    """A swath whose track passes ``offset_km`` from the region centre (large offsets: scan edge)."""
    track = track_over(40.0, -3.7, offset_km, WHEN)
    a0, c0 = (float(v[0]) for v in track.coordinates(np.array([40.0]), np.array([-3.7])))
    along = np.arange(a0 - 60.0, a0 + 60.0, LINE_SPACING_KM)
    samples = np.flatnonzero(np.abs(SAMPLE_CROSS_KM - c0) < 45)
    cross = SAMPLE_CROSS_KM[samples]
    lat, lon = track.ground_points(along, cross)
    shape = lat.shape
    sz = np.broadcast_to(zenith_from_cross_track(cross), shape).astype(np.float32)
    rng = np.random.default_rng(0)
    bands = {b: rng.uniform(0.05, 0.5, shape).astype(np.float32) for b in ("M05", "M07", "M10", "M12", "M15")}
    g = SwathGranule(
        key="A2024183.1300",
        platform="VNP",
        start=WHEN,
        l1b_path=Path("l1b.nc"),
        geo_path=Path("geo.nc"),
        n_lines=shape[0],
        n_pixels=shape[1],
        line_slice=slice(0, shape[0]),
        geo={
            "latitude": lat.astype(np.float32),
            "longitude": lon.astype(np.float32),
            "solar_zenith": np.full(shape, sza, np.float32),
            "sensor_zenith": sz,
        },
        bands=bands,
    )
    return g, track, along, cross


def _cell_coords(track: object) -> tuple[np.ndarray, np.ndarray]:
    lat = np.repeat(REGION.lat_centres()[:, None], REGION.shape[1], 1)
    lon = np.repeat(REGION.lon_centres()[None, :], REGION.shape[0], 0)
    return track.coordinates(lat, lon)  # type: ignore[attr-defined]


@pytest.mark.parametrize("offset_km", [0.0, 900.0, 1480.0])
def test_no_holes_inside_the_footprint(offset_km: float) -> None:
    g, track, along, cross = _granule(offset_km)
    obs = grid_granule(g, REGION)
    a, c = _cell_coords(track)
    inside = (a >= along[0]) & (a <= along[-1]) & (c >= cross[0]) & (c <= cross[-1])
    assert inside.sum() > 1000
    assigned = np.zeros(REGION.shape[0] * REGION.shape[1], bool)
    assigned[obs.cells] = True
    assert assigned[inside.ravel()].all()
    if offset_km > 1000:
        # at the scan edge pixels (~1.7 km) are larger than cells: plain binning leaves holes
        naive = np.zeros_like(assigned)
        naive[bin_naive(g, REGION).cells] = True
        assert (~naive[inside.ravel()]).mean() > 0.2
    # nothing far beyond the swath edge
    far = (c > cross[-1] + 3.0) | (c < cross[0] - 3.0)
    assert not assigned[far.ravel()].any()


def test_cells_take_a_nearest_pixel() -> None:
    g, _, _, _ = _granule(1300.0)
    obs = grid_granule(g, REGION)
    pix = np.column_stack([g.geo["latitude"].ravel(), g.geo["longitude"].ravel()])
    tree = cKDTree(unit_vectors(pix[:, 0], pix[:, 1]))
    rows, cols = np.divmod(obs.cells, REGION.shape[1])
    lon_c, lat_c = REGION.xy(rows, cols)
    d_true, nearest = tree.query(unit_vectors(lat_c, lon_c))
    d_true_km = d_true * 6371.0
    # identify the chosen pixel through its unique random M05 value
    m05 = g.bands["M05"].ravel()
    order = np.argsort(m05)
    idx = order[np.searchsorted(m05[order], obs.values["M05"])]
    chosen = unit_vectors(pix[idx, 0], pix[idx, 1])
    d_chosen_km = np.linalg.norm(chosen - unit_vectors(lat_c, lon_c), axis=1) * 6371.0
    assert (idx == nearest).mean() > 0.9
    assert (d_chosen_km <= d_true_km + 0.6).all()
    assert (d_chosen_km <= max_distance_km(obs.values["sensor_zenith"]) + 1e-3).all()


def test_night_pixels_are_not_used() -> None:
    g, _, _, _ = _granule(0.0, sza=95.0)
    assert len(grid_granule(g, REGION)) == 0


def test_missing_pixels_are_replaced_by_neighbours() -> None:
    g, track, along, cross = _granule(0.0)
    g.bands["M05"][::7, ::5] = np.nan
    g.bands["M07"][::7, ::5] = np.nan
    obs = grid_granule(g, REGION)
    assert np.isfinite(obs.values["M05"]).all()
    a, c = _cell_coords(track)
    inside = (a >= along[0]) & (a <= along[-1]) & (c >= cross[0]) & (c <= cross[-1])
    assigned = np.zeros(REGION.shape[0] * REGION.shape[1], bool)
    assigned[obs.cells] = True
    assert assigned[inside.ravel()].all()


def test_max_distance_grows_with_zenith() -> None:
    d = max_distance_km(np.array([0.0, 45.0, 60.0, 70.0]))
    assert d[0] == pytest.approx(1.2) and d[1] == pytest.approx(1.2 * 2**0.5, rel=1e-5)
    assert d[2] == pytest.approx(2.4, rel=1e-5) and d[3] == pytest.approx(2.5)
