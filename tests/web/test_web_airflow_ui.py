"""The operator's view: a real Airflow api-server, its navigation, the Burned areas page in it."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from banet_ops.localstack.airflow import LocalAirflow, free_port, start

from .browser import choose_region, wait_for
from .scene import TARGETS


@pytest.fixture(scope="module")
def api_server(reader_url: str, web_scene) -> Iterator[LocalAirflow]:
    """The api-server alone (plugins from plugins/), reading the map data as the reader login."""
    home = Path(tempfile.mkdtemp(prefix="banet-map-airflow-"))
    env = {"BANET_WEB_DATABASE_URL": reader_url, "AIRFLOW__API_AUTH__JWT_SECRET": "banet-map-ui-test-" + "0" * 64}
    deployment = start(home, port=free_port(), components=("api-server",), extra_env=env)
    yield deployment
    deployment.stop()


def test_operator_clicks_burned_areas_and_sees_the_fires(browser, api_server, web_scene, tmp_path: Path):
    driver = browser
    driver.get(f"{api_server.url}/")  # the local deployment logs every visitor in as admin
    link = None
    deadline = time.monotonic() + 60
    while link is None and time.monotonic() < deadline:
        found = driver.find_elements("css selector", "a[href$='plugin/burned-areas']")
        link = found[0] if found else None
        time.sleep(0.5)
    assert link is not None, "no Burned areas entry in the Airflow navigation"
    link.click()
    frame = wait_for(driver, "return document.querySelector('iframe[src$=\"/banet-map/\"]')")
    driver.switch_to.frame(frame)
    wait_for(driver, "return window.banetMap && window.banetMap.ready", timeout_s=90)
    choose_region(driver, web_scene.region.name)
    wait_for(driver, f"return document.getElementById('date-label').textContent === '{TARGETS[-1]}'")
    wait_for(driver, "return document.getElementById('event-count').textContent === '(4 of 4 on the map)'")
    driver.execute_script("document.querySelector('#events li:nth-child(2)').click()")
    wait_for(driver, "return document.querySelectorAll('#growth span').length > 3")
    # under Airflow, calendar days link to the ingest DAG's runs in the top window
    link = driver.execute_script("return document.querySelector('#calendar a.day').getAttribute('href')")
    assert link.startswith(f"{api_server.url}/dags/banet_ingest_{web_scene.region.name}/runs")
    driver.switch_to.default_content()
    shot = tmp_path / "airflow-burned-areas.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
