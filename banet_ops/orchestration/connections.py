"""Airflow Connections mapped onto the ``BANET_*`` settings (DESIGN §4).

Operators keep secrets in Airflow Connections (or a secrets backend); tasks turn them into the
same environment variables the CLI reads, so one code path serves the CLI, Airflow and pods.

| connection id    | fields used                                            | settings                  |
|------------------|--------------------------------------------------------|---------------------------|
| `banet_laads`    | password = Earthdata token; host = archive URL (opt.)  | BANET_EARTHDATA_TOKEN, BANET_ARCHIVE_URL |
| `banet_firms`    | password = MAP_KEY; host = FIRMS URL (opt.)            | BANET_FIRMS_MAP_KEY, BANET_FIRMS_URL |
| `banet_postgis`  | a postgres connection                                   | BANET_DATABASE_URL        |
| `banet_s3`       | login/password = access key; extra.endpoint_url        | AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL |
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol


class ConnectionLike(Protocol):
    host: str | None
    login: str | None
    password: str | None
    port: int | None
    schema: str | None
    conn_type: str | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...

    def get_uri(self) -> str: ...


CONNECTION_IDS = ("banet_laads", "banet_firms", "banet_postgis", "banet_s3")


def env_from_connections(get: Callable[[str], ConnectionLike | None]) -> dict[str, str]:
    """Environment variables for the connections that exist (``get`` returns None when absent)."""
    from banet_ops.db.engine import sqlalchemy_url

    env: dict[str, str] = {}
    if conn := get("banet_laads"):
        if conn.password:
            env["BANET_EARTHDATA_TOKEN"] = conn.password
        if conn.host:
            env["BANET_ARCHIVE_URL"] = conn.host
    if conn := get("banet_firms"):
        if conn.password:
            env["BANET_FIRMS_MAP_KEY"] = conn.password
        if conn.host:
            env["BANET_FIRMS_URL"] = conn.host
    if conn := get("banet_postgis"):
        env["BANET_DATABASE_URL"] = sqlalchemy_url(conn.get_uri())
    if conn := get("banet_s3"):
        if conn.login:
            env["AWS_ACCESS_KEY_ID"] = conn.login
        if conn.password:
            env["AWS_SECRET_ACCESS_KEY"] = conn.password
        if endpoint := conn.extra_dejson.get("endpoint_url"):
            env["AWS_ENDPOINT_URL"] = str(endpoint)
    return env


def airflow_connection_getter() -> Callable[[str], ConnectionLike | None]:
    """A getter backed by Airflow's connection lookup (secrets backends included); None outside Airflow."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # pragma: no cover - plain CLI use
        return lambda _conn_id: None

    def get(conn_id: str) -> ConnectionLike | None:
        try:
            return BaseHook.get_connection(conn_id)  # type: ignore[return-value]
        except Exception:
            return None

    return get


def apply_airflow_connections() -> dict[str, str]:
    """Overlay the environment of this process with the Airflow connections; returns what was set."""
    from banet_ops.settings import get_settings

    env = env_from_connections(airflow_connection_getter())
    os.environ.update(env)
    get_settings.cache_clear()
    return env
