"""A small client of the Airflow 3 REST API (``/api/v2``), for the CLI, the demo and the local stack.

No Airflow import: it talks HTTP with the standard library.  Authentication follows the
settings (``BANET_AIRFLOW_URL``, ``BANET_AIRFLOW_TOKEN``, or ``BANET_AIRFLOW_USERNAME`` +
``BANET_AIRFLOW_PASSWORD``); with none of them it asks ``GET /auth/token``, which the local
deployment (simple auth manager, every user an admin, loopback only) answers without credentials.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from banet_ops.errors import AuthenticationError, ConfigError, PermanentError, RetryableError

DEFAULT_URL = "http://127.0.0.1:8080"


class AirflowUnavailableError(RetryableError, ConnectionError):
    """The Airflow api-server did not answer."""


class AirflowRefusedError(PermanentError):
    """The api-server answered an error status; ``code`` is the HTTP status, the message its detail."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def reason_of(exc: urllib.error.HTTPError) -> str:
    """The ``detail`` of an Airflow error answer, on one line."""
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    detail = body.get("detail", exc.reason) if isinstance(body, dict) else exc.reason
    return " ".join(str(detail).split())


@dataclass
class AirflowAPI:
    """REST calls against one api-server; the token is fetched once and renewed on a 401."""

    url: str = DEFAULT_URL
    token: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    _fetched: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls) -> AirflowAPI:
        from banet_ops.settings import get_settings

        s = get_settings()
        return cls(
            url=s.airflow_url.rstrip("/"),
            token=s.airflow_token.get_secret_value() if s.airflow_token else None,
            username=s.airflow_username,
            password=s.airflow_password.get_secret_value() if s.airflow_password else None,
        )

    def _open(self, req: urllib.request.Request, timeout: float) -> bytes:
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the configured api-server
                return bytes(resp.read())
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError) as exc:
            raise AirflowUnavailableError(
                f"expected the Airflow api-server at {self.url}, found no answer ({getattr(exc, 'reason', exc)})",
                hint="start it with `make airflow`, or set BANET_AIRFLOW_URL",
            ) from None

    def bearer(self, *, renew: bool = False) -> str:
        """The bearer token: the configured one, else one from ``/auth/token``."""
        if self.token:
            return self.token
        if self._fetched and not renew:
            return self._fetched
        if self.username and self.password:
            data = json.dumps({"username": self.username, "password": self.password}).encode()
            req = urllib.request.Request(f"{self.url}/auth/token", data=data, method="POST", headers={"Content-Type": "application/json"})  # noqa: S310
        else:
            req = urllib.request.Request(f"{self.url}/auth/token")  # noqa: S310 - the configured api-server
        try:
            raw = self._open(req, 30)
        except urllib.error.HTTPError as exc:
            raise AuthenticationError(
                f"expected a token from {self.url}/auth/token, found HTTP {exc.code}: {reason_of(exc)}",
                hint="set BANET_AIRFLOW_TOKEN, or BANET_AIRFLOW_USERNAME and BANET_AIRFLOW_PASSWORD",
            ) from None
        self._fetched = str(json.loads(raw)["access_token"])
        return self._fetched

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, attempts: int = 6) -> Any:
        """One call; a 503 (a busy metadata database; nothing was written) is retried, a 401 renews the token."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(attempts):
            req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310 - the configured api-server
            req.add_header("Authorization", f"Bearer {self.bearer(renew=attempt > 0 and not self.token)}")
            req.add_header("Content-Type", "application/json")
            try:
                raw = self._open(req, 60)
            except urllib.error.HTTPError as exc:
                if exc.code not in (401, 503) or attempt == attempts - 1:
                    raise AirflowRefusedError(f"{method} {path}: HTTP {exc.code}: {reason_of(exc)}", exc.code) from None
                time.sleep(1.0 + attempt)
                continue
            except AirflowUnavailableError as exc:
                # a busy api-server that timed out on a read may answer the next time; one that refused will not
                if method != "GET" or "timed out" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(1.0 + attempt)
                continue
            return json.loads(raw) if raw else None
        return None

    # --- the calls the project uses --------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any]:
        """The DAG, or a one-line error when the api-server does not know it."""
        try:
            return dict(self.request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}"))
        except AirflowRefusedError as exc:
            if exc.code == 404:
                other_case = self._same_but_case(dag_id)
                raise ConfigError(
                    f"expected DAG {dag_id} at {self.url}, found none",
                    hint=f"found {', '.join(other_case)}: DAG ids and region names are case-sensitive"
                    if other_case
                    else "is its region file in BANET_REGIONS_DIR of that deployment? (`banet-ops regions list --files`)",
                ) from None
            raise

    def _same_but_case(self, dag_id: str) -> list[str]:
        """The DAG ids that differ from ``dag_id`` only in case (the api-server's id search ignores case); none if it cannot say."""
        try:
            found = self.request("GET", f"/api/v2/dags?dag_id_pattern={urllib.parse.quote(dag_id)}&limit=100", attempts=1)
        except (PermanentError, RetryableError, ValueError):
            return []
        return sorted(d["dag_id"] for d in (found or {}).get("dags", []) if d["dag_id"].lower() == dag_id.lower())

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request("PATCH", f"/api/v2/dags/{urllib.parse.quote(dag_id)}", {"is_paused": paused})

    def dag_runs(self, dag_id: str, **filters: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"limit": "1000", "order_by": "logical_date", **filters})
        return list(self.request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns?{query}")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances"
        return list(self.request("GET", path)["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The text of one try's log, as the UI shows it."""
        path = f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances/{task_id}/logs/{try_number}?map_index={map_index}"
        body = self.request("GET", path)
        content = body.get("content", "") if isinstance(body, dict) else body
        if isinstance(content, list):
            return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def backfill(self, dag_id: str, from_date: str, to_date: str, *, reprocess_behavior: str = "none", max_active_runs: int = 2) -> dict[str, Any]:
        """Create a backfill over logical dates ``from_date``..``to_date`` (ISO datetimes)."""
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date, "reprocess_behavior": reprocess_behavior, "max_active_runs": max_active_runs}
        return dict(self.request("POST", "/api/v2/backfills", body))

    def get_backfill(self, backfill_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v2/backfills/{backfill_id}"))

    def active_backfills(self, dag_id: str) -> list[dict[str, Any]]:
        """Backfills of ``dag_id`` not completed yet (Airflow allows one at a time per DAG)."""
        found = self.request("GET", f"/api/v2/backfills?{urllib.parse.urlencode({'dag_id': dag_id, 'limit': '100'})}")["backfills"]
        return [b for b in found if not b.get("completed_at")]

    def delete_run(self, dag_id: str, run_id: str) -> None:
        self.request("DELETE", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}")

    def cancel_backfill(self, backfill_id: int) -> None:
        self.request("PUT", f"/api/v2/backfills/{backfill_id}/cancel")

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict[str, Any], *, note: str | None = None) -> dict[str, Any]:
        """A manual run; one already there for that logical date is cleared (re-run) instead."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf}
        if note:
            body["note"] = note
        try:
            return dict(self.request("POST", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns", body))
        except AirflowRefusedError as exc:
            if exc.code != 409 or logical_date is None:
                raise
        existing = [r for r in self.dag_runs(dag_id) if r.get("logical_date") and r["logical_date"][:19] == logical_date[:19]]
        if not existing:
            raise ConfigError(f"expected a run of {dag_id} at {logical_date} after a conflict, found none")
        run_id = existing[0]["dag_run_id"]
        self.request("POST", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/{urllib.parse.quote(run_id)}/clear", {"dry_run": False})
        return existing[0]
