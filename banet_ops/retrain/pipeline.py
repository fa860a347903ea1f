"""The retraining pipeline as plain functions, one per step of the ``banet_retrain`` DAG.

make_labels → build_dataset → train → evaluate → register → gate.  Each takes a pydantic
config (so DAG params are validated at the boundary) and returns a JSON-serialisable dict that
the next step's config is built from (XCom-sized: paths and ids, not arrays).  Every step is
idempotent: labels rewrite the same month, the dataset rewrites the same files, training resumes
or returns the finished run, registration is keyed by the weights' sha256, the gate promotes at
most once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from banet_ops.errors import ValidationError
from banet_ops.settings import Settings, get_settings
from banet_ops.training.dataset import DatasetConfig, Manifest, RegionMonth, parse_region_months
from banet_ops.training.evaluate import EvalConfig
from banet_ops.training.train import TrainConfig

log = logging.getLogger(__name__)


class LabelsStep(BaseModel):
    """Label the region-months (and, with ``neighbours``, the months before and after, which 64-day windows touch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region_months: list[str] = Field(min_length=1)
    neighbours: bool = True
    source: Literal["hdf", "umd"] = "hdf"
    umd_dir: str | None = None
    supersample: int = Field(2, ge=1, le=8)
    skip_missing: bool = Field(True, description="A neighbouring month not yet published is skipped, not an error.")

    @field_validator("region_months")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        return [str(rm) for rm in parse_region_months(v)]


def make_labels(cfg: LabelsStep, *, settings: Settings | None = None) -> dict[str, Any]:
    """Build the label cube months; returns ``{"labelled": [...], "skipped": [...]}``."""
    from banet_ops.errors import NotFoundError
    from banet_ops.mcd64.labels import make_month_labels
    from banet_ops.regions import get_region

    s = settings or get_settings()
    wanted = parse_region_months(cfg.region_months)
    todo: list[tuple[RegionMonth, bool]] = []
    for rm in wanted:
        for n in rm.neighbours() if cfg.neighbours else [rm]:
            if all(n != t for t, _ in todo):
                todo.append((n, n in wanted))
    labelled, skipped = [], []
    for rm, required in sorted(todo):
        region = get_region(rm.region, s.regions_dir)
        try:
            res = make_month_labels(region, rm.year, rm.month, source=cfg.source, umd_dir=cfg.umd_dir, supersample=cfg.supersample, settings=s)
        except NotFoundError as exc:
            if required or not cfg.skip_missing:
                raise
            skipped.append({"region_month": str(rm), "reason": exc.message})
            continue
        labelled.append(res.as_dict())
    return {"labelled": labelled, "skipped": skipped}


def build_dataset(cfg: DatasetConfig, *, settings: Settings | None = None) -> dict[str, Any]:
    """Cut the samples; returns the manifest path, sample counts, validation set id and data window."""
    from banet_ops.training.dataset import build_dataset as _build

    manifest = _build(cfg, settings=settings)
    return {
        "manifest": str(manifest.path),
        "n_train": len(manifest.split("train")),
        "n_val": len(manifest.split("val")),
        "val_set_id": manifest.val_set_id,
        "val_region_months": manifest.config.get("val_region_months_used", []),
        "days": cfg.days,
        "data_window": manifest.data_window(),
        "dropped_for_overlap": manifest.dropped_for_overlap,
    }


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train (or resume, or return the finished run); returns weights path, sha256 and losses."""
    from banet_ops.training.train import train as _train

    result = _train(cfg).as_dict()
    result["history_tail"] = result.pop("history")[-20:]
    result["config"] = cfg.model_dump(mode="json")
    return result


class EvaluateStep(BaseModel):
    """Evaluate a weight file (the candidate) and, when ``with_production``, the production model on the same set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: Path
    eval: EvalConfig
    with_production: bool = True


def evaluate(cfg: EvaluateStep, *, settings: Settings | None = None) -> dict[str, Any]:
    """Candidate metrics (and production metrics, recorded in the registry) on the validation set."""
    from banet_ops.training.evaluate import evaluate as _evaluate

    s = settings or get_settings()
    report = _evaluate([cfg.weights], cfg.eval, settings=s)
    out: dict[str, Any] = {"val_set_id": report.val_set_id, "candidate": report.as_dict(), "production": None}
    if cfg.with_production:
        from banet_ops import registry
        from banet_ops.db.engine import get_engine

        engine = get_engine()
        prod = registry.production_model(engine)
        if prod is not None and prod.validation_metrics(report.val_set_id) is None:
            path = registry.fetch_weights(prod.weights_uri, prod.sha256, s)
            folder = cfg.eval.report_dir / "production" if cfg.eval.report_dir else None
            prod_report = _evaluate([path], cfg.eval.model_copy(update={"report_dir": folder}), settings=s)
            registry.record_metrics(engine, prod.id, report.val_set_id, prod_report.overall)
            out["production"] = {"model_id": prod.id, **prod_report.as_dict()}
        elif prod is not None:
            out["production"] = {"model_id": prod.id, "overall": prod.validation_metrics(report.val_set_id), "recorded": True}
    return out


class RegisterStep(BaseModel):
    """Register trained weights as a candidate with their config, data window and metrics."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: Path
    name: str = Field("banet", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    config: dict[str, Any] = Field(default_factory=dict)
    data_window: dict[str, Any] | None = None
    val_set_id: str
    metrics: dict[str, Any] = Field(description="Overall metrics of the candidate on val_set_id.")


def register(cfg: RegisterStep, *, settings: Settings | None = None) -> dict[str, Any]:
    """Store the weights and record a candidate; returns its id, sha256 and weights URI."""
    from banet_ops import registry
    from banet_ops.db.engine import get_engine

    record = registry.register_candidate(
        get_engine(),
        cfg.weights,
        name=cfg.name,
        config=cfg.config,
        data_window=cfg.data_window,
        metrics={"validation": {cfg.val_set_id: cfg.metrics}},
        settings=settings,
    )
    return {"model_id": record.id, "sha256": record.sha256, "weights_uri": record.weights_uri, "status": record.status}


class GateStep(BaseModel):
    """Promote the candidate only if it beats production by ``margin`` on ``val_set_id``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    val_set_id: str
    metric: str = "dice"
    margin: float = Field(0.01, ge=0)
    promote_first: bool = True


def gate(cfg: GateStep) -> dict[str, Any]:
    """The gate's decision (promoted or not, and why)."""
    from banet_ops import registry
    from banet_ops.db.engine import get_engine

    return registry.gate(get_engine(), cfg.model_id, val_set_id=cfg.val_set_id, metric=cfg.metric, margin=cfg.margin, promote_first=cfg.promote_first).as_dict()


def eval_config_for(dataset_result: dict[str, Any], **overrides: Any) -> EvalConfig:
    """The evaluation config matching a build_dataset result (same validation region-months and days)."""
    rms = dataset_result.get("val_region_months") or []
    if not rms:
        raise ValidationError("evaluate: expected validation region-months in the dataset, found none", hint="set val_region_months or val_fraction > 0")
    manifest = Manifest.load(dataset_result["manifest"])
    return EvalConfig(region_months=rms, days=int(manifest.config["days"]), **overrides)
