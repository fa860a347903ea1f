"""Training samples: ``days`` × ``tile`` × ``tile`` blocks of cube inputs with their MCD64A1 labels.

A *region-month* (``"PI:2020-08"``) names a region and a month; its window is ``days`` days
centred on the month (for 64 days: from about the 15th of the previous month, as in the monthly
product).  Tiles are cut every ``stride`` cells across the region and kept when at least
``min_burned_cells`` cells burned (Σ bafrac over the window ≥ 0.5).  Region-months are split
into training and validation sets (explicitly, or a seeded share), and training samples that
overlap a validation sample in space and time are dropped, so the two sets share no cell-day.

Each sample is one compressed ``.npz`` (raw inputs ``x`` (time, band, y, x) float32 with NaN,
``target`` bafrac (time, y, x), ``valid`` bool), written atomically; the manifest (JSON) lists
them with their split.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from banet_ops.bands import BANET_MEAN, BANET_STD, MODEL_BANDS
from banet_ops.errors import DataFormatError, InsufficientDataError, ValidationError
from banet_ops.regions import Region, get_region
from banet_ops.settings import Settings, get_settings
from banet_ops.util import atomic_write

log = logging.getLogger(__name__)

REGION_MONTH_RE = re.compile(r"^(?P<region>[A-Za-z0-9_]{1,32}):(?P<year>\d{4})-(?P<month>\d{2})$")
MANIFEST_VERSION = 1


@dataclass(frozen=True, order=True)
class RegionMonth:
    """A region and a month, written ``REGION:YYYY-MM``."""

    region: str
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> RegionMonth:
        m = REGION_MONTH_RE.match(text.strip())
        if not m or not 1 <= int(m["month"]) <= 12:
            raise ValidationError(f"expected a region-month like PI:2020-08, found {text!r}")
        return cls(m["region"], int(m["year"]), int(m["month"]))

    def __str__(self) -> str:
        return f"{self.region}:{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def window(self, days: int) -> tuple[dt.date, dt.date]:
        """First and last day of the ``days``-day window centred on the month."""
        n = (self.last_day - self.first_day).days + 1
        start = self.first_day + dt.timedelta(days=(n - days) // 2)
        return start, start + dt.timedelta(days=days - 1)

    def neighbours(self) -> list[RegionMonth]:
        """The previous month, this month and the next one (the months a 64-day window touches)."""
        prev = (self.first_day - dt.timedelta(days=1)).replace(day=1)
        nxt = self.last_day + dt.timedelta(days=1)
        return [RegionMonth(self.region, prev.year, prev.month), self, RegionMonth(self.region, nxt.year, nxt.month)]


def parse_region_months(values: Sequence[str | RegionMonth]) -> list[RegionMonth]:
    """Parse and de-duplicate, keeping order."""
    out: list[RegionMonth] = []
    for v in values:
        rm = v if isinstance(v, RegionMonth) else RegionMonth.parse(v)
        if rm not in out:
            out.append(rm)
    return out


class DatasetConfig(BaseModel):
    """How to cut training and validation samples from the cubes and label cubes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region_months: list[str] = Field(min_length=1, description="Region-months to sample, e.g. ['PI:2020-08'].")
    val_region_months: list[str] = Field(default_factory=list, description="Region-months held out for validation; empty: a seeded share of region_months.")
    val_fraction: float = Field(0.25, ge=0, lt=1, description="Share of region_months held out when val_region_months is empty.")
    tile: int = Field(128, ge=32, le=1024, description="Tile size in cells (multiple of 32).")
    days: int = Field(64, ge=16, le=128, description="Days per sample (multiple of 16).")
    stride: int | None = Field(None, ge=8, description="Spacing of tiles in cells (default: tile - tile//4).")
    min_burned_cells: int = Field(20, ge=0, description="Keep a tile only when at least this many cells burned in its window.")
    max_samples_per_region_month: int | None = Field(None, ge=1, description="Cap on tiles kept per region-month (the most burned first).")
    seed: int = 0
    water_mask: bool = Field(False, description="Mask water from the cube (banet_ops.water): no burn on permanent water, shorelines left out.")
    out_dir: Path = Field(description="Folder receiving the sample files and manifest.json.")

    @field_validator("region_months", "val_region_months")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        return [str(rm) for rm in parse_region_months(v)]

    @field_validator("tile")
    @classmethod
    def _tile32(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"expected a multiple of 32 (five halvings in BA-Net), found {v}")
        return v

    @field_validator("days")
    @classmethod
    def _days16(cls, v: int) -> int:
        if v % 16:
            raise ValueError(f"expected a multiple of 16 (four halvings in time in BA-Net), found {v}")
        return v

    @model_validator(mode="after")
    def _disjoint(self) -> DatasetConfig:
        both = set(self.region_months) & set(self.val_region_months)
        if both:
            raise ValueError(f"region-months {sorted(both)} are in both the training and the validation list")
        return self

    @property
    def effective_stride(self) -> int:
        return self.stride or self.tile - self.tile // 4


