"""Reader of the legacy gridded ``NPP_VMAES_L1`` HDF4 files that BA-Net was trained on.

One file per layer (``Reflectance_M5``, ``Reflectance_M7``, ``Reflectance_M10``, ``Radiance_M12``,
``Radiance_M15``, ``SolarZenithAngle``, ``SatelliteZenithAngle``), one SDS per file named like the
layer, already on a 0.01° lat/lon grid (HDF-EOS2 grid ``VIIRS_EV_750M_SDR``).  Reading rule (the
same as BA-Net's): values ``>= 65527`` (uint16 fills) and ``<= -999`` (float fills) are missing,
then ``value * Scale + Offset`` (capitalised attributes, default 1 and 0).  The grid corners come
from ``StructMetadata.0`` (``UpperLeftPointMtrs`` / ``LowerRightMtrs`` in GCTP packed DMS) and must
match the region grid.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import DataFormatError
from banet_ops.ingest.readers.viirs_l1b import granule_key, key_time
from banet_ops.regions import Region

#: legacy layer name → the swath variable name used everywhere else in ingestion
LEGACY_LAYERS: Mapping[str, str] = {
    "Reflectance_M5": "M05",
    "Reflectance_M7": "M07",
    "Reflectance_M10": "M10",
    "Radiance_M12": "M12",
    "Radiance_M15": "M15",
    "SolarZenithAngle": "solar_zenith",
    "SatelliteZenithAngle": "sensor_zenith",
}
LEGACY_PRODUCT = "NPP_VMAES_L1"
_LAYER_RE = re.compile(r"\.([A-Za-z]+(?:_M\d+)?)\.hdf$")
_PAIR_RE = r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)"


def packed_dms_to_degrees(value: float) -> float:
    """GCTP packed DMS (±DDDMMMSSS.SS) → decimal degrees."""
    sign = -1.0 if value < 0 else 1.0
    v = abs(value)
    degrees = int(v // 1_000_000)
    minutes = int((v - degrees * 1_000_000) // 1000)
    seconds = v - degrees * 1_000_000 - minutes * 1000
    return sign * (degrees + minutes / 60.0 + seconds / 3600.0)


@dataclass(frozen=True)
class LegacyGrid:
    """Georeferencing of a legacy file: corner coordinates (degrees) and size."""

    left: float
    top: float
    right: float
    bottom: float
    n_cols: int
    n_rows: int

    def matches(self, region: Region, tol: float = 1e-6) -> bool:
        return (
            (self.n_rows, self.n_cols) == region.shape
            and abs(self.left - region.left) < tol
            and abs(self.right - region.right) < tol
            and abs(self.top - region.top) < tol
            and abs(self.bottom - region.bottom) < tol
        )

    def describe(self) -> str:
        return f"bbox [{self.left:g}, {self.bottom:g}, {self.right:g}, {self.top:g}] with {self.n_rows} x {self.n_cols} cells"


def parse_struct_metadata(text: str, path: Path) -> LegacyGrid:
    """The grid corners and size from an HDF-EOS2 ``StructMetadata.0`` text."""
    text = text.rstrip("\x00 ")
    ul = re.search(r"UpperLeftPointMtrs\s*=\s*" + _PAIR_RE, text)
    lr = re.search(r"LowerRightMtrs\s*=\s*" + _PAIR_RE, text)
    xdim = re.search(r"\bXDim\s*=\s*(\d+)", text)
    ydim = re.search(r"\bYDim\s*=\s*(\d+)", text)
    proj = re.search(r"Projection\s*=\s*(\w+)", text)
    if not (ul and lr and xdim and ydim):
        raise DataFormatError(f"{path}: expected an HDF-EOS2 grid (UpperLeftPointMtrs, LowerRightMtrs, XDim, YDim) in StructMetadata.0, found none")
    if proj and proj.group(1) != "GCTP_GEO":
        raise DataFormatError(f"{path}: expected Projection=GCTP_GEO (0.01° lat/lon grid), found {proj.group(1)}")
    return LegacyGrid(
        left=packed_dms_to_degrees(float(ul.group(1))),
        top=packed_dms_to_degrees(float(ul.group(2))),
        right=packed_dms_to_degrees(float(lr.group(1))),
        bottom=packed_dms_to_degrees(float(lr.group(2))),
        n_cols=int(xdim.group(1)),
        n_rows=int(ydim.group(1)),
    )


def layer_of(path: str | Path) -> str | None:
    """The layer name (``Reflectance_M5`` …) at the end of a legacy file name, if it is one we read."""
    m = _LAYER_RE.search(Path(path).name)
    return m.group(1) if m and m.group(1) in LEGACY_LAYERS else None


@dataclass
class LegacyLayer:
    """One decoded legacy layer: float32 physical values (NaN missing) and its grid."""

    path: Path
    layer: str
    data: NDArray[np.float32]
    grid: LegacyGrid


def read_legacy_layer(path: str | Path) -> LegacyLayer:
    """Read and decode the single SDS of one legacy file."""
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: expected a legacy HDF4 file, found nothing at that path")
    layer = layer_of(p)
    try:
        sd = SD(str(p), SDC.READ)
    except HDF4Error as exc:
        raise DataFormatError(
            f"{p}: expected an HDF4 file, found unreadable content ({exc})",
            hint="the file is corrupt or truncated; delete it so that it is downloaded again",
        ) from None
    try:
        names = list(sd.datasets())
        if layer is None:
            layer = next((n for n in names if n in LEGACY_LAYERS), None)
        if layer is None or layer not in names:
            raise DataFormatError(f"{p}: expected one SDS among {sorted(LEGACY_LAYERS)}, found {names}")
        attrs = sd.attributes()
        meta = attrs.get("StructMetadata.0")
        if not isinstance(meta, str):
            raise DataFormatError(f"{p}: expected the HDF-EOS2 attribute StructMetadata.0, found none")
        grid = parse_struct_metadata(meta, p)
        sds = sd.select(layer)
        try:
            sattrs = sds.attributes()
            raw = np.asarray(sds.get())
        finally:
            sds.endaccess()
    except HDF4Error as exc:
        raise DataFormatError(
            f"{p}: expected a readable SDS {layer}, found an HDF4 error ({exc})",
            hint="the file is corrupt or truncated; delete it so that it is downloaded again",
        ) from None
    finally:
        sd.end()
    if raw.shape != (grid.n_rows, grid.n_cols):
        raise DataFormatError(f"{p}: expected {layer} of {grid.n_rows} x {grid.n_cols} (StructMetadata.0), found {raw.shape}")
    data = raw.astype(np.float32)
    missing = (raw >= 65527) | (raw <= -999) | ~np.isfinite(data)
    scale = float(sattrs.get("Scale", 1.0))
    offset = float(sattrs.get("Offset", 0.0))
    if scale != 1.0 or offset != 0.0:
        data = (raw.astype(np.float64) * scale + offset).astype(np.float32)
    data[missing] = np.nan
    return LegacyLayer(path=p, layer=layer, data=data, grid=grid)


@dataclass
class LegacyOverpass:
    """All layers of one legacy overpass, already on the region grid (variables named like swaths)."""

    key: str
    start: dt.datetime
    files: list[Path]
    variables: dict[str, NDArray[np.float32]]


def group_legacy_files(paths: Iterable[str | Path]) -> dict[str, dict[str, Path]]:
    """Legacy files grouped by ``A{YYYYDDD}.{HHMM}`` key, then by layer; other files are ignored."""
    groups: dict[str, dict[str, Path]] = {}
    for path in paths:
        p = Path(path)
        key, layer = granule_key(p.name), layer_of(p)
        if key is not None and layer is not None and p.name.startswith(LEGACY_PRODUCT):
            groups.setdefault(key, {})[layer] = p
    return groups


def read_legacy_overpass(files: Mapping[str, Path], region: Region) -> LegacyOverpass:
    """Read the seven layers of one overpass and check that their grid is the region's grid."""
    missing = sorted(set(LEGACY_LAYERS) - set(files))
    any_file = next(iter(files.values()))
    if missing:
        raise DataFormatError(f"{any_file.name}: expected all legacy layers of the overpass, missing {missing}")
    key = granule_key(any_file.name) or ""
    variables: dict[str, NDArray[np.float32]] = {}
    for layer, path in files.items():
        if layer not in LEGACY_LAYERS:
            continue
        decoded = read_legacy_layer(path)
        if not decoded.grid.matches(region):
            rb = region.bbox
            raise DataFormatError(
                f"{path}: expected the grid of region {region.name} (bbox [{rb[0]:g}, {rb[1]:g}, {rb[2]:g}, {rb[3]:g}] with "
                f"{region.shape[0]} x {region.shape[1]} cells), found {decoded.grid.describe()}",
                hint="legacy files must be ordered for exactly the region's bbox at 0.01°",
            )
        variables[LEGACY_LAYERS[layer]] = decoded.data
    return LegacyOverpass(key=key, start=key_time(key), files=sorted(files.values()), variables=variables)
