"""Writers of the real file formats: VIIRS L1B + geolocation NetCDF4, legacy NPP_VMAES_L1 HDF4, FIRMS CSV.

Every file is written to a temporary name and renamed into place (``.tmp`` files are ignored by
the mirror listing), so a crash never leaves a half-written file under its real name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from banet_ops.regions import Region
from banet_ops.util import atomic_path

# scale factors close to the real products'
REFLECTANCE_SCALE = 2.4417415261268616e-05
M12_SCALE = 6.732538167852908e-05
M15_SCALE = 0.00039008501335047185
M15_OFFSET = -0.019999999552965164
BAND_ENCODING: Mapping[str, tuple[float, float, str]] = {
    "M05": (REFLECTANCE_SCALE, 0.0, "reflectance"),
    "M07": (REFLECTANCE_SCALE, 0.0, "reflectance"),
    "M10": (REFLECTANCE_SCALE, 0.0, "reflectance"),
    "M12": (M12_SCALE, 0.0, "radiance"),
    "M15": (M15_SCALE, M15_OFFSET, "radiance"),
}
PLATFORM_NAMES = {"VNP": "Suomi-NPP", "VJ1": "JPSS-1", "VJ2": "JPSS-2"}
COLLECTION = {"VNP": "002", "VJ1": "021", "VJ2": "002"}
FLAG_VALUES = np.array([65532, 65533, 65534], dtype=np.uint16)
MISSING_EV = 65532
FILL_U16 = 65535
ANGLE_FILL = -999


def encode_counts(values: NDArray[np.floating], scale: float, offset: float) -> NDArray[np.uint16]:
    """Physical values → uint16 counts (NaN → fill, clipped to the valid range 0..65527)."""
    v = np.asarray(values, np.float64)
    counts = np.rint((v - offset) / scale)
    counts = np.clip(np.nan_to_num(counts, nan=FILL_U16), 0, 65527)
    counts[~np.isfinite(v)] = FILL_U16
    return counts.astype(np.uint16)


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y%j%H%M%S")


def l1b_names(platform: str, start: dt.datetime, production: dt.datetime) -> tuple[str, str]:
    """(L1B name, geolocation name) of a granule; production stamps differ as in the real archive."""
    key = start.strftime("A%Y%j.%H%M")
    coll = COLLECTION.get(platform, "002")
    return (
        f"{platform}02MOD.{key}.{coll}.{_stamp(production)}.nc",
        f"{platform}03MOD.{key}.{coll}.{_stamp(production + dt.timedelta(seconds=137))}.nc",
    )


@dataclass
class SwathData:
    """One (possibly partial) granule ready to write: geolocation floats/angles and band counts."""

    platform: str
    start: dt.datetime
    latitude: NDArray[np.float32]
    longitude: NDArray[np.float32]
    solar_zenith_raw: NDArray[np.int16]  # × 0.01 degrees
    sensor_zenith_raw: NDArray[np.int16]
    counts: dict[str, NDArray[np.uint16]]
    orbit: int


def _time_attr(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _swath_header(ds: Any, swath: SwathData, name: str, lines: int, pixels: int) -> None:
    """What an L1B file and its geolocation file share: raw access, the swath dimensions, global attributes."""
    ds.set_auto_maskandscale(False)
    ds.createDimension("number_of_scans", lines // 16)
    ds.createDimension("number_of_lines", lines)
    ds.createDimension("number_of_pixels", pixels)
    end = swath.start + dt.timedelta(seconds=360)
    attrs = {
        "platform": PLATFORM_NAMES.get(swath.platform, swath.platform),
        "instrument": "VIIRS",
        "product_name": name,
        "LocalGranuleID": name,
        "time_coverage_start": _time_attr(swath.start),
        "time_coverage_end": _time_attr(end),
        "DayNightFlag": "Day",
        "startDirection": "Ascending",
        "endDirection": "Ascending",
        "processing_version": "synthetic",
        "history": "written by banet_ops.synthetic (synthetic scenario, not real data)",
    }
    for k, v in attrs.items():
        ds.setncattr(k, v)


def write_l1b_pair(folder_l1b: Path, folder_geo: Path, swath: SwathData, production: dt.datetime, *, complevel: int = 1) -> tuple[Path, Path]:
    """Write the Vxx02MOD (observation_data) and Vxx03MOD (geolocation_data) NetCDF4 pair."""
    l1b_name, geo_name = l1b_names(swath.platform, swath.start, production)
    lines, pixels = swath.latitude.shape
    packed: dict[str, Any] = {"zlib": True, "complevel": complevel, "shuffle": True, "chunksizes": (min(lines, 256), pixels)}
    folder_l1b.mkdir(parents=True, exist_ok=True)
    folder_geo.mkdir(parents=True, exist_ok=True)
    l1b_path, geo_path = folder_l1b / l1b_name, folder_geo / geo_name
    _write_l1b(l1b_path, swath, packed)
    _write_geolocation(geo_path, swath, packed)
    return l1b_path, geo_path


def _write_l1b(l1b_path: Path, swath: SwathData, packed: dict[str, Any]) -> None:
    """The Vxx02MOD file: scaled M-band counts and scan start times (written to a temp name, then renamed)."""
    import netCDF4

    l1b_name = l1b_path.name
    lines, pixels = swath.latitude.shape
    ds: Any
    with atomic_path(l1b_path) as tmp, netCDF4.Dataset(str(tmp), "w", format="NETCDF4") as ds:
        _swath_header(ds, swath, l1b_name, lines, pixels)
        ds.setncattr("title", "VIIRS M-band Reflected Solar Band and Thermal Emissive Band Data")
        ds.setncattr("orbit_number", np.int32(swath.orbit))
        obs: Any = ds.createGroup("observation_data")
        for band, raw in swath.counts.items():
            scale, offset, kind = BAND_ENCODING[band]
            var = obs.createVariable(band, "u2", ("number_of_lines", "number_of_pixels"), **packed, fill_value=FILL_U16)
            var.set_auto_maskandscale(False)
            var.long_name = f"Earth view {kind} for band {band}"
            var.scale_factor = np.float32(scale)
            var.add_offset = np.float32(offset)
            var.valid_min = np.uint16(0)
            var.valid_max = np.uint16(65527)
            var.flag_values = FLAG_VALUES
            var.flag_meanings = "Missing_EV Bowtie_Deleted Cal_Fail"
            if kind == "radiance":
                var.units = "Watts/meter^2/steradian/micrometer"
            var[:] = raw
        sla = ds.createGroup("scan_line_attributes")
        sst = sla.createVariable("scan_start_time", "f8", ("number_of_scans",))
        epoch = dt.datetime(1993, 1, 1, tzinfo=dt.UTC)
        t0 = (swath.start - epoch).total_seconds()
        sst[:] = t0 + np.arange(lines // 16) * (360.0 / 202.0)
        sst.units = "seconds since 1993-01-01 00:00:00.000"



def _write_geolocation(geo_path: Path, swath: SwathData, packed: dict[str, Any]) -> None:
    """The Vxx03MOD file: latitude, longitude, solar and sensor zenith, land/water mask."""
    import netCDF4

    geo_name = geo_path.name
    lines, pixels = swath.latitude.shape
    ds: Any
    with atomic_path(geo_path) as tmp, netCDF4.Dataset(str(tmp), "w", format="NETCDF4") as ds:
        _swath_header(ds, swath, geo_name, lines, pixels)
        ds.setncattr("title", "VIIRS M-band Geolocation Data")
        ds.setncattr("OrbitNumber", np.int32(swath.orbit))
        geo: Any = ds.createGroup("geolocation_data")
        for name, data, lo, hi in (("latitude", swath.latitude, -90.0, 90.0), ("longitude", swath.longitude, -180.0, 180.0)):
            var = geo.createVariable(name, "f4", ("number_of_lines", "number_of_pixels"), **packed, fill_value=np.float32(-999.9))
            var.set_auto_maskandscale(False)
            var.long_name = f"{name.capitalize()}s of pixel locations"
            var.units = "degrees_north" if name == "latitude" else "degrees_east"
            var.valid_min = np.float32(lo)
            var.valid_max = np.float32(hi)
            var[:] = data
        angles: tuple[tuple[str, NDArray[np.int16], int, int], ...] = (
            ("solar_zenith", swath.solar_zenith_raw, 0, 18000),
            ("sensor_zenith", swath.sensor_zenith_raw, 0, 18000),
        )
        for name, raw_angle, lo, hi in angles:
            var = geo.createVariable(name, "i2", ("number_of_lines", "number_of_pixels"), **packed, fill_value=np.int16(ANGLE_FILL))
            var.set_auto_maskandscale(False)
            var.long_name = name.replace("_", " ").capitalize() + " angle at pixel locations"
            var.units = "degrees"
            var.scale_factor = np.float32(0.01)
            var.add_offset = np.float32(0.0)
            var.valid_min = np.int16(lo)
            var.valid_max = np.int16(hi)
            var[:] = raw_angle
        lwm = geo.createVariable("land_water_mask", "u1", ("number_of_lines", "number_of_pixels"), **packed)
        lwm[:] = 1


# --- legacy NPP_VMAES_L1 gridded HDF4 --------------------------------------------------------

LEGACY_ENCODING: Mapping[str, tuple[str, float, float]] = {
    "Reflectance_M5": ("M05", REFLECTANCE_SCALE, 0.0),
    "Reflectance_M7": ("M07", REFLECTANCE_SCALE, 0.0),
    "Reflectance_M10": ("M10", REFLECTANCE_SCALE, 0.0),
    "Radiance_M12": ("M12", M12_SCALE, 0.0),
    "Radiance_M15": ("M15", M15_SCALE, M15_OFFSET),
}
U16_FILLS = (
    "NA_UINT16_FILL = 65535, MISS_UINT16_FILL = 65534, ONBOARD_PT_UINT16_FILL = 65533, ONGROUND_PT_UINT16_FILL = 65532, "
    "ERR_UINT16_FILL = 65531, ELLIPSOID_UINT16_FILL = 65530, VDNE_UINT16_FILL = 65529, SOUB_UINT16_FILL = 65528"
)
F32_FILLS = (
    "NA_FLOAT32_FILL = -999.9, MISS_FLOAT32_FILL = -999.8, ONBOARD_PT_FLOAT32_FILL = -999.7, ONGROUND_PT_FLOAT32_FILL = -999.6, "
    "ERR_FLOAT32_FILL = -999.5, ELLIPSOID_FLOAT32_FILL = -999.4, VDNE_FLOAT32_FILL = -999.3, SOUB_FLOAT32_FILL = -999.2"
)


def degrees_to_packed_dms(value: float) -> float:
    """Decimal degrees → GCTP packed DMS (±DDDMMMSSS.SS)."""
    sign = -1.0 if value < 0 else 1.0
    v = abs(value)
    d = int(v)
    m = int((v - d) * 60)
    s = ((v - d) * 60 - m) * 60
    return sign * (d * 1_000_000 + m * 1000 + s)


def struct_metadata(region: Region, field: str, data_type: str) -> str:
    """An HDF-EOS2 StructMetadata.0 describing the region grid (as in the real files)."""
    rows, cols = region.shape
    ul = f"({degrees_to_packed_dms(region.left):.6f},{degrees_to_packed_dms(region.top):.6f})"
    lr = f"({degrees_to_packed_dms(region.right):.6f},{degrees_to_packed_dms(region.bottom):.6f})"
    return (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n\tGROUP=GRID_1\n"
        f'\t\tGridName="VIIRS_EV_750M_SDR"\n\t\tXDim={cols}\n\t\tYDim={rows}\n'
        f"\t\tUpperLeftPointMtrs={ul}\n\t\tLowerRightMtrs={lr}\n"
        "\t\tProjection=GCTP_GEO\n\t\tGridOrigin=HDFE_GD_UL\n\t\tPixelRegistration=HDFE_CORNER\n"
        "\t\tGROUP=Dimension\n"
        f'\t\t\tOBJECT=Dimension_1\n\t\t\t\tDimensionName="XDim"\n\t\t\t\tSize={cols}\n\t\t\tEND_OBJECT=Dimension_1\n'
        f'\t\t\tOBJECT=Dimension_2\n\t\t\t\tDimensionName="YDim"\n\t\t\t\tSize={rows}\n\t\t\tEND_OBJECT=Dimension_2\n'
        "\t\tEND_GROUP=Dimension\n\t\tGROUP=DataField\n"
        f'\t\t\tOBJECT=DataField_1\n\t\t\t\tDataFieldName="{field}"\n\t\t\t\tDataType={data_type}\n'
        '\t\t\t\tDimList=("YDim","XDim")\n\t\t\tEND_OBJECT=DataField_1\n'
        "\t\tEND_GROUP=DataField\n\t\tGROUP=MergedFields\n\t\tEND_GROUP=MergedFields\n\tEND_GROUP=GRID_1\n"
        "END_GROUP=GridStructure\nGROUP=PointStructure\nEND_GROUP=PointStructure\nEND\n"
    )


def legacy_name(start: dt.datetime, production: dt.datetime, layer: str) -> str:
    return f"NPP_VMAES_L1.{start:A%Y%j.%H%M}.001.{_stamp(production)}.psrpgscs_000501412525.{layer}.hdf"


def write_legacy_overpass(
    folder: Path, region: Region, start: dt.datetime, production: dt.datetime, values: Mapping[str, NDArray[np.floating]], orbit: int
) -> list[Path]:
    """Seven single-SDS HDF4 files (one per layer) on the region grid, attributes like the real files.

    ``values`` maps M05, M07, M10, M12, M15 (physical) and solar_zenith, sensor_zenith (degrees)
    to arrays of the region shape, NaN where the overpass did not see the cell.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    layers: list[tuple[str, str, float, float]] = [(layer, src, s, o) for layer, (src, s, o) in LEGACY_ENCODING.items()]
    layers += [("SolarZenithAngle", "solar_zenith", 1.0, 0.0), ("SatelliteZenithAngle", "sensor_zenith", 1.0, 0.0)]
    for layer, src, scale, offset in layers:
        path = folder / legacy_name(start, production, layer)
        attrs = _legacy_attrs(region, layer, src in ("solar_zenith", "sensor_zenith"), start, production, values, orbit)
        with atomic_path(path) as tmp:
            _write_legacy_layer(tmp, region, layer, src in ("solar_zenith", "sensor_zenith"), np.asarray(values[src], np.float64), scale, offset, attrs)
        written.append(path)
    return written


