"""Reader of VIIRS L1B M-band swaths (VNP02MOD / VJ102MOD / VJ202MOD) with their 03MOD geolocation.

Both files are NetCDF4.  The L1B file holds ``observation_data/Mxx`` (uint16 counts with
``scale_factor``/``add_offset`` giving reflectance for M01–M11 and radiance in
W m⁻² sr⁻¹ µm⁻¹ for M12–M16); the geolocation file holds ``geolocation_data/latitude``,
``longitude`` (float degrees) and the angles (int16 × 0.01 degrees).  Counts outside
``[valid_min, valid_max]``, equal to ``_FillValue`` or to one of ``flag_values`` (Missing_EV,
Bowtie_Deleted, Cal_Fail: everything above 65527) become NaN.

Reflectance is the L1B "reflectance factor" exactly as scaled in the file (not divided by
cos(solar zenith)), the same quantity as the legacy ``NPP_VMAES_L1`` gridded product BA-Net used.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import DataFormatError, GeolocationMismatchError

#: The L1B bands read and what they are converted to.
L1B_BANDS: tuple[str, ...] = ("M05", "M07", "M10", "M12", "M15")
GEO_VARIABLES: tuple[str, ...] = ("latitude", "longitude", "solar_zenith", "sensor_zenith")
PLATFORMS: Mapping[str, str] = {"VNP": "Suomi-NPP", "VJ1": "NOAA-20", "VJ2": "NOAA-21"}
# Counts above this are flags (Missing_EV, Bowtie_Deleted, Cal_Fail, fill), never measurements.
MAX_VALID_COUNT = 65527

_KEY_RE = re.compile(r"\.A(\d{4})(\d{3})\.(\d{2})(\d{2})\.")
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S")


def granule_key(name: str) -> str | None:
    """The ``A{YYYYDDD}.{HHMM}`` key of a granule file name, or None."""
    m = _KEY_RE.search("." + Path(name).name)
    return f"A{m.group(1)}{m.group(2)}.{m.group(3)}{m.group(4)}" if m else None


def key_time(key: str) -> dt.datetime:
    """UTC start time encoded in a ``A{YYYYDDD}.{HHMM}`` key."""
    return dt.datetime.strptime(key, "A%Y%j.%H%M").replace(tzinfo=dt.UTC)


def platform_prefix(name: str) -> str:
    """``VNP``, ``VJ1`` or ``VJ2`` from a file name (``NPP`` legacy files map to ``VNP``)."""
    base = Path(name).name
    if base.startswith("NPP_"):
        return "VNP"
    return base[:3]


@dataclass
class SwathGranule:
    """Lines of one L1B granule (all of them, or those near a bounding box) as float32 arrays.

    ``bands`` holds M05, M07, M10 reflectance and M12, M15 radiance; ``geo`` holds latitude,
    longitude, solar_zenith, sensor_zenith in degrees.  NaN marks every missing value.
    """

    key: str
    platform: str
    start: dt.datetime
    l1b_path: Path
    geo_path: Path
    n_lines: int
    n_pixels: int
    line_slice: slice
    geo: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    bands: dict[str, NDArray[np.float32]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.geo["latitude"].shape if self.geo else (0, 0)

    @property
    def is_empty(self) -> bool:
        return self.shape[0] == 0


def _open(path: Path) -> Any:
    import netCDF4

    try:
        ds = netCDF4.Dataset(str(path), "r")
    except FileNotFoundError:
        raise DataFormatError(f"{path}: expected a NetCDF4 file, found nothing at that path") from None
    except OSError as exc:
        raise DataFormatError(
            f"{path}: expected a NetCDF4 file, found unreadable content ({exc.strerror or exc})",
            hint="the file is corrupt or truncated; delete it so that it is downloaded again",
        ) from None
    ds.set_auto_maskandscale(False)
    return ds


def _variable(ds: Any, path: Path, group: str, name: str) -> Any:
    try:
        return ds.groups[group].variables[name]
    except KeyError:
        raise DataFormatError(
            f"{path}: expected variable {group}/{name}, found groups {sorted(ds.groups)}"
            + (f" and {group}/ variables {sorted(ds.groups[group].variables)}" if group in ds.groups else ""),
            hint="is this the right product (L1B 02MOD vs geolocation 03MOD)?",
        ) from None


def _attr(var: Any, name: str, default: Any = None) -> Any:
    return var.getncattr(name) if name in var.ncattrs() else default


def _bad_values(var: Any, dtype: np.dtype[Any]) -> tuple[Any, Any, Any, Any]:
    fill = _attr(var, "_FillValue")
    valid_range = _attr(var, "valid_range")
    vmin = _attr(var, "valid_min", None if valid_range is None else valid_range[0])
    vmax = _attr(var, "valid_max", None if valid_range is None else valid_range[1])
    flags = _attr(var, "flag_values")
    return fill, vmin, vmax, flags


def decode(raw: NDArray[Any], var: Any) -> NDArray[np.float32]:
    """Counts → physical float32 with NaN for fill, flags and values outside the valid range.

    16-bit integers go through a 65536-entry lookup table (one gather, no temporaries).
    """
    fill, vmin, vmax, flags = _bad_values(var, raw.dtype)
    scale = np.float32(_attr(var, "scale_factor", 1.0))
    offset = np.float32(_attr(var, "add_offset", 0.0))
    if raw.dtype in (np.uint16, np.int16):
        codes = np.arange(65536, dtype=np.uint16).view(raw.dtype)
        lut = codes.astype(np.float32) * scale + offset
        bad = _mask(codes, fill, vmin, vmax, flags)
        if raw.dtype == np.uint16:
            bad |= codes.view(np.uint16) > MAX_VALID_COUNT
        lut[bad] = np.nan
        return lut[raw.view(np.uint16)]
    out = raw.astype(np.float32)
    bad = _mask(raw, fill, vmin, vmax, flags)
    if np.issubdtype(raw.dtype, np.floating):
        bad |= ~np.isfinite(raw)
    if scale != 1 or offset != 0:
        out *= scale
        out += offset
    out[bad] = np.nan
    return out


def _mask(values: NDArray[Any], fill: Any, vmin: Any, vmax: Any, flags: Any) -> NDArray[np.bool_]:
    bad = np.zeros(values.shape, dtype=bool)
    if fill is not None:
        bad |= values == np.asarray(fill).astype(values.dtype)
    if vmin is not None:
        bad |= values < vmin
    if vmax is not None:
        bad |= values > vmax
    if flags is not None:
        bad |= np.isin(values, np.atleast_1d(flags))
    return bad


def _coverage_start(ds: Any, path: Path) -> dt.datetime:
    value = getattr(ds, "time_coverage_start", None)
    if value is None:
        raise DataFormatError(f"{path}: expected global attribute time_coverage_start, found none")
    text = str(value).strip()
    for fmt in _TIME_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    raise DataFormatError(f"{path}: expected time_coverage_start like 2024-01-01T12:00:00.000Z, found {text!r}")


def _dims(ds: Any, path: Path) -> tuple[int, int]:
    try:
        return len(ds.dimensions["number_of_lines"]), len(ds.dimensions["number_of_pixels"])
    except KeyError:
        raise DataFormatError(f"{path}: expected dimensions number_of_lines and number_of_pixels, found {sorted(ds.dimensions)}") from None


def _mismatch(l1b: Path, geo: Path, what: str) -> GeolocationMismatchError:
    return GeolocationMismatchError(
        f"L1B {l1b.name} and geolocation {geo.name} do not belong together: {what}",
        hint="pair files by their A{YYYYDDD}.{HHMM} key and re-download the geolocation file",
    )


def check_pair(l1b_path: Path, geo_path: Path, l1b: Any, geo: Any) -> tuple[str, dt.datetime, int, int]:
    """Verify that an L1B file and a geolocation file describe the same granule."""
    k1, k2 = granule_key(l1b_path.name), granule_key(geo_path.name)
    if k1 is None or k2 is None:
        raise _mismatch(l1b_path, geo_path, f"expected A{{YYYYDDD}}.{{HHMM}} in both names, found {k1} and {k2}")
    if k1 != k2:
        raise _mismatch(l1b_path, geo_path, f"time keys differ ({k1} vs {k2})")
    d1, d2 = _dims(l1b, l1b_path), _dims(geo, geo_path)
    if d1 != d2:
        raise _mismatch(l1b_path, geo_path, f"lines x pixels differ ({d1[0]} x {d1[1]} vs {d2[0]} x {d2[1]})")
    t1, t2 = _coverage_start(l1b, l1b_path), _coverage_start(geo, geo_path)
    if abs((t1 - t2).total_seconds()) > 1:
        raise _mismatch(l1b_path, geo_path, f"time_coverage_start differs ({t1:%Y-%m-%dT%H:%M:%S} vs {t2:%Y-%m-%dT%H:%M:%S})")
    if abs((t1 - key_time(k1)).total_seconds()) > 360:
        raise _mismatch(l1b_path, geo_path, f"time_coverage_start {t1:%Y-%m-%dT%H:%M:%S} is not within the granule {k1}")
    return k1, t1, d1[0], d1[1]


def _lat_rows(lat: NDArray[np.float32], bbox: tuple[float, float, float, float], margin: float) -> slice:
    _, bottom, _, top = bbox
    rows = np.flatnonzero(((lat >= bottom - margin) & (lat <= top + margin)).any(axis=1))
    if rows.size == 0:
        return slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1)


def _rows_near(lat: NDArray[np.float32], lon: NDArray[np.float32], bbox: tuple[float, float, float, float], margin: float) -> slice:
    left, bottom, right, top = bbox
    inside = (lat >= bottom - margin) & (lat <= top + margin) & (lon >= left - margin) & (lon <= right + margin)
    rows = np.flatnonzero(inside.any(axis=1))
    if rows.size == 0:
        return slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1)


def read_granule(
    l1b_path: str | Path,
    geo_path: str | Path,
    *,
    bbox: tuple[float, float, float, float] | None = None,
    margin_deg: float = 0.05,
    bands: tuple[str, ...] = L1B_BANDS,
) -> SwathGranule:
    """Read one L1B + geolocation pair; with ``bbox`` only the lines that come near it.

    Raises DataFormatError (naming the file) for corrupt, truncated or wrongly shaped files and
    GeolocationMismatchError when the two files are not the same granule.
    """
    l1b_p, geo_p = Path(l1b_path), Path(geo_path)
    l1b = _open(l1b_p)
    try:
        geo = _open(geo_p)
        try:
            key, start, n_lines, n_pixels = check_pair(l1b_p, geo_p, l1b, geo)
            try:
                lat_var = _variable(geo, geo_p, "geolocation_data", "latitude")
                lon_var = _variable(geo, geo_p, "geolocation_data", "longitude")
                lat = decode(lat_var[:], lat_var)
                lat[(lat < -90) | (lat > 90)] = np.nan
                if bbox is None:
                    rows = slice(0, n_lines)
                    lon = decode(lon_var[:], lon_var)
                else:
                    # latitude alone narrows the lines; longitude is then read for those lines only
                    lat_band = _lat_rows(lat, bbox, margin_deg)
                    lon_band = decode(lon_var[lat_band], lon_var) if lat_band.stop > lat_band.start else np.empty((0, n_pixels), np.float32)
                    inner = _rows_near(lat[lat_band], lon_band, bbox, margin_deg)
                    rows = slice(lat_band.start + inner.start, lat_band.start + inner.stop) if inner.stop > inner.start else slice(0, 0)
                    lon = lon_band[inner]
                    lat = lat[rows]
                lon[(lon < -180) | (lon > 180)] = np.nan
                out = SwathGranule(
                    key=key,
                    platform=platform_prefix(l1b_p.name),
                    start=start,
                    l1b_path=l1b_p,
                    geo_path=geo_p,
                    n_lines=n_lines,
                    n_pixels=n_pixels,
                    line_slice=rows,
                )
                out.geo["latitude"] = np.ascontiguousarray(lat)
                out.geo["longitude"] = np.ascontiguousarray(lon)
                for name in ("solar_zenith", "sensor_zenith"):
                    var = _variable(geo, geo_p, "geolocation_data", name)
                    out.geo[name] = decode(var[rows], var) if rows.stop > rows.start else np.empty((0, n_pixels), np.float32)
                for band in bands:
                    var = _variable(l1b, l1b_p, "observation_data", band)
                    out.bands[band] = decode(var[rows], var) if rows.stop > rows.start else np.empty((0, n_pixels), np.float32)
            except (RuntimeError, OSError, IndexError, ValueError) as exc:
                if isinstance(exc, DataFormatError):
                    raise
                raise DataFormatError(
                    f"{l1b_p.name} / {geo_p.name}: expected readable swath variables, found an error while decoding ({exc})",
                    hint="the file is corrupt or truncated; delete it so that it is downloaded again",
                ) from None
            for name, arr in (*out.geo.items(), *out.bands.items()):
                if arr.shape != (rows.stop - rows.start, n_pixels):
                    raise DataFormatError(f"{l1b_p.name}: expected {name} of {n_lines} x {n_pixels}, found {arr.shape}")
            return out
        finally:
            geo.close()
    finally:
        l1b.close()
