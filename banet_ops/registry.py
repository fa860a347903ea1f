"""The model registry (table ``banet.model``) and the promotion gate.

Every trained model is registered as a ``candidate``: its weight file is copied, by content
hash, to ``<products root>/models/<sha256>.pth`` (a local folder or ``s3://``), and its config,
data window and metrics are recorded.  Metrics are kept per validation set
(``metrics["validation"][<val_set_id>]``) so two models are only ever compared on the same
held-out region-months.  At most one model is ``production`` (a partial unique index enforces
it); promoting one retires the previous one in the same transaction.  Inference uses
:func:`production_weights` unless told otherwise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from banet_ops.errors import IntegrityError, ModelError, StorageError, ValidationError
from banet_ops.settings import Settings, get_settings
from banet_ops.util import atomic_path

log = logging.getLogger(__name__)

Status = Literal["candidate", "production", "retired"]
#: metrics where higher is better; the others (errors, |bias|) are better when lower
HIGHER_IS_BETTER = {"dice", "f1", "date_within_0", "date_within_1", "date_within_2", "date_within_4"}


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


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- weight storage ------------------------------------------------------------------------------


def models_root(settings: Settings | None = None) -> str:
    """Where registered weight files live: ``<products root>/models``."""
    return (settings or get_settings()).resolved_products_root.rstrip("/") + "/models"


def _s3_client() -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def store_weights(path: str | Path, sha256: str, settings: Settings | None = None) -> str:
    """Copy a weight file to the models root under its hash (idempotent); returns its URI."""
    root = models_root(settings)
    name = f"{sha256}.pth"
    if root.startswith("s3://"):
        uri = f"{root}/{name}"
        bucket, key = _split_s3(uri)
        try:
            _s3_client().upload_file(str(path), bucket, key)
        except Exception as exc:  # boto3 raises ClientError/EndpointConnectionError/S3UploadFailedError
            raise StorageError(
                f"expected to upload {path} to {uri}, failed ({type(exc).__name__}: {exc})", hint="check the S3 endpoint and credentials"
            ) from None
        return uri
    dest = Path(root) / name
    if dest.is_file() and sha256_file(dest) == sha256:
        return str(dest)
    with atomic_path(dest) as tmp:
        shutil.copyfile(path, tmp)
    return str(dest)


def fetch_weights(uri: str, sha256: str, settings: Settings | None = None) -> Path:
    """A local, hash-verified copy of a registered weight file (S3 objects are cached)."""
    s = settings or get_settings()
    if uri.startswith("s3://"):
        dest = s.resolved_cache_dir / "models" / f"{sha256}.pth"
        if not (dest.is_file() and sha256_file(dest) == sha256):
            dest.parent.mkdir(parents=True, exist_ok=True)
            bucket, key = _split_s3(uri)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            try:
                _s3_client().download_file(bucket, key, str(tmp))
            except Exception as exc:  # boto3 client errors
                tmp.unlink(missing_ok=True)
                raise StorageError(f"expected to download {uri}, failed ({type(exc).__name__}: {exc})", hint="check the S3 endpoint and credentials") from None
            tmp.replace(dest)
    else:
        dest = Path(uri)
        if not dest.is_file():
            raise ModelError(f"expected the registered weight file at {uri}, found nothing", hint="restore it from backup or register the model again")
    found = sha256_file(dest)
    if found != sha256:
        raise IntegrityError(f"{uri}: expected sha256 {sha256}, found {found}", hint="the stored weight file is corrupt; restore it or retire the model")
    return dest


# --- registry ------------------------------------------------------------------------------------


def register_candidate(
    engine: Engine,
    weights: str | Path,
    *,
    name: str,
    config: dict[str, Any] | None = None,
    data_window: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> ModelRecord:
    """Store a weight file and record it as a ``candidate`` (the same file registered twice is one model).

    ``metrics`` is ``{"validation": {val_set_id: {...}}}`` (merged into an existing record).
    """
    p = Path(weights)
    if not p.is_file():
        raise ModelError(f"expected a weight file at {p}, found nothing", hint="train a model first")
    from banet_ops.models.weights import load_weights
    from banet_ops.models.zoo import architecture_of

    # refuse files that do not load strictly into their recorded architecture before they enter the registry
    arch, arch_config = architecture_of(load_weights(p, "cpu")[0])
    sha = sha256_file(p)
    uri = store_weights(p, sha, settings)
    model_id = f"{name}-{sha[:12]}"
    with engine.begin() as conn:
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
                "sha": sha,
                "uri": uri,
                "config": json.dumps(config or {}),
                "window": json.dumps(data_window) if data_window is not None else None,
                "metrics": json.dumps(metrics) if metrics is not None else None,
                "arch": arch,
                "arch_config": json.dumps(arch_config),
            },
        )
        row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model WHERE sha256 = :sha"), {"sha": sha}).one()
        record = _record(row)
        for val_set_id, m in ((metrics or {}).get("validation") or {}).items():
            _merge_metrics(conn, record.id, val_set_id, m)
        row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model WHERE sha256 = :sha"), {"sha": sha}).one()
    log.info("registry: %s registered (%s)", record.id, uri)
    return _record(row)


def _merge_metrics(conn: Connection, model_id: str, val_set_id: str, metrics: dict[str, Any]) -> None:
    conn.execute(
        sa.text(
            "UPDATE banet.model SET metrics = jsonb_set(coalesce(metrics, '{}'::jsonb), '{validation}', "
            "coalesce(metrics->'validation', '{}'::jsonb) || jsonb_build_object(CAST(:vs AS text), CAST(:m AS jsonb))) WHERE id = :id"
        ),
        {"id": model_id, "vs": val_set_id, "m": json.dumps(metrics)},
    )


def record_metrics(engine: Engine, model_id: str, val_set_id: str, metrics: dict[str, Any]) -> ModelRecord:
    """Store a model's metrics on a validation set (replacing earlier ones for that set)."""
    with engine.begin() as conn:
        get_model(conn, model_id)
        _merge_metrics(conn, model_id, val_set_id, metrics)
        return get_model(conn, model_id)