def prepare_input(raw: NDArray[np.floating]) -> NDArray[np.float32]:
    """Cube data ``(time, band, y, x)`` (bands Red, NIR, MIR, FRP; NaN missing) → model input ``(band, time, y, x)``.

    NaN → 0, FRP → log1p(FRP), then standardisation with the BA-Net constants (DESIGN §1).
    """
    x = np.nan_to_num(np.asarray(raw, dtype=np.float32), nan=0.0)
    x[:, 3] = np.log1p(np.maximum(x[:, 3], 0))
    mean = np.asarray(BANET_MEAN, dtype=np.float32)[None, :, None, None]
    std = np.asarray(BANET_STD, dtype=np.float32)[None, :, None, None]
    return np.ascontiguousarray(((x - mean) / std).transpose(1, 0, 2, 3))


def split_region_months(cfg: DatasetConfig) -> tuple[list[RegionMonth], list[RegionMonth]]:
    """(training, validation) region-months; the seeded share is picked by hash, so adding one does not reshuffle the rest."""
    train = parse_region_months(cfg.region_months)
    if cfg.val_region_months:
        return train, parse_region_months(cfg.val_region_months)
    n_val = round(len(train) * cfg.val_fraction)
    if cfg.val_fraction > 0 and len(train) >= 2:
        n_val = max(1, n_val)
    ranked = sorted(train, key=lambda rm: hashlib.sha256(f"{cfg.seed}:{rm}".encode()).hexdigest())
    val = sorted(ranked[:n_val])
    return [rm for rm in train if rm not in val], val


def validation_set_id(val: Sequence[RegionMonth], days: int) -> str:
    """A short id naming a validation set (its region-months and window length)."""
    text = ",".join(sorted(str(rm) for rm in val)) + f"|days={days}"
    return "vs-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def tile_origins(n: int, tile: int, stride: int) -> list[int]:
    """Tile starts covering ``0..n`` every ``stride`` cells, the last one flush with the edge."""
    if n < tile:
        raise InsufficientDataError(f"expected a region at least {tile} cells wide, found {n}", hint="use a smaller --tile")
    starts = list(range(0, n - tile + 1, stride))
    if starts[-1] != n - tile:
        starts.append(n - tile)
    return starts


@dataclass(frozen=True)
class SampleRef:
    """One sample in a manifest."""

    file: str
    region: str
    month: str
    split: str
    first_day: str
    last_day: str
    row0: int
    col0: int
    burned_cells: int

    def overlaps(self, other: SampleRef, tile: int) -> bool:
        """Same region and overlapping in time and space."""
        return (
            self.region == other.region
            and self.first_day <= other.last_day
            and other.first_day <= self.last_day
            and abs(self.row0 - other.row0) < tile
            and abs(self.col0 - other.col0) < tile
        )


