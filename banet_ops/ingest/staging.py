"""The gridded day between the DAG's ``grid_composite`` and ``commit`` tasks: one ``.npz`` under ``$BANET_HOME/staging``.

Written atomically (never through XCom): the image's variables, its region, granules and
sources, and the report of every input file.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.daily_image import DailyImage
from banet_ops.errors import DataFormatError
from banet_ops.ingest.report import BuildReport, FileOutcome
from banet_ops.settings import Settings
from banet_ops.util import atomic_write


def staging_path(settings: Settings, region_name: str, day: dt.date) -> Path:
    return settings.home / "staging" / region_name / f"{day.isoformat()}.npz"


def _report_json(report: BuildReport | None) -> dict[str, Any]:
    if report is None:
        return {}
    return {"files": [f.to_json() for f in report.files], "discovery_rejected": [list(r) for r in report.discovery_rejected],
            "n_detections": report.n_detections, "timings": report.timings}  # fmt: skip


def stage_image(image: DailyImage, path: Path, report: BuildReport | None = None) -> Path:
    """Write a gridded day (and the report of its files) atomically to a staging file."""
    meta = json.dumps(
        {
            "region": image.region.to_file_dict(),
            "day": image.day.isoformat(),
            "granules": image.granules,
            "sources": image.sources,
            "report": _report_json(report),
        }
    )

    def write(fh: IO[bytes]) -> None:
        arrays: dict[str, Any] = {"__meta__": np.array(meta), **image.variables}
        np.savez(fh, **arrays)

    return atomic_write(path, write)


def read_staged(path: str | Path) -> tuple[DailyImage, BuildReport]:
    """The image and report of a staging file written by :func:`stage_image`."""
    from banet_ops.regions import parse_region

    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            variables = {name: data[name].astype(np.float32) for name in CUBE_VARIABLES}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DataFormatError(
            f"staged day {path}: expected an npz written by grid_composite, found unreadable content ({exc})", hint="re-run grid_composite"
        ) from exc
    region = parse_region(meta["region"], path)
    day = dt.date.fromisoformat(meta["day"])
    image = DailyImage(region=region, day=day, variables=variables, granules=meta["granules"], sources=meta["sources"])
    saved = meta.get("report") or {}
    report = BuildReport(
        region=region.name, day=day, files=[FileOutcome.from_json(f) for f in saved.get("files", [])],
        discovery_rejected=[(str(a), str(b)) for a, b in saved.get("discovery_rejected", [])],
        n_detections=int(saved.get("n_detections", 0)), timings=dict(saved.get("timings", {})),
    )  # fmt: skip
    return image, report


def load_staged(path: str | Path) -> DailyImage:
    """The image of a staging file written by :func:`stage_image`."""
    return read_staged(path)[0]
