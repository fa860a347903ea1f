"""`banet-ops` commands of the retraining loop: ``labels``, ``train``, ``evaluate``, ``models list|promote``."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from banet_ops.cli.model_flags import add_model_flags
from banet_ops.errors import ValidationError
from banet_ops.retrain.params import RegionMonth, TrainingParams
from banet_ops.util import pydantic_problem


def _validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise ValidationError(pydantic_problem(exc, default_field="arguments"), hint="see --help") from None


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=1, default=str))


# --- labels --------------------------------------------------------------------------------------


class LabelsArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    region: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$")
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    source: Literal["hdf", "umd"] = "hdf"
    umd_dir: str | None = None
    supersample: int = Field(2, ge=1, le=8)


def _labels(ns: argparse.Namespace) -> int:
    from banet_ops.mcd64.labels import make_month_labels
    from banet_ops.regions import get_region
    from banet_ops.settings import get_settings

    args: LabelsArgs = _validated(LabelsArgs, vars(ns))
    settings = get_settings()
    region = get_region(args.region, settings.regions_dir)
    year, month = (int(v) for v in args.month.split("-"))
    print(f"labels {region.name} {args.month}: reading MCD64A1 ({args.source})…", file=sys.stderr)
    res = make_month_labels(region, year, month, source=args.source, umd_dir=args.umd_dir, supersample=args.supersample, settings=settings)
    print(
        f"labels {res.region} {res.month}: {len(res.sources)} file(s), {res.burned_cells} burned cells, "
        f"{res.burned_area_km2:.1f} km², {res.valid_fraction:.1%} valid, snapshot {res.snapshot}"
        + (f"; no file for tiles {', '.join(res.missing_tiles)}" if res.missing_tiles else "")
    )
    return 0


# --- train ---------------------------------------------------------------------------------------


class TrainArgs(TrainingParams):
    """``banet-ops train``: the training parameters plus where the data and the run live (the flags are generated from it)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    region_month: list[RegionMonth] = Field(default_factory=list, description="Region-month R:YYYY-MM to sample (repeat).")
    manifest: Path | None = Field(None, description="Use an existing dataset manifest.json.")
    dataset_dir: Path | None = Field(None, description="Dataset folder (default: derived from the dataset configuration).")
    run_dir: Path | None = Field(None, description="Run folder (default: derived from the configuration, so re-running resumes).")
    init: str = Field("auto", description="Initial weights: auto | scratch | production | PATH.pth.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Training device.")
    resume: bool = Field(True, description="Resume an interrupted run of the same configuration.")
    checkpoint_every: int = Field(50, ge=1, description="Steps between checkpoints.")
    workers: int = Field(0, ge=0, description="DataLoader worker processes.")
    config: Path | None = Field(None, description='JSON {"dataset": {...}, "train": {...}} overriding the flags.')
    architecture: str = Field("banet", description="Model architecture (`banet-ops models archs`); its config via --config train.arch_config.")

    @model_validator(mode="after")
    def _data(self) -> TrainArgs:
        if self.manifest is None and not self.region_month and self.config is None:
            raise ValueError("expected --region-month (one or more), --manifest or --config, found none")
        return self


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _train(ns: argparse.Namespace) -> int:
    from banet_ops.retrain import pipeline
    from banet_ops.settings import get_settings
    from banet_ops.training.dataset import DatasetConfig
    from banet_ops.training.train import TrainConfig, train

    args: TrainArgs = _validated(TrainArgs, vars(ns))
    settings = get_settings()
    file_cfg: dict[str, Any] = {}
    if args.config is not None:
        try:
            file_cfg = json.loads(args.config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValidationError(f"--config {args.config}: expected a JSON file with 'dataset' and/or 'train' objects, found ({exc})") from None
    work = settings.home / "training"
    manifest = args.manifest
    if manifest is None:
        ds = {
            "region_months": args.region_month,
            "val_region_months": args.val,
            "val_fraction": args.val_fraction,
            "tile": args.tile,
            "days": args.days,
            "stride": args.stride,
            "min_burned_cells": args.min_burned,
            "seed": args.seed,
            **file_cfg.get("dataset", {}),
        }
        ds.setdefault("out_dir", str(args.dataset_dir or work / "datasets" / f"ds-{_short_hash(ds)}"))
        dcfg: DatasetConfig = _validated(DatasetConfig, ds)
        print(f"train: building the dataset in {dcfg.out_dir}…", file=sys.stderr)
        built = pipeline.build_dataset(dcfg, settings=settings)
        manifest = Path(built["manifest"])
        print(f"train: {built['n_train']} training and {built['n_val']} validation samples ({built['val_set_id']})", file=sys.stderr)
    tc = {
        "manifest": str(manifest),
        "steps": args.steps,
        "batch_size": args.batch,
        "lr": args.lr,
        "init": args.init,
        "device": args.device,
        "seed": args.seed,
        "resume": args.resume,
        "checkpoint_every": args.checkpoint_every,
        "num_workers": args.workers,
        "threads": args.threads,
        **({"architecture": args.architecture} if args.architecture != "banet" else {}),  # banet runs keep their run folder
        **file_cfg.get("train", {}),
    }
    shaping = {k: v for k, v in tc.items() if k not in ("resume", "num_workers", "threads")}
    tc.setdefault("run_dir", str(args.run_dir or work / "runs" / f"run-{_short_hash(shaping)}"))
    tcfg: TrainConfig = _validated(TrainConfig, tc)
    result = train(tcfg, progress=True)
    print(
        f"train: {result.steps} steps (resumed at {result.resumed_from_step}) from {result.init} on {result.device} in {result.duration_s:.0f} s; "
        f"loss {result.final_loss:.4f}, validation loss {result.val_loss if result.val_loss is None else round(result.val_loss, 4)}; "
        f"weights {result.weights} (sha256 {result.sha256[:12]})"
    )
    return 0


# --- evaluate ------------------------------------------------------------------------------------


class EvaluateArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    region_month: list[str] = Field(min_length=1)
    weights: list[Path] = Field(default_factory=list)
    model: str | None = None
    days: int = 64
    threshold: float = Field(0.5, gt=0, le=1)
    ref_threshold: float = Field(0.5, gt=0, le=1)
    tile: int = 128
    device: Literal["auto", "cpu", "cuda"] = "auto"
    report_dir: Path | None = None
    record: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> EvaluateArgs:
        if bool(self.weights) == bool(self.model):
            raise ValueError("expected either --weights PATH… or --model ID (or 'production'), found " + ("both" if self.weights else "neither"))
        if self.record and not self.model:
            raise ValueError("--record stores metrics of a registered model: expected --model ID")
        return self


def _evaluate(ns: argparse.Namespace) -> int:
    from banet_ops.settings import get_settings
    from banet_ops.training.evaluate import EvalConfig, evaluate

    args: EvaluateArgs = _validated(EvaluateArgs, vars(ns))
    settings = get_settings()
    weights = [str(w) for w in args.weights]
    model_id = None
    if args.model:
        from banet_ops import registry
        from banet_ops.db.engine import get_engine

        engine = get_engine()
        if args.model == "production":
            record = registry.production_model(engine)
            if record is None:
                raise ValidationError("--model production: expected a production model in the registry, found none", hint="promote one first")
        else:
            record = registry.get_model(engine, args.model)
        model_id = record.id
        weights = [str(registry.fetch_weights(record.weights_uri, record.sha256, settings))]
    ecfg: EvalConfig = _validated(
        EvalConfig,
        {
            "region_months": args.region_month,
            "days": args.days,
            "threshold": args.threshold,
            "ref_threshold": args.ref_threshold,
            "tile": args.tile,
            "device": args.device,
            "report_dir": str(args.report_dir) if args.report_dir else None,
        },
    )
    print(f"evaluate: {len(ecfg.region_months)} region-month(s)…", file=sys.stderr)
    report = evaluate(weights, ecfg, settings=settings)
    if args.record and model_id:
        from banet_ops import registry
        from banet_ops.db.engine import get_engine

        registry.record_metrics(get_engine(), model_id, report.val_set_id, report.overall)
    o = report.overall

    def fmt(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    print(
        f"evaluate {model_id or ', '.join(weights)} on {report.val_set_id}: Dice {fmt(o['dice'])}, omission {fmt(o['omission'])}, "
        f"commission {fmt(o['commission'])}, relative bias {fmt(o['relative_bias'])}, dated within ±1 d {fmt(o['date_within_1'])}, "
        f"date MAE {fmt(o['mean_abs_date_error'])} d" + (f"; report in {args.report_dir}" if args.report_dir else "")
    )
    return 0


# --- models --------------------------------------------------------------------------------------


class ModelsListArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["candidate", "production", "retired"] | None = None
    json_out: bool = False


class PromoteArgs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model_id: str = Field(min_length=1)
    reason: str = Field(min_length=3)


def _models_list(ns: argparse.Namespace) -> int:
    from banet_ops import registry
    from banet_ops.db.engine import get_engine

    args: ModelsListArgs = _validated(ModelsListArgs, vars(ns))
    records = registry.list_models(get_engine(), args.status)
    if args.json_out:
        _print([r.as_dict() for r in records])
        return 0
    if not records:
        print("no registered models")
        return 0
    print(f"{'id':<28} {'status':<10} {'architecture':<16} {'created':<20} {'dice':>6}  weights")
    for r in records:
        dices = [m.get("dice") for m in ((r.metrics or {}).get("validation") or {}).values() if isinstance(m, dict)]
        dice = next((d for d in dices if d is not None), None)
        print(f"{r.id:<28} {r.status:<10} {r.architecture:<16} {r.created_at:%Y-%m-%d %H:%M:%S}  {'-' if dice is None else f'{dice:.3f}':>6}  {r.weights_uri}")
    return 0


def _models_promote(ns: argparse.Namespace) -> int:
    from banet_ops import registry
    from banet_ops.db.engine import get_engine

    args: PromoteArgs = _validated(PromoteArgs, vars(ns))
    record = registry.promote(get_engine(), args.model_id, f"manual: {args.reason}")
    print(f"{record.id} is now production ({record.promotion_reason})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this group's sub-commands to the top-level parser."""
    p = sub.add_parser("labels", help="grid MCD64A1 of a month into the region's label cube")
    p.add_argument("--region", required=True, help="region name (R_{name}.json in BANET_REGIONS_DIR)")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--source", choices=("hdf", "umd"), default="hdf", help="HDF4 tiles from the archive (default) or UMD GeoTIFF windows")
    p.add_argument("--umd-dir", help="folder of UMD MCD64monthly.*.burndate.tif windows (with --source umd)")
    p.add_argument("--supersample", type=int, default=2, help="sub-pixels per 500 m pixel side for the pixel->cell mapping")
    p.set_defaults(handler=_labels)

    p = sub.add_parser("train", help="build a dataset and train BA-Net (resumes an interrupted run)")
    add_model_flags(p, TrainArgs, metavars={"region_month": "R:YYYY-MM", "val": "R:YYYY-MM"})
    p.set_defaults(handler=_train)

    p = sub.add_parser("evaluate", help="compare a model with MCD64A1 on region-months (Dice, omission, commission, bias, dates)")
    p.add_argument("--region-month", action="append", default=[], metavar="R:YYYY-MM", required=True, help="region-month to evaluate (repeat)")
    p.add_argument("--weights", action="append", default=[], type=Path, help="weight file (repeat for an ensemble)")
    p.add_argument("--model", help="registered model id, or 'production'")
    p.add_argument("--days", type=int, default=64, help="days of cube history per inference window (default 64)")
    p.add_argument("--threshold", type=float, default=0.5, help="model confidence at or above which a cell is burned (default 0.5)")
    p.add_argument("--ref-threshold", type=float, default=0.5, help="MCD64A1 burned fraction at or above which a reference cell is burned (default 0.5)")
    p.add_argument("--tile", type=int, default=128, help="inference tile size in pixels, multiple of 32 (default 128)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="inference device (default auto)")
    p.add_argument("--report-dir", type=Path, help="write report.json and PNG maps/histograms here")
    p.add_argument("--record", action="store_true", help="store the metrics in the registry (with --model)")
    p.set_defaults(handler=_evaluate)

    models = sub.add_parser("models", help="the model registry")
    msub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)
    p = msub.add_parser("list", help="registered models")
    p.add_argument("--status", choices=("candidate", "production", "retired"), help="only models of this status")
    p.add_argument("--json", dest="json_out", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_models_list)
    p = msub.add_parser("promote", help="make a model production (retiring the current one), with a recorded reason")
    p.add_argument("model_id", help="registered model id (see `banet-ops models list`)")
    p.add_argument("--reason", required=True, help="why, recorded with the promotion")
    p.set_defaults(handler=_models_promote)
    from banet_ops.cli.zoo import add_archs

    add_archs(msub)
