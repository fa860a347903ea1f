"""The bodies of the ``banet_retrain`` tasks: thin calls of :mod:`banet_ops.retrain.pipeline`.

labels → dataset → train (``banet-ops train`` in a GPU pod or a local subprocess) → evaluate →
register → gate.  Inputs and outputs are JSON (XCom-sized); files live in a work folder derived
from the run's configuration, so a re-run of the same configuration resumes training and
rewrites the same dataset instead of starting over.  Nothing here imports Airflow.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from banet_ops.errors import PermanentError, ValidationError
from banet_ops.retrain.params import RetrainParams
from banet_ops.settings import Settings
from banet_ops.util import pydantic_problem

log = logging.getLogger(__name__)


def _settings() -> Settings:
    from banet_ops.orchestration.tasks import _settings as overlay

    return overlay()


def _month_before(day: dt.date, months: int) -> str:
    index = day.year * 12 + day.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def plan(params: Mapping[str, Any], logical_date: dt.datetime | dt.date) -> dict[str, Any]:
    """Validate the params and fix what this run does: region-months, work folder, step configs."""
    from banet_ops.regions import load_regions

    try:
        p = RetrainParams.model_validate({k: v for k, v in params.items() if v is not None})
    except PydanticValidationError as exc:
        raise ValidationError(pydantic_problem(exc, source="banet_retrain params", every=True), hint="fix the params of the manual run") from None
    settings = _settings()
    known = sorted(load_regions(settings.regions_dir))
    regions = p.regions or known
    unknown = sorted(set(regions) - set(known))
    if unknown:
        raise ValidationError(f"banet_retrain: expected regions among {known}, found {unknown}", hint=f"add R_<name>.json to {settings.regions_dir}")
    months = p.months or [_month_before(logical_date if isinstance(logical_date, dt.date) else logical_date.date(), p.label_lag_months)]
    train_rms = [f"{r}:{m}" for r in regions for m in months if f"{r}:{m}" not in p.val]
    if not train_rms:
        raise ValidationError("banet_retrain: expected region-months to train on, found every one held out for validation")
    # a BA-Net-only run keeps the work folder it had before architectures existed
    exclude = {"threads", "architectures"} if p.architectures == ["banet"] else {"threads"}
    config = {"train": train_rms, "val": sorted(p.val), "params": p.model_dump(mode="json", exclude=exclude)}
    key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    work = settings.home / "retrain" / key
    log.info("banet_retrain: %d training region-months (%s), validation %s, work folder %s", len(train_rms), ", ".join(train_rms), p.val or "a share", work)
    return {"params": p.model_dump(mode="json"), "region_months": train_rms, "val_region_months": sorted(p.val), "work": str(work), "key": key}


def labels(the_plan: Mapping[str, Any]) -> dict[str, Any]:
    """MCD64A1 label cube months for the training and validation region-months (and their neighbours)."""
    from banet_ops.retrain.pipeline import LabelsStep, make_labels

    return make_labels(LabelsStep(region_months=[*the_plan["region_months"], *the_plan["val_region_months"]]), settings=_settings())


def dataset(the_plan: Mapping[str, Any]) -> dict[str, Any]:
    """Training and validation samples (manifest path, counts, validation set id)."""
    from banet_ops.retrain.pipeline import build_dataset
    from banet_ops.training.dataset import DatasetConfig

    p = the_plan["params"]
    cfg = DatasetConfig(
        region_months=the_plan["region_months"],
        val_region_months=the_plan["val_region_months"],
        val_fraction=p["val_fraction"],
        tile=p["tile"],
        days=p["days"],
        stride=p["stride"],
        min_burned_cells=p["min_burned"],
        max_samples_per_region_month=p["max_samples"],
        seed=p["seed"],
        out_dir=Path(the_plan["work"]) / "dataset",
    )
    result = build_dataset(cfg, settings=_settings())
    if result["n_train"] == 0:
        raise PermanentError(
            f"banet_retrain: expected training tiles with at least {p['min_burned']} burned cells, found none in {the_plan['region_months']}",
            hint="add burned months or lower min_burned",
        )
    return result


def architectures(the_plan: Mapping[str, Any]) -> list[str]:
    return list(the_plan["params"].get("architectures") or ["banet"])


def run_dir(the_plan: Mapping[str, Any], arch: str = "banet") -> Path:
    return Path(the_plan["work"]) / ("run" if arch == "banet" else f"run-{arch}")


def train_arguments(the_plan: Mapping[str, Any], the_dataset: Mapping[str, Any], device: str, arch: str = "banet") -> list[str]:
    """``banet-ops train`` arguments; the same list for the GPU pod and the local subprocess (but --device)."""
    p = the_plan["params"]
    args = [
        "train", "--manifest", str(the_dataset["manifest"]), "--run-dir", str(run_dir(the_plan, arch)),
        "--steps", str(p["steps"]), "--batch", str(p["batch"]), "--lr", str(p["lr"]), "--seed", str(p["seed"]),
        "--init", "scratch" if p["from_scratch"] else "auto",
    ]  # fmt: skip
    if p.get("threads"):
        args += ["--threads", str(p["threads"])]
    if arch != "banet":
        args += ["--architecture", arch]
    return [*args, "--device", device]


def train_targets(the_plan: Mapping[str, Any], the_dataset: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One :func:`train_target` per architecture of the run (the training operator is mapped over them)."""
    return [train_target(the_plan, the_dataset, arch) for arch in architectures(the_plan)]


