"""End to end through Airflow (``dag.test``, local backend): ingest DAG runs fill the cube, the NRT DAG maps it.

A 48 x 48 synthetic region over 66 days (fires in the last week).  The first 58 days are ingested
by ``banet-ops ingest``'s pipeline (faster; it also gives a reference the DAG must reproduce), the
last 8 days through ``banet_ingest_E2E``; then ``banet_infer_nrt_E2E`` runs ``banet-ops infer`` in a
subprocess and publishes.  Expected numbers come from the cube, the COGs and the scenario.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from banet_ops.regions import Region
from dags.airflow_helpers import banet_env, parse_dags, run_dag, task_states

REGION = Region(name="E2E", bbox=(-8.0, 40.0, -7.52, 40.48), pixel_size=0.01)  # 48 x 48 cells
START = dt.date(2024, 6, 1)
DAYS = 66
SEED = 2  # fires burn on 2024-07-29 .. 08-02
BY_DAG = 8  # the last days, ingested through the DAG
TARGET = START + dt.timedelta(days=DAYS - 1)
THRESHOLD = 0.35  # the initialised (untrained) model's confidence is about 0.15-0.4

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, db_url: str, airflow_db: str) -> Iterator[dict[str, Any]]:
    """Scenario, settings and parsed DAGs of the module; the first days already ingested by the pipeline."""
    from banet_ops.ingest.pipeline import ingest_day
    from banet_ops.models.weights import init_weights
    from banet_ops.settings import get_settings
    from banet_ops.synthetic import write_scenario

    root = tmp_path_factory.mktemp("e2e")
    scenario = write_scenario(root / "scenario", REGION, START, DAYS, seed=SEED)
    weights = root / "weights.pth"
    init_weights(weights, seed=0)
    env = {
        **scenario.pipeline_env(root, db_url),
        "BANET_WEIGHTS": str(weights),
        "BANET_DEVICE": "cpu",
        "BANET_TILE_SIZE": "64",
        "BANET_TILE_OVERLAP": "16",
        # an untrained (initialised) model: a low threshold makes it map some cells
        "BANET_BURN_THRESHOLD": str(THRESHOLD),
    }
    with banet_env(env):
        settings = get_settings()
        for i in range(DAYS - BY_DAG):
            day = START + dt.timedelta(days=i)
            if scenario.granules[day]:  # a day without any granule is "not yet available" for the DAG
                ingest_day(REGION, day, settings=settings)
        dags = parse_dags()
        # the real policy retries a day that is not yet available for hours; here it fails at once
        dags[f"banet_ingest_{REGION.name}"].task_dict["discover"].retries = 0
        yield {"scenario": scenario, "dags": dags, "root": root, "db_url": db_url}


def _cube_days() -> dict[dt.date, str]:
    from banet_ops.cube import day_records

    return {r.day: r.snapshot_id for r in day_records(REGION.name)}


def _rows(db_url: str, sql: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def test_ingest_dag_fills_the_cube_day_by_day(world: dict[str, Any]) -> None:
    dag = world["dags"][f"banet_ingest_{REGION.name}"]
    scenario = world["scenario"]
    days = [START + dt.timedelta(days=i) for i in range(DAYS - BY_DAG, DAYS) if scenario.granules[START + dt.timedelta(days=i)]]
    gaps = [START + dt.timedelta(days=i) for i in range(DAYS - BY_DAG, DAYS) if not scenario.granules[START + dt.timedelta(days=i)]]
    before = _cube_days()
    for day in gaps:  # no overpass covered the region: for the DAG the day is not (yet) available
        dr = run_dag(dag, day)
        assert task_states(dr)["discover"] == ("failed", 1)
    for day in days:
        dr = run_dag(dag, day)
        states = task_states(dr)
        assert str(dr.state) == "success", states
        assert {k: s for k, (s, _n) in states.items()} == dict.fromkeys(("discover", "fetch_viirs", "fetch_firms", "grid_composite", "commit"), "success")
        # the asset event of the commit names the day and the snapshot it wrote
        [event] = _asset_events(f"cube/{REGION.name}", dr.run_id)
        assert event["day"] == day.isoformat() and event["snapshot"] == _cube_days()[day]

    after = _cube_days()
    assert set(after) - set(before) == set(days)
    assert all(after[d] == before[d] for d in before)  # earlier days untouched
    rows = _rows(world["db_url"], "SELECT day, snapshot_id, status, granules FROM banet.cube_day WHERE region = :r", r=REGION.name)
    assert {r.day: r.snapshot_id for r in rows} == after
    recorded = {r.day: r for r in rows}
    for day in days:
        expected = {name for name in scenario.granules[day] if not name.startswith("NPP_VMAES_L1")}  # legacy files are skipped when L1B exists
        used = set(recorded[day].granules)
        assert expected <= used and all(g.startswith(("VNP", "VJ1", "SUOMI_VIIRS", "VIIRS_NOAA20")) for g in used)
        granule_rows = _rows(world["db_url"], "SELECT file_name, status FROM banet.granule WHERE day = :d AND file_name = ANY(:names)", d=day, names=list(used))
        assert {(g.file_name, g.status) for g in granule_rows} == {(g, "ingested") for g in used}


def test_dag_reproduces_the_cli_ingestion_exactly(world: dict[str, Any]) -> None:
    """A day the pipeline already ingested: the DAG builds identical content, so commit writes nothing."""
    day = next(START + dt.timedelta(days=i) for i in range(10, 40) if world["scenario"].granules[START + dt.timedelta(days=i)])
    dag = world["dags"][f"banet_ingest_{REGION.name}"]
    before = _cube_days()
    row_before = _rows(world["db_url"], "SELECT snapshot_id, committed_at FROM banet.cube_day WHERE region = :r AND day = :d", r=REGION.name, d=day)
    dr = run_dag(dag, day)
    states = task_states(dr)
    assert str(dr.state) == "success"
    assert states["grid_composite"][0] == "success" and states["commit"][0] == "skipped"
    assert _asset_events(f"cube/{REGION.name}", dr.run_id) == []  # no event: inference is not triggered again
    assert _cube_days() == before
    assert _rows(world["db_url"], "SELECT snapshot_id, committed_at FROM banet.cube_day WHERE region = :r AND day = :d", r=REGION.name, d=day) == row_before


def test_a_day_not_yet_in_the_archive_fails_its_try_and_commits_nothing(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from banet_ops.errors import RetryableError
    from banet_ops.orchestration import dag_support

    lines: list[str] = []
    monkeypatch.setattr(dag_support, "log", SimpleNamespace(error=lambda msg, *a: lines.append(msg % a if a else msg)))
    dag = world["dags"][f"banet_ingest_{REGION.name}"]
    # retryable: the real policy would retry (retries are 0 in this module, see `world`)
    assert dag.task_dict["discover"].retry_policy.evaluate(RetryableError("x"), 1, 5).action.value == "retry"
    day = TARGET + dt.timedelta(days=1)
    dr = run_dag(dag, day)
    states = task_states(dr)
    assert str(dr.state) == "failed"
    assert states["discover"] == ("failed", 1) and states["commit"][0] == "upstream_failed"
    assert day not in _cube_days()
    assert _rows(world["db_url"], "SELECT 1 FROM banet.cube_day WHERE region = :r AND day = :d", r=REGION.name, d=day) == []
    # the failure callback's one line: which task, which interval, the error class and its reason
    [line] = lines
    assert line.startswith(f"banet-ops: banet_ingest_{REGION.name}.discover for {day.isoformat()}")
    assert "RetryableError" in line and "not yet available" in line and "\n" not in line


def test_nrt_dag_maps_the_window_and_publishes(world: dict[str, Any]) -> None:
    import rasterio
    from scipy import ndimage

    from banet_ops.cube import latest_snapshot
    from banet_ops.product import NO_BURN

    if TARGET not in _cube_days():
        pytest.skip("needs test_ingest_dag_fills_the_cube_day_by_day")
    dag = world["dags"][f"banet_infer_nrt_{REGION.name}"]
    assert [t.task_id for t in dag.tasks] == ["targets", "infer"]
    dr = run_dag(dag, conf={"day": TARGET.isoformat()})
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert states["infer[0]"][0] == "success"

    [run] = _rows(
        world["db_url"],
        "SELECT * FROM banet.run WHERE region = :r AND product = 'nrt' AND target_date = :d",
        r=REGION.name, d=TARGET,
    )  # fmt: skip
    assert run.status == "succeeded"
    assert run.cube_snapshot == latest_snapshot(REGION.name)
    assert run.window_start == TARGET - dt.timedelta(days=63) and run.window_end == TARGET
    assert run.tiling == "custom:64/16/uniform/baseline"  # the published preset, tile/overlap overridden
    assert 48 <= run.observed_days == len([d for d in _cube_days() if run.window_start <= d <= TARGET])

    with rasterio.open(run.outputs["burn_date"]) as src:
        doy = src.read(1)
        assert src.shape == REGION.shape and src.tags()["BANET_CUBE_SNAPSHOT"] == run.cube_snapshot
        assert src.tags()["BANET_TILING"] == run.tiling and src.tags()["BANET_OBSERVED_DAYS"] == str(run.observed_days)
    with rasterio.open(run.outputs["confidence"]) as src:
        confidence = src.read(1)
    burned = doy > NO_BURN  # YYYYDDD; 0 = not burned, -1 = not observed
    n_burned = int(burned.sum())
    assert 0 < n_burned < REGION.shape[0] * REGION.shape[1], "the initialised model maps some cells at this threshold"
    assert np.all(confidence[burned] >= THRESHOLD)  # (a cell above it may still be unburned: burn date on the first day)
    assert run.n_burned_cells == n_burned

    cells = _rows(world["db_url"], 'SELECT "row", "col", burn_date FROM banet.burned_cell WHERE run_id = :id', id=run.id)
    assert len(cells) == n_burned
    for cell in cells:
        assert burned[cell.row, cell.col] and doy[cell.row, cell.col] == cell.burn_date.year * 1000 + cell.burn_date.timetuple().tm_yday
        assert run.window_start < cell.burn_date <= TARGET  # never on the window's first day

    _labels, n_patches = ndimage.label(burned, structure=np.ones((3, 3), bool))
    events = _rows(world["db_url"], "SELECT n_cells, first_burn_date, last_burn_date FROM banet.fire_event WHERE run_id = :id", id=run.id)
    assert len(events) == run.n_events >= n_patches  # events in space and time: a patch may hold fires days apart
    assert sum(e.n_cells for e in events) == n_burned
    assert all(e.first_burn_date <= e.last_burn_date for e in events)


def test_nrt_dag_skips_an_incomplete_window_with_the_reason(world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    day = START + dt.timedelta(days=30)  # its window holds at most 31 ingested days, fewer than 48
    if day not in _cube_days():
        pytest.skip("needs test_ingest_dag_fills_the_cube_day_by_day")
    dag = world["dags"][f"banet_infer_nrt_{REGION.name}"]
    with caplog.at_level("INFO"):
        dr = run_dag(dag, conf={"day": day.isoformat()})
    states = task_states(dr)
    assert states["infer[0]"][0] == "skipped", states
    assert "BANET_MIN_WINDOW_DAYS" in caplog.text
    assert _rows(world["db_url"], "SELECT 1 FROM banet.run WHERE region = :r AND product = 'nrt' AND target_date = :d", r=REGION.name, d=day) == []


def test_nrt_dag_maps_with_a_promoted_unet_convlstm(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A promoted zoo model runs in the NRT DAG with no code change: BANET_WEIGHTS unset, the registry's production model is used."""
    from banet_ops import registry
    from banet_ops.db.engine import get_engine
    from banet_ops.inference.run import run_inference
    from banet_ops.models.weights import init_weights
    from banet_ops.settings import get_settings

    if TARGET not in _cube_days():
        pytest.skip("needs test_ingest_dag_fills_the_cube_day_by_day")
    engine = get_engine(world["db_url"])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM banet.model"))  # the session database holds other tests' models
    weights = world["root"] / "unet_convlstm.pth"
    init_weights(weights, seed=1, prior=0.05, architecture="unet_convlstm", config={"width": 4, "depth": 2})
    rec = registry.register_candidate(engine, weights, name="unet_convlstm", metrics={"validation": {"vs-e2e": {"dice": 0.8}}})
    assert rec.architecture == "unet_convlstm" and registry.gate(engine, rec.id, val_set_id="vs-e2e").promoted
    monkeypatch.delenv("BANET_WEIGHTS")
    get_settings.cache_clear()
    try:
        dr = run_dag(world["dags"][f"banet_infer_nrt_{REGION.name}"], conf={"day": TARGET.isoformat()})
        states = task_states(dr)
        assert str(dr.state) == "success" and states["infer[0]"][0] == "success", states
        [run] = _rows(
            world["db_url"],
            "SELECT * FROM banet.run WHERE region = :r AND product = 'nrt' AND target_date = :d AND :id = ANY(model_ids)",
            r=REGION.name, d=TARGET, id=rec.id,
        )  # fmt: skip
        assert run.status == "succeeded" and list(run.model_ids) == [rec.id]
        direct = run_inference(REGION, TARGET, "nrt", weights=[weights], device="cpu", publish=False).product
        assert 0 < run.n_burned_cells == int(direct.burned.sum()) < REGION.shape[0] * REGION.shape[1]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM banet.model WHERE id = :id"), {"id": rec.id})
        get_settings.cache_clear()


def _asset_events(asset_name: str, run_id: str) -> list[dict[str, Any]]:
    """``extra`` of the asset events that the run ``run_id`` emitted for ``asset_name``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = session.query(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        events = query.filter(AssetModel.name == asset_name, AssetEvent.source_run_id == run_id).all()
        return [dict(e.extra or {}) for e in events]
