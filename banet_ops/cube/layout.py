"""The on-disk layout of a region cube: dims, dtypes, encodings, chunks and CF attributes.

Every choice here is measured in ``benchmarks/cube.py`` and explained in ``docs/cube.md``:

* **Time axis.** A fixed origin (:data:`TIME_ORIGIN`); index ``i`` is day ``origin + i``.  The axis
  is preallocated to the end of the calendar year of the latest day written, so the only writes
  that touch array metadata are the first write into a new year (a rare, retried conflict).
* **Chunks.** ``(1, 400, 500)``: one day per chunk, so concurrent writers of different days never
  touch the same chunk, and a day rewrite replaces exactly that day's objects.
* **Encoding.** Reflectances and sensor zenith as CF-scaled ``int16`` (lossy to half a unit of
  the scale), ``n_obs`` as ``uint8``, FRP as ``float32`` (a sum in MW with a wide range); all
  with Blosc/LZ4HC and byte shuffle (decompresses 2.5x faster than Zstd, 7 % larger).
  ``xarray`` decodes them back to floats with NaN; ``read_window`` decodes chunks itself.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from banet_ops.bands import CF_ATTRS, CUBE_VARIABLES
from banet_ops.errors import ValidationError
from banet_ops.regions import Region

if TYPE_CHECKING:
    from banet_ops.daily_image import DailyImage

# 2: Blosc LZ4HC level 2 (was Zstd level 1); read_window decodes both.
LAYOUT_VERSION: Final = 2
TIME_ORIGIN: Final = dt.date(2012, 1, 1)
TIME_UNITS: Final = f"days since {TIME_ORIGIN.isoformat()}"
# Last day the time axis may reach (keeps an accidental year 9999 from allocating a huge axis).
TIME_LIMIT: Final = dt.date(2100, 12, 31)
SPATIAL_CHUNKS: Final = (400, 500)
TIME_COORD_CHUNK: Final = 4096
VALID_VARIABLE: Final = "valid_fraction"
# A day is "complete" when at least this fraction of the region has a finite Red reflectance.
COMPLETE_FRACTION: Final = 0.95
# LZ4HC level 2: 2.5x faster to decompress than Zstd level 1, as fast to compress, 7 % larger (docs/cube.md)
BLOSC_CODEC: Final = "lz4hc"
BLOSC_LEVEL: Final = 2


@dataclass(frozen=True)
class Encoding:
    """How one variable is stored: ``stored = round(value / scale)``, ``fill`` where missing."""

    dtype: str
    scale: float | None
    fill: int | float

    @property
    def is_scaled(self) -> bool:
        return self.scale is not None

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize


_REFLECTANCE = Encoding("int16", 1e-4, -32768)
ENCODINGS: Final[dict[str, Encoding]] = {
    "Red": _REFLECTANCE,
    "NIR": _REFLECTANCE,
    "MIR": _REFLECTANCE,
    "M10": _REFLECTANCE,
    "FRP": Encoding("float32", None, float("nan")),
    "n_obs": Encoding("uint8", 1.0, 255),
    "sensor_zenith": Encoding("int16", 0.01, -32768),
}


def day_index(day: dt.date) -> int:
    """Position of ``day`` on the time axis."""
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise ValidationError(f"expected a datetime.date, found {type(day).__name__} {day!r}")
    if day < TIME_ORIGIN or day > TIME_LIMIT:
        raise ValidationError(
            f"expected a day between {TIME_ORIGIN} and {TIME_LIMIT}, found {day}",
            hint="the cube's time axis starts with VIIRS on Suomi-NPP",
        )
    return (day - TIME_ORIGIN).days


def index_day(index: int) -> dt.date:
    """Day at position ``index`` of the time axis."""
    return TIME_ORIGIN + dt.timedelta(days=int(index))


def time_length_for(day: dt.date) -> int:
    """Time-axis length that covers ``day``: up to the end of its calendar year."""
    return (dt.date(day.year + 1, 1, 1) - TIME_ORIGIN).days


def encode(name: str, values: NDArray[np.float32]) -> NDArray[Any]:
    """Float values (NaN = missing) to the stored dtype of variable ``name``."""
    enc = ENCODINGS[name]
    if not enc.is_scaled:
        return np.ascontiguousarray(values, dtype=enc.dtype)
    info = np.iinfo(enc.dtype)
    # The fill value is reserved: clip valid values into the remaining range.
    lo, hi = (info.min + 1, info.max) if enc.fill == info.min else (info.min, info.max - 1)
    finite = np.isfinite(values)
    q = np.rint(np.where(finite, values, 0).astype(np.float64) / enc.scale)  # type: ignore[operator]
    np.clip(q, lo, hi, out=q)
    out = q.astype(enc.dtype)
    out[~finite] = enc.fill
    return out


def decode_into(name: str, stored: NDArray[Any], out: NDArray[np.float32]) -> None:
    """Stored values of ``name`` to float32 in ``out`` (same shape), NaN where fill."""
    enc = ENCODINGS[name]
    if not enc.is_scaled:
        np.copyto(out, stored, casting="unsafe")
        return
    np.multiply(stored, np.float32(enc.scale), out=out, casting="unsafe")
    missing = stored == enc.fill
    if missing.any():
        np.copyto(out, np.float32(np.nan), where=missing)


def fill_decoded(name: str, out: NDArray[np.float32]) -> None:
    """``out`` as decoded from a chunk never written (the fill value): NaN for every variable."""
    enc = ENCODINGS[name]
    out[...] = np.float32(np.nan) if enc.is_scaled else np.float32(enc.fill)


def variable_attrs(name: str) -> dict[str, Any]:
    """CF attributes of a data variable (``scale_factor``/``_FillValue`` for scaled integers)."""
    attrs: dict[str, Any] = dict(CF_ATTRS[name])
    enc = ENCODINGS[name]
    attrs["grid_mapping"] = "crs"
    if enc.is_scaled:
        if enc.scale != 1.0:
            attrs["scale_factor"] = enc.scale
        attrs["_FillValue"] = int(enc.fill)
    if name == "sensor_zenith":
        attrs["standard_name"] = "sensor_zenith_angle"
    if name == "n_obs":
        attrs["long_name"] = str(attrs["long_name"]) + " (missing where the day was never written)"
    return attrs


def region_attrs(region: Region) -> dict[str, Any]:
    """Global (group) attributes: CF conventions and the region definition."""
    rows, cols = region.shape
    return {
        "Conventions": "CF-1.10",
        "title": f"BA-Net daily VIIRS cube, region {region.name}",
        "source": "VIIRS 750 m (M5, M7, M10, M12, M15) gridded daily; VIIRS active fires (FRP)",
        "institution": "banet-ops",
        "references": "Pinto et al. 2020, doi:10.1016/j.isprsjprs.2019.12.014",
        "region": json.dumps(region.to_file_dict(), sort_keys=True),
        "region_name": region.name,
        "region_bbox": list(region.bbox),
        "region_pixel_size": region.pixel_size,
        "region_shape": [rows, cols],
        "geospatial_lat_min": region.bottom,
        "geospatial_lat_max": region.top,
        "geospatial_lon_min": region.left,
        "geospatial_lon_max": region.right,
        "geospatial_lat_resolution": region.pixel_size,
        "geospatial_lon_resolution": region.pixel_size,
        "time_origin": TIME_ORIGIN.isoformat(),
        "banet_cube_layout": LAYOUT_VERSION,
        "banet_cube_variables": list(CUBE_VARIABLES),
        "comment": (
            "The time axis is preallocated to the end of the latest year written; days never written are "
            f"missing everywhere and have {VALID_VARIABLE} = NaN."
        ),
    }


def region_from_attrs(attrs: dict[str, Any]) -> Region:
    """The region a cube was created for, from its group attributes."""
    try:
        return Region.model_validate(json.loads(str(attrs["region"])))
    except (KeyError, ValueError) as exc:
        raise ValidationError(f"expected a cube with a 'region' attribute, found {sorted(attrs)} ({exc})") from None


COORD_ATTRS: Final[dict[str, dict[str, Any]]] = {
    "time": {
        "standard_name": "time",
        "long_name": "UTC day of the observations",
        "units": TIME_UNITS,
        "calendar": "proleptic_gregorian",
        "axis": "T",
    },
    "lat": {"standard_name": "latitude", "long_name": "latitude of the cell centre", "units": "degrees_north", "axis": "Y"},
    "lon": {"standard_name": "longitude", "long_name": "longitude of the cell centre", "units": "degrees_east", "axis": "X"},
    "crs": {
        "grid_mapping_name": "latitude_longitude",
        "longitude_of_prime_meridian": 0.0,
        "semi_major_axis": 6378137.0,
        "inverse_flattening": 298.257223563,
        "crs_wkt": (
            'GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,298.257223563]],'
            'CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north],AXIS["geodetic longitude (Lon)",east],'
            'UNIT["degree",0.0174532925199433],ID["EPSG",4326]]'
        ),
        "spatial_ref": "EPSG:4326",
    },
    VALID_VARIABLE: {
        "long_name": "fraction of the region's cells with a finite Red reflectance that day",
        "units": "1",
        "comment": f"NaN where the day was never written; the day is 'complete' at >= {COMPLETE_FRACTION}",
    },
}


def valid_fraction(image: DailyImage) -> float:
    """Fraction of the region's cells with a finite Red reflectance (the cube's ``valid_fraction``)."""
    red = image.variables["Red"]
    return float(np.count_nonzero(np.isfinite(red))) / red.size


def day_status(valid_fraction: float, n_rejected: int = 0) -> str:
    """The one definition of a day's status: ``empty`` (nothing observed), ``partial``, ``complete``.

    ``complete``: at least :data:`COMPLETE_FRACTION` of the region observed and no input file of
    the day rejected (``n_rejected``: files that were fetched and could not be read, wholly or in
    part, such as a FIRMS file with malformed rows; listing entries refused before any download do
    not count).
    """
    if valid_fraction <= 0:
        return "empty"
    return "complete" if valid_fraction >= COMPLETE_FRACTION and n_rejected == 0 else "partial"


STATUS_RANK: Final = {"empty": 0, "partial": 1, "complete": 2}


def at_least_as_complete(new: tuple[str, float], old: tuple[str, float]) -> bool:
    """Whether a version (status, valid fraction) of a day may replace the stored one without force.

    A higher status always may; a lower never; a partial day only by one observing at least as
    many cells; a complete or empty day by another of the same status.
    """
    (new_status, new_vf), (old_status, old_vf) = new, old
    if STATUS_RANK[new_status] != STATUS_RANK[old_status]:
        return STATUS_RANK[new_status] > STATUS_RANK[old_status]
    return new_status != "partial" or float(np.float32(new_vf)) >= float(np.float32(old_vf))
