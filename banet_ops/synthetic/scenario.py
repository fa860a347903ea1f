"""Synthetic scenarios: a local mirror in the real formats plus the truth that the files encode."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from banet_ops.bands import M15_WAVELENGTH_UM
from banet_ops.daily_image import DailyImage
from banet_ops.ingest.composite import m12_for_mir, planck_radiance
from banet_ops.regions import Region
from banet_ops.synthetic.geometry import (
    GRANULE_SECONDS,
    LINE_SPACING_KM,
    LINES_PER_GRANULE,
    LINES_PER_SCAN,
    SAMPLE_CROSS_KM,
    solar_zenith,
    zenith_from_cross_track,
)
from banet_ops.synthetic.scene import PLATFORMS, Overpass, Scene, view_factor
from banet_ops.synthetic.writers import (
    BAND_ENCODING,
    MISSING_EV,
    SwathData,
    encode_counts,
    write_firms_area,
    write_firms_lance,
    write_l1b_pair,
    write_legacy_overpass,
)

FORMATS = ("l1b", "legacy", "firms")
SWATH_MARGIN_KM = 8.0
ARCHIVE_SETS = {"VNP": "5200", "VJ1": "5201", "VJ2": "5200", "NPP_VMAES_L1": "5000"}


@dataclass
class Scenario:
    """A written scenario: where its mirror is, what it holds and the truth it encodes."""

    root: Path
    region: Region
    start: dt.date
    days: int
    seed: int
    archive_url: str
    firms_url: str
    regions_dir: Path
    burn_dates: NDArray[np.datetime64] = field(repr=False)
    reburn: bool = False
    granules: dict[dt.date, list[str]] = field(default_factory=dict, repr=False)
    files: list[Path] = field(default_factory=list, repr=False)
    scene: Scene | None = field(default=None, repr=False)

    @property
    def day_list(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    def truth_image(self, day: dt.date, platforms: Sequence[str] | None = None) -> DailyImage:
        """The per-day physical values that the files encode (what ingestion should recover)."""
        scene = self.scene or Scene(self.region, self.start, self.days, self.seed, reburn=self.reburn)
        return truth_image(scene, (day - self.start).days, platforms)

    def env(self) -> dict[str, str]:
        """``BANET_*`` variables that point the pipeline at this scenario's mirror."""
        return {"BANET_ARCHIVE_URL": self.archive_url, "BANET_FIRMS_URL": self.firms_url, "BANET_REGIONS_DIR": str(self.regions_dir)}

    def pipeline_env(self, root: Path, database_url: str) -> dict[str, str]:
        """:meth:`env` plus a home, cube and products folder under ``root`` and the database: a whole pipeline's settings."""
        return {
            **self.env(),
            "BANET_HOME": str(root / "home"),
            "BANET_CUBE_ROOT": str(root / "cube"),
            "BANET_PRODUCTS_ROOT": str(root / "products"),
            "BANET_DATABASE_URL": database_url,
        }


# --- truth -----------------------------------------------------------------------------------


def truth_image(scene: Scene, d: int, platforms: Sequence[str] | None = None) -> DailyImage:
    """Daily image of day index ``d`` as the generator defines it (composite by smallest sensor zenith)."""
    shape = scene.shape
    day = scene.start + dt.timedelta(days=d)
    surf = scene.surface(d)
    best_sz = np.full(shape, np.inf)
    best_sza = np.full(shape, np.nan)
    n_obs = np.zeros(shape, np.float32)
    for op in scene.overpasses(d):
        if platforms is not None and op.platform not in platforms:
            continue
        view = scene.view(op)
        n_obs += view.covered
        wins = view.covered & (view.sensor_zenith < best_sz)
        best_sz[wins] = view.sensor_zenith[wins]
        best_sza[wins] = view.solar_zenith[wins]
    seen = np.isfinite(best_sz)
    vf = view_factor(np.where(seen, best_sz, 0.0))
    variables: dict[str, NDArray[np.float32]] = {}
    for name in ("Red", "NIR", "M10"):
        variables[name] = np.where(seen, surf[name] * vf, np.nan).astype(np.float32)
    variables["MIR"] = np.where(seen, surf["MIR"], np.nan).astype(np.float32)
    variables["FRP"] = scene.frp(d)
    variables["n_obs"] = n_obs
    variables["sensor_zenith"] = np.where(seen, best_sz, np.nan).astype(np.float32)
    return DailyImage(region=scene.region, day=day, variables=variables, sources={"synthetic": f"seed={scene.seed}"})


