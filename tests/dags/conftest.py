"""Fixtures of the DAG tests (helpers live in :mod:`dags.airflow_helpers`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """The session's Airflow metadata DB (SQLite under the conftest's AIRFLOW_HOME), migrated once."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
