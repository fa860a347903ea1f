"""The inference engine: daily burn probabilities of a region window from an ensemble of BA-Net models.

Pipeline per batch of tiles: cut raw tiles out of the window (zero-padded past the region edge),
NaN → 0, FRP → log1p(FRP), BA-Net standardisation, run every model under
``torch.inference_mode``, average the sigmoid probabilities over the ensemble, multiply by the
tile's blending weight and add into an accumulator.  Tiles are visited row-major, and as soon as
no later tile can touch a band of rows, that band is normalised by the accumulated weight and
handed on (:func:`iter_probability_strips`).  Peak memory is thus one band of tile rows, the
rows that one row of tiles hands to the next on CPU (at most ``EngineOptions.carry_mib``) and the
caller's outputs, whatever the region height.

The default tiling is the ``published`` preset (the published BA-Net grid, see
:mod:`banet_ops.inference.tiling`); its outputs equal the published procedure's to float rounding
(tests/inference/test_published_equivalence.py checks it against an independent yardstick).
Batches hold tiles of one tile-row.

CPU: the models run with batch norms folded into the convolutions and ``channels_last_3d``
tensors; their per-pixel layers (temporal convolutions, level 1's LSTM, the head) run as matrix
products (:mod:`.cpu_forms`); encoder levels 1–3 are computed once per region cell, not once per
overlapping tile (:mod:`.shared_levels`, exact); the decoder, from its first skip connection on
(no spatial context there), only on the cells that hold a tile's part inside the region; and
glibc keeps freed memory mapped while the engine runs (:mod:`.allocator`).  All exact to float
rounding; figures in
benchmarks/README.md.  CUDA: the plain per-tile torch path, plus autocast; with ``amp="auto"``
the precision (bf16, fp16 or fp32) and memory format are chosen by timing one batch of each on
the first call.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from banet_ops.bands import BANET_MEAN, BANET_STD, MODEL_BANDS
from banet_ops.errors import ModelError, ValidationError
from banet_ops.inference.allocator import heap_allocator
from banet_ops.inference.cpu_forms import use_cpu_forms
from banet_ops.inference.shared_levels import Carry, Geometry, shareable_levels, shared_levels
from banet_ops.inference.tiling import DEFAULT_PRESET, PRESETS, TileBox, TilePlan, Tiling, plan_tiles
from banet_ops.models.banet import BANet, FusedBANet, fuse_for_inference
from banet_ops.models.weights import resolve_device

log = logging.getLogger(__name__)

FRP_INDEX = MODEL_BANDS.index("FRP")
GFLOP_PER_TILE = 95.0  # BA-Net forward on one 128 x 128 x 64 tile (DESIGN §1)
Amp = Literal["auto", "off", "bf16", "fp16"]
# (T, band, rows, W) window array, or a reader of a slice of region rows returning that
WindowSource = NDArray[np.float32] | Callable[[slice], NDArray[np.float32]]


@dataclass
class EngineOptions:
    """Execution choices that do not change results beyond float rounding."""

    fuse: bool = True  # fold batch norms into convolutions (BANet models only)
    # CPU, fused BA-Nets: encoder levels computed once per region cell (shared by overlapping tiles), at
    # most this many and only those whose grid the tile starts are on (published grid: up to 3); 0:
    # every tile on its own.  Exact either way; 3 measured 1-15 % faster than 1 in six of seven
    # benchmark runs of session 7, between 6 % slower and 1 % faster in session 8's five, for ~20 % more peak
    # memory (benchmarks/README.md)
    shared_levels: int = 3
    # CPU: most memory (MiB) held for the rows a row of tiles hands to the next (25 of 128 rows of
    # level 1: ~200 KiB per region column per model at 64 days); past it, chunks compute their
    # overlap with the row above again (exact either way)
    carry_mib: int = 1024
    # CPU, fused BA-Nets: per-pixel layers (temporal convolutions, level 1's LSTM, the head) as matrix
    # products (inference/cpu_forms.py; measured 1.7-2.3x faster end to end with one thread, 1.15-1.25x
    # with two since their work is shared among the threads; benchmarks/README.md, sessions 7-8)
    time_gemm: bool = True
    heap_allocator: bool = True  # CPU: keep freed memory mapped while running (see inference/allocator.py)
    channels_last: bool | None = None  # None: on for CPU, measured for CUDA
    amp: Amp = "auto"  # CUDA only; CPU always runs float32
    deterministic: bool = True  # CPU: deterministic algorithms while running

    def __post_init__(self) -> None:
        if not 0 <= self.shared_levels <= 5:
            raise ValidationError(f"shared_levels: expected 0..5 (BA-Net's encoder levels), found {self.shared_levels}")
        if self.carry_mib < 0:
            raise ValidationError(f"carry_mib: expected >= 0, found {self.carry_mib}")


@dataclass
class EngineStats:
    """What one engine run did, for logs and the run record."""

    tiles: int = 0
    tile_shape: tuple[int, int] = (0, 0)
    seconds: float = 0.0
    model_seconds: float = 0.0
    n_models: int = 0
    precision: str = "fp32"
    channels_last: bool = False
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def gflop(self) -> float:
        """Estimated model GFLOP done (scaled from ~95 GFLOP per 128 x 128 x 64 tile)."""
        th, tw = self.tile_shape
        return GFLOP_PER_TILE * self.tiles * self.n_models * th * tw / (128 * 128)

    @property
    def gflops(self) -> float:
        return self.gflop / self.seconds if self.seconds > 0 else 0.0


_AUTOTUNE_CACHE: dict[tuple[str, int, int, int, int], tuple[str, bool]] = {}


def prepare_models(models: Sequence[nn.Module], device: torch.device, *, fuse: bool = True, time_gemm: bool = True) -> list[nn.Module]:
    """Private inference copies of ``models`` on ``device`` in eval mode (BANets fused; on CPU with ``time_gemm``,
    their per-pixel layers in their matrix-product forms, :mod:`.cpu_forms`); the caller's modules are untouched."""
    if not models:
        raise ModelError("expected at least one model, found none", hint="pass --weights or promote a model")
    out = []
    for m in models:
        copy_ = fuse_for_inference(m) if fuse and isinstance(m, BANet) else copy.deepcopy(m)
        if time_gemm and device.type == "cpu" and isinstance(copy_, FusedBANet):
            use_cpu_forms(copy_)
        out.append(copy_.to(device).eval())
    return out


