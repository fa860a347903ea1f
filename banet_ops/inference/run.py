"""One inference run (``banet-ops infer``): cube window → BA-Net ensemble → product → publishing.

The window is read from the region cube at one pinned snapshot (the latest when none is given),
band of rows by band of rows as the engine asks for them, so a run never holds the full
``(64, band, H, W)`` window.  The weights are, in order of precedence: explicit paths, the
``BANET_WEIGHTS`` setting, the registry's production model.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from banet_ops.bands import MODEL_BANDS
from banet_ops.errors import ConfigError, InsufficientDataError, ModelError, ValidationError
from banet_ops.inference.engine import EngineOptions, EngineStats, iter_probability_strips
from banet_ops.inference.products import ProductBuilder, product_window
from banet_ops.inference.tiling import tiling_preset
from banet_ops.models.weights import load_weights, resolve_device
from banet_ops.product import Product, ProductMode
from banet_ops.regions import Region, get_region
from banet_ops.settings import Settings, get_settings

log = logging.getLogger(__name__)
OBSERVED_STRIP_ROWS = 256  # rows of the window read at a time to find the cells never observed


@dataclass
class InferenceResult:
    """What a run made: the product, the publishing outcome (if published) and how it went."""

    product: Product
    publish: Any | None  # banet_ops.publish.PublishResult
    engine: EngineStats
    device: str
    cube_snapshot: str
    available_days: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def burned_area_km2(self) -> float:
        areas = self.product.region.row_cell_area_km2()
        return float((self.product.burned.sum(axis=1) * areas).sum())

    def summary(self) -> str:
        """A one-screen, human-readable summary."""
        p = self.product
        n_events = getattr(self.publish, "n_events", None)
        lines = [
            f"region {p.region.name} {p.mode} {p.target_date}  window {p.window_start}..{p.window_end} "
            f"({self.available_days}/{(p.window_end - p.window_start).days + 1} days in cube)",
            f"cube snapshot   {self.cube_snapshot}",
            "models          " + ", ".join(f"{m.model_id or Path(m.path).name} ({m.sha256[:12]})" for m in p.models),
            f"device          {self.device} {self.engine.precision}{' channels_last' if self.engine.channels_last else ''}; "
            f"{self.engine.tiles} tiles of {self.engine.tile_shape[0]}x{self.engine.tile_shape[1]}, {self.engine.gflops:.0f} GFLOP/s",
            f"tiling          {p.tiling}",
            f"burned cells    {p.n_burned:,} (confidence >= {p.threshold:g})",
            f"burned area     {self.burned_area_km2:,.1f} km2",
            f"fire events     {n_events if n_events is not None else 'n/a (not published)'}",
            "timings (s)     " + "  ".join(f"{k} {v:.2f}" for k, v in self.timings.items()),
        ]
        outputs = getattr(self.publish, "outputs", None) or {}
        for name, path in outputs.items():
            lines.append(f"output {name:<9}{path}")
        run_id = getattr(self.publish, "run_id", None)
        if run_id is not None:
            lines.append(f"run id          {run_id}")
        return "\n".join(lines)


# --- weights ----------------------------------------------------------------------------------


def resolve_weights(weights: Sequence[str | Path] | None, settings: Settings) -> list[tuple[Path, str | None]]:
    """Weight files to use, with their registry ids: explicit, else ``settings.weights``, else the production model."""
    if weights:
        return [(Path(w), None) for w in weights]
    if settings.weights:
        return [(Path(w), None) for w in settings.weights]
    from banet_ops import registry
    from banet_ops.db.engine import get_engine

    try:
        engine = get_engine(settings.resolved_database_url())
    except ConfigError as exc:
        raise ModelError(f"expected --weights, BANET_WEIGHTS or a reachable model registry, found none: {exc}", hint="pass --weights PATH") from exc
    paths = registry.production_weights(engine, settings=settings)
    if not paths:
        raise ModelError("expected a production model in the registry, found none", hint="promote one with `banet-ops models promote`, or pass --weights")
    record = registry.production_model(engine)
    model_id = None if record is None else str(record.id)
    return [(Path(p), model_id) for p in paths]


# --- the run ----------------------------------------------------------------------------------


def check_window_days(observed: int, minimum: int, what: str, *, hint: str | None = None) -> None:
    """Refuse a window with fewer than ``minimum`` (at least one) ingested days (:class:`InsufficientDataError`).

    The default ``BANET_MIN_WINDOW_DAYS`` = 48 (3/4 of the 64-day window): a monthly product at
    the default 10-day lag sees 55-58 days and passes; an NRT window missing more than 16 days
    (a cube started less than 48 days ago, or a long ingest outage) is refused rather than
    published from a model input that is mostly "missing" (issue 12: 20/64 days mapped 163 cells).
    """
    if observed < max(minimum, 1):
        raise InsufficientDataError(f"{what}: expected at least {max(minimum, 1)} ingested days (BANET_MIN_WINDOW_DAYS), found {observed}", hint=hint)


def _cube() -> Any:
    """The cube module, imported lazily (it pulls in icechunk/zarr)."""
    return importlib.import_module("banet_ops.cube")


def _cube_reader(
    region: Region, first: dt.date, last: dt.date, snapshot: str, settings: Settings, seen: dict[str, Any]
) -> Callable[[slice], NDArray[np.float32]]:
    cube = _cube()

    def read(rows: slice) -> NDArray[np.float32]:
        t0 = time.perf_counter()
        win = cube.read_window(region, first, last, rows=rows, snapshot=snapshot, variables=MODEL_BANDS, settings=settings)
        seen["read_s"] = seen.get("read_s", 0.0) + time.perf_counter() - t0
        return np.asarray(win.data, dtype=np.float32)

    return read


def _probe_window(reg: Region, mode: str, day: dt.date, first: dt.date, last: dt.date, snapshot: str | None, settings: Settings) -> tuple[str, int]:
    """The pinned snapshot and the number of ingested days of the window; refuses a window with too few (before any model is loaded)."""
    cube = _cube()
    snap = snapshot or cube.latest_snapshot(reg, settings=settings)
    probe = cube.read_window(reg, first, last, rows=slice(0, 1), cols=slice(0, 1), snapshot=snap, variables=("NIR",), settings=settings)
    snap = str(probe.snapshot)
    observed = int(np.asarray(probe.available, dtype=bool).sum())
    check_window_days(
        observed,
        settings.min_window_days,
        f"{reg.name} {mode} {day}: window {first}..{last} in snapshot {snap}",
        hint=f"ingest the missing days first: banet-ops ingest --region {reg.name} --date {first} --end {last}",
    )
    return snap, observed


def _load_models(files: Sequence[tuple[Path, str | None]], dev: Any) -> tuple[list[Any], list[Any]]:
    models, refs = [], []
    for path, model_id in files:
        m, ref = load_weights(path, dev, model_id=model_id)
        models.append(m)
        refs.append(ref)
    return models, refs


def _finish_product(builder: ProductBuilder, reg: Region, first: dt.date, last: dt.date, snap: str, settings: Settings, **meta: Any) -> Product:
    """The product from the builder's probabilities: NIR for the quicklook, never-observed cells as NoData, water mask."""
    cube = _cube()
    h = reg.shape[0]
    nir_days = [builder.days[i] for i in builder.nir_days]
    nir = cube.read_window(reg, nir_days[0], nir_days[-1], snapshot=snap, variables=("NIR",), settings=settings)
    builder.add_nir(slice(0, h), np.asarray(nir.data, dtype=np.float32)[:, 0])
    for r0 in range(0, h, OBSERVED_STRIP_ROWS):  # cells the window never saw: NoData in the products
        rows = slice(r0, min(h, r0 + OBSERVED_STRIP_ROWS))
        win = cube.read_window(reg, builder.days[0], builder.days[-1], rows=rows, snapshot=snap, variables=("NIR",), settings=settings)
        builder.add_observed(rows, np.asarray(np.isfinite(np.asarray(win.data, dtype=np.float32)[:, 0]).any(axis=0), dtype=bool))
    product = builder.build(cube_snapshot=snap, **meta)
    if settings.water_mask:
        from banet_ops.water import mask_product, water_mask

        wv = np.asarray(cube.read_window(reg, first, last, snapshot=snap, variables=("Red", "NIR", "M10"), settings=settings).data, dtype=np.float32)
        log.info(
            "%s %s %s: water mask unburned %d cells",
            reg.name,
            product.mode,
            product.target_date,
            mask_product(product, water_mask(wv[:, 0], wv[:, 1], wv[:, 2])),
        )
    return product