def train_target(the_plan: Mapping[str, Any], the_dataset: Mapping[str, Any], arch: str = "banet") -> dict[str, Any]:
    """The training run of ``arch`` (``arguments``, ``labels``, ``name``) for the configured backend.

    On Kubernetes the training pod must mount the work folder at the workers' path (it reads the
    dataset and writes the weights there).
    """
    from banet_ops.orchestration.backend import Backend

    settings = _settings()
    backend = Backend.from_settings(settings)
    backend.require_mount("training", settings.home / "retrain")
    labels = {"banet.io/job": "train", "banet.io/retrain": str(the_plan["key"])}
    return backend.target(train_arguments(the_plan, the_dataset, backend.device("training"), arch), labels, "banet-train")


def _trained_one(the_plan: Mapping[str, Any], arch: str) -> dict[str, Any]:
    from banet_ops.training.train import RESULT

    path = run_dir(the_plan, arch) / RESULT
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PermanentError(f"banet_retrain: expected the training result {path}, found none or unreadable ({exc})", hint="see the train task log") from None
    result.pop("history", None)
    result.pop("val_history", None)
    if not Path(result.get("weights", "")).is_file():
        raise PermanentError(f"banet_retrain: expected trained weights at {result.get('weights')}, found no file", hint="re-run the train task")
    return {**dict(result), "architecture": arch}


def trained(the_plan: Mapping[str, Any]) -> dict[str, Any]:
    """The finished training run (``result.json`` of its run folder); with several architectures, the first plus ``runs`` (all)."""
    runs = [_trained_one(the_plan, arch) for arch in architectures(the_plan)]
    return runs[0] if len(runs) == 1 else {**runs[0], "runs": runs}


def evaluate(the_plan: Mapping[str, Any], the_dataset: Mapping[str, Any], the_training: Mapping[str, Any]) -> dict[str, Any]:
    """Candidate (and production) metrics on the validation set, maps in the work folder; every architecture's under ``runs``."""
    from banet_ops.retrain.pipeline import EvaluateStep, eval_config_for
    from banet_ops.retrain.pipeline import evaluate as run_evaluate

    settings = _settings()
    p = the_plan["params"]
    cfg = eval_config_for(dict(the_dataset), device=settings.device, tile=p["eval_tile"], report_dir=Path(the_plan["work"]) / "report")
    out = run_evaluate(EvaluateStep(weights=Path(the_training["weights"]), eval=cfg), settings=settings)
    others = list(the_training.get("runs") or [])[1:]
    if others:
        out["runs"] = [{"architecture": the_training.get("architecture", "banet"), "overall": out["candidate"]["overall"]}]
        for run in others:
            folder = Path(the_plan["work"]) / f"report-{run['architecture']}"
            step = EvaluateStep(weights=Path(run["weights"]), eval=cfg.model_copy(update={"report_dir": folder}), with_production=False)
            out["runs"].append({"architecture": run["architecture"], "overall": run_evaluate(step, settings=settings)["candidate"]["overall"]})
    return out


def _register_one(
    the_plan: Mapping[str, Any], the_dataset: Mapping[str, Any], run: Mapping[str, Any], metrics: Mapping[str, Any], val_set_id: str
) -> dict[str, Any]:
    from banet_ops.retrain.pipeline import RegisterStep
    from banet_ops.retrain.pipeline import register as run_register

    outcome = {k: run[k] for k in ("steps", "final_loss", "val_loss", "init", "device") if k in run}
    arch = str(run.get("architecture", "banet"))
    step = RegisterStep(
        weights=Path(run["weights"]),
        name=arch,
        config={**dict(run.get("config") or {}), "retrain": the_plan["params"], "train_result": outcome},
        data_window=the_dataset.get("data_window"),
        val_set_id=val_set_id,
        metrics=dict(metrics),
    )
    return run_register(step, settings=_settings())


def register(the_plan: Mapping[str, Any], the_dataset: Mapping[str, Any], the_training: Mapping[str, Any], evaluated: Mapping[str, Any]) -> dict[str, Any]:
    """Record the trained weights as a candidate model with its configuration, data window and metrics (every architecture)."""
    vs = str(evaluated["val_set_id"])
    out = _register_one(the_plan, the_dataset, the_training, evaluated["candidate"]["overall"], vs)
    runs = list(the_training.get("runs") or [])
    if len(runs) > 1:
        metrics = {r["architecture"]: r["overall"] for r in evaluated.get("runs") or []}
        out["runs"] = [out, *(_register_one(the_plan, the_dataset, r, metrics[r["architecture"]], vs) for r in runs[1:])]
    return out


def gate(the_plan: Mapping[str, Any], registered: Mapping[str, Any], evaluated: Mapping[str, Any]) -> dict[str, Any]:
    """Promote a candidate only when it beats production by the margin (each architecture's in turn; decisions logged)."""
    from banet_ops.retrain.pipeline import GateStep
    from banet_ops.retrain.pipeline import gate as run_gate

    _settings()
    p = the_plan["params"]
    ids = [str(r["model_id"]) for r in registered.get("runs") or [registered]]
    decisions = [run_gate(GateStep(model_id=i, val_set_id=str(evaluated["val_set_id"]), metric=p["metric"], margin=p["margin"])) for i in ids]
    for i, d in zip(ids, decisions):
        log.info("banet_retrain: candidate %s %s", i, "promoted" if d.get("promoted") else "not promoted")
    return decisions[0] if len(decisions) == 1 else {**decisions[0], "decisions": decisions}
