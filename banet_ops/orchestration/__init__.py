"""Orchestration glue: what Airflow needs to run banet-ops (Kubernetes pod specs, task helpers).

Everything here is importable without Airflow; Airflow and the Kubernetes client are imported
lazily inside the functions that build operator arguments.
"""