def run_inference(
    region: Region | str,
    day: dt.date,
    mode: ProductMode = "nrt",
    *,
    weights: Sequence[str | Path] | None = None,
    device: str = "auto",
    snapshot: str | None = None,
    tiling: str | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    batch: int | None = None,
    threshold: float | None = None,
    settings: Settings | None = None,
    publish: bool = True,
    progress: Callable[[int], None] | None = None,
) -> InferenceResult:
    """Run BA-Net on the region's cube window for ``day`` (NRT) or its month (monthly) and publish the product.

    ``tiling`` is a preset name (default ``BANET_TILING``); ``tile``/``overlap`` override it.  A
    window with fewer than ``BANET_MIN_WINDOW_DAYS`` ingested days is refused with
    :class:`InsufficientDataError` before any model is loaded.
    """
    settings = settings or get_settings()
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    reg = region if isinstance(region, Region) else get_region(region, settings.regions_dir)
    if mode not in ("nrt", "monthly"):
        raise ValidationError(f"mode: expected 'nrt' or 'monthly', found {mode!r}")
    first, last = product_window(mode, day)
    dev = resolve_device(device or settings.device)
    plan = tiling_preset(tiling or settings.tiling, tile=tile or settings.tile_size, overlap=settings.tile_overlap if overlap is None else overlap)

    t0 = time.perf_counter()
    files = resolve_weights(weights, settings)
    timings["resolve_weights"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap, observed = _probe_window(reg, mode, day, first, last, snapshot, settings)
    timings["snapshot"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    models, refs = _load_models(files, dev)
    timings["load_models"] = time.perf_counter() - t0

    builder = ProductBuilder(reg, mode, day, threshold=settings.burn_threshold if threshold is None else threshold)
    seen: dict[str, Any] = {}
    stats = EngineStats()
    t0 = time.perf_counter()
    shape = (len(builder.days), *reg.shape)
    reader = _cube_reader(reg, first, last, snap, settings, seen)
    batch = batch or settings.batch_size
    for rows, strip in iter_probability_strips(
        reader, shape, models, tiling=plan, batch=batch, device=dev, options=EngineOptions(), stats=stats, progress=progress
    ):
        builder.add(rows, strip)
    timings["read_window"] = float(seen.get("read_s", 0.0))
    timings["infer"] = time.perf_counter() - t0 - timings["read_window"]

    t0 = time.perf_counter()
    product = _finish_product(builder, reg, first, last, snap, settings, models=refs, timings=timings, tiling=plan.label, observed_days=observed)
    timings["product"] = time.perf_counter() - t0

    result_publish = None
    if publish:
        from banet_ops.publish import publish_product

        t0 = time.perf_counter()
        result_publish = publish_product(product, settings=settings)
        timings["publish"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all
    product.timings = dict(timings)
    log.info("%s %s %s: %d burned cells, %d tiles in %.1f s", reg.name, mode, day, product.n_burned, stats.tiles, timings["infer"])
    return InferenceResult(
        product=product, publish=result_publish, engine=stats, device=str(dev), cube_snapshot=product.cube_snapshot, available_days=observed, timings=timings
    )
