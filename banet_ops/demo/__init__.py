"""The embedded demo (`make demo`): the whole pipeline on a synthetic scenario, through Airflow.

Steps: start the local PostGIS cluster and migrate it; write a synthetic scenario mirror (VIIRS
L1B + geolocation NetCDF and FIRMS CSV in the real formats) for a small box; obtain demo weights;
write the demo's settings to ``$BANET_HOME/settings.env`` (so every later command agrees with it);
run ``banet_ingest_DEMO`` for every day (a backfill) and ``banet_infer_nrt_DEMO`` for the days with
a full 64-day window (manual runs), through a real Airflow scheduler in the deployment ``make
airflow`` shows afterwards (:mod:`banet_ops.demo.airflow_runner`); print a summary from PostGIS.
Everything lives under ``$BANET_HOME``; a second run reuses the scenario and weights and re-runs
the pipeline idempotently.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from banet_ops.localstack.postgres import LocalPostgres
from banet_ops.regions import Region
from banet_ops.settings import get_settings, write_settings_file

DEMO_REGION_NAME = "DEMO"


class DemoConfig(BaseModel):
    """What the demo maps: a ``size``×``size`` box of 0.01° cells over central Portugal."""

    model_config = ConfigDict(frozen=True)

    days: int = Field(80, ge=66, le=200, description="scenario length; inference needs 64 days of history")
    size: int = Field(128, ge=64, le=512, description="box size in cells")
    seed: int = Field(7, ge=0)
    start: dt.date = dt.date(2024, 6, 1)
    infer_every: int = Field(4, ge=1, description="run the NRT product every N days over the last part, plus the last day")
    reburn: bool = Field(True, description="a fire in the first days and one near the end over part of its scar (cells burned twice)")

    @property
    def region(self) -> Region:
        left, top, px = -8.30, 40.40, 0.01
        return Region(name=DEMO_REGION_NAME, bbox=(left, round(top - self.size * px, 6), round(left + self.size * px, 6), top), pixel_size=px)

    @property
    def ingest_days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range(self.days)]

    @property
    def infer_days(self) -> list[dt.date]:
        """Days whose 64-day window lies inside the scenario: every ``infer_every``-th and the last."""
        first = self.start + dt.timedelta(days=63)
        last = self.ingest_days[-1]
        days = [first + dt.timedelta(days=i) for i in range(0, (last - first).days + 1, self.infer_every)]
        return days if days[-1] == last else [*days, last]


def step(n: int, total: int, text: str) -> float:
    print(f"[{n}/{total}] {text}", flush=True)
    return time.monotonic()


@dataclass
class DemoPaths:
    root: Path

    @property
    def regions(self) -> Path:
        return self.root / "regions"

    @property
    def scenario(self) -> Path:
        return self.root / "scenario"

    @property
    def weights(self) -> Path:
        return self.root / "weights"


def run_demo(config: DemoConfig) -> int:
    """Run the demo end to end; returns an exit code."""
    settings = get_settings()
    home = settings.home
    paths = DemoPaths(home / "demo")
    region = config.region
    total = 6
    t0 = time.monotonic()

    logging.getLogger("yoyo").setLevel(logging.WARNING)
    step(1, total, f"local PostGIS in {home / 'pg'}")
    url = LocalPostgres(home / "pg").start()
    from banet_ops.db.engine import get_engine
    from banet_ops.db.migrate import upgrade
    from banet_ops.db.regions_repo import upsert_region

    upgrade(url)
    paths.regions.mkdir(parents=True, exist_ok=True)
    (paths.regions / f"R_{region.name}.json").write_text(json.dumps(region.to_file_dict()))
    upsert_region(get_engine(url), region)

    step(2, total, f"synthetic scenario: {region.shape[0]}x{region.shape[1]} cells, {config.days} days from {config.start}, seed {config.seed}")
    scenario_env = ensure_scenario(paths, config)

    step(3, total, "demo weights (BA-Net trained on synthetic data only; not for real use)")
    weights = ensure_weights(paths, config)

    settings_env = {
        **scenario_env,
        "BANET_REGIONS_DIR": str(paths.regions),
        "BANET_WEIGHTS": str(weights),
        "BANET_INFER_BACKEND": "local",
        "BANET_DEVICE": "cpu",
    }
    # every later command with this BANET_HOME (CLI, `make airflow`, its tasks) sees the same settings
    print(f"      settings of this BANET_HOME: {write_settings_file(settings_env, home)}", flush=True)
    get_settings.cache_clear()
    step(4, total, f"Airflow: backfill of banet_ingest_{region.name} ({config.days} days), then banet_infer_nrt_{region.name} ({len(config.infer_days)} days)")
    from banet_ops.demo.airflow_runner import run_through_airflow
    from banet_ops.errors import BanetError

    try:
        run_through_airflow(home / "airflow", {**settings_env, "BANET_HOME": str(home)}, region.name, config.ingest_days, config.infer_days)
    except BanetError as exc:
        print(f"banet-ops demo: the Airflow runs failed: {' '.join(str(exc).split())}", file=sys.stderr)
        print(f"      task logs: {home / 'airflow' / 'logs'}; see them in the UI with `make airflow`", file=sys.stderr)
        return 1

    step(5, total, "summary from PostGIS")
    from banet_ops.demo.summary import print_summary

    print_summary(get_engine(url), region, settings_products_root=get_settings().resolved_products_root)
    step(6, total, f"done in {time.monotonic() - t0:.0f} s. Open the Airflow UI with `make airflow` -> http://127.0.0.1:8080 (the demo's runs are there)")
    last_two = f"--start {config.ingest_days[-2]} --end {config.ingest_days[-1]}"
    print(f"      re-run days from a terminal: banet-ops backfill --region {region.name} {last_two} --reprocess completed --wait", flush=True)
    return 0


def ensure_scenario(paths: DemoPaths, config: DemoConfig) -> dict[str, str]:
    """Write the scenario once per configuration (a marker records what was written)."""
    from banet_ops.synthetic import write_scenario

    marker = paths.scenario / "demo-config.json"
    wanted = config.model_dump_json()
    if marker.is_file() and marker.read_text() == wanted:
        print("      reusing the scenario written earlier", flush=True)
    else:
        scenario = write_scenario(paths.scenario, config.region, config.start, config.days, seed=config.seed, reburn=config.reburn)
        (paths.scenario / "env.json").write_text(json.dumps(scenario.env()))
        marker.write_text(wanted)
    return dict(json.loads((paths.scenario / "env.json").read_text()))


def ensure_weights(paths: DemoPaths, config: DemoConfig) -> Path:
    """The demo weights: the packaged synthetic-only weights when present, else a freshly initialised model."""
    from banet_ops.demo.weights import demo_weights

    return demo_weights(paths.weights, config)
