"""`banet-ops bakeoff`: train several architectures on the same data and seeds, compare them against MCD64A1.

Every architecture (:mod:`banet_ops.models.zoo`) is trained on the same dataset manifest with the
same seed and schedule, evaluated on the same held-out region-months (Dice, omission, commission,
area bias, date agreement, mean absolute date error), timed on one 128 × 128 × 64 tile on this CPU,
and — with a database — registered as a candidate; the existing gate (:func:`banet_ops.registry.gate`)
decides promotion.  The report is ``bakeoff.json``, ``bakeoff.md`` (a Markdown table) and
``maps.png`` (MCD64A1 and every model's burned map side by side).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from banet_ops.errors import ConfigError
from banet_ops.settings import Settings, get_settings
from banet_ops.training.dataset import Manifest, atomic_write_bytes
from banet_ops.training.evaluate import EvalConfig, EvalReport

log = logging.getLogger(__name__)

COLUMNS = (
    ("architecture", "architecture", "{}"),
    ("parameters", "parameters", "{:,}"),
    ("dice", "Dice", "{:.3f}"),
    ("omission", "omission", "{:.3f}"),
    ("commission", "commission", "{:.3f}"),
    ("relative_bias", "area bias", "{:+.3f}"),
    ("date_within_1", "date ±1 d", "{:.3f}"),
    ("mean_abs_date_error", "date MAE (d)", "{:.2f}"),
    ("infer_s_per_tile", "CPU s / 128×128×64 tile", "{:.1f}"),
    ("train_s", "train s", "{:.0f}"),
    ("gate", "gate", "{}"),
)


class BakeoffConfig(BaseModel):
    """What to compare and how (the same data, seed and schedule for every architecture)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    architectures: list[str] = Field(default_factory=lambda: ["banet", "unet_convlstm", "deepforest_early", "deepforest_repr", "segnet"])
    arch_configs: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-architecture config overrides.")
    train_options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Per-architecture TrainConfig overrides (init, lr, day_subset …).")
    manifest: Path
    eval: EvalConfig
    out_dir: Path
    steps: int = Field(60, ge=1)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(2e-3, gt=0)
    warmup_steps: int = Field(5, ge=0)
    seed: int = 0
    threads: int | None = Field(None, ge=1)
    timing_tile: int = Field(128, ge=32, description="Timing tile side (cells).")
    timing_days: int = Field(64, ge=16, description="Timing tile days.")
    register_models: bool = Field(True, description="Register every model as a candidate and run the gate (needs a database).")
    gate_metric: str = "dice"
    gate_margin: float = Field(0.01, ge=0)

    @field_validator("architectures")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from banet_ops.models.zoo import get_spec

        for name in v:
            get_spec(name)
        if not v or len(set(v)) != len(v):
            raise ValueError(f"expected distinct architectures, found {v}")
        return v