def get_model(conn_or_engine: Engine | Connection, model_id: str) -> ModelRecord:
    """The registry record of ``model_id`` (ValidationError naming the known ids if absent)."""
    query = sa.text(f"SELECT {_COLUMNS} FROM banet.model WHERE id = :id")
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            row = conn.execute(query, {"id": model_id}).one_or_none()
    else:
        row = conn_or_engine.execute(query, {"id": model_id}).one_or_none()
    if row is None:
        raise ValidationError(f"expected a registered model {model_id!r}, found none", hint="see `banet-ops models list`")
    return _record(row)


def list_models(engine: Engine, status: Status | None = None) -> list[ModelRecord]:
    """Registered models, newest first (optionally of one status)."""
    where = "WHERE status = :status" if status else ""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model {where} ORDER BY created_at DESC, id"), {"status": status}).all()
    return [_record(r) for r in rows]


def production_model(engine: Engine) -> ModelRecord | None:
    """The production model, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(f"SELECT {_COLUMNS} FROM banet.model WHERE status = 'production'")).one_or_none()
    return _record(row) if row is not None else None


def production_weights(engine: Engine, *, settings: Settings | None = None) -> list[Path] | None:
    """Local, verified paths of the production model's weights, or None when there is none."""
    record = production_model(engine)
    if record is None:
        return None
    return [fetch_weights(record.weights_uri, record.sha256, settings)]


