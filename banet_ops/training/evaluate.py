"""Evaluate BA-Net weights against MCD64A1 labels, per region-month, the way the monthly product works.

For a region-month the model runs on the ``days``-day window centred on the month (the monthly
window for 64 days); over the days of the window that fall in the month, confidence = Σ daily
probability (capped at 1), burned = confidence ≥ ``threshold``, burn date = the most probable
day.  The reference is the label cube: burned = Σ bafrac over the same days ≥ ``ref_threshold``,
date = the day with the largest bafrac.  Cells unmapped, water or unlabelled in the month are
left out.  Metrics: Dice (= F1), omission, commission, relative burned-area bias (ellipsoidal
cell areas), and for correctly burned cells the share dated within 0, ±1, ±2, ±4 days and the
mean absolute date error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from banet_ops.bands import MODEL_BANDS
from banet_ops.errors import InsufficientDataError
from banet_ops.regions import Region, get_region
from banet_ops.settings import Settings, get_settings
from banet_ops.training.dataset import RegionMonth, atomic_write_bytes, parse_region_months, validation_set_id

log = logging.getLogger(__name__)

DATE_TOLERANCES = (0, 1, 2, 4)


class EvalConfig(BaseModel):
    """Which region-months to evaluate on and how."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region_months: list[str] = Field(min_length=1, description="Validation region-months, e.g. ['PI:2020-09'].")
    days: int = Field(64, ge=16, le=128, description="Window length (the model's sequence length).")
    threshold: float = Field(0.5, gt=0, le=1, description="Confidence at or above which a cell is burned (product rule).")
    ref_threshold: float = Field(0.5, gt=0, le=1, description="Σ bafrac at or above which MCD64A1 calls a cell burned.")
    tile: int = Field(128, ge=32)
    overlap: int = Field(32, ge=0)
    batch: int = Field(4, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    report_dir: Path | None = Field(None, description="Where report.json and the PNG maps go (none: no files).")
    water_mask: bool = Field(False, description="Leave permanent water and inconsistent shorelines (banet_ops.water, from M5/M7/M10) out.")

    @field_validator("region_months")
    @classmethod
    def _parse(cls, v: list[str]) -> list[str]:
        return [str(rm) for rm in parse_region_months(v)]

    @property
    def val_set_id(self) -> str:
        return validation_set_id(parse_region_months(self.region_months), self.days)


@dataclass
class Comparison:
    """Maps and counts of one region-month."""

    region_month: str
    metrics: dict[str, Any]
    valid: NDArray[np.bool_]
    pred_burned: NDArray[np.bool_]
    ref_burned: NDArray[np.bool_]
    pred_day: NDArray[np.int64]
    ref_day: NDArray[np.int64]
    date_errors: NDArray[np.int64]


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def summarise(tp: int, fp: int, fn: int, tn: int, area_pred: float, area_ref: float, date_errors: NDArray[np.int64]) -> dict[str, Any]:
    """The metric set from counts, burned areas (km²) and the date errors of correctly burned cells."""
    m: dict[str, Any] = {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "omission": _ratio(fn, tp + fn),
        "commission": _ratio(fp, tp + fp),
        "burned_area_pred_km2": round(area_pred, 4),
        "burned_area_ref_km2": round(area_ref, 4),
        "relative_bias": _ratio(area_pred - area_ref, area_ref),
        "n_dated": int(date_errors.size),
    }
    m["f1"] = m["dice"]
    for tol in DATE_TOLERANCES:
        m[f"date_within_{tol}"] = float((date_errors <= tol).mean()) if date_errors.size else None
    m["mean_abs_date_error"] = float(date_errors.mean()) if date_errors.size else None
    return m


def compare(
    probs: NDArray[np.floating],
    days: Sequence[dt.date],
    bafrac: NDArray[np.floating],
    label_valid: NDArray[np.bool_],
    rm: RegionMonth,
    cell_area_km2: NDArray[np.float64],
    *,
    threshold: float = 0.5,
    ref_threshold: float = 0.5,
) -> Comparison:
    """Compare daily probabilities with daily labels over the days of ``rm`` in the window.

    ``probs``/``bafrac``/``label_valid`` are ``(time, y, x)`` over ``days``; ``cell_area_km2``
    is per row.
    """
    idx = [i for i, d in enumerate(days) if d.year == rm.year and d.month == rm.month]
    if not idx:
        raise InsufficientDataError(f"{rm}: expected window days in the month, found none in {days[0]}..{days[-1]}")
    p = np.asarray(probs, dtype=np.float64)[idx]
    b = np.nan_to_num(np.asarray(bafrac, dtype=np.float64)[idx])
    valid: NDArray[np.bool_] = np.asarray(np.asarray(label_valid)[idx].all(axis=0), dtype=bool)
    conf = np.clip(p.sum(axis=0), 0, 1)
    pred = (conf >= threshold) & valid
    ref = (b.sum(axis=0) >= ref_threshold) & valid
    pred_day = p.argmax(axis=0)
    ref_day = b.argmax(axis=0)
    tp_mask = pred & ref
    errors = np.abs(pred_day - ref_day)[tp_mask].astype(np.int64)
    area = np.broadcast_to(np.asarray(cell_area_km2, dtype=np.float64)[:, None], pred.shape)
    metrics = summarise(
        int(tp_mask.sum()),
        int((pred & ~ref).sum()),
        int((ref & ~pred).sum()),
        int((valid & ~pred & ~ref).sum()),
        float(area[pred].sum()),
        float(area[ref].sum()),
        errors,
    )
    metrics["valid_cells"] = int(valid.sum())
    return Comparison(str(rm), metrics, valid, pred, ref, pred_day, ref_day, errors)


@dataclass
class EvalReport:
    """Metrics per region-month and pooled, for one set of weights."""

    val_set_id: str
    weights: list[str]
    overall: dict[str, Any]
    per_region_month: dict[str, dict[str, Any]]
    files: list[str] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list, repr=False)  # the maps (not serialised)

    def as_dict(self) -> dict[str, Any]:
        return {"val_set_id": self.val_set_id, "weights": self.weights, "overall": self.overall, "per_region_month": self.per_region_month, "files": self.files}