def _legacy_attrs(
    region: Region, layer: str, is_angle: bool, start: dt.datetime, production: dt.datetime, values: Mapping[str, NDArray[np.floating]], orbit: int
) -> dict[str, str | int | float]:
    """The global attributes of one legacy layer file, as the real files carry them."""
    sz = np.asarray(values["sensor_zenith"], np.float64)
    sza = np.asarray(values["solar_zenith"], np.float64)
    return {
        "HDFEOSVersion": "HDFEOS_V2.19",
        "StructMetadata.0": struct_metadata(region, layer, "DFNT_FLOAT32" if is_angle else "DFNT_UINT16"),
        "ShortName": "NPP_VMAES_L1",
        "LongName": "VIIRS/NPP Moderate Resolution 6-Min L1 Swath SDR and GEO 750m",
        "DayNightFlag": "D",
        "StartTime": f"{start:%Y-%m-%d}",
        "BeginningDate": f"{start:%Y%m%d}",
        "EndingDate": f"{start:%Y%m%d}",
        "NumberOfScans": 203,
        "OrbitNumber": float(orbit),
        "Proj4String": " +a=6378137.0 +b=6356752.3142451793 +no_defs +proj=latlong",
        "NorthBoundingCoord": f"{region.top:.6f}",
        "SouthBoundingCoord": f"{region.bottom:.6f}",
        "EastBoundingCoord": f"{region.right:.6f}",
        "WestBoundingCoord": f"{region.left:.6f}",
        "LocalGranuleID": legacy_name(start, production, "Radiance_M15"),
        "ProductionTime": f"{production:%Y-%m-%dT%H:%M:%S}",
        "Solar_Zenith_Angle_Min": float(np.nanmin(sza)) if np.isfinite(sza).any() else -999.9,
        "Solar_Zenith_Angle_Max": float(np.nanmax(sza)) if np.isfinite(sza).any() else -999.9,
        "Satellite_Zenith_Angle_Min": float(np.nanmin(sz)) if np.isfinite(sz).any() else -999.9,
        "Satellite_Zenith_Angle_Max": float(np.nanmax(sz)) if np.isfinite(sz).any() else -999.9,
    }