def time_tile(model: torch.nn.Module, tile: int = 128, days: int = 64) -> float:
    """Seconds for one ``(1, 4, days, tile, tile)`` forward pass on CPU, in the engine's inference form."""
    from banet_ops.inference.engine import prepare_models

    (net,) = prepare_models([model], torch.device("cpu"))
    x = torch.randn(1, 4, days, tile, tile, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        t0 = time.perf_counter()
        net(x)
        return time.perf_counter() - t0


def _train_one(cfg: BakeoffConfig, arch: str) -> tuple[Any, float]:
    from banet_ops.training.train import TrainConfig, train

    fields: dict[str, Any] = {
        "manifest": cfg.manifest, "run_dir": cfg.out_dir / arch, "steps": cfg.steps, "batch_size": cfg.batch_size, "lr": cfg.lr,
        "warmup_steps": cfg.warmup_steps, "seed": cfg.seed, "device": "cpu", "threads": cfg.threads, "architecture": arch,
        "arch_config": cfg.arch_configs.get(arch, {}), "init": "scratch",
    }  # fmt: skip
    tc = TrainConfig.model_validate({**fields, **cfg.train_options.get(arch, {})})
    tc = tc.model_copy(update={"run_dir": cfg.out_dir / arch / f"run-{tc.fingerprint()}"})  # a changed config trains afresh beside the old run
    result = train(tc)
    return result, result.duration_s  # as recorded when it trained (a re-run reuses a finished run)


def _register(cfg: BakeoffConfig, arch: str, weights: str, report: EvalReport, settings: Settings) -> dict[str, Any]:
    from banet_ops import registry
    from banet_ops.db.engine import get_engine

    try:
        engine = get_engine()
    except ConfigError as exc:
        return {"registered": None, "reason": f"no database configured ({exc})"}
    manifest = Manifest.load(cfg.manifest)
    record = registry.register_candidate(
        engine, weights, name=arch, config={"bakeoff": str(cfg.out_dir), "steps": cfg.steps, "seed": cfg.seed}, data_window=manifest.data_window(),
        metrics={"validation": {report.val_set_id: report.overall}}, settings=settings,
    )  # fmt: skip
    decision = registry.gate(engine, record.id, val_set_id=report.val_set_id, metric=cfg.gate_metric, margin=cfg.gate_margin)
    return {"registered": record.id, "promoted": decision.promoted, "reason": decision.reason}


def run_bakeoff(cfg: BakeoffConfig, *, settings: Settings | None = None) -> dict[str, Any]:
    """Train, evaluate, time and register every architecture; write the report; returns it."""
    from banet_ops.models.weights import load_weights

    s = settings or get_settings()
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    rows, reports = [], {}
    for arch in cfg.architectures:
        log.info("bakeoff: training %s", arch)
        result, train_s = _train_one(cfg, arch)
        report = _evaluate(cfg, arch, result.weights, s)
        model, _ = load_weights(result.weights, "cpu")
        row: dict[str, Any] = {"architecture": arch, "weights": result.weights, "sha256": result.sha256, "init": result.init}
        row["parameters"] = sum(p.numel() for p in model.parameters())
        row["train_s"] = round(train_s, 1)
        row["infer_s_per_tile"] = round(time_tile(model, cfg.timing_tile, cfg.timing_days), 2)
        row.update(
            {k: report.overall.get(k) for k in ("dice", "omission", "commission", "relative_bias", "date_within_0", "date_within_1", "mean_abs_date_error")}
        )
        if cfg.register_models:
            reg = _register(cfg, arch, result.weights, report, s)
            row["registry"] = reg
            row["gate"] = "promoted" if reg.get("promoted") else ("refused" if reg.get("registered") else "-")
        rows.append(row)
        reports[arch] = report
        log.info("bakeoff: %s dice %s", arch, row["dice"])
    out = {
        "val_set_id": cfg.eval.val_set_id,
        "region_months": cfg.eval.region_months,
        "timing_tile": [cfg.timing_tile, cfg.timing_tile, cfg.timing_days],
        "threads": torch.get_num_threads(),
        "rows": rows,
        "wall_s": round(time.perf_counter() - t_all, 1),
        "config": json.loads(cfg.model_dump_json()),
    }
    out["files"] = _write_report(cfg.out_dir, out, reports)
    return out


def _evaluate(cfg: BakeoffConfig, arch: str, weights: str, settings: Settings) -> EvalReport:
    from banet_ops.training.evaluate import evaluate

    return evaluate([weights], cfg.eval.model_copy(update={"report_dir": cfg.out_dir / arch / "eval"}), settings=settings)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The report table (one row per architecture)."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    lines = ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = []
        for key, _, fmt in cols:
            v = r.get(key)
            cells.append("–" if v is None else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _write_report(folder: Path, out: dict[str, Any], reports: dict[str, EvalReport]) -> list[str]:
    md = folder / "bakeoff.md"
    head = f"Bake-off on {', '.join(out['region_months'])} ({out['val_set_id']}); wall time {out['wall_s']:.0f} s.\n\n"
    atomic_write_bytes(md, (head + markdown_table(out["rows"])).encode())
    files = [str(md), _maps(folder / "maps.png", reports)]
    path = folder / "bakeoff.json"
    files.append(str(path))
    atomic_write_bytes(path, json.dumps({**out, "files": files}, indent=1, default=str).encode())
    return files


def _maps(path: Path, reports: dict[str, EvalReport]) -> str:
    """MCD64A1 and each model's burned map per region-month, side by side (TP green, FP red, FN blue)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    archs = list(reports)
    rms = [c.region_month for c in reports[archs[0]].comparisons]
    fig, axes = plt.subplots(len(rms), len(archs) + 1, figsize=(2.6 * (len(archs) + 1), 2.8 * len(rms)), squeeze=False, constrained_layout=True)
    colours = ["#f1f3f5", "#2b8a3e", "#e03131", "#1971c2"]
    cmap = ListedColormap(colours)
    for i, rm in enumerate(rms):
        ref = reports[archs[0]].comparisons[i]
        days = axes[i][0].imshow(np.where(ref.ref_burned, ref.ref_day, np.nan), cmap="inferno", interpolation="nearest")
        axes[i][0].set_title(f"MCD64A1 {rm}", fontsize=8)
        bar = fig.colorbar(days, ax=axes[i][0], shrink=0.8)
        bar.set_label("burn day of year", fontsize=7)
        bar.ax.tick_params(labelsize=7)
        bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        for j, arch in enumerate(archs, start=1):
            c = reports[arch].comparisons[i]
            agree = np.where(c.pred_burned & c.ref_burned, 1, np.where(c.pred_burned, 2, np.where(c.ref_burned, 3, 0)))
            axes[i][j].imshow(agree, cmap=cmap, vmin=-0.5, vmax=3.5, interpolation="nearest")
            dice = c.metrics["dice"]
            axes[i][j].set_title(f"{arch}\nDice {dice:.3f}" if dice is not None else arch, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    labels = ["burned in both", "model only (commission)", "MCD64A1 only (omission)"]
    fig.legend(handles=[Patch(color=c, label=t) for c, t in zip(colours[1:], labels, strict=True)], loc="outside lower center", ncol=3, fontsize=8)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path)