def pooled(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """Metrics over all region-months together (counts and areas summed, date errors pooled)."""
    keys = ("tp", "fp", "fn", "tn")
    tot = {k: sum(int(c.metrics[k]) for c in comparisons) for k in keys}
    errors = np.concatenate([c.date_errors for c in comparisons]) if comparisons else np.zeros(0, dtype=np.int64)
    out = summarise(
        tot["tp"],
        tot["fp"],
        tot["fn"],
        tot["tn"],
        sum(c.metrics["burned_area_pred_km2"] for c in comparisons),
        sum(c.metrics["burned_area_ref_km2"] for c in comparisons),
        errors,
    )
    out["valid_cells"] = sum(int(c.metrics["valid_cells"]) for c in comparisons)
    return out


def _plots(comparisons: Sequence[Comparison], folder: Path, tag: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: list[str] = []
    for c in comparisons:
        fig, axes = plt.subplots(1, 3, figsize=(12, 4), constrained_layout=True)
        ref = np.where(c.ref_burned, c.ref_day + 1, np.nan)
        pred = np.where(c.pred_burned, c.pred_day + 1, np.nan)
        vmax = max(1.0, float(np.nanmax(np.concatenate([ref.ravel(), pred.ravel(), [1.0]]))))
        for ax, data, title in ((axes[0], ref, "MCD64A1 burn day"), (axes[1], pred, "BA-Net burn day")):
            im = ax.imshow(data, vmin=1, vmax=vmax, cmap="inferno", interpolation="nearest")
            ax.set_title(title)
            fig.colorbar(im, ax=ax, shrink=0.8, label="day of month")
        agree = np.full(c.valid.shape, np.nan)
        agree[c.valid] = 0
        agree[c.pred_burned & c.ref_burned] = 1
        agree[c.pred_burned & ~c.ref_burned] = 2
        agree[~c.pred_burned & c.ref_burned] = 3
        cmap = matplotlib.colors.ListedColormap(["#e8e8e8", "#2b8a3e", "#d9480f", "#1c7ed6"])
        axes[2].imshow(agree, vmin=-0.5, vmax=3.5, cmap=cmap, interpolation="nearest")
        dice = c.metrics["dice"]
        axes[2].set_title(f"agreement (green TP, red FP, blue FN); Dice {dice:.3f}" if dice is not None else "agreement")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"{c.region_month} — {tag}")
        path = folder / f"map_{c.region_month.replace(':', '_')}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        files.append(str(path))
    errors = np.concatenate([c.date_errors for c in comparisons]) if comparisons else np.zeros(0, dtype=np.int64)
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    bins = [b - 0.5 for b in range(max(10, int(errors.max()) + 1 if errors.size else 10) + 1)]
    ax.hist(errors, bins=bins, color="#495057")
    ax.set_xlabel("|predicted − MCD64A1 burn date| (days)")
    ax.set_ylabel("correctly burned cells")
    ax.set_title(f"date agreement — {tag}")
    path = folder / "date_errors.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    files.append(str(path))
    return files


def evaluate(weights: Sequence[str | Path], cfg: EvalConfig, *, settings: Settings | None = None, regions_dir: Path | None = None) -> EvalReport:
    """Run the ensemble ``weights`` on each region-month of ``cfg`` and compare with the label cube."""
    from banet_ops.cube import read_window
    from banet_ops.inference.engine import predict_probabilities
    from banet_ops.mcd64.labels import read_labels
    from banet_ops.models.weights import load_weights, resolve_device

    s = settings or get_settings()
    device = resolve_device(cfg.device)
    models = [load_weights(w, device)[0] for w in weights]
    comparisons: list[Comparison] = []
    regions: dict[str, Region] = {}
    for rm in parse_region_months(cfg.region_months):
        region = regions.setdefault(rm.region, get_region(rm.region, regions_dir or s.regions_dir))
        first, last = rm.window(cfg.days)
        window = read_window(region, first, last, variables=MODEL_BANDS, settings=s)
        tile = min(cfg.tile, max(32, -(-max(region.shape) // 32) * 32))
        data = np.asarray(window.data, dtype=np.float32)
        probs = predict_probabilities(data, models, tile=tile, overlap=min(cfg.overlap, tile // 2), batch=cfg.batch, device=device)
        labels = read_labels(region, first, last, settings=s)
        label_valid = labels.valid()
        if cfg.water_mask:
            from banet_ops.water import water_mask

            wv = np.asarray(read_window(region, first, last, variables=("Red", "NIR", "M10"), settings=s).data, dtype=np.float32)
            label_valid = label_valid & ~water_mask(wv[:, 0], wv[:, 1], wv[:, 2]).excluded[None]
        c = compare(probs, labels.days, labels.bafrac, label_valid, rm, region.row_cell_area_km2(), threshold=cfg.threshold, ref_threshold=cfg.ref_threshold)
        log.info("evaluate %s: dice %s, date MAE %s", rm, c.metrics["dice"], c.metrics["mean_abs_date_error"])
        comparisons.append(c)
    report = EvalReport(
        val_set_id=cfg.val_set_id,
        weights=[str(w) for w in weights],
        overall=pooled(comparisons),
        per_region_month={c.region_month: c.metrics for c in comparisons},
        comparisons=comparisons,
    )
    if cfg.report_dir is not None:
        folder = Path(cfg.report_dir)
        folder.mkdir(parents=True, exist_ok=True)
        report.files = _plots(comparisons, folder, ", ".join(Path(w).name for w in weights))
        path = folder / "report.json"
        report.files.append(str(path))
        atomic_write_bytes(path, json.dumps({**report.as_dict(), "config": json.loads(cfg.model_dump_json())}, indent=1).encode())
    return report