@dataclass
class Manifest:
    """The sample list of a dataset and how it was made."""

    path: Path
    config: dict[str, Any]
    samples: list[SampleRef]
    val_set_id: str
    dropped_for_overlap: int

    def split(self, name: str) -> list[SampleRef]:
        return [s for s in self.samples if s.split == name]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def data_window(self) -> dict[str, Any]:
        """Regions and dates the samples cover (for the model registry)."""
        firsts = [s.first_day for s in self.samples]
        lasts = [s.last_day for s in self.samples]
        cfg = self.config
        return {
            "train": cfg.get("train_region_months", []),
            "validation": cfg.get("val_region_months_used", []),
            "first_day": min(firsts) if firsts else None,
            "last_day": max(lasts) if lasts else None,
            "val_set_id": self.val_set_id,
            "n_train": len(self.split("train")),
            "n_val": len(self.split("val")),
        }

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        p = Path(path)
        try:
            doc = json.loads(p.read_text())
            if doc.get("version") != MANIFEST_VERSION:
                raise DataFormatError(f"{p}: expected manifest version {MANIFEST_VERSION}, found {doc.get('version')!r}", hint="rebuild the dataset")
            samples = [SampleRef(**s) for s in doc["samples"]]
            return cls(p, doc["config"], samples, doc["val_set_id"], int(doc.get("dropped_for_overlap", 0)))
        except FileNotFoundError:
            raise DataFormatError(f"{p}: expected a dataset manifest, found no file", hint="run the build_dataset step first") from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataFormatError(f"{p}: expected a dataset manifest (JSON), found invalid content ({exc})", hint="rebuild the dataset") from None


atomic_write_bytes = atomic_write  # the one atomic write (banet_ops.util); this name kept for the training modules


def save_sample(path: Path, x: NDArray[np.float32], target: NDArray[np.float32], valid: NDArray[np.bool_], water: NDArray[np.uint8] | None = None) -> None:
    """One sample as a compressed ``.npz`` (atomic); ``water`` is the optional mask layer (y, x) of :meth:`WaterMask.layer`."""
    import io

    buf = io.BytesIO()
    arrays: dict[str, Any] = {"x": x.astype(np.float32), "target": target.astype(np.float32), "valid": valid.astype(bool)}
    if water is not None:
        arrays["water"] = water.astype(np.uint8)
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def mask_water(
    bands: NDArray[np.float32], target: NDArray[np.float32], valid: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_], NDArray[np.uint8]]:
    """Apply the water mask of ``bands`` (time, Red/NIR/MIR/FRP/M10, y, x) to a sample's labels.

    Permanent water gets a zero target (it never burns); inconsistent shorelines are left out of
    the loss.  Returns the four model bands, target, valid and the mask layer.
    """
    from banet_ops.water import water_mask

    m = water_mask(bands[:, 0], bands[:, 1], bands[:, 4])
    target = np.where(m.permanent[None], 0.0, target).astype(np.float32)
    valid = valid & ~m.shoreline[None]
    return np.ascontiguousarray(bands[:, :4]), target, valid, m.layer()