class _Accumulator:
    """Weighted sums of tile probabilities over a band of region rows; releases finished rows."""

    def __init__(self, plan: TilePlan, n_time: int) -> None:
        self.plan = plan
        self.t = n_time
        self.lo = 0
        self.acc = np.zeros((n_time, 0, plan.width), dtype=np.float32)
        self.wsum = np.zeros((0, plan.width), dtype=np.float32)

    def _extend_to(self, hi: int) -> None:
        cur_hi = self.lo + self.acc.shape[1]
        if hi <= cur_hi:
            return
        grow = hi - cur_hi
        self.acc = np.concatenate([self.acc, np.zeros((self.t, grow, self.plan.width), np.float32)], axis=1)
        self.wsum = np.concatenate([self.wsum, np.zeros((grow, self.plan.width), np.float32)], axis=0)

    def add(self, y0: int, x0: int, probs: NDArray[np.float32], weight: NDArray[np.float32]) -> None:
        h, w = weight.shape
        self._extend_to(y0 + h)
        r0 = y0 - self.lo
        self.acc[:, r0 : r0 + h, x0 : x0 + w] += probs
        self.wsum[r0 : r0 + h, x0 : x0 + w] += weight

    def release(self, upto: int) -> tuple[slice, NDArray[np.float32]] | None:
        """Normalise and hand out rows ``[lo, upto)``; the returned view is valid until the next call."""
        n = upto - self.lo
        if n <= 0:
            return None
        self._extend_to(upto)
        out = self.acc[:, :n]
        wsum = self.wsum[:n]
        if np.any(wsum <= 0):
            raise ModelError(f"internal tiling error: rows {self.lo}..{upto} not covered by any tile")
        np.divide(out, wsum[None], out=out)
        result = (slice(self.lo, upto), out)
        # keep the rest for later tiles; `out` stays a view on the old buffer for the caller
        self.acc = self.acc[:, n:].copy()
        self.wsum = self.wsum[n:].copy()
        self.lo = upto
        return result


def _set_format(model: nn.Module, fmt: torch.memory_format) -> None:
    # only the 3-D convolutions: zoo models (banet_ops.models.zoo) also hold 2-D layers, whose 4-D weights refuse channels_last_3d
    for m in model.modules():
        if isinstance(m, nn.Conv3d | nn.ConvTranspose3d):
            m.to(memory_format=fmt)  # type: ignore[call-overload]


