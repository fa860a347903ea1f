"""The bodies of the DAG tasks: plain functions with JSON-serialisable inputs and outputs.

Nothing here imports Airflow; DAG files call these and pass their results through XCom.  The
ingest tasks are one call each of :mod:`banet_ops.ingest.stages` (the functions ``banet-ops
ingest`` runs); the gridded day goes through a staging file (:mod:`banet_ops.ingest.staging`),
never through XCom.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from banet_ops.errors import InsufficientDataError, PermanentError, RetryableError, ValidationError
from banet_ops.ingest import stages
from banet_ops.ingest.stages import item_to_json
from banet_ops.ingest.staging import load_staged, read_staged, stage_image, staging_path
from banet_ops.regions import Region, get_region
from banet_ops.settings import Settings, get_settings

log = logging.getLogger(__name__)
__all__ = ["item_to_json", "load_staged", "stage_image"]  # re-exported: tests and callers of the task layer
EXIT_RETRYABLE = 75
EXIT_INSUFFICIENT_DATA = 66  # banet_ops.cli: not enough input data; the DAG skips the task


def _settings() -> Settings:
    """Settings with Airflow Connections (when running under Airflow) overlaid on the environment."""
    from banet_ops.orchestration.connections import apply_airflow_connections

    apply_airflow_connections()
    return get_settings()


# --- ingest: one line per stage of banet_ops.ingest.stages (the functions `banet-ops ingest` runs) ---


def _region_day(region_name: str, day: str) -> tuple[Settings, Region, dt.date]:
    settings = _settings()
    return settings, get_region(region_name, settings.regions_dir), dt.date.fromisoformat(day)


def _sources(settings: Settings) -> Any:
    from banet_ops.sources import make_sources

    return make_sources(settings)


def discover(region_name: str, day: str) -> dict[str, Any]:
    """:func:`banet_ops.ingest.stages.discover` (retryable while the day is not yet published)."""
    settings, region, the_day = _region_day(region_name, day)
    return stages.discover(region, the_day, sources=_sources(settings)).to_json()


def fetch_viirs(found: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`banet_ops.ingest.stages.fetch_viirs`."""
    return stages.fetch_viirs(stages.Found.from_json(found), _sources(_settings())).to_json()


def fetch_firms(found: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`banet_ops.ingest.stages.fetch_firms`."""
    return stages.fetch_firms(stages.Found.from_json(found), _sources(_settings())).to_json()


def grid_composite(region_name: str, found: Mapping[str, Any], viirs: Mapping[str, Any], firms: Mapping[str, Any]) -> str:
    """:func:`banet_ops.ingest.stages.composite`, staged to a file (:mod:`banet_ops.ingest.staging`); its path."""
    settings, region, day = _region_day(region_name, str(found["day"]))
    fetched = stages.Fetched.from_json(viirs).merged(stages.Fetched.from_json(firms))
    image, report = stages.composite(region, stages.Found.from_json(found), fetched, settings=settings)
    return str(stage_image(image, staging_path(settings, region.name, day), report))


def commit(region_name: str, staged: str) -> dict[str, Any]:
    """:func:`banet_ops.ingest.stages.commit` of a staged day: ``{day, snapshot, status, changed}``; the staging file is removed."""
    image, report = read_staged(staged)
    if image.region.name != region_name:
        raise ValidationError(f"staged file {staged}: expected region {region_name}, found {image.region.name}")
    done = stages.commit(image, report, settings=_settings())
    Path(staged).unlink(missing_ok=True)
    return done.to_json()


# --- inference ---------------------------------------------------------------------------------


def infer_arguments(region_name: str, day: str, mode: str, snapshot: str | None, device: str = "auto") -> list[str]:
    """``banet-ops`` arguments of one inference (the same list on both backends)."""
    args = ["infer", "--region", region_name, "--date", day, "--mode", mode]
    if snapshot:
        args += ["--snapshot", snapshot]
    return [*args, "--device", device]


def backend_kwargs(region_name: str, day: str, mode: str, snapshot: str | None) -> dict[str, Any]:
    """One inference run (``arguments``, ``labels``, ``name``) for the configured backend."""
    from banet_ops.orchestration.backend import Backend

    backend = Backend.from_settings(get_settings())
    labels = {"banet.io/region": region_name, "banet.io/date": day, "banet.io/mode": mode}
    name = f"banet-infer-{region_name}-{mode}".lower().replace("_", "-")
    return backend.target(infer_arguments(region_name, day, mode, snapshot, backend.device("inference")), labels, name)


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


def run_local_cli(arguments: list[str]) -> dict[str, Any]:
    """Run ``banet-ops <arguments>`` in a subprocess (the local backend); secrets travel in env only.

    Exit code 75 (EX_TEMPFAIL) raises :class:`RetryableError`, 66 (EX_NOINPUT)
    :class:`InsufficientDataError` (the DAG skips the task), any other failure :class:`PermanentError`.
    """
    _settings()  # overlays connection secrets onto os.environ, inherited by the child
    argv = [banet_ops_executable(), *arguments]
    log.info("running %s", " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, env=os.environ.copy(), check=False)
    for line in proc.stdout.splitlines():
        log.info("%s", line)
    for line in proc.stderr.splitlines():
        log.info("%s", line)
    if proc.returncode != 0:
        # the child's own one-line reason, without its prefix (the failure line adds ours)
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1].removeprefix("banet-ops: error: ")
        if proc.returncode == EXIT_INSUFFICIENT_DATA:
            raise InsufficientDataError(f"banet-ops {' '.join(arguments[:1])}: {reason}")
        # killed by a signal (negative code: OOM killer, worker shutdown) or EX_TEMPFAIL: worth a retry
        error = RetryableError if proc.returncode == EXIT_RETRYABLE or proc.returncode < 0 else PermanentError
        raise error(f"banet-ops {' '.join(arguments[:1])} exited with {proc.returncode}: {reason}")
    return {"returncode": 0, "summary": proc.stdout.strip().splitlines()[-20:]}