def load_sample(path: str | Path) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """(raw x (time, band, y, x), target (time, y, x), valid (time, y, x)) of a sample file."""
    try:
        with np.load(path) as z:
            return z["x"], z["target"], z["valid"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataFormatError(f"{path}: expected a training sample (.npz with x, target, valid), found ({exc})", hint="rebuild the dataset") from None


def _candidates(region: Region, rm: RegionMonth, cfg: DatasetConfig, settings: Settings) -> Iterator[tuple[int, int, int]]:
    """(burned cells, row0, col0) of tiles of a region-month with enough burned cells, most burned first."""
    from banet_ops.mcd64.labels import read_labels

    first, last = rm.window(cfg.days)
    labels = read_labels(region, first, last, settings=settings)
    burned = (np.where(labels.valid(), labels.bafrac, 0).sum(axis=0) >= 0.5).astype(np.int64)
    integral = np.pad(burned.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    t = cfg.tile
    out = []
    for r0 in tile_origins(region.shape[0], t, cfg.effective_stride):
        for c0 in tile_origins(region.shape[1], t, cfg.effective_stride):
            n = int(integral[r0 + t, c0 + t] - integral[r0, c0 + t] - integral[r0 + t, c0] + integral[r0, c0])
            if n >= cfg.min_burned_cells:
                out.append((n, r0, c0))
    out.sort(key=lambda v: (-v[0], v[1], v[2]))
    yield from out[: cfg.max_samples_per_region_month]


def build_dataset(cfg: DatasetConfig, *, settings: Settings | None = None, regions_dir: Path | None = None) -> Manifest:
    """Cut the samples of every region-month, split them, write the files and ``manifest.json``.

    Re-running with the same config rewrites the same files (idempotent).
    """
    from banet_ops.cube import read_window
    from banet_ops.mcd64.labels import read_labels

    s = settings or get_settings()
    train_rms, val_rms = split_region_months(cfg)
    if not val_rms:
        log.warning("dataset: no validation region-month (val_fraction=0 and none given)")
    out = Path(cfg.out_dir)
    samples: list[SampleRef] = []
    regions: dict[str, Region] = {}
    dropped = 0
    for split, rms in (("val", val_rms), ("train", train_rms)):
        for rm in rms:
            region = regions.setdefault(rm.region, get_region(rm.region, regions_dir or s.regions_dir))
            first, last = rm.window(cfg.days)
            for burned, r0, c0 in _candidates(region, rm, cfg, s):
                ref = SampleRef(
                    file=f"{split}/{rm.region}_{rm.year:04d}{rm.month:02d}_r{r0:05d}_c{c0:05d}.npz",
                    region=rm.region,
                    month=f"{rm.year:04d}-{rm.month:02d}",
                    split=split,
                    first_day=first.isoformat(),
                    last_day=last.isoformat(),
                    row0=r0,
                    col0=c0,
                    burned_cells=burned,
                )
                if split == "train" and any(ref.overlaps(v, cfg.tile) for v in samples if v.split == "val"):
                    dropped += 1
                    continue
                rows, cols = slice(r0, r0 + cfg.tile), slice(c0, c0 + cfg.tile)
                variables = (*MODEL_BANDS, "M10") if cfg.water_mask else MODEL_BANDS
                window = read_window(region, first, last, rows=rows, cols=cols, variables=variables, settings=s)
                labels = read_labels(region, first, last, rows, cols, settings=s)
                valid = labels.valid()
                target = np.where(valid, labels.bafrac, 0).astype(np.float32)
                data, water = np.asarray(window.data, dtype=np.float32), None
                if cfg.water_mask:
                    data, target, valid, water = mask_water(data, target, valid)
                save_sample(out / ref.file, data, target, valid, water)
                samples.append(ref)
    if not any(x.split == "train" for x in samples):
        raise InsufficientDataError(
            f"dataset: expected training tiles with >= {cfg.min_burned_cells} burned cells in {[str(r) for r in train_rms]}, found none",
            hint="label more months (banet-ops labels), lower min_burned_cells, or add region-months",
        )
    doc = {
        "version": MANIFEST_VERSION,
        "config": {
            **json.loads(cfg.model_dump_json()),
            "train_region_months": [str(r) for r in train_rms],
            "val_region_months_used": [str(r) for r in val_rms],
        },
        "val_set_id": validation_set_id(val_rms, cfg.days),
        "dropped_for_overlap": dropped,
        "samples": [ref.__dict__ for ref in samples],
    }
    path = out / "manifest.json"
    atomic_write_bytes(path, json.dumps(doc, indent=1).encode())
    n_val = sum(x.split == "val" for x in samples)
    log.info("dataset: %d training and %d validation samples in %s (%d dropped for overlap)", len(samples) - n_val, n_val, out, dropped)
    return Manifest.load(path)