def promote(engine: Engine, model_id: str, reason: str) -> ModelRecord:
    """Make ``model_id`` the production model (retiring the current one) in one transaction."""
    if not reason.strip():
        raise ValidationError("promote: expected a reason, found an empty one", hint="say why, e.g. --reason 'better Dice on vs-…'")
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE banet.model IN SHARE ROW EXCLUSIVE MODE"))
        record = get_model(conn, model_id)
        if record.status == "production":
            return record
        conn.execute(sa.text("UPDATE banet.model SET status = 'retired' WHERE status = 'production'"))
        conn.execute(
            sa.text("UPDATE banet.model SET status = 'production', promoted_at = now(), promotion_reason = :reason WHERE id = :id"),
            {"id": model_id, "reason": reason.strip()},
        )
        promoted = get_model(conn, model_id)
    log.info("registry: %s promoted to production (%s)", model_id, reason)
    return promoted


# --- the gate ------------------------------------------------------------------------------------


@dataclass
class GateDecision:
    """Whether a candidate was promoted, and why."""

    candidate: str
    production: str | None
    val_set_id: str
    metric: str
    candidate_value: float
    production_value: float | None
    margin: float
    promoted: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _metric(record: ModelRecord, val_set_id: str, metric: str) -> float:
    m = record.validation_metrics(val_set_id)
    if m is None or metric not in m or m[metric] is None:
        raise ValidationError(
            f"gate: expected {record.id} to have {metric!r} on validation set {val_set_id}, found none",
            hint="evaluate it on that validation set first (banet-ops evaluate --record)",
        )
    return float(m[metric])


def gate(engine: Engine, candidate_id: str, *, val_set_id: str, metric: str = "dice", margin: float = 0.01, promote_first: bool = True) -> GateDecision:
    """Promote ``candidate_id`` only if it beats production by ``margin`` on the same validation set.

    For error metrics (``mean_abs_date_error``, ``omission`` …) "beats" means lower by ``margin``;
    ``relative_bias`` compares absolute values.  With no production model, the candidate is
    promoted when ``promote_first``.
    """
    if margin < 0:
        raise ValidationError(f"gate: expected a margin >= 0, found {margin}")
    cand = get_model(engine, candidate_id)
    if cand.status == "retired":
        raise ValidationError(f"gate: expected a candidate, found {candidate_id} retired", hint="register a new model")
    cand_value = _metric(cand, val_set_id, metric)
    prod = production_model(engine)
    if prod is None or prod.id == cand.id:
        if prod is not None:
            reason = f"{cand.id} is already production"
            return GateDecision(cand.id, prod.id, val_set_id, metric, cand_value, cand_value, margin, False, reason)
        if not promote_first:
            return GateDecision(cand.id, None, val_set_id, metric, cand_value, None, margin, False, "no production model and promote_first is off")
        reason = f"gate: first production model; {metric} {cand_value:.4f} on {val_set_id}"
        promote(engine, cand.id, reason)
        return GateDecision(cand.id, None, val_set_id, metric, cand_value, None, margin, True, reason)
    prod_value = _metric(prod, val_set_id, metric)
    if metric in HIGHER_IS_BETTER:
        better = cand_value >= prod_value + margin
        rel = ">=" if better else "<"
    elif metric == "relative_bias":
        better = abs(cand_value) <= abs(prod_value) - margin
        rel = "<=" if better else ">"
    else:
        better = cand_value <= prod_value - margin
        rel = "<=" if better else ">"
    sign = "+" if metric in HIGHER_IS_BETTER else "-"
    detail = f"{metric} {cand_value:.4f} {rel} production {prod.id} {prod_value:.4f} {sign} margin {margin} on {val_set_id}"
    if not better:
        log.info("gate: %s refused: %s", cand.id, detail)
        return GateDecision(cand.id, prod.id, val_set_id, metric, cand_value, prod_value, margin, False, f"gate: refused; {detail}")
    reason = f"gate: {detail}"
    promote(engine, cand.id, reason)
    return GateDecision(cand.id, prod.id, val_set_id, metric, cand_value, prod_value, margin, True, reason)
