"""Importing BA-Net dataset files (``VIIRS750{R}_{YYYYMMDD}.mat``) into a region cube.

Each file is a MATLAB v5 ``.mat`` with 2-D arrays ``Red``, ``NIR``, ``MIR`` and ``FRP`` on the
region grid (rows north to south).  Optional ``M10``, ``n_obs`` and ``sensor_zenith`` are used
when present with the right shape; otherwise M10 and sensor zenith are missing (NaN) and
``n_obs`` is 1 where Red is finite, 0 elsewhere.  FRP NaN means no detection (0 MW).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.engine import Engine

from banet_ops.bands import MODEL_BANDS
from banet_ops.daily_image import DailyImage
from banet_ops.errors import BanetError, DataFormatError, ValidationError
from banet_ops.regions import Region
from banet_ops.settings import Settings

log = logging.getLogger(__name__)
OPTIONAL_VARIABLES = ("M10", "n_obs", "sensor_zenith")


@dataclass
class LegacyImportResult:
    imported: list[tuple[str, dt.date, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def legacy_file_day(path: Path, region: Region) -> dt.date:
    """The day a legacy file holds, from its name; :class:`ValidationError` when it does not fit."""
    pattern = re.compile(rf"^VIIRS750{re.escape(region.name)}_(\d{{8}})\.mat$")
    match = pattern.match(path.name)
    if match is None:
        raise ValidationError(f"{path.name}: expected a name VIIRS750{region.name}_YYYYMMDD.mat, found {path.name!r}")
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        raise ValidationError(f"{path.name}: expected a valid date YYYYMMDD in the name, found {match.group(1)!r}") from None


def _array(path: Path, content: dict[str, Any], name: str, shape: tuple[int, int]) -> NDArray[np.float32]:
    value = np.asarray(content[name])
    if value.dtype.kind not in "fiub":
        raise DataFormatError(f"{path.name}: expected numeric {name}, found dtype {value.dtype}")
    if value.shape != shape:
        raise DataFormatError(f"{path.name}: expected {name} of shape {shape} (the region grid), found {value.shape}")
    return value.astype(np.float32)


def read_legacy_file(path: str | Path, region: Region) -> DailyImage:
    """Validate and read one legacy file into a :class:`DailyImage`."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    p = Path(path)
    day = legacy_file_day(p, region)
    try:
        content = loadmat(p)
    except FileNotFoundError:
        raise DataFormatError(f"{p}: expected a file, found nothing at that path") from None
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DataFormatError(f"{p.name}: expected a MATLAB v5 .mat file, found unreadable content ({exc})") from None
    shape = region.shape
    missing = [v for v in MODEL_BANDS if v not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith("__"))
        raise DataFormatError(f"{p.name}: expected variables {list(MODEL_BANDS)}, missing {missing} (found {found})")
    variables = {name: _array(p, content, name, shape) for name in MODEL_BANDS}
    variables["FRP"] = np.nan_to_num(variables["FRP"], nan=0.0)
    for name in OPTIONAL_VARIABLES:
        if name in content:
            variables[name] = _array(p, content, name, shape)
    variables.setdefault("M10", np.full(shape, np.nan, dtype=np.float32))
    variables.setdefault("sensor_zenith", np.full(shape, np.nan, dtype=np.float32))
    variables.setdefault("n_obs", np.isfinite(variables["Red"]).astype(np.float32))
    return DailyImage(
        region=region,
        day=day,
        variables=variables,
        granules=[p.name],
        sources={"legacy": "BA-Net VIIRS750 dataset file", "file": p.name},
    )


def import_legacy(
    region: Region,
    files: Iterable[str | Path],
    *,
    settings: Settings | None = None,
    engine: Engine | None = None,
    progress: Callable[[Iterable[Path]], Iterable[Path]] | None = None,
) -> LegacyImportResult:
    """Write each legacy file's day into the cube; files that do not fit are skipped and reported."""
    from banet_ops.cube.db import record_cube_day
    from banet_ops.cube.writer import valid_fraction, write_day

    paths = [Path(f) for f in files]
    result = LegacyImportResult()
    for path in progress(paths) if progress else paths:
        try:
            image = read_legacy_file(path, region)
        except (ValidationError, DataFormatError) as exc:
            log.warning("skipped %s: %s", path.name, exc)
            result.skipped.append((path.name, str(exc)))
            continue
        try:
            snapshot = write_day(image, settings=settings)
        except BanetError as exc:
            if not isinstance(exc, ValidationError):
                raise
            result.skipped.append((path.name, str(exc)))
            continue
        if engine is not None:
            record_cube_day(engine, region, image.day, snapshot, valid_fraction=valid_fraction(image), granules=image.granules)
        result.imported.append((path.name, image.day, snapshot))
    return result