def _write_legacy_layer(
    tmp: Path, region: Region, layer: str, is_angle: bool, data: NDArray[np.float64], scale: float, offset: float, attrs: Mapping[str, str | int | float]
) -> None:
    """One single-SDS HDF4 file: angles as float32, radiances/reflectances as scaled uint16 counts."""
    from pyhdf.SD import SD, SDC

    rows, cols = region.shape
    sd = SD(str(tmp), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
    try:
        for k, v in attrs.items():
            attr = sd.attr(k)
            if isinstance(v, str):
                attr.set(SDC.CHAR8, v)
            elif isinstance(v, int):
                attr.set(SDC.INT32, v)
            else:
                attr.set(SDC.FLOAT64, v)
        if is_angle:
            sds = sd.create(layer, SDC.FLOAT32, (rows, cols))
            sds.setfillvalue(float(np.float32(-999.9)))
            arr: NDArray[Any] = np.where(np.isfinite(data), data, -999.9).astype(np.float32)
            sds.attr("FILL_VALUES").set(SDC.CHAR8, F32_FILLS)
            sds.attr("FILL_TEST_VALUE").set(SDC.CHAR8, "FLOAT32_FILL_TEST = -999")
        else:
            sds = sd.create(layer, SDC.UINT16, (rows, cols))
            sds.setfillvalue(FILL_U16)
            arr = encode_counts(data, scale, offset)
            sds.attr("FILL_VALUES").set(SDC.CHAR8, U16_FILLS)
            sds.attr("FILL_TEST_VALUE").set(SDC.CHAR8, "UINT16_FILL_TEST = 65527")
            sds.attr("Scale").set(SDC.FLOAT64, scale)
            sds.attr("Offset").set(SDC.FLOAT64, offset)
        sds.dim(0).setname("YDim:VIIRS_EV_750M_SDR")
        sds.dim(1).setname("XDim:VIIRS_EV_750M_SDR")
        sds[:] = arr
        sds.endaccess()
    finally:
        sd.end()


# --- FIRMS -----------------------------------------------------------------------------------

LANCE_COLUMNS = [
    *("latitude", "longitude", "bright_ti4", "scan", "track", "acq_date", "acq_time"),
    *("satellite", "confidence", "version", "bright_ti5", "frp", "daynight"),
]
AREA_COLUMNS = [*LANCE_COLUMNS[:8], "instrument", *LANCE_COLUMNS[8:]]


def write_firms_lance(path: Path, detections: pd.DataFrame) -> Path:
    """LANCE daily text: 13 columns, ``acq_time`` as ``HH:MM``, NOAA-20 satellite coded ``1``."""
    df = detections.copy()
    df["acq_date"] = pd.to_datetime(df["acq_date"]).dt.strftime("%Y-%m-%d")
    df["acq_time"] = [f"{m // 60:02d}:{m % 60:02d}" for m in df["acq_time"]]
    df["satellite"] = df["satellite"].replace({"N20": "1", "N21": "2"})
    df["version"] = "2.0NRT"
    return _write_csv(path, df[LANCE_COLUMNS])


def write_firms_area(path: Path, detections: pd.DataFrame) -> Path:
    """Area-API CSV: 14 columns with ``instrument``; ``acq_time`` HHMM without leading zeros; confidence l/n/h."""
    df = detections.copy()
    df["acq_date"] = pd.to_datetime(df["acq_date"]).dt.strftime("%Y-%m-%d")
    df["acq_time"] = [str((m // 60) * 100 + m % 60) for m in df["acq_time"]]
    df["instrument"] = "VIIRS"
    df["confidence"] = df["confidence"].str[:1]
    df["version"] = "2.0NRT"
    return _write_csv(path, df[AREA_COLUMNS])


def _write_csv(path: Path, df: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.5f")
    return path
