"""The physical world of a synthetic scenario: land, water, fires, clouds, overpasses, detections.

Everything is a deterministic function of (region, start, days, seed).  Fires ignite at random
cells and days, spread outwards at an uneven speed (wind and fuel) for a few days, and die.  On
its burn day a cell's NIR drops, its red and 1.6 µm reflectance drop a little, its 3.7 µm
reflectance rises and its surface warms; all of it recovers slowly (e-folding of 60 days).
Burning cells produce active-fire detections with FRP.  Clouds are bright and cold.  Each day has
one Suomi-NPP and one NOAA-20 day overpass, each with its own cross-track offset, so that the
region is seen 0, 1 or 2 times at different sensor zenith angles (gaps where it is missed).

With ``reburn=True`` (the demo's scenario) a cell can burn twice: a fire in the first days and,
near the end, a second fire that starts beside its scar and runs over part of it.  A scar burns
again only after :data:`MIN_REBURN_GAP_DAYS` (so two burns of a cell never share a calendar month:
MCD64A1 maps one burn date per pixel and month); each burn has its own drop and recovery.  The
truth is then :meth:`Scene.all_burn_dates` (every burn); :meth:`Scene.burn_dates` gives the
latest burn of each cell (what a product on the scenario's last day sees).  Without the option
the scene is exactly what it was (other random streams untouched).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage

from banet_ops.regions import Region
from banet_ops.synthetic.geometry import (
    SAMPLE_CROSS_KM,
    SWATH_HALF_WIDTH_KM,
    Track,
    solar_zenith,
    track_over,
    unit_vectors,
    zenith_from_cross_track,
)

RECOVERY_DAYS = 60.0
#: shortest time between two burns of a cell (a month and a day: never twice in a calendar month)
MIN_REBURN_GAP_DAYS = 32
#: the re-burn fire starts between 12 and 10 days before the scenario's end (on the demo's 80 days:
#: after the NRT runs of days 63 and 67, which date the early fire's cells they keep)
REBURN_LEAD_DAYS = (12, 10)
#: cells kept free of the re-burn fires' ignition at the region's edges
REBURN_MARGIN = 12
#: platforms flown every day: (file prefix, FIRMS satellite code, local solar time of the day pass, hours)
PLATFORMS: tuple[tuple[str, str, float], ...] = (("VNP", "N", 13.5), ("VJ1", "N20", 12.7))
CLOUD = {"Red": 0.42, "NIR": 0.46, "M10": 0.33, "MIR": 0.12, "T": 265.0}
MAX_SOLAR_ZENITH = 85.0


def view_factor(sensor_zenith_deg: NDArray[np.floating]) -> NDArray[np.float64]:
    """A mild view-angle effect on reflectance (brighter off-nadir), so that composites differ by overpass."""
    return 1.0 + 0.06 * (np.asarray(sensor_zenith_deg, np.float64) / 70.0) ** 2


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_cells: float) -> NDArray[np.float64]:
    """Smooth random field in [0, 1] with features about ``scale_cells`` wide."""
    small = (max(2, int(np.ceil(shape[0] / scale_cells)) + 2), max(2, int(np.ceil(shape[1] / scale_cells)) + 2))
    coarse = rng.random(small)
    field = ndimage.zoom(coarse, (shape[0] / (small[0] - 2), shape[1] / (small[1] - 2)), order=3, mode="nearest", grid_mode=True)
    field = field[: shape[0], : shape[1]]
    if field.shape != shape:
        field = np.pad(field, ((0, shape[0] - field.shape[0]), (0, shape[1] - field.shape[1])), mode="edge")
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / (hi - lo + 1e-12)


@dataclass(frozen=True)
class Overpass:
    """One day overpass of one platform over the region."""

    platform: str  # VNP / VJ1
    satellite: str  # FIRMS code
    day_index: int
    track: Track

    @property
    def time(self) -> dt.datetime:
        return self.track.time


@dataclass
class DayView:
    """What one overpass sees on the region grid (NaN / False where not covered)."""

    overpass: Overpass
    covered: NDArray[np.bool_]
    sensor_zenith: NDArray[np.float64]
    solar_zenith: NDArray[np.float64]


class Scene:
    """The deterministic synthetic world of a region over ``days`` days from ``start``."""

    def __init__(self, region: Region, start: dt.date, days: int, seed: int = 0, *, reburn: bool = False) -> None:
        self.region = region
        self.start = start
        self.days = days
        self.seed = seed
        self.reburn = reburn
        self.shape = region.shape
        rng = np.random.default_rng([seed, 1])
        h, w = self.shape
        veg = _smooth_noise(rng, self.shape, 24)
        soil = _smooth_noise(rng, self.shape, 9)
        self.water = _smooth_noise(rng, self.shape, 40) > 0.93
        self.red0 = 0.04 + 0.08 * (1 - veg) + 0.02 * soil
        self.nir0 = 0.20 + 0.16 * veg + 0.03 * soil
        self.m10_0 = 0.16 + 0.12 * (1 - veg) + 0.04 * soil
        self.mir0 = 0.04 + 0.05 * (1 - veg) + 0.01 * soil
        self.temp0 = 292.0 + 12.0 * (1 - veg) + 3.0 * soil
        self.red0[self.water], self.nir0[self.water], self.m10_0[self.water] = 0.03, 0.015, 0.01
        self.mir0[self.water], self.temp0[self.water] = 0.01, 289.0
        self._views: dict[tuple[str, int], DayView] = {}
        self.burn_day = self._fires(np.random.default_rng([seed, 2]), h, w)
        self.reburn_day = np.full((h, w), -1, np.int32)  # second burn day index per cell (-1 none)
        if reburn:
            self._reburn_fires(np.random.default_rng([seed, 7]))

    # fires --------------------------------------------------------------------------------
    def _fires(self, rng: np.random.Generator, h: int, w: int) -> NDArray[np.int32]:
        """Burn day index per cell (-1 unburned)."""
        burn = np.full((h, w), -1, np.int32)
        if self.days < 3:
            return burn
        n_fires = max(1, round(h * w / 5000))
        fuel = 0.5 + _smooth_noise(rng, self.shape, 6)
        for _ in range(n_fires):
            r0, c0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            if self.water[r0, c0]:
                continue
            first = int(rng.integers(1, max(2, self.days - 2)))
            day, mask = self._spread(rng, fuel, r0, c0, first, int(rng.integers(2, 8)), (1.5, 5.0))
            newer = mask & ((burn < 0) | (day < burn))
            burn[newer] = day[newer]
        return burn

    def _spread(
        self, rng: np.random.Generator, fuel: NDArray[np.float64], r0: int, c0: int, first: int, duration: int, speeds: tuple[float, float]
    ) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
        """Burn day of every cell a fire from (r0, c0) on day ``first`` reaches, and the cells it burns."""
        yy, xx = np.mgrid[0 : self.shape[0], 0 : self.shape[1]].astype(np.float64)
        speed = float(rng.uniform(*speeds))  # cells per day
        wind = float(rng.uniform(0, 2 * np.pi))
        stretch = float(rng.uniform(1.0, 2.5))
        dy, dx = yy - r0, xx - c0
        u = dx * np.cos(wind) + dy * np.sin(wind)
        v = -dx * np.sin(wind) + dy * np.cos(wind)
        dist = np.sqrt((u / stretch) ** 2 + v**2) / fuel
        day = first + np.floor(dist / speed).astype(np.int32)
        return day, (day < first + duration) & (day < self.days) & ~self.water

    def _reburn_fires(self, rng: np.random.Generator) -> None:
        """A fire in the first days and, ``REBURN_LEAD_DAYS`` before the end, one that starts beside its scar and runs over part of it."""
        h, w = self.shape
        late = self.days - int(rng.integers(REBURN_LEAD_DAYS[1], REBURN_LEAD_DAYS[0] + 1))
        if late - MIN_REBURN_GAP_DAYS < 1 or min(h, w) <= 2 * REBURN_MARGIN:
            return
        fuel = 0.5 + _smooth_noise(rng, self.shape, 6)
        land = np.argwhere(~self.water[REBURN_MARGIN : h - REBURN_MARGIN, REBURN_MARGIN : w - REBURN_MARGIN]) + REBURN_MARGIN
        if land.size == 0:
            return
        r0, c0 = (int(v) for v in land[rng.integers(0, len(land))])
        day, early = self._spread(rng, fuel, r0, c0, int(rng.integers(1, 3)), 7, (1.5, 2.5))
        # its cells burn in it only (it replaces what the other fires did there): the re-burns are the late fire's
        self.burn_day[early] = day[early]
        self.reburn_day[early] = -1
        # the second fire ignites at the scar's edge and spreads for a few days, over the scar and beyond
        edge = early & ~ndimage.binary_erosion(early)
        r1, c1 = (int(v) for v in np.argwhere(edge)[rng.integers(0, int(edge.sum()))])
        day, second = self._spread(rng, fuel, r1, c1, late, int(rng.integers(4, 7)), (1.5, 2.5))
        self._add_burns(second, day)

    def _add_burns(self, cells: NDArray[np.bool_], day: NDArray[np.int32]) -> None:
        """Burn ``cells`` on their ``day``: at most two burns per cell, :data:`MIN_REBURN_GAP_DAYS` apart (a fresh scar has no fuel)."""
        b1, b2 = self.burn_day, self.reburn_day
        unburned = cells & (b1 < 0)
        once = cells & (b1 >= 0) & (b2 < 0)
        before = once & (day <= b1 - MIN_REBURN_GAP_DAYS)  # this burn comes first, the known one re-burns
        after = once & (day >= b1 + MIN_REBURN_GAP_DAYS)
        sooner = once & ~before & ~after & (day < b1)  # too close: the earlier burn leaves nothing to the other
        b2[before] = b1[before]
        b1[before] = day[before]
        b2[after] = day[after]
        b1[sooner] = day[sooner]
        b1[unburned] = day[unburned]

    def burns_on(self, d: int) -> NDArray[np.bool_]:
        """Cells burning on day ``d`` (a first burn or a re-burn)."""
        return (self.burn_day == d) | (self.reburn_day == d)

    def last_burn_day(self, d: int) -> NDArray[np.int32]:
        """Day index of each cell's latest burn on or before day ``d`` (-1 none yet)."""
        again = (self.reburn_day >= 0) & (self.reburn_day <= d)
        return np.where(again, self.reburn_day, np.where(self.burn_day <= d, self.burn_day, -1)).astype(np.int32)

    def burn_dates(self) -> NDArray[np.datetime64]:
        """The truth raster: latest burn date per cell (``datetime64[D]``), NaT where unburned."""
        return self._dates(self.last_burn_day(self.days - 1))

    def all_burn_dates(self) -> NDArray[np.datetime64]:
        """Every burn: ``(2, rows, cols)`` dates, the first burn then the re-burn (NaT where none)."""
        return np.stack([self._dates(self.burn_day), self._dates(self.reburn_day)])

    def _dates(self, day_index: NDArray[np.int32]) -> NDArray[np.datetime64]:
        out = np.full(self.shape, np.datetime64("NaT"), dtype="datetime64[D]")
        burned = day_index >= 0
        out[burned] = np.datetime64(self.start, "D") + day_index[burned].astype("timedelta64[D]")
        return out

    # surface ------------------------------------------------------------------------------
    def clouds(self, d: int) -> NDArray[np.bool_]:
        rng = np.random.default_rng([self.seed, 3, d])
        fraction = float(rng.choice([0.0, 0.0, 0.05, 0.15, 0.35]))
        if fraction == 0:
            return np.zeros(self.shape, bool)
        field = _smooth_noise(rng, self.shape, 12)
        return field > np.quantile(field, 1 - fraction)

    def surface(self, d: int) -> dict[str, NDArray[np.float64]]:
        """Red, NIR, M10, MIR reflectance and temperature T (K) of day ``d``, clouds included."""
        last = self.last_burn_day(d)  # a re-burn starts the drop and recovery again
        since = d - last
        effect = np.where((last >= 0) & (since >= 0), np.exp(-np.maximum(since, 0) / RECOVERY_DAYS), 0.0)
        out = {
            "Red": self.red0 * (1 - 0.3 * effect),
            "NIR": self.nir0 * (1 - 0.55 * effect),
            "M10": self.m10_0 * (1 - 0.25 * effect),
            "MIR": self.mir0 + 0.08 * effect,
            "T": self.temp0 + 10.0 * effect,
        }
        cloud = self.clouds(d)
        for name, value in CLOUD.items():
            out[name][cloud] = value
        return out

    # overpasses ---------------------------------------------------------------------------
    @cached_property
    def centre(self) -> tuple[float, float]:
        left, bottom, right, top = self.region.bbox
        return (bottom + top) / 2, (left + right) / 2

    def overpasses(self, d: int) -> list[Overpass]:
        """The day overpasses of day ``d`` that see at least part of the region."""
        lat, lon = self.centre
        day = self.start + dt.timedelta(days=d)
        out = []
        for k, (platform, satellite, local_hours) in enumerate(PLATFORMS):
            rng = np.random.default_rng([self.seed, 4, d, k])
            offset = float(rng.uniform(-1.15, 1.15)) * SWATH_HALF_WIDTH_KM
            utc_hours = (local_hours - lon / 15.0) % 24
            when = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(hours=utc_hours)
            track = track_over(lat, lon, offset, when)
            op = Overpass(platform=platform, satellite=satellite, day_index=d, track=track)
            if self._may_see(op) and self.view(op).covered.any():
                out.append(op)
        return out

    def _may_see(self, op: Overpass) -> bool:
        left, bottom, right, top = self.region.bbox
        t = np.linspace(0, 1, 9)
        lats = np.concatenate([np.full_like(t, top), np.full_like(t, bottom), bottom + t * (top - bottom), bottom + t * (top - bottom)])
        lons = np.concatenate([left + t * (right - left), left + t * (right - left), np.full_like(t, left), np.full_like(t, right)])
        _, cross = op.track.coordinates(lats, lons)
        # the region's cross-track interval must meet the swath's (with a little slack)
        return bool(cross.min() <= SWATH_HALF_WIDTH_KM + 5 and cross.max() >= -SWATH_HALF_WIDTH_KM - 5)

    @cached_property
    def _cell_latlon(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lats = self.region.lat_centres()
        lons = self.region.lon_centres()
        return np.repeat(lats[:, None], lons.size, 1), np.repeat(lons[None, :], lats.size, 0)

    @cached_property
    def _cell_units(self) -> NDArray[np.float64]:
        lat, lon = self._cell_latlon
        return unit_vectors(lat, lon)

    def view(self, op: Overpass) -> DayView:
        """Coverage, sensor and solar zenith of an overpass at the cell centres."""
        cache_key = (op.platform, op.day_index)
        if cache_key in self._views and self._views[cache_key].overpass == op:
            return self._views[cache_key]
        lat, lon = self._cell_latlon
        along, cross = op.track.coordinates_of(self._cell_units)
        # a cell is seen when its centre is within the outermost pixel plus half a pixel
        edge = SWATH_HALF_WIDTH_KM + 0.5 * float(SAMPLE_CROSS_KM[-1] - SAMPLE_CROSS_KM[-2])
        sza = solar_zenith(lat, lon, op.time, op.track.time_at(along))
        covered = (np.abs(cross) <= edge) & (sza < MAX_SOLAR_ZENITH)
        view = DayView(overpass=op, covered=covered, sensor_zenith=zenith_from_cross_track(cross), solar_zenith=sza)
        if len(self._views) > 8:
            self._views.clear()
        self._views[cache_key] = view
        return view

    # fires seen from space ----------------------------------------------------------------
    def detections(self, d: int) -> pd.DataFrame:
        """Active-fire detections of day ``d`` (points inside burning cells, plus a few outside the region)."""
        rng = np.random.default_rng([self.seed, 5, d])
        rows, cols = np.nonzero(self.burns_on(d))
        keep = rng.random(rows.size) < 0.85
        rows, cols = rows[keep], cols[keep]
        per_cell = rng.integers(1, 3, rows.size)
        rows, cols = np.repeat(rows, per_cell), np.repeat(cols, per_cell)
        px = self.region.pixel_size
        lat = self.region.top - (rows + rng.uniform(0.05, 0.95, rows.size)) * px
        lon = self.region.left + (cols + rng.uniform(0.05, 0.95, cols.size)) * px
        frp = np.round(rng.lognormal(2.0, 0.8, rows.size), 2)
        # a few detections just outside the region, which must not reach its FRP
        n_out = 3
        lat = np.concatenate([lat, np.full(n_out, self.region.top + 0.05)])
        lon = np.concatenate([lon, self.region.left + rng.uniform(0, self.region.right - self.region.left, n_out)])
        frp = np.concatenate([frp, np.round(rng.lognormal(2.0, 0.8, n_out), 2)])
        n = lat.size
        sat_index = rng.integers(0, len(PLATFORMS), n)
        day = self.start + dt.timedelta(days=d)
        _, lon_c = self.centre
        minutes = np.array([int(((PLATFORMS[i][2] - lon_c / 15.0) % 24) * 60) for i in sat_index], dtype=np.int64)
        night = rng.random(n) < 0.3
        minutes = np.where(night, (minutes + 12 * 60) % (24 * 60), minutes)
        return pd.DataFrame(
            {
                "latitude": np.round(lat, 5),
                "longitude": np.round(lon, 5),
                "acq_date": np.datetime64(day, "D"),
                "acq_time": minutes,
                "frp": frp,
                "satellite": [PLATFORMS[i][1] for i in sat_index],
                "confidence": rng.choice(["low", "nominal", "high"], n),
                "daynight": np.where(night, "N", "D"),
                "bright_ti4": np.round(rng.uniform(330, 367), 2),
                "bright_ti5": np.round(rng.uniform(290, 310), 2),
                "scan": 0.45,
                "track": 0.4,
            }
        )

    def frp(self, d: int) -> NDArray[np.float32]:
        """Sum of the FRP of the detections of day ``d`` per cell (the FRP band the files encode)."""
        det = self.detections(d)
        rows, cols = self.shape
        r, c, inside = self.region.rowcol(det["longitude"].to_numpy(), det["latitude"].to_numpy())
        total = np.bincount(r[inside] * cols + c[inside], weights=det["frp"].to_numpy()[inside], minlength=rows * cols)
        return total.reshape(rows, cols).astype(np.float32)
