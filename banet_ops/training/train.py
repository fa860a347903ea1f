"""The training loop: BA-Net on a dataset manifest, resumable, reproducible, logged to TensorBoard.

* Reproducible: the batch of step ``k`` (which samples, which augmentation) and the dropout
  masks are functions of ``(seed, k)`` only, so a run resumed from a checkpoint follows the same
  loss curve as an uninterrupted one (bit for bit on CPU).
* Atomic checkpoints (``run_dir/checkpoint.pt``: model, optimiser, schedule, AMP scaler, step,
  loss history) written to a temp file then renamed; a run killed at any point resumes from the
  last one.
* Mixed precision on CUDA (bfloat16 where supported, else float16 with loss scaling), fp32 on CPU.
* Warm-up then cosine learning-rate schedule; AdamW; gradient clipping.
* Starts from the production model (``init="production"``), a weight file, or scratch
  (``"auto"``: production when the registry has one).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from banet_ops.errors import ConfigError, InsufficientDataError, ModelError, ValidationError
from banet_ops.training.augment import AugmentConfig, augment
from banet_ops.training.dataset import Manifest, SampleRef, atomic_write_bytes, load_sample, prepare_input
from banet_ops.training.loss import auto_pos_weight, masked_bce_loss
from banet_ops.training.options import day_subset, model_loss, observed_cells

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
WEIGHTS = "weights.pth"


class TrainConfig(BaseModel):
    """Everything that defines a training run (the run folder holds its checkpoint, logs and weights)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest: Path = Field(description="Dataset manifest.json (from build_dataset).")
    run_dir: Path = Field(description="Folder for checkpoint, TensorBoard logs, weights and result.json.")
    steps: int = Field(1000, ge=1, description="Optimiser steps.")
    batch_size: int = Field(4, ge=1)
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.05, ge=0, le=1, description="Final learning rate as a share of lr (cosine decay).")
    warmup_steps: int = Field(20, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    pos_weight: float | Literal["auto"] = Field("auto", description="Weight of burned cell-days in the loss; 'auto' from the data.")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    seed: int = 0
    init: str = Field("auto", description="'auto' (production if any, else scratch), 'scratch', 'production', or a weight file path.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = Field(True, description="Mixed precision on CUDA (ignored on CPU).")
    checkpoint_every: int = Field(50, ge=1)
    val_every: int = Field(0, ge=0, description="Validation loss every N steps (0: at the end only).")
    num_workers: int = Field(0, ge=0, le=32, description="DataLoader worker processes.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice).")
    resume: bool = Field(True, description="Continue from run_dir/checkpoint.pt when present.")
    architecture: str = Field("banet", description="Model architecture (banet_ops.models.zoo; `banet-ops models archs`).")
    arch_config: dict[str, Any] = Field(default_factory=dict, description="The architecture's config (validated by its pydantic model).")
    day_subset: int | None = Field(None, ge=2, description="Train on a fresh random subset of this many days of each sample per draw.")
    ignore_nodata: bool = Field(False, description="Cells never observed in a sample weigh 0 in the loss (incomplete tiles are kept).")
    pretrain_2d_steps: int = Field(0, ge=0, description="unet_convlstm: first steps train the 2-D FCN on single days (no ConvLSTM).")

    @model_validator(mode="after")
    def _architecture(self) -> TrainConfig:
        from banet_ops.models.zoo import arch_config, get_spec

        spec = get_spec(self.architecture)
        arch_config(self.architecture, self.arch_config)
        if self.day_subset is not None and self.day_subset % spec.time_multiple:
            raise ValueError(f"day_subset: expected a multiple of {spec.time_multiple} for {self.architecture}, found {self.day_subset}")
        if self.pretrain_2d_steps and self.architecture != "unet_convlstm":
            raise ValueError(f"pretrain_2d_steps: expected architecture unet_convlstm (a 2-D FCN inside), found {self.architecture}")
        return self

    def fingerprint(self) -> str:
        """Hash of the settings that shape the loss curve (a checkpoint only resumes the same run)."""
        keep = self.model_dump(mode="json", exclude={"run_dir", "resume", "num_workers", "threads", "checkpoint_every", "val_every", "device"})
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    """Outcome of a run (JSON-serialisable with :meth:`as_dict`)."""

    run_dir: str
    weights: str
    sha256: str
    steps: int
    resumed_from_step: int
    final_loss: float
    val_loss: float | None
    pos_weight: float
    init: str
    device: str
    duration_s: float
    history: list[float] = field(default_factory=list)
    val_history: list[tuple[int, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine down to ``min_lr_ratio``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes, unlike hash())."""
    digest = hashlib.blake2b(",".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


class SampleSet(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Samples of a manifest split; item keys are ``(index, augmentation seed or -1)``."""

    def __init__(self, manifest: Manifest, refs: list[SampleRef], aug: AugmentConfig | None, *, days: int | None = None, ignore_nodata: bool = False) -> None:
        self.folder = manifest.folder
        self.refs = refs
        self.aug = aug
        self.days = days
        self.ignore_nodata = ignore_nodata

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx, aug_seed = key
        raw, target, valid = load_sample(self.folder / self.refs[idx].file)
        x = prepare_input(raw)
        if self.ignore_nodata:
            valid = valid & observed_cells(raw)[None]
        if self.aug is not None and aug_seed >= 0:
            x, target, valid = augment(x, target, valid, np.random.default_rng(aug_seed), self.aug)
        if self.days is not None and aug_seed >= 0:
            x, target, valid = day_subset(x, target, valid, self.days, np.random.default_rng([aug_seed, 1]))
        return torch.from_numpy(x), torch.from_numpy(np.ascontiguousarray(target))[None], torch.from_numpy(np.ascontiguousarray(valid))[None]


class StepBatches(torch.utils.data.Sampler):  # type: ignore[type-arg]
    """Batches for steps ``start..steps-1``: a seeded permutation per epoch, an augmentation seed per draw."""

    def __init__(self, n: int, batch: int, seed: int, start: int, steps: int) -> None:
        self.n, self.batch, self.seed, self.start, self.steps = n, batch, seed, start, steps

    def batch_for(self, step: int) -> list[tuple[int, int]]:
        out = []
        for j in range(self.batch):
            pos = step * self.batch + j
            epoch, i = divmod(pos, self.n)
            perm = np.random.default_rng(_mix(self.seed, epoch)).permutation(self.n)
            out.append((int(perm[i]), _mix(self.seed, pos, 7)))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.steps):
            yield self.batch_for(step)

    def __len__(self) -> int:
        return max(0, self.steps - self.start)


def _initial_model(cfg: TrainConfig, device: torch.device) -> tuple[nn.Module, str]:
    from banet_ops.models.weights import initialise_model as _init
    from banet_ops.models.weights import load_weights

    def initialise_model(seed: int) -> nn.Module:
        return _init(seed, architecture=cfg.architecture, config=cfg.arch_config)

    init = cfg.init
    if init in ("auto", "production"):
        paths = None
        try:
            from banet_ops.db.engine import get_engine
            from banet_ops.registry import production_weights

            paths = production_weights(get_engine())
        except ConfigError as exc:  # no database configured at all (an unreachable one is retryable and propagates)
            if init == "production":
                raise ModelError(f"init 'production': expected a production model in the registry, found no database configured ({exc})") from exc
            log.info("train: no registry configured (%s); starting from scratch", exc)
        if paths:
            model, ref = load_weights(paths[0], device)
            from banet_ops.models.zoo import arch_config, architecture_of

            if architecture_of(model) == (cfg.architecture, arch_config(cfg.architecture, cfg.arch_config).model_dump(mode="json")):
                return model, f"production:{ref.sha256[:12]}"
            if init == "production":
                raise ModelError(f"init 'production': expected a {cfg.architecture} production model, found {architecture_of(model)[0]}")
            log.info("train: production model is another architecture; %s starts from scratch", cfg.architecture)
            return initialise_model(cfg.seed).to(device), "scratch"
        if init == "production":
            raise ModelError("init 'production': expected a production model in the registry, found none", hint="use --init scratch or promote a model")
        return initialise_model(cfg.seed).to(device), "scratch"
    if init == "scratch":
        return initialise_model(cfg.seed).to(device), "scratch"
    model, ref = load_weights(init, device, architecture=cfg.architecture)
    return model, f"file:{ref.sha256[:12]}"


def _loader(ds: SampleSet, sampler: StepBatches, cfg: TrainConfig) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=cfg.num_workers, pin_memory=torch.cuda.is_available(), persistent_workers=False)


def validation_loss(model: nn.Module, ds: SampleSet, device: torch.device, batch: int, pos_weight: float) -> float | None:
    """Mean masked loss over a split (eval mode, no augmentation); None for an empty split."""
    if len(ds) == 0:
        return None
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ds), batch):
            items = [ds[(i, -1)] for i in range(start, min(len(ds), start + batch))]
            x = torch.stack([i[0] for i in items]).to(device)
            y = torch.stack([i[1] for i in items]).to(device)
            v = torch.stack([i[2] for i in items]).to(device)
            total += float(masked_bce_loss(model(x), y, v, pos_weight)) * len(items)
            n += len(items)
    return total / n


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _finished(cfg: TrainConfig, result_path: Path, fingerprint: str) -> TrainResult | None:
    """The result of this configuration's finished run in ``cfg.run_dir`` (when resuming), else None."""
    if not (cfg.resume and result_path.is_file()):
        return None
    done = json.loads(result_path.read_text())
    if done.get("fingerprint") != fingerprint or not Path(done["weights"]).is_file():
        return None
    log.info("train: %s already finished; returning its result", cfg.run_dir)
    done.pop("fingerprint", None)
    return TrainResult(**{**done, "val_history": [tuple(v) for v in done.get("val_history", [])]})


