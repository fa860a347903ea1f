"""The operator's journey, as a person runs it: demo → `make airflow` → UI → backfill → stop.

One scenario (a demo-sized run, shortened to 66 days of 64 × 64 cells so that it
fits the suite): ``banet-ops demo`` in a fresh ``BANET_HOME``; then ``python -m
banet_ops.localstack.airflow`` (what ``make airflow`` runs) with no extra variable but
``BANET_HOME``; the REST API must show the demo's DAGs active with every run, true durations and
non-empty task logs, and a healthy scheduler, dag-processor and triggerer; ``banet-ops backfill``
of two days from a fresh process completes and changes nothing; a paused DAG is refused; a
re-run that fails tells its reason first (CLI, run and task notes, log) and a fixed re-run clears it; a real
headless browser shows the runs in the grid view (PNG saved); SIGTERM leaves no process and
frees the port.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from banet_ops.localstack.airflow import free_port, processes_of
from banet_ops.orchestration.airflow_api import AirflowAPI

REPO = Path(__file__).resolve().parents[2]
DAYS, SIZE, EVERY = 66, 64, 8
START = dt.date(2024, 6, 1)
LAST = START + dt.timedelta(days=DAYS - 1)
INFER_DAYS = [START + dt.timedelta(days=63), LAST]  # every 8th day from day 63, plus the last
INGEST, NRT = "banet_ingest_DEMO", "banet_infer_nrt_DEMO"
SCREENSHOTS = Path(os.environ.get("BANET_SCREENSHOT_DIR") or tempfile.gettempdir())

pytestmark = [pytest.mark.airflow, pytest.mark.journey]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BANET_", "AIRFLOW"))}
    return {**env, "PYTHONPATH": str(REPO), "BANET_HOME": str(home), "PYTHONUNBUFFERED": "1", **extra}


def _cli(home: Path, *args: str, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "banet_ops.cli", *args], env=_env(home, **extra), capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def journey() -> Iterator[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix="banet-journey-"))
    home.chmod(0o755)  # the local cluster's `postgres` user reaches it
    proc = None
    try:
        started = time.time()
        demo = _cli(home, "demo", "--days", str(DAYS), "--size", str(SIZE), "--infer-every", str(EVERY), timeout=2400)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        port = free_port()
        log = (home / "make-airflow.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "banet_ops.localstack.airflow", "--port", str(port)], env=_env(home), stdout=log, stderr=subprocess.STDOUT
        )
        api = AirflowAPI(url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 300
        while True:
            try:
                api.dag(INGEST)
                break
            except Exception:
                assert proc.poll() is None, (home / "make-airflow.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "make airflow did not serve the demo's DAGs within 300 s"
                time.sleep(2)
        yield {"home": home, "api": api, "port": port, "proc": proc, "demo_started": started, "demo_out": demo.stdout}
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        from banet_ops.localstack.postgres import LocalPostgres

        LocalPostgres(home / "pg").destroy()
        shutil.rmtree(home, ignore_errors=True)


def step_the_ui_shows_the_demo_dags_active_with_every_run_and_readable_logs(journey: dict[str, Any]) -> None:
    api: AirflowAPI = journey["api"]
    for dag_id in (INGEST, NRT):
        dag = api.dag(dag_id)
        assert dag["is_stale"] is False and dag["is_paused"] is False, dag
    ingest_runs = api.dag_runs(INGEST)
    assert [r["logical_date"][:10] for r in ingest_runs] == [str(START + dt.timedelta(days=i)) for i in range(DAYS)]
    nrt_runs = api.dag_runs(NRT)
    assert sorted(r["conf"]["day"] for r in nrt_runs) == [str(d) for d in INFER_DAYS]
    for run in ingest_runs + nrt_runs:
        assert run["state"] == "success", run
        began = dt.datetime.fromisoformat(run["start_date"]).timestamp()
        took = dt.datetime.fromisoformat(run["end_date"]).timestamp() - began
        assert began >= journey["demo_started"] - 5 and 0 < took < 1800, run  # true times, not 2024
    last = ingest_runs[-1]
    text = api.task_log(INGEST, last["dag_run_id"], "discover", 1)
    assert f"DEMO {LAST}:" in text  # the day the run covers, in its own log
    infer_ti = next(t for t in api.task_instances(NRT, nrt_runs[-1]["dag_run_id"]) if t["task_id"] == "infer")
    assert api.task_log(NRT, nrt_runs[-1]["dag_run_id"], "infer", 1, infer_ti["map_index"]).strip()
    health = api.request("GET", "/api/v2/monitor/health")
    assert {k: v["status"] for k, v in health.items() if isinstance(v, dict) and "status" in v} == {
        "metadatabase": "healthy",
        "scheduler": "healthy",
        "triggerer": "healthy",
        "dag_processor": "healthy",
    }


def _cube_state(home: Path) -> tuple[str, list[tuple[Any, ...]]]:
    probe = (
        "from banet_ops.cube import latest_snapshot, day_records;"
        "print(latest_snapshot('DEMO'));"
        "import json; print(json.dumps(sorted((str(r.day), r.snapshot_id) for r in day_records('DEMO'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=_env(home), capture_output=True, text=True, timeout=300, check=True).stdout.splitlines()
    return out[0], [tuple(x) for x in json.loads(out[1])]


def step_a_two_day_backfill_from_a_fresh_terminal_completes_and_changes_nothing(journey: dict[str, Any]) -> None:
    home, api = journey["home"], journey["api"]
    before = _cube_state(home)
    d1, d2 = LAST - dt.timedelta(days=1), LAST
    url = {"BANET_AIRFLOW_URL": api.url}
    done = _cli(home, "backfill", "--region", "DEMO", "--start", str(d1), "--end", str(d2), "--reprocess", "completed", "--wait", timeout=900, **url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"2 run(s) of {INGEST} succeeded: {d1}..{d2}" in done.stdout
    assert _cube_state(home) == before  # idempotent: no new cube commit, the same days and snapshots
    runs = {r["logical_date"][:10]: r for r in api.dag_runs(INGEST)}
    for day in (d1, d2):
        run = runs[str(day)]
        assert run["run_type"] == "backfill" and run["state"] == "success"
        assert f"DEMO {day}:" in api.task_log(INGEST, run["dag_run_id"], "discover", _try(api, run))
        states = {t["task_id"]: t["state"] for t in api.task_instances(INGEST, run["dag_run_id"])}
        assert states["commit"] == "skipped"  # identical content: no commit, no asset event


def _nrt_run_of(api: AirflowAPI, day: dt.date) -> dict[str, Any]:
    return next(r for r in api.dag_runs(NRT) if r["conf"].get("day") == str(day))


def step_a_failed_rerun_tells_its_reason_and_a_fixed_rerun_clears_it(journey: dict[str, Any]) -> None:
    """An operator breaks the weights path in settings.env and re-runs the last NRT day: the CLI, the
    run's note, the task's note and the top of its log say why; fixed and re-run, the notes are clean."""
    home, api = journey["home"], journey["api"]
    settings_env = home / "settings.env"
    good = settings_env.read_text()
    rerun = ("backfill", "--region", "DEMO", "--dag", "nrt", "--start", str(LAST), "--end", str(LAST), "--reprocess", "completed", "--wait")
    try:
        settings_env.write_text("".join(f"BANET_WEIGHTS={home}/nowhere.pth\n" if ln.startswith("BANET_WEIGHTS=") else ln for ln in good.splitlines(True)))
        failed = _cli(home, *rerun, timeout=900, BANET_AIRFLOW_URL=api.url)
    finally:
        settings_env.write_text(good)
    said = [line for line in failed.stderr.splitlines() if line.strip() and not line.startswith(NRT)]  # what is not the progress bar
    assert failed.returncode == 1 and len(said) == 1 and said[0].startswith("banet-ops: error: "), failed.stdout + failed.stderr
    assert "nowhere.pth not found" in said[0] and f"{NRT}.infer for {LAST} failed" in said[0]
    run = _nrt_run_of(api, LAST)
    reason, origin = run["note"].splitlines()
    assert run["state"] == "failed" and reason.startswith(f"banet-ops: {NRT}.infer for {LAST} failed:") and origin == "banet-ops demo"
    infer = next(t for t in api.task_instances(NRT, run["dag_run_id"]) if t["task_id"] == "infer")
    assert infer["note"] == reason
    log = api.task_log(NRT, run["dag_run_id"], "infer", infer["try_number"], infer["map_index"]).splitlines()
    first = next(i for i, line in enumerate(log) if reason.split(" failed: ")[0] in line)
    assert first < next(i for i, line in enumerate(log) if "Traceback" in line or "Task failed with exception" in line)
    fixed = _cli(home, *rerun, timeout=900, BANET_AIRFLOW_URL=api.url)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    run = _nrt_run_of(api, LAST)
    assert run["state"] == "success" and run["note"] == "banet-ops demo"
    assert all(not t["note"] for t in api.task_instances(NRT, run["dag_run_id"]))


def _try(api: AirflowAPI, run: dict[str, Any]) -> int:
    return int(next(t["try_number"] for t in api.task_instances(INGEST, run["dag_run_id"]) if t["task_id"] == "discover"))


def step_a_paused_dag_is_refused_in_one_line_and_nothing_is_created(journey: dict[str, Any]) -> None:
    home, api = journey["home"], journey["api"]
    api.set_paused(INGEST, True)
    try:
        refused = _cli(home, "backfill", "--region", "DEMO", "--start", str(START), "--end", str(START), BANET_AIRFLOW_URL=api.url)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1 and "paused" in refused.stderr and "--unpause" in refused.stderr, refused.stderr
        assert api.active_backfills(INGEST) == []
        missing = _cli(home, "backfill", "--region", "NOPE", "--start", str(START), "--end", str(START), BANET_AIRFLOW_URL=api.url)
        assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "banet_ingest_NOPE" in missing.stderr
        lower = _cli(home, "backfill", "--region", "demo", "--start", str(START), "--end", str(START), BANET_AIRFLOW_URL=api.url)
        assert lower.returncode == 1 and lower.stderr.count("\n") == 1 and f"found {INGEST}: " in lower.stderr, lower.stderr
    finally:
        api.set_paused(INGEST, False)


def step_the_grid_view_shows_the_runs_in_a_real_browser(journey: dict[str, Any]) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1920,1080"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "chromium"
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    links = f"a[href*='/dags/{INGEST}/runs/']"
    try:
        driver.get(f"{journey['api'].url}/dags/{INGEST}")
        WebDriverWait(driver, 180).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid^='grid-backfill__']")) >= 10 * 5)
        time.sleep(3)  # let the grid finish drawing before the picture
        shot = SCREENSHOTS / "banet-journey-grid.png"
        driver.save_screenshot(str(shot))
        run_ids = {str(a.get_attribute("href")).split("/runs/")[1].split("/")[0] for a in driver.find_elements(By.CSS_SELECTOR, links)}
        latest = [f"backfill__{LAST + dt.timedelta(days=1 - i)}T00:00:00+00:00" for i in range(10)]  # runs are named by run_after
        assert set(latest) <= run_ids  # the grid shows the latest ten runs, each with its five task cells
        cells = {str(c.get_attribute("data-testid")) for c in driver.find_elements(By.CSS_SELECTOR, "[data-testid^='grid-backfill__']")}
        assert {f"grid-{latest[0]}-{task}" for task in ("discover", "fetch_viirs", "fetch_firms", "grid_composite", "commit")} <= cells
        assert "Backfill in progress" not in driver.page_source
        assert shot.stat().st_size > 20_000
        print(f"grid view screenshot: {shot}")
    finally:
        driver.quit()


def step_sigterm_stops_every_airflow_process_and_frees_the_port(journey: dict[str, Any]) -> None:
    proc: subprocess.Popen[bytes] = journey["proc"]
    airflow_home = journey["home"] / "airflow"
    assert processes_of(airflow_home)  # the components (and their children) run now
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    assert processes_of(airflow_home) == []
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", journey["port"])) != 0


def test_operator_journey(journey: dict[str, Any]) -> None:
    """One test, so that the steps run in order on one worker (and the demo once)."""
    step_the_ui_shows_the_demo_dags_active_with_every_run_and_readable_logs(journey)
    step_a_two_day_backfill_from_a_fresh_terminal_completes_and_changes_nothing(journey)
    step_a_paused_dag_is_refused_in_one_line_and_nothing_is_created(journey)
    step_a_failed_rerun_tells_its_reason_and_a_fixed_rerun_clears_it(journey)
    if shutil.which("chromium") and shutil.which("chromedriver"):
        step_the_grid_view_shows_the_runs_in_a_real_browser(journey)
    else:
        print("chromium + chromium-driver not installed (scripts/install.sh installs them as root): no screenshot")
    step_sigterm_stops_every_airflow_process_and_frees_the_port(journey)
