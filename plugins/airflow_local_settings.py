"""Airflow local settings of banet-ops (Airflow imports this module early in every process).

With ``BANET_AIRFLOW_PRELOAD=1`` (set by the local deployment, ``banet_ops.localstack.airflow``)
the scheduler imports the task modules and their heavy libraries before its LocalExecutor forks
the workers, so each task process inherits them instead of importing them again: a task of
``banet_ingest`` then costs its work, not seconds of imports.  Nothing here imports Airflow.
"""

from __future__ import annotations

import importlib
import os

PRELOAD = (
    "numpy",
    "xarray",
    "zarr",
    "sqlalchemy",
    "banet_ops.orchestration.tasks",
    "banet_ops.sources",
    "banet_ops.ingest.pipeline",
    "banet_ops.cube",
    "banet_ops.cube.storage",
    "banet_ops.cube.reader",
    "banet_ops.db.engine",
)

if os.environ.get("BANET_AIRFLOW_PRELOAD") == "1":
    for _name in PRELOAD:
        importlib.import_module(_name)