def _training_data(cfg: TrainConfig) -> tuple[Manifest, list[SampleRef], list[SampleRef]]:
    """The manifest and its training and validation samples, checked to be trainable with ``cfg``."""
    manifest = Manifest.load(cfg.manifest)
    train_refs, val_refs = manifest.split("train"), manifest.split("val")
    if not train_refs:
        raise InsufficientDataError(f"{cfg.manifest}: expected training samples, found none", hint="rebuild the dataset with more region-months")
    tile, days = int(manifest.config.get("tile", 128)), int(manifest.config.get("days", 64))
    if cfg.architecture == "banet" and cfg.batch_size * ((cfg.day_subset or days) // 16) * (tile // 32) ** 2 < 2:
        # BA-Net's deepest level sees (days/16) x (tile/32)^2 values per channel and sample; batch norm needs more than one
        raise ValidationError(
            f"expected batch_size x days/16 x (tile/32)^2 >= 2 for batch norm, found {cfg.batch_size} x {days // 16} x {(tile // 32) ** 2}",
            hint="use --batch 2 or larger tiles/windows",
        )
    return manifest, train_refs, val_refs


@dataclass
class _Run:
    """A run's model, optimiser state and histories: what a checkpoint holds."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    pos_weight: float
    init: str
    fingerprint: str
    start: int = 0
    history: list[float] = field(default_factory=list)
    val_history: list[tuple[int, float]] = field(default_factory=list)

    def save(self, path: Path, step: int) -> None:
        _save_checkpoint(path, {
            "fingerprint": self.fingerprint, "step": step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "history": self.history,
            "val_history": self.val_history, "pos_weight": self.pos_weight, "init": self.init,
        })  # fmt: skip


def _checkpoint_state(cfg: TrainConfig, ckpt_path: Path, fingerprint: str) -> dict[str, Any] | None:
    """The checkpoint to resume from (None: start), refused when it belongs to another configuration."""
    if not (cfg.resume and ckpt_path.is_file()):
        return None
    state: dict[str, Any] = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        raise ValidationError(
            f"{ckpt_path}: expected a checkpoint of this configuration ({fingerprint}), found one of {state.get('fingerprint')}",
            hint="use a new --run-dir, or --no-resume to start over",
        )
    return state


def _start_run(cfg: TrainConfig, manifest: Manifest, train_refs: list[SampleRef], device: torch.device, amp_fp16: bool,
               state: dict[str, Any] | None, fingerprint: str) -> _Run:
    """A fresh run (initial model, positive weight) or the checkpointed one in ``state``."""
    if state is not None:
        from banet_ops.models.zoo import build_model

        model: nn.Module = build_model(cfg.architecture, cfg.arch_config).to(device)
        model.load_state_dict(state["model"])
        init_name, pos_weight = str(state["init"]), float(state["pos_weight"])
    else:
        model, init_name = _initial_model(cfg, device)
        if cfg.pos_weight == "auto":
            probe = [load_sample(manifest.folder / r.file) for r in train_refs[:256]]
            pos_weight = auto_pos_weight([p[1] for p in probe], [p[2] for p in probe])
        else:
            pos_weight = float(cfg.pos_weight)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    scaler = torch.amp.GradScaler("cuda", enabled=amp_fp16)
    run = _Run(model, optimizer, scheduler, scaler, pos_weight, init_name, fingerprint)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        run.start = int(state["step"])
        run.history = list(state["history"])
        run.val_history = [tuple(v) for v in state.get("val_history", [])]  # type: ignore[misc]
        log.info("train: resuming %s at step %d", cfg.run_dir, run.start)
    return run


def _step(run: _Run, batch: tuple[torch.Tensor, ...], step: int, cfg: TrainConfig, device: torch.device, amp: torch.dtype | None) -> float:
    """One optimiser step on ``batch``; the loss."""
    torch.manual_seed(_mix(cfg.seed, step, 11))  # dropout masks depend on (seed, step) only
    run.model.train()
    x, y, v = (t.to(device, non_blocking=True) for t in batch)
    with torch.autocast(device_type=device.type, dtype=amp or torch.float16, enabled=amp is not None):
        loss = model_loss(run.model, x, y, v, run.pos_weight, temporal=step >= cfg.pretrain_2d_steps)
    if not torch.isfinite(loss):
        raise ModelError(f"train: loss became {float(loss)} at step {step}", hint="lower --lr or check the dataset")
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return float(loss.detach())


def train(cfg: TrainConfig, *, progress: bool = False) -> TrainResult:
    """Train (or resume, or return the finished result of) the run in ``cfg.run_dir``."""
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from banet_ops.models.weights import resolve_device, save_weights

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = cfg.fingerprint()
    result_path, ckpt_path = run_dir / RESULT, run_dir / CHECKPOINT
    if (done := _finished(cfg, result_path, fingerprint)) is not None:
        return done
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    manifest, train_refs, val_refs = _training_data(cfg)
    t0 = time.perf_counter()
    use_amp = cfg.amp and device.type == "cuda"
    amp = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if use_amp else None
    run = _start_run(cfg, manifest, train_refs, device, amp == torch.float16, _checkpoint_state(cfg, ckpt_path, fingerprint), fingerprint)
    start = run.start

    train_ds = SampleSet(manifest, train_refs, cfg.augment, days=cfg.day_subset, ignore_nodata=cfg.ignore_nodata)
    val_ds = SampleSet(manifest, val_refs, None, ignore_nodata=cfg.ignore_nodata)
    writer = SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=start)
    writer.add_text("config", f"```\n{cfg.model_dump_json(indent=1)}\n```", start)
    bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="step", disable=not progress)
    step = start
    for batch in _loader(train_ds, StepBatches(len(train_ds), cfg.batch_size, cfg.seed, start, cfg.steps), cfg):
        value = _step(run, batch, step, cfg, device, amp)
        run.history.append(value)
        writer.add_scalar("loss/train", value, step)
        writer.add_scalar("lr", run.optimizer.param_groups[0]["lr"], step)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{value:.4f}")
        if cfg.val_every and step % cfg.val_every == 0 and step < cfg.steps:
            vl = validation_loss(run.model, val_ds, device, cfg.batch_size, run.pos_weight)
            if vl is not None:
                run.val_history.append((step, vl))
                writer.add_scalar("loss/val", vl, step)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            run.save(ckpt_path, step)
    bar.close()
    val_loss = validation_loss(run.model, val_ds, device, cfg.batch_size, run.pos_weight)
    if val_loss is not None:
        run.val_history.append((step, val_loss))
        writer.add_scalar("loss/val", val_loss, step)
    writer.close()
    weights_path = run_dir / WEIGHTS
    sha = save_weights(run.model, weights_path)
    result = TrainResult(
        run_dir=str(run_dir), weights=str(weights_path), sha256=sha, steps=step, resumed_from_step=start,
        final_loss=run.history[-1] if run.history else float("nan"), val_loss=val_loss, pos_weight=run.pos_weight, init=run.init,
        device=str(device), duration_s=round(time.perf_counter() - t0, 3), history=run.history, val_history=run.val_history,
    )  # fmt: skip
    atomic_write_bytes(result_path, json.dumps({**result.as_dict(), "fingerprint": fingerprint}).encode())
    return result
