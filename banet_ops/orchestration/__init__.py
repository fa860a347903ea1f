"""Orchestration: what the DAGs call, between Airflow and the domain packages.

Task bodies (``tasks``, ``retrain_tasks``) and the backend choice (``backend``) import no Airflow;
Airflow Connections are read lazily when a task runs under Airflow (``connections``).
``dag_support`` is the Airflow side: defaults, callbacks, deadlines, Params and the pod task.
The import contracts in ``.importlinter`` keep it so.
"""
