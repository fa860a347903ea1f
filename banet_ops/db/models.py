"""The ``banet.model`` table: the registry's rows (the weights and the gate live in :mod:`banet_ops.registry`).

Functions take an SQLAlchemy connection: the caller owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass
class ModelRecord:
    """One row of ``banet.model``."""

    id: str
    name: str
    sha256: str
    weights_uri: str
    status: str
    config: dict[str, Any]
    data_window: dict[str, Any] | None
    metrics: dict[str, Any] | None
    created_at: dt.datetime
    promoted_at: dt.datetime | None
    promotion_reason: str | None
    architecture: str = "banet"
    arch_config: dict[str, Any] | None = None

    def validation_metrics(self, val_set_id: str) -> dict[str, Any] | None:
        return ((self.metrics or {}).get("validation") or {}).get(val_set_id)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["promoted_at"] = self.promoted_at.isoformat() if self.promoted_at else None
        return d


_COLUMNS = "id, name, sha256, weights_uri, status, config, data_window, metrics, created_at, promoted_at, promotion_reason, architecture, arch_config"


def _record(row: Any) -> ModelRecord:
    return ModelRecord(**dict(row._mapping))


def insert_candidate(
    conn: Connection,
    *,
    model_id: str,
    name: str,
    sha256: str,
    weights_uri: str,
    config: dict[str, Any],
    data_window: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
    architecture: str,
    arch_config: dict[str, Any],
) -> None:
    """Record a ``candidate`` (nothing when a model with the same sha256 exists)."""
    conn.execute(
        sa.text(
            "INSERT INTO banet.model (id, name, sha256, weights_uri, status, config, data_window, metrics, architecture, arch_config) "
            "VALUES (:id, :name, :sha, :uri, 'candidate', CAST(:config AS jsonb), CAST(:window AS jsonb), CAST(:metrics AS jsonb), "
            ":arch, CAST(:arch_config AS jsonb)) "
            "ON CONFLICT (sha256) DO NOTHING"
        ),
        {
            "id": model_id,
            "name": name,
            "sha": sha256,
            "uri": weights_uri,
            "config": json.dumps(config),
            "window": json.dumps(data_window) if data_window is not None else None,
            "metrics": json.dumps(metrics) if metrics is not None else None,
            "arch": architecture,
            "arch_config": json.dumps(arch_config),
        },
    )


def by_sha256(conn: Connection, sha256: str) -> ModelRecord:
    """The model whose weights hash to ``sha256`` (it must exist)."""
    return _record(conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model WHERE sha256 = :sha"), {"sha": sha256}).one())


def by_id(conn: Connection, model_id: str) -> ModelRecord | None:
    """The model ``model_id``, or None."""
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model WHERE id = :id"), {"id": model_id}).one_or_none()
    return None if row is None else _record(row)


def merge_metrics(conn: Connection, model_id: str, val_set_id: str, metrics: dict[str, Any]) -> None:
    """Set ``metrics["validation"][val_set_id]`` of the model (replacing earlier ones for that set)."""
    conn.execute(
        sa.text(
            "UPDATE banet.model SET metrics = jsonb_set(coalesce(metrics, '{}'::jsonb), '{validation}', "
            "coalesce(metrics->'validation', '{}'::jsonb) || jsonb_build_object(CAST(:vs AS text), CAST(:m AS jsonb))) WHERE id = :id"
        ),
        {"id": model_id, "vs": val_set_id, "m": json.dumps(metrics)},
    )


def all_models(conn: Connection, status: str | None = None) -> list[ModelRecord]:
    """Registered models, newest first (optionally of one status)."""
    where = "WHERE status = :status" if status else ""
    rows = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model {where} ORDER BY created_at DESC, id"), {"status": status}).all()
    return [_record(r) for r in rows]


def production(conn: Connection) -> ModelRecord | None:
    """The production model, or None."""
    row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model WHERE status = 'production'")).one_or_none()
    return None if row is None else _record(row)


def lock_models(conn: Connection) -> None:
    """Serialise promotions until the transaction ends (readers are not blocked)."""
    conn.execute(sa.text("LOCK TABLE banet.model IN SHARE ROW EXCLUSIVE MODE"))


def make_production(conn: Connection, model_id: str, reason: str) -> None:
    """Retire the production model and promote ``model_id`` (call under :func:`lock_models`)."""
    conn.execute(sa.text("UPDATE banet.model SET status = 'retired' WHERE status = 'production'"))
    conn.execute(
        sa.text("UPDATE banet.model SET status = 'production', promoted_at = now(), promotion_reason = :reason WHERE id = :id"),
        {"id": model_id, "reason": reason},
    )
