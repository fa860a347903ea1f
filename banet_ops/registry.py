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

import hashlib
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.engine import Connection, Engine

from banet_ops.db import models as models_db
from banet_ops.db.models import ModelRecord
from banet_ops.errors import IntegrityError, ModelError, StorageError, ValidationError
from banet_ops.settings import Settings, get_settings
from banet_ops.util import atomic_path

log = logging.getLogger(__name__)

Status = Literal["candidate", "production", "retired"]
#: metrics where higher is better; the others (errors, |bias|) are better when lower
HIGHER_IS_BETTER = {"dice", "f1", "date_within_0", "date_within_1", "date_within_2", "date_within_4"}


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
        models_db.insert_candidate(
            conn, model_id=model_id, name=name, sha256=sha, weights_uri=uri, config=config or {}, data_window=data_window,
            metrics=metrics, architecture=arch, arch_config=arch_config,
        )  # fmt: skip
        record = models_db.by_sha256(conn, sha)
        for val_set_id, m in ((metrics or {}).get("validation") or {}).items():
            models_db.merge_metrics(conn, record.id, val_set_id, m)
        record = models_db.by_sha256(conn, sha)
    log.info("registry: %s registered (%s)", record.id, uri)
    return record


def record_metrics(engine: Engine, model_id: str, val_set_id: str, metrics: dict[str, Any]) -> ModelRecord:
    """Store a model's metrics on a validation set (replacing earlier ones for that set)."""
    with engine.begin() as conn:
        get_model(conn, model_id)
        models_db.merge_metrics(conn, model_id, val_set_id, metrics)
        return get_model(conn, model_id)


def get_model(conn_or_engine: Engine | Connection, model_id: str) -> ModelRecord:
    """The registry record of ``model_id`` (ValidationError naming the known ids if absent)."""
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            record = models_db.by_id(conn, model_id)
    else:
        record = models_db.by_id(conn_or_engine, model_id)
    if record is None:
        raise ValidationError(f"expected a registered model {model_id!r}, found none", hint="see `banet-ops models list`")
    return record


def list_models(engine: Engine, status: Status | None = None) -> list[ModelRecord]:
    """Registered models, newest first (optionally of one status)."""
    with engine.connect() as conn:
        return models_db.all_models(conn, status)


def production_model(engine: Engine) -> ModelRecord | None:
    """The production model, or None."""
    with engine.connect() as conn:
        return models_db.production(conn)


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
        models_db.lock_models(conn)
        record = get_model(conn, model_id)
        if record.status == "production":
            return record
        models_db.make_production(conn, model_id, reason.strip())
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