def synthetic_daily_images(region: Region, start: dt.date, days: int, seed: int = 0, *, reburn: bool = False) -> Iterator[DailyImage]:
    """The daily images a scenario encodes, without writing files (fast; for cube/inference/training tests)."""
    scene = Scene(region, start, days, seed, reburn=reburn)
    for d in range(days):
        yield truth_image(scene, d)


def true_burn_dates(region: Region, start: dt.date, days: int, seed: int = 0, *, reburn: bool = False) -> NDArray[np.datetime64]:
    """Latest burn date per cell (``datetime64[D]``, NaT = unburned) of the scenario with these parameters."""
    return Scene(region, start, days, seed, reburn=reburn).burn_dates()


# --- swaths ----------------------------------------------------------------------------------


def _region_extent(scene: Scene, op: Overpass) -> tuple[float, float, float, float]:
    """(along min, along max, cross min, cross max) km of the region boundary relative to the track."""
    left, bottom, right, top = scene.region.bbox
    t = np.linspace(0, 1, 25)
    lats = np.concatenate([np.full_like(t, top), np.full_like(t, bottom), bottom + t * (top - bottom), bottom + t * (top - bottom)])
    lons = np.concatenate([left + t * (right - left), left + t * (right - left), np.full_like(t, left), np.full_like(t, right)])
    along, cross = op.track.coordinates(lats, lons)
    return float(along.min()), float(along.max()), float(cross.min()), float(cross.max())


def granule_starts(scene: Scene, op: Overpass) -> list[dt.datetime]:
    """Start times of the 6-minute granules of an overpass that see the region (plus margin)."""
    a_min, a_max, _, _ = _region_extent(scene, op)
    midnight = dt.datetime.combine(op.time.date(), dt.time(), tzinfo=dt.UTC)
    speed = LINE_SPACING_KM * LINES_PER_GRANULE / GRANULE_SECONDS

    def granule(a: float) -> int:
        return math.floor(((op.time - midnight).total_seconds() + a / speed) / GRANULE_SECONDS)

    first, last = granule(a_min - SWATH_MARGIN_KM), granule(a_max + SWATH_MARGIN_KM)
    return [midnight + dt.timedelta(seconds=g * GRANULE_SECONDS) for g in range(first, last + 1)]


