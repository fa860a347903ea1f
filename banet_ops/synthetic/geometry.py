"""Viewing geometry of a synthetic VIIRS overpass: ground track, scan, swath pixels, sun.

The orbit is a great circle through a nadir point with a heading (a sun-synchronous ascending
day pass heads about 10–15° west of north at mid-latitudes).  Along the scan the 3200 M-band
samples follow the real aggregation zones (592 samples of 3 native detectors per half-scan out
to 31.59° scan angle, 368 of 2 out to 44.68°, 640 unaggregated out to 56.06°), so ground
pixels grow from ≈ 0.78 km at nadir to ≈ 1.7 km at the scan edge, the swath is ≈ 3000 km wide
and the sensor zenith reaches ≈ 70°.  Lines are 0.737 km apart along track (3232 lines = 202
scans = 6 minutes at 6.62 km/s).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

EARTH_RADIUS_KM = 6371.0
ORBIT_HEIGHT_KM = 833.0
GROUND_SPEED_KM_S = 6.62
GRANULE_SECONDS = 360
LINES_PER_SCAN = 16
LINES_PER_GRANULE = 3232
LINE_SPACING_KM = GROUND_SPEED_KM_S * GRANULE_SECONDS / LINES_PER_GRANULE
PIXELS = 3200
INCLINATION_DEG = 98.7
# half-scan zones: (number of samples, samples' angular width in native detector widths)
_ZONES = ((592, 3), (368, 2), (640, 1))
_NATIVE_DEG = 56.06 / sum(n * k for n, k in _ZONES)


def sample_scan_angles() -> NDArray[np.float64]:
    """Scan angle (degrees, negative left of track) of the centre of each of the 3200 samples."""
    widths = np.concatenate([np.full(n, k * _NATIVE_DEG) for n, k in _ZONES])
    right = np.cumsum(widths) - widths / 2
    return np.concatenate([-right[::-1], right])


def ground_arc_from_scan(scan_deg: NDArray[np.floating]) -> NDArray[np.float64]:
    """Earth-centre angle (radians, signed) between nadir and the ground point seen at a scan angle."""
    s = np.radians(np.asarray(scan_deg, np.float64))
    ratio = (EARTH_RADIUS_KM + ORBIT_HEIGHT_KM) / EARTH_RADIUS_KM
    return np.arcsin(np.clip(ratio * np.sin(s), -1, 1)) - s


def zenith_from_cross_track(cross_km: NDArray[np.floating]) -> NDArray[np.float64]:
    """Sensor zenith angle (degrees) of a ground point ``cross_km`` from the ground track."""
    g = np.abs(np.asarray(cross_km, np.float64)) / EARTH_RADIUS_KM
    scan = np.arctan2(EARTH_RADIUS_KM * np.sin(g), EARTH_RADIUS_KM + ORBIT_HEIGHT_KM - EARTH_RADIUS_KM * np.cos(g))
    return np.degrees(scan + g)


SAMPLE_CROSS_KM: NDArray[np.float64] = ground_arc_from_scan(sample_scan_angles()) * EARTH_RADIUS_KM
SWATH_HALF_WIDTH_KM = float(SAMPLE_CROSS_KM[-1])


def unit_vectors(lat_deg: NDArray[np.floating] | float, lon_deg: NDArray[np.floating] | float) -> NDArray[np.float64]:
    la = np.radians(np.asarray(lat_deg, np.float64))
    lo = np.radians(np.asarray(lon_deg, np.float64))
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _latlon(v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lat = np.degrees(np.arcsin(np.clip(v[..., 2], -1, 1)))
    lon = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
    return lat, lon


def heading_at(lat_deg: float) -> float:
    """Heading (degrees from north, negative = west) of an ascending sun-synchronous track."""
    s = math.cos(math.radians(INCLINATION_DEG)) / max(math.cos(math.radians(lat_deg)), 0.2)
    return math.degrees(math.asin(max(-1.0, min(1.0, s))))


@dataclass(frozen=True)
class Track:
    """A ground track: nadir point ``origin`` (along-track 0) at time ``time`` and its direction."""

    origin_lat: float
    origin_lon: float
    heading_deg: float
    time: dt.datetime

    @property
    def _frame(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        p = unit_vectors(self.origin_lat, self.origin_lon)
        la, lo = math.radians(self.origin_lat), math.radians(self.origin_lon)
        north = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
        east = np.array([-math.sin(lo), math.cos(lo), 0.0])
        h = math.radians(self.heading_deg)
        t = math.cos(h) * north + math.sin(h) * east
        n = np.cross(p, t)  # pole of the track; right of track is -n
        return p, t, n

    def ground_points(self, along_km: NDArray[np.floating], cross_km: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(lat, lon) of the grid of points ``along_km`` (lines) × ``cross_km`` (samples)."""
        p, t, n = self._frame
        a = np.asarray(along_km, np.float64)[:, None, None] / EARTH_RADIUS_KM
        c = np.asarray(cross_km, np.float64)[None, :, None] / EARTH_RADIUS_KM
        nadir = np.cos(a) * p + np.sin(a) * t
        v = np.cos(c) * nadir - np.sin(c) * n
        return _latlon(v)

    def coordinates(self, lat: NDArray[np.floating], lon: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(along-track km, cross-track km, positive right of track) of ground points."""
        return self.coordinates_of(unit_vectors(lat, lon))

    def coordinates_of(self, v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`coordinates` of unit vectors (``unit_vectors(lat, lon)``)."""
        p, t, n = self._frame
        cross = -np.arcsin(np.clip(v @ n, -1, 1)) * EARTH_RADIUS_KM
        along = np.arctan2(v @ t, v @ p) * EARTH_RADIUS_KM
        return along, cross

    def time_at(self, along_km: NDArray[np.floating] | float) -> NDArray[np.float64]:
        """Seconds after ``time`` at which the sub-satellite point passes ``along_km``."""
        return np.asarray(along_km, np.float64) / GROUND_SPEED_KM_S


def track_over(lat: float, lon: float, cross_offset_km: float, time: dt.datetime) -> Track:
    """A track that passes ``cross_offset_km`` left of (lat, lon) (the point is right of it) at ``time``."""
    heading = heading_at(lat)
    # nadir point: walk from the target to the left of the track by cross_offset_km
    h = math.radians(heading - 90.0)
    d = cross_offset_km / EARTH_RADIUS_KM
    la, lo = math.radians(lat), math.radians(lon)
    la2 = math.asin(math.sin(la) * math.cos(d) + math.cos(la) * math.sin(d) * math.cos(h))
    lo2 = lo + math.atan2(math.sin(h) * math.sin(d) * math.cos(la), math.cos(d) - math.sin(la) * math.sin(la2))
    return Track(origin_lat=math.degrees(la2), origin_lon=math.degrees(lo2), heading_deg=heading_at(math.degrees(la2)), time=time)


def solar_zenith(lat: NDArray[np.floating], lon: NDArray[np.floating], when: dt.datetime, seconds: NDArray[np.floating] | float = 0.0) -> NDArray[np.float64]:
    """Solar zenith angle (degrees) at ``when`` + ``seconds`` (simple declination/hour-angle model)."""
    doy = when.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0)
    hours = when.hour + when.minute / 60 + when.second / 3600 + np.asarray(seconds, np.float64) / 3600.0
    hour_angle = np.radians(15.0 * (hours + np.asarray(lon, np.float64) / 15.0 - 12.0))
    la = np.radians(np.asarray(lat, np.float64))
    cos_z = np.sin(la) * math.sin(decl) + np.cos(la) * math.cos(decl) * np.cos(hour_angle)
    return np.degrees(np.arccos(np.clip(cos_z, -1, 1)))