def _read_band(source: WindowSource, rows: slice, expected: tuple[int, int, int, int]) -> NDArray[np.float32]:
    """Raw window rows ``(T, band, rows, W)`` of ``source``, shape checked."""
    band = np.asarray(source(rows) if callable(source) else source[:, :, rows], dtype=np.float32)
    if band.shape != expected:
        raise ValidationError(f"window rows {rows.start}..{rows.stop}: expected shape {expected}, found {band.shape}")
    return band


def standardise_(x: torch.Tensor) -> torch.Tensor:
    """In place on raw ``(batch, band, T, H, W)`` values: NaN → 0, FRP → log1p(FRP), BA-Net standardisation."""
    torch.nan_to_num_(x, nan=0.0, posinf=0.0, neginf=0.0)
    frp = x[:, FRP_INDEX]
    frp.clamp_(min=0).log1p_()
    mean = torch.tensor(BANET_MEAN, dtype=x.dtype, device=x.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(BANET_STD, dtype=x.dtype, device=x.device).view(1, -1, 1, 1, 1)
    return x.sub_(mean).div_(std)


def preprocess_window(window: NDArray[np.float32]) -> NDArray[np.float32]:
    """Model input ``(band, T, H, W)`` of a raw ``(T, band, H, W)`` window (for tests and tools)."""
    x = torch.from_numpy(np.ascontiguousarray(window, dtype=np.float32)).permute(1, 0, 2, 3)[None].clone()
    return standardise_(x)[0].numpy()


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    previous, fill = torch.are_deterministic_algorithms_enabled(), torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(True, warn_only=True)
    # deterministic mode also fills every new tensor with NaN (a debugging aid), which cost a sixth
    # of the CPU time of a run (profile in benchmarks/README.md); the engine reads no uninitialised memory
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)
        torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    if device.type == "cuda" and precision in ("bf16", "fp16"):
        return torch.autocast("cuda", dtype=torch.bfloat16 if precision == "bf16" else torch.float16)
    return contextlib.nullcontext()