def overpass_swaths(scene: Scene, op: Overpass, *, full_granules: bool = False, block_lines: int = 512) -> list[SwathData]:
    """The granules (cut to the region unless ``full_granules``) that one overpass writes."""
    a_min, a_max, c_min, c_max = _region_extent(scene, op)
    a_min, a_max = a_min - SWATH_MARGIN_KM, a_max + SWATH_MARGIN_KM
    if full_granules:
        samples = np.arange(SAMPLE_CROSS_KM.size)
    else:
        samples = np.flatnonzero((c_min - SWATH_MARGIN_KM <= SAMPLE_CROSS_KM) & (c_max + SWATH_MARGIN_KM >= SAMPLE_CROSS_KM))
    if samples.size == 0:
        return []
    samples = np.arange(samples[0], samples[-1] + 1)
    t0 = op.time
    out = []
    rng = np.random.default_rng([scene.seed, 6, op.day_index, PLATFORMS.index(next(p for p in PLATFORMS if p[0] == op.platform))])
    surf = scene.surface(op.day_index)
    for g_start in granule_starts(scene, op):
        a_start = (g_start - t0).total_seconds() * LINE_SPACING_KM * LINES_PER_GRANULE / GRANULE_SECONDS
        line_a = a_start + (np.arange(LINES_PER_GRANULE) + 0.5) * LINE_SPACING_KM
        if full_granules:
            lines = np.arange(LINES_PER_GRANULE)
        else:
            lines = np.flatnonzero((line_a >= a_min) & (line_a <= a_max))
            if lines.size == 0:
                continue
            first = (lines[0] // LINES_PER_SCAN) * LINES_PER_SCAN
            last = min(LINES_PER_GRANULE, (lines[-1] // LINES_PER_SCAN + 1) * LINES_PER_SCAN)
            lines = np.arange(first, last)
        out.append(_encode_swath(scene, op, surf, g_start, line_a[lines], samples, rng, block_lines))
    return out


def _encode_swath(
    scene: Scene,
    op: Overpass,
    surf: Mapping[str, NDArray[np.floating]],
    g_start: dt.datetime,
    along: NDArray[np.floating],
    samples: NDArray[np.int64],
    rng: np.random.Generator,
    block_lines: int,
) -> SwathData:
    n_lines, n_pix = along.size, samples.size
    cross = SAMPLE_CROSS_KM[samples]
    sz_line = zenith_from_cross_track(cross)
    lat_out = np.empty((n_lines, n_pix), np.float32)
    lon_out = np.empty((n_lines, n_pix), np.float32)
    sza_raw = np.empty((n_lines, n_pix), np.int16)
    sz_raw = np.broadcast_to(np.rint(sz_line * 100).astype(np.int16), (n_lines, n_pix)).copy()
    counts = {band: np.empty((n_lines, n_pix), np.uint16) for band in BAND_ENCODING}
    region = scene.region
    rows_n, cols_n = region.shape
    vf = view_factor(sz_raw[0] * 0.01)[None, :]
    for b0 in range(0, n_lines, block_lines):
        sl = slice(b0, min(n_lines, b0 + block_lines))
        lat, lon = op.track.ground_points(along[sl], cross)
        lat_out[sl], lon_out[sl] = lat, lon
        sza = solar_zenith(lat, lon, op.time, op.track.time_at(along[sl])[:, None])
        sza_q = np.rint(sza * 100)
        sza_raw[sl] = sza_q.astype(np.int16)
        # each pixel shows the surface of the cell its centre falls in (edge cells beyond the region)
        r = np.clip(np.floor((region.top - lat) / region.pixel_size).astype(np.int64), 0, rows_n - 1)
        c = np.clip(np.floor((lon - region.left) / region.pixel_size).astype(np.int64), 0, cols_n - 1)
        values = {
            "M05": surf["Red"][r, c] * vf,
            "M07": surf["NIR"][r, c] * vf,
            "M10": surf["M10"][r, c] * vf,
            "M12": m12_for_mir(surf["MIR"][r, c], surf["T"][r, c], sza_q * 0.01),
            "M15": planck_radiance(surf["T"][r, c], M15_WAVELENGTH_UM),
        }
        missing = rng.random(lat.shape) < 2e-4
        for band, value in values.items():
            scale, offset, _ = BAND_ENCODING[band]
            enc = encode_counts(value, scale, offset)
            enc[missing] = MISSING_EV
            counts[band][sl] = enc
    orbit = 50000 + op.day_index * 14 + (0 if op.platform == "VNP" else 7)
    return SwathData(
        platform=op.platform,
        start=g_start,
        latitude=lat_out,
        longitude=lon_out,
        solar_zenith_raw=sza_raw,
        sensor_zenith_raw=sz_raw,
        counts=counts,
        orbit=orbit,
    )


def _legacy_values(scene: Scene, op: Overpass) -> dict[str, NDArray[np.float64]]:
    view = scene.view(op)
    surf = scene.surface(op.day_index)
    seen = view.covered
    vf = view_factor(np.where(seen, view.sensor_zenith, 0.0))
    nan = np.nan
    return {
        "M05": np.where(seen, surf["Red"] * vf, nan),
        "M07": np.where(seen, surf["NIR"] * vf, nan),
        "M10": np.where(seen, surf["M10"] * vf, nan),
        "M12": np.where(seen, m12_for_mir(surf["MIR"], surf["T"], view.solar_zenith), nan),
        "M15": np.where(seen, planck_radiance(surf["T"], M15_WAVELENGTH_UM), nan),
        "solar_zenith": np.where(seen, view.solar_zenith, nan),
        "sensor_zenith": np.where(seen, view.sensor_zenith, nan),
    }


def _day_dir(archive: Path, product: str, day: dt.date) -> Path:
    prefix = "NPP_VMAES_L1" if product == "NPP_VMAES_L1" else product[:3]
    return archive / ARCHIVE_SETS[prefix] / product / f"{day:%Y}" / f"{day.timetuple().tm_yday:03d}"


def write_scenario(
    root: str | Path,
    region: Region,
    start: dt.date,
    days: int,
    seed: int = 0,
    *,
    formats: Sequence[str] = FORMATS,
    full_granules: bool = False,
    reburn: bool = False,
) -> Scenario:
    """Write a scenario's local mirror under ``root`` in the real formats and return its description.

    Layout: ``root/archive/{set}/{PRODUCT}/{YYYY}/{DDD}/{file}`` (VNP02MOD/VNP03MOD, VJ102MOD/VJ103MOD
    and, with ``legacy``, NPP_VMAES_L1 on the region grid), ``root/firms/`` (LANCE daily text for
    Suomi-NPP, area-API CSV for NOAA-20) and ``root/regions/R_{name}.json``.  Swaths are cut to the
    region plus a margin unless ``full_granules`` (6-minute granules of 3232 × 3200 pixels).
    ``reburn``: a fire early on and one near the end over part of its scar (:class:`Scene`).
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        from banet_ops.errors import ValidationError

        raise ValidationError(f"expected formats among {list(FORMATS)}, found {unknown}")
    root_p = Path(root).resolve()
    archive, firms, regions_dir = root_p / "archive", root_p / "firms", root_p / "regions"
    for folder in (archive, firms, regions_dir):
        folder.mkdir(parents=True, exist_ok=True)
    (regions_dir / f"R_{region.name}.json").write_text(json.dumps(region.to_file_dict()))
    scene = Scene(region, start, days, seed, reburn=reburn)
    scenario = Scenario(
        root=root_p,
        region=region,
        start=start,
        days=days,
        seed=seed,
        archive_url=archive.as_uri(),
        firms_url=firms.as_uri(),
        regions_dir=regions_dir,
        burn_dates=scene.burn_dates(),
        reburn=reburn,
        scene=scene,
    )
    for d in range(days):
        day = start + dt.timedelta(days=d)
        production = dt.datetime.combine(day, dt.time(23, 0), tzinfo=dt.UTC)
        names: list[str] = []
        for op in scene.overpasses(d):
            swaths = overpass_swaths(scene, op, full_granules=full_granules) if "l1b" in formats else []
            for swath in swaths:
                l1b, geo = write_l1b_pair(_day_dir(archive, f"{op.platform}02MOD", day), _day_dir(archive, f"{op.platform}03MOD", day), swath, production)
                scenario.files += [l1b, geo]
                names.append(l1b.name)
            if "legacy" in formats and op.platform == "VNP":
                g_start = op.time.replace(minute=op.time.minute - op.time.minute % 6, second=0, microsecond=0)
                files = write_legacy_overpass(_day_dir(archive, "NPP_VMAES_L1", day), region, g_start, production, _legacy_values(scene, op), 50000 + d * 14)
                scenario.files += files
                names.append(files[0].name)
        if "firms" in formats:
            det = scene.detections(d)
            ydoy = f"{day:%Y}{day.timetuple().tm_yday:03d}"
            snpp = det[det["satellite"] == "N"]
            noaa20 = det[det["satellite"] != "N"]
            scenario.files.append(write_firms_lance(firms / f"SUOMI_VIIRS_C2_Global_VNP14IMGTDL_NRT_{ydoy}.txt", snpp))
            scenario.files.append(write_firms_area(firms / f"VIIRS_NOAA20_NRT_{region.name}_{day:%Y-%m-%d}.csv", noaa20))
        scenario.granules[day] = names
    return scenario
