"""The analyst's journey on the real pipeline, as on the demo: every query answers, re-burns included.

The demo's scenario (``banet_ops.synthetic`` with ``reburn=True``: a fire in the first days and one
near the end that runs over part of its scar) on a 64 × 64 box over 80 days is written in the real
file formats, ingested from those files, mapped by the demo weights in the demo's first and last
NRT runs (days 63 and 79) and published.  Then, as a ``banet_reader`` login: every file of
``sql/queries`` returns rows with its defaults, ``cells_burned_twice.sql`` names the cells the scene
burned twice (and only cells at most two cells away from them: the model's fire edges), each dated
by the early and by the late fire; ``ogrinfo`` lists the analyst layers only, without warnings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from scipy import ndimage

from banet_ops.demo import DemoConfig
from banet_ops.demo.weights import PACKAGED

from .helpers import QUERIES, analyst_database, psql, reader_login
from .test_analyst import test_ogrinfo_as_the_reader_lists_the_analyst_layers_without_warnings  # noqa: F401  (run here too, on this output)

CONFIG = DemoConfig(size=64)
REGION = CONFIG.region
DAYS = 80
TARGETS = (CONFIG.start + dt.timedelta(days=63), CONFIG.start + dt.timedelta(days=DAYS - 1))


@pytest.fixture(scope="module")
def pipeline(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from banet_ops.db.engine import get_engine
    from banet_ops.db.regions_repo import upsert_region
    from banet_ops.inference.run import run_inference
    from banet_ops.ingest.pipeline import ingest_day
    from banet_ops.retrain.synthetic_world import environment
    from banet_ops.settings import get_settings
    from banet_ops.synthetic import write_scenario

    root: Path = tmp_path_factory.mktemp("analyst-pipeline")
    scenario = write_scenario(root / "scenario", REGION, CONFIG.start, DAYS, seed=CONFIG.seed, formats=("l1b", "firms"), reburn=True)
    with analyst_database(pg_url) as url:
        env = {**scenario.pipeline_env(root, url), "BANET_WEIGHTS": str(PACKAGED), "BANET_DEVICE": "cpu"}
        with environment(env):
            settings = get_settings()
            upsert_region(get_engine(url), REGION)
            for day in scenario.day_list:
                if scenario.granules[day]:
                    ingest_day(REGION, day, settings=settings)
            runs = [run_inference(REGION, day, "nrt", settings=settings).publish.run_id for day in TARGETS]
        with reader_login(url) as reader:
            yield {"scenario": scenario, "runs": runs, "reader": reader}


@pytest.fixture(scope="module")
def reader(pipeline: dict[str, Any]) -> sa.URL:
    return pipeline["reader"]


@pytest.mark.parametrize("name", sorted(p.stem for p in QUERIES.glob("*.sql")))
def test_every_query_returns_rows_with_its_defaults_on_the_pipelines_output(pipeline: dict[str, Any], name: str) -> None:
    assert psql(pipeline["reader"], name), f"{name}.sql returned no rows with its defaults"


def test_cells_burned_twice_are_the_scenes_reburned_cells(pipeline: dict[str, Any]) -> None:
    scene = pipeline["scenario"].scene
    truth = scene.reburn_day >= 0
    rows = psql(pipeline["reader"], "cells_burned_twice")
    found = np.zeros(REGION.shape, bool)
    for r in rows:
        found[int(r[1]), int(r[2])] = True
    hits = int((found & truth).sum())
    assert hits >= 0.9 * truth.sum(), (hits, int(truth.sum()))
    # the others sit at the fires' edges, where the demo weights' burned area spills over by a cell or two
    near = ndimage.binary_dilation(truth, iterations=2)
    assert (found & near).sum() >= 0.95 * found.sum(), (int((found & near).sum()), int(found.sum()))
    # on the true re-burns: the first burn is the early fire's, the last the late fire's (a model's
    # dates: 95 % within two days, none further than the events' gap of five)
    first = np.datetime64(CONFIG.start, "D") + scene.burn_day.astype("timedelta64[D]")
    last = np.datetime64(CONFIG.start, "D") + scene.reburn_day.astype("timedelta64[D]")
    errors = np.array(
        [
            max(abs(int((np.datetime64(r[5]) - first[i, j]).astype(int))), abs(int((np.datetime64(r[6]) - last[i, j]).astype(int))))
            for r in rows
            if truth[i := int(r[1]), j := int(r[2])]
        ]
    )
    assert len(errors) == hits and (errors <= 2).mean() >= 0.95 and errors.max() <= 5, np.bincount(errors)


def test_the_early_and_the_late_fire_are_separate_events_with_plausible_durations(pipeline: dict[str, Any]) -> None:
    reader: sa.URL = pipeline["reader"]
    engine = sa.create_engine(reader.set(drivername="postgresql+psycopg"))
    with engine.connect() as conn:
        events = conn.execute(sa.text("SELECT id, first_burn_date, duration_days, n_cells FROM banet.fire_event ORDER BY n_cells DESC")).all()
        area = conn.execute(sa.text("SELECT sum(area_km2) FROM banet.fire_event")).scalar_one()
        cells = conn.execute(sa.text('SELECT sum(a) FROM (SELECT DISTINCT ON (event_id, "row", col) area_km2 a FROM banet.burned_cell) c')).scalar_one()
        orphans = conn.execute(
            sa.text("SELECT count(*) FROM banet.burned_cell c LEFT JOIN banet.fire_event e ON e.id = c.event_id WHERE e.id IS NULL")
        ).scalar_one()
        versions = conn.execute(sa.text("SELECT count(DISTINCT run_id) FROM banet.fire_event_version")).scalar_one()
    engine.dispose()
    # one row per fire across the two runs: the events' areas add up to their cells' (no double counting)
    assert area == pytest.approx(cells) and orphans == 0 and versions == 2
    big = [e for e in events if e.n_cells >= 50]
    early = [e for e in big if e.first_burn_date <= CONFIG.start + dt.timedelta(days=10)]
    late = [e for e in big if e.first_burn_date >= CONFIG.start + dt.timedelta(days=DAYS - 14)]
    assert early and late, big
    assert all(e.duration_days <= 15 for e in early + late), big  # synthetic fires burn for at most 8 days
