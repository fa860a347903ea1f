"""The bodies of the DAG tasks: plain functions with JSON-serialisable inputs and outputs.

Nothing here imports Airflow; DAG files call these and pass their results through XCom.
Large intermediate data (a gridded day) goes to a staging file under ``$BANET_HOME/staging``,
written atomically, never through XCom.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.daily_image import DailyImage
from banet_ops.errors import DataFormatError, PermanentError, RetryableError, ValidationError
from banet_ops.regions import get_region
from banet_ops.settings import Settings, get_settings

log = logging.getLogger(__name__)
EXIT_RETRYABLE = 75


def _settings() -> Settings:
    """Settings with Airflow Connections (when running under Airflow) overlaid on the environment."""
    from banet_ops.orchestration.connections import apply_airflow_connections

    apply_airflow_connections()
    return get_settings()


# --- ingest ------------------------------------------------------------------------------------


def item_to_json(item: Any) -> dict[str, Any]:
    """A :class:`banet_ops.sources.RemoteItem` as XCom-friendly JSON."""
    data = dataclasses.asdict(item)
    data["day"] = item.day.isoformat()
    data["extra"] = {k: v for k, v in dict(item.extra).items() if isinstance(v, (str, int, float, bool, type(None)))}
    return data


def item_from_json(data: Mapping[str, Any]) -> Any:
    from banet_ops.sources import RemoteItem

    return RemoteItem(**{**data, "day": dt.date.fromisoformat(data["day"])})


def discover(region_name: str, day: str) -> dict[str, Any]:
    """What the sources hold for a region and day: L1B/geolocation pairs and FIRMS files."""
    from banet_ops.sources import make_sources

    settings = _settings()
    region = get_region(region_name, settings.regions_dir)
    the_day = dt.date.fromisoformat(day)
    sources = make_sources(settings)
    found = sources.viirs_pairs(region, the_day)
    fires = sources.fire_items(region, the_day)
    for rejected in found.rejected:
        log.warning("rejected listing entry %s at %s: %s", rejected.name, rejected.where, rejected.reason)
    log.info(
        "%s %s: %d granule pairs, %d unpaired, %d night, %d rejected, %d FIRMS files",
        region_name,
        day,
        len(found.pairs),
        len(found.unpaired),
        len(found.night),
        len(found.rejected),
        len(fires),
    )
    return {
        "region": region_name,
        "day": day,
        "pairs": [{"key": p.key, "l1b": item_to_json(p.l1b), "geo": item_to_json(p.geo)} for p in found.pairs],
        "fires": [item_to_json(i) for i in fires],
        "unpaired": [i.name for i in found.unpaired],
        "rejected": [{"name": r.name, "reason": r.reason} for r in found.rejected],
    }


def _fetch_all(items: list[Any]) -> list[str]:
    from banet_ops.sources import make_sources

    report = make_sources(_settings()).fetch_many(items)
    if report.errors:
        # the first error decides retryable vs permanent; all are logged
        for name, error in report.errors.items():
            log.error("fetching %s failed: %s", name, error)
        raise next(iter(report.errors.values()))
    return [str(report.paths[item.name]) for item in items]


def fetch_viirs(found: Mapping[str, Any]) -> list[list[str]]:
    """Download (or reuse from the cache) every L1B/geolocation pair; returns ``[[l1b, geo], …]``."""
    items = [item_from_json(p[k]) for p in found["pairs"] for k in ("l1b", "geo")]
    paths = _fetch_all(items)
    return [paths[i : i + 2] for i in range(0, len(paths), 2)]


def fetch_firms(found: Mapping[str, Any]) -> list[str]:
    """Download (or reuse) the FIRMS files covering the day."""
    return _fetch_all([item_from_json(i) for i in found["fires"]])


def staging_path(settings: Settings, region_name: str, day: dt.date) -> Path:
    return settings.home / "staging" / region_name / f"{day.isoformat()}.npz"


def stage_image(image: DailyImage, path: Path) -> Path:
    """Write a gridded day atomically to a staging file (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    meta = json.dumps({"region": image.region.to_file_dict(), "day": image.day.isoformat(), "granules": image.granules, "sources": image.sources})
    with tmp.open("wb") as fh:
        np.savez(fh, __meta__=np.array(meta), **image.variables)
    tmp.replace(path)
    return path


def load_staged(path: str | Path) -> DailyImage:
    """Read a staging file written by :func:`stage_image`."""
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
    return DailyImage(region=region, day=dt.date.fromisoformat(meta["day"]), variables=variables, granules=meta["granules"], sources=meta["sources"])


def commit(region_name: str, staged: str) -> dict[str, str]:
    """Write a staged day to the region cube (one commit) and record it; returns ``{day, snapshot}``."""
    from banet_ops import cube

    settings = _settings()
    image = load_staged(staged)
    if image.region.name != region_name:
        raise ValidationError(f"staged file {staged}: expected region {region_name}, found {image.region.name}")
    snapshot = cube.write_day(image, settings=settings)
    Path(staged).unlink(missing_ok=True)
    log.info("committed %s %s as snapshot %s", region_name, image.day, snapshot)
    return {"day": image.day.isoformat(), "snapshot": snapshot}


# --- inference ---------------------------------------------------------------------------------


def infer_arguments(region_name: str, day: str, mode: str, snapshot: str | None, device: str = "auto") -> list[str]:
    """``banet-ops`` arguments of one inference (the Kubernetes backend builds the same list)."""
    args = ["infer", "--region", region_name, "--date", day, "--mode", mode]
    if snapshot:
        args += ["--snapshot", snapshot]
    return [*args, "--device", device]


def backend_kwargs(region_name: str, day: str, mode: str, snapshot: str | None) -> dict[str, Any]:
    """Per-target arguments (``arguments``, ``labels``, ``name``) for the configured inference backend."""
    settings = get_settings()
    if settings.infer_backend == "kubernetes":
        from banet_ops.orchestration.k8s import InferencePodSpec, kpo_target_kwargs

        return kpo_target_kwargs(InferencePodSpec.from_settings(settings), region_name, day, mode, snapshot)
    name = f"banet-infer-{region_name}-{mode}".lower().replace("_", "-")
    labels = {"banet.io/region": region_name, "banet.io/date": day, "banet.io/mode": mode}
    return {"arguments": infer_arguments(region_name, day, mode, snapshot, settings.device), "labels": labels, "name": name}


def _event_extras(events: Any) -> Iterable[Mapping[str, Any]]:
    if not events:
        return []
    extras: list[Mapping[str, Any]] = []
    for key in events:
        for event in events[key]:
            extra = getattr(event, "extra", None) or (event.get("extra") if isinstance(event, Mapping) else None)
            if extra:
                extras.append(extra)
    return extras


def infer_targets(region_name: str, mode: str, events: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One inference per distinct day: from the ``day`` param, else from the triggering cube events.

    Several events for the same day (re-ingestion) collapse to the last one's snapshot.
    """
    if params.get("day"):
        day = dt.date.fromisoformat(str(params["day"])).isoformat()
        return [backend_kwargs(region_name, day, mode, params.get("snapshot"))]
    by_day: dict[str, str | None] = {}
    for extra in _event_extras(events):
        if "day" in extra:
            by_day[str(extra["day"])] = extra.get("snapshot")
    if not by_day:
        raise PermanentError(
            f"banet_infer_{mode}_{region_name}: expected cube events with a day or a 'day' param, found neither", hint='trigger with {"day": "YYYY-MM-DD"}'
        )
    return [backend_kwargs(region_name, day, mode, snap) for day, snap in sorted(by_day.items())]


def monthly_targets(region_name: str, logical_date: dt.datetime, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The monthly product's target: the ``month`` param, else the month before the logical date."""
    if params.get("month"):
        year, month = (int(x) for x in str(params["month"]).split("-"))
        first = dt.date(year, month, 1)
    else:
        first = (dt.date(logical_date.year, logical_date.month, 1) - dt.timedelta(days=1)).replace(day=1)
    return [backend_kwargs(region_name, first.isoformat(), "monthly", None)]


def banet_ops_executable() -> str:
    """The ``banet-ops`` console script of this environment."""
    beside = Path(sys.executable).with_name("banet-ops")
    return str(beside) if beside.exists() else (shutil.which("banet-ops") or "banet-ops")


def run_local_infer(arguments: list[str]) -> dict[str, Any]:
    """Run ``banet-ops <arguments>`` in a subprocess (the local backend); secrets travel in env only."""
    _settings()  # overlays connection secrets onto os.environ, inherited by the child
    argv = [banet_ops_executable(), *arguments]
    log.info("running %s", " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy(), check=False)
    for line in proc.stdout.splitlines():
        log.info("%s", line)
    for line in proc.stderr.splitlines():
        log.info("%s", line)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        error = RetryableError if proc.returncode == EXIT_RETRYABLE else PermanentError
        raise error(f"banet-ops {' '.join(arguments[:1])} exited with {proc.returncode}: {reason}")
    return {"returncode": 0, "summary": proc.stdout.strip().splitlines()[-20:]}