def _forward(models: Sequence[nn.Module], x: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """Ensemble mean of sigmoid probabilities, ``(batch, T, H, W)`` float32."""
    total: torch.Tensor | None = None
    with _autocast(device, precision):
        for m in models:
            p = torch.sigmoid(m(x).float())[:, 0]
            total = p if total is None else total.add_(p)
    if total is None:
        raise ModelError("expected at least one model, found none")
    return total.div_(len(models))


def _choose_cuda_config(models: Sequence[nn.Module], x: torch.Tensor, device: torch.device, options: EngineOptions) -> tuple[str, bool]:
    """Time one batch per candidate (precision, memory format) and keep the fastest."""
    key = (str(device), *x.shape[:2], *x.shape[-2:])  # type: ignore[arg-type]
    precisions = ["bf16", "fp16", "off"] if options.amp == "auto" else [options.amp]
    if options.amp == "bf16" and not torch.cuda.is_bf16_supported():
        raise ModelError("expected a GPU with bfloat16 support for amp=bf16, found none", hint="use amp=fp16 or auto")
    if options.amp == "auto" and not torch.cuda.is_bf16_supported():
        precisions.remove("bf16")
    layouts = [True, False] if options.channels_last is None else [options.channels_last]
    if len(precisions) * len(layouts) == 1:
        return precisions[0], layouts[0]
    if key in _AUTOTUNE_CACHE:
        return _AUTOTUNE_CACHE[key]
    best: tuple[float, str, bool] | None = None
    for precision in precisions:
        for cl in layouts:
            fmt = torch.channels_last_3d if cl else torch.contiguous_format
            for m in models:
                _set_format(m, fmt)
            xx = x.contiguous(memory_format=fmt)
            _forward(models, xx, device, precision)  # warm-up (cuDNN algorithm search)
            torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            _forward(models, xx, device, precision)
            torch.cuda.synchronize(device)
            dt = time.perf_counter() - t0
            log.info("autotune %s channels_last=%s: %.3f s per batch", precision, cl, dt)
            if best is None or dt < best[0]:
                best = (dt, precision, cl)
    if best is None:
        raise ModelError("internal error: no CUDA configuration could be timed")
    _AUTOTUNE_CACHE[key] = (best[1], best[2])
    return best[1], best[2]


def _row_chunks(boxes: Sequence[TileBox], batch: int) -> Iterator[list[TileBox]]:
    """Consecutive tiles of one tile-row, at most ``batch`` at a time (row-major order kept)."""
    chunk: list[TileBox] = []
    for box in boxes:
        if chunk and (len(chunk) == batch or chunk[0].row != box.row):
            yield chunk
            chunk = []
        chunk.append(box)
    if chunk:
        yield chunk


@dataclass
class _RowContext:
    """Where a chunk of tiles sits among the rows of tiles: what the row above handed on, the shift to the row below."""

    above: list[Carry | None]  # per model
    next_shift: int | None


def _forward_shared(
    models: Sequence[nn.Module],
    band: torch.Tensor,
    offsets: Sequence[int],
    tile_w: int,
    valid: tuple[int, int],
    out_sizes: Sequence[tuple[int, int]],
    most: int,
    rows: _RowContext,
) -> tuple[torch.Tensor, list[Carry | None]]:
    """:func:`_forward` of the tiles ``band[..., x : x + tile_w]``, the first levels computed once for the row (CPU, fused BA-Nets).

    At most ``most`` levels are shared, fewer where the tile starts are not on a level's grid; only
    the top-left ``out_sizes[i]`` of tile ``i``'s probabilities is computed (rounded up to even).
    Returns the probabilities and, per model, what to hand to the row below.
    """
    pad = standardise_(torch.zeros((1, band.shape[1], 1, 1, 1), dtype=band.dtype, device=band.device))
    band = band.contiguous(memory_format=torch.channels_last_3d)
    total: torch.Tensor | None = None
    below: list[Carry | None] = []
    for m, above in zip(models, rows.above, strict=True):
        net = cast(FusedBANet, m)
        _set_format(net, torch.channels_last_3d)
        k = max(1, shareable_levels(offsets, tile_w, [Geometry.of(level).s for level in list(net.levels)[:most]]))
        shared, carry = shared_levels(list(net.levels)[:k], band, offsets, tile_w, valid, pad, above=above, next_shift=rows.next_shift)
        below.append(carry)
        p = torch.sigmoid(net.forward_from_levels(shared, out_sizes).float())[:, 0]
        total = p if total is None else total.add_(p)
    if total is None:
        raise ModelError("expected at least one model, found none")
    return total.div_(len(models)), below


class _ChunkRunner:
    """Runs the models on one chunk of tiles of a tile-row: raw values in, weighted probabilities out (numpy)."""

    def __init__(self, nets: list[nn.Module], dev: torch.device, options: EngineOptions, tile_w: int, weight2d: torch.Tensor) -> None:
        self.nets, self.dev, self.options, self.tile_w, self.weight2d = nets, dev, options, tile_w, weight2d
        self.share = options.shared_levels > 0 and dev.type == "cpu" and all(isinstance(m, FusedBANet) for m in nets)
        self.precision = "off"
        self.channels_last = options.channels_last if options.channels_last is not None else True
        self.tuned = False
        # what each chunk handed to the row of tiles below, by the chunk's columns: (row, per model, bytes)
        self.carries: dict[tuple[int, ...], tuple[int, list[Carry | None], int]] = {}
        self.carry_bytes = 0

    def _plain(self, xb: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
        x = torch.cat([xb[..., o : o + self.tile_w] for o in offsets])
        if not self.tuned:
            if self.dev.type == "cuda":
                self.precision, self.channels_last = _choose_cuda_config(self.nets, x, self.dev, self.options)
            self.tuned = True
            for m in self.nets:
                _set_format(m, torch.channels_last_3d if self.channels_last else torch.contiguous_format)
        x = x.contiguous(memory_format=torch.channels_last_3d if self.channels_last else torch.contiguous_format)
        return _forward(self.nets, x, self.dev, self.precision)

    def _above(self, columns: tuple[int, ...], row: int) -> list[Carry | None]:
        handed = self.carries.pop(columns, None)
        if handed is None:
            return [None] * len(self.nets)
        self.carry_bytes -= handed[2]
        return handed[1] if handed[0] == row - 1 else [None] * len(self.nets)

    def _hand_down(self, columns: tuple[int, ...], row: int, below: list[Carry | None]) -> None:
        """Keep what a chunk hands to the row below, while the memory held stays within ``carry_mib``."""
        size = sum(t.numel() * t.element_size() for c in below if c is not None for t in c.rows)
        if size and self.carry_bytes + size <= self.options.carry_mib * 2**20:
            self.carries[columns] = (row, below, size)
            self.carry_bytes += size

    def __call__(
        self,
        raw: NDArray[np.float32],
        offsets: Sequence[int],
        valid: tuple[int, int],
        out_sizes: Sequence[tuple[int, int]],
        stats: EngineStats,
        rows: tuple[int, int, int | None] = (0, 0, None),
    ) -> NDArray[np.float32]:
        """Probabilities ``(n, T, h, w)`` of the tiles ``raw[..., x : x + tile_w]``, times the blending weight.

        ``rows``: the chunk's first column in the region, its row of tiles and the rows to the next
        row of tiles (``None`` for the last), so that rows of tiles over the same columns share
        their overlap.
        """
        # the grad/determinism modes are entered per chunk so that nothing leaks into the caller's
        # code while the engine's generator is suspended at a yield
        with torch.inference_mode(), _deterministic(self.options.deterministic and self.dev.type == "cpu"):
            xb = torch.from_numpy(raw)
            xb = standardise_(xb.to(self.dev, non_blocking=True) if self.dev.type == "cuda" else xb)
            t0 = time.perf_counter()
            if self.share:
                x0, row, next_shift = rows
                columns = (x0, raw.shape[-1], *offsets)
                context = _RowContext(self._above(columns, row), next_shift)
                probs_t, below = _forward_shared(self.nets, xb, offsets, self.tile_w, valid, out_sizes, self.options.shared_levels, context)
                if next_shift is not None:
                    self._hand_down(columns, row, below)
            else:
                probs_t = self._plain(xb, offsets)
            probs = probs_t.mul_(self.weight2d[: probs_t.shape[-2], : probs_t.shape[-1]]).cpu().numpy()
            stats.model_seconds += time.perf_counter() - t0
        return probs


def _check_call(shape: tuple[int, int, int], batch: int) -> None:
    if shape[0] % 16 or shape[0] <= 0:
        raise ValidationError(f"expected a window length that is a positive multiple of 16 days (64 for BA-Net), found {shape[0]}")
    if batch < 1:
        raise ValidationError(f"batch: expected >= 1, found {batch}")


def iter_probability_strips(
    source: WindowSource,
    shape: tuple[int, int, int],
    models: Sequence[nn.Module],
    *,
    tiling: Tiling | None = None,
    batch: int = 4,
    device: str | torch.device = "cpu",
    options: EngineOptions | None = None,
    stats: EngineStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[slice, NDArray[np.float32]]]:
    """Yield ``(rows, probabilities)`` bands, top to bottom, covering the region once.

    ``source`` is the raw window ``(T, band, H, W)`` (NaN = missing) or a function returning the
    given rows of it; ``shape`` is ``(T, H, W)``.  Each yielded array ``(T, rows, W)`` is the
    ensemble-mean daily burn probability, final; it is reused after the next step (copy to keep).
    """
    _check_call(shape, batch)
    options = options or EngineOptions()
    stats = stats if stats is not None else EngineStats()
    n_time, height, width = shape
    dev = resolve_device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed tile shapes: let cuDNN pick its fastest kernels
    t_start = time.perf_counter()
    nets = prepare_models(models, dev, fuse=options.fuse, time_gemm=options.time_gemm)
    plan = plan_tiles(height, width, tiling or PRESETS[DEFAULT_PRESET])
    th, tw = plan.tile_h, plan.tile_w
    weight2d = torch.from_numpy(plan.weight_y[:, None] * plan.weight_x[None, :]).to(dev)
    weight2d_np = weight2d.cpu().numpy()
    run = _ChunkRunner(nets, dev, options, tw, weight2d)
    acc = _Accumulator(plan, n_time)
    stats.tiles, stats.tile_shape, stats.n_models = len(plan), (th, tw), len(nets)
    band_rows: tuple[int, NDArray[np.float32]] | None = None  # (tile-row, raw rows of it)
    current_row = 0
    chunks = list(_row_chunks(plan.boxes, batch))
    max_span = max(c[-1].x0 + tw - c[0].x0 for c in chunks)
    raw_buf = np.zeros((1, len(MODEL_BANDS), n_time, th, max_span), dtype=np.float32)  # one row of tiles, raw values
    with heap_allocator(options.heap_allocator and dev.type == "cpu"):
        for chunk in chunks:
            row, first = chunk[0].row, chunk[0]
            if band_rows is None or band_rows[0] != row:
                band_rows = (row, _read_band(source, slice(first.y0, first.y0 + first.h), (n_time, len(MODEL_BANDS), first.h, width)))
            span = chunk[-1].x0 + tw - first.x0
            valid = (first.h, min(span, width - first.x0))
            raw = raw_buf[..., :span]
            raw[:] = 0.0  # raw zero past the region edge = missing data, as in training
            raw[0, :, :, : valid[0], : valid[1]] = band_rows[1][:, :, :, first.x0 : first.x0 + valid[1]].transpose(1, 0, 2, 3)
            next_shift = plan.ys[row + 1] - plan.ys[row] if row + 1 < len(plan.ys) else None
            offsets = [box.x0 - first.x0 for box in chunk]
            probs = run(raw, offsets, valid, [(first.h, box.w) for box in chunk], stats, (first.x0, row, next_shift))
            if row != current_row:
                released = acc.release(plan.ys[row])
                if released is not None:
                    yield released
                current_row = row
            for i, box in enumerate(chunk):
                acc.add(box.y0, box.x0, probs[i, :, : box.h, : box.w], weight2d_np[: box.h, : box.w])
            if progress is not None:
                progress(len(chunk))
    stats.precision = run.precision if run.precision != "off" else "fp32"
    stats.channels_last = bool(run.channels_last)
    final = acc.release(height)
    if final is not None:
        yield final
    stats.seconds = time.perf_counter() - t_start


def predict_probabilities(
    window_data: WindowSource,
    models: Sequence[nn.Module],
    *,
    tile: int | None = None,
    overlap: int | None = None,
    batch: int = 4,
    device: str | torch.device = "cpu",
    tiling: Tiling | None = None,
    shape: tuple[int, int, int] | None = None,
    options: EngineOptions | None = None,
    stats: EngineStats | None = None,
) -> NDArray[np.float32]:
    """Daily burn probabilities ``(T, H, W)`` float32 of a raw ``(T, band, H, W)`` window.

    ``tiling`` defaults to the ``published`` preset; ``tile``/``overlap`` override its values.  The only
    full-size allocation is the returned array.
    """
    base = tiling or PRESETS[DEFAULT_PRESET]
    if tile is not None or overlap is not None:
        base = Tiling(tile=tile or base.tile, overlap=base.overlap if overlap is None else overlap, blend=base.blend, starts=base.starts)
    if shape is None:
        if callable(window_data):
            raise ValidationError("expected shape=(T, H, W) with a window reader, found none")
        if window_data.ndim != 4:
            raise ValidationError(f"expected a window of shape (T, band, H, W), found {window_data.shape}")
        shape = (window_data.shape[0], window_data.shape[2], window_data.shape[3])
    out = np.empty(shape, dtype=np.float32)
    for rows, strip in iter_probability_strips(window_data, shape, models, tiling=base, batch=batch, device=device, options=options, stats=stats):
        out[:, rows] = strip
    return out


def reference_probabilities(window_data: NDArray[np.float32], models: Sequence[nn.Module], *, tile: int = 128, step: int = 100) -> NDArray[np.float32]:
    """The published BA-Net procedure, literally, as the yardstick for the engine (tests, benchmark).

    Tiles of ``tile`` pixels at ``range(0, size - 1, step)`` on both axes, zero-padded past the
    edge, one at a time under ``torch.no_grad`` with the unfused model, overlaps averaged; the
    ensemble is the mean over models.  Slow by design.
    """
    n_time, _, height, width = window_data.shape
    mean = torch.tensor(BANET_MEAN).view(1, -1, 1, 1, 1)
    std = torch.tensor(BANET_STD).view(1, -1, 1, 1, 1)
    ens = np.zeros((n_time, height, width), dtype=np.float64)
    for model in models:
        model.eval()
        dev = next(model.parameters()).device
        total = np.zeros((n_time, height, width), dtype=np.float64)
        count = np.zeros((height, width), dtype=np.float64)
        for c in range(0, width - 1, step):
            for r in range(0, height - 1, step):
                h, w = min(tile, height - r), min(tile, width - c)
                crop = np.zeros((n_time, len(MODEL_BANDS), tile, tile), dtype=np.float32)
                crop[:, :, :h, :w] = window_data[:, :, r : r + h, c : c + w]
                x = torch.from_numpy(crop).permute(1, 0, 2, 3)[None]
                x = torch.nan_to_num(x, nan=0.0)
                x[:, FRP_INDEX] = torch.log1p(x[:, FRP_INDEX].clamp(min=0))
                with torch.no_grad():
                    p = torch.sigmoid(model(((x - mean) / std).to(dev)))[0, 0].cpu().numpy()
                total[:, r : r + h, c : c + w] += p[:, :h, :w]
                count[r : r + h, c : c + w] += 1
        ens += total / count
    return (ens / len(models)).astype(np.float32)
