"""Load, save and initialise BA-Net weight files (``.pth``: a state_dict or ``{"model": state_dict}``)."""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from banet_ops.bands import BANET_MEAN, BANET_STD, MODEL_BANDS, SEQUENCE_DAYS
from banet_ops.errors import ModelError
from banet_ops.models.banet import BANet
from banet_ops.product import ModelRef

_SHOW = 5  # how many offending keys an error message lists


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without a GPU is a :class:`ModelError`."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("expected a CUDA device, found none (torch.cuda.is_available() is False)", hint="use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ModelError(f"expected a device auto|cpu|cuda[:N], found {device!r}") from exc


def _extract_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping) or not obj:
        raise ModelError(
            f"{path}: expected a state_dict or {{'model': state_dict}}, found {type(obj).__name__}",
            hint="save weights with banet_ops.models.weights.save_weights",
        )
    sd: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ModelError(f"{path}: expected tensor entries keyed by parameter name, found {key!r}: {type(value).__name__}")
        sd[key] = value
    # weights saved from nn.DataParallel carry a "module." prefix on every key
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def check_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise :class:`ModelError` listing missing/unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k}: expected {tuple(expected[k].shape)}, found {tuple(sd[k].shape)}" for k in expected if k in sd and sd[k].shape != expected[k].shape]
    if not (missing or unexpected or shapes):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) e.g. {missing[:_SHOW]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[:_SHOW]}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es) e.g. {shapes[:_SHOW]}")
    raise ModelError(
        f"{source}: not BA-Net(4 bands, 1 class, 64 days) weights: " + "; ".join(parts),
        hint="use a weight file of the published BA-Net architecture (banet_ops.models.banet.BANet)",
    )


def load_weights(path: str | Path, device: str | torch.device = "cpu", *, model_id: str | None = None) -> tuple[BANet, ModelRef]:
    """Load a weight file into a fresh :class:`BANet` in eval mode on ``device``; returns it and its :class:`ModelRef`.

    Strict: every key and shape must match.  The sha256 is of the file's bytes.
    """
    p = Path(path)
    dev = resolve_device(device)
    try:
        data = p.read_bytes()
    except FileNotFoundError as exc:
        raise ModelError(f"weight file {p} not found", hint="check the path, or register/promote a model") from exc
    except OSError as exc:
        raise ModelError(f"weight file {p} cannot be read: {exc.strerror or exc}") from exc
    digest = sha256_bytes(data)
    try:
        obj = torch.load(io.BytesIO(data), map_location=dev, weights_only=True)
    except Exception as exc:  # torch raises pickle/zip/runtime errors of many kinds for bad files
        raise ModelError(
            f"weight file {p} is corrupt or not a PyTorch file ({type(exc).__name__}: {str(exc)[:160]})",
            hint="re-download or re-export the weights",
        ) from exc
    sd = _extract_state_dict(obj, p)
    model = BANet(len(MODEL_BANDS), 1, SEQUENCE_DAYS)
    check_state_dict(model, sd, str(p))
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{p}: weights do not load into BA-Net: {str(exc)[:300]}") from exc
    model.to(dev).eval()
    return model, ModelRef(sha256=digest, path=str(p), model_id=model_id)


def save_weights(model: nn.Module, path: str | Path) -> str:
    """Write ``model.state_dict()`` to ``path`` atomically (temp file then rename); returns its sha256."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    data = buf.getvalue()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return sha256_bytes(data)


def calibration_input(seed: int, size: int = 32, batch: int = 1) -> torch.Tensor:
    """A standardised input with the value ranges of real days (smooth reflectances, sparse fires)."""
    g = torch.Generator().manual_seed(seed)
    t = SEQUENCE_DAYS
    base = torch.rand(batch, 4, 1, size // 8, size // 8, generator=g)
    base = torch.nn.functional.interpolate(base, size=(1, size, size), mode="trilinear", align_corners=False)
    raw = base.expand(batch, 4, t, size, size) * torch.tensor([0.3, 0.5, 0.2, 0.0]).view(1, 4, 1, 1, 1)
    raw = raw + 0.02 * torch.randn(batch, 4, t, size, size, generator=g)
    fires = (torch.rand(batch, t, size, size, generator=g) < 0.002).float() * torch.rand(batch, t, size, size, generator=g) * 5
    raw[:, 3] = torch.log1p(fires)
    raw[:, :3] = raw[:, :3].clamp(min=0)
    mean = torch.tensor(BANET_MEAN).view(1, 4, 1, 1, 1)
    std = torch.tensor(BANET_STD).view(1, 4, 1, 1, 1)
    return (raw - mean) / std


def initialise_model(seed: int = 0, *, prior: float = 0.005) -> BANet:
    """A freshly initialised BA-Net whose norm statistics are calibrated on :func:`calibration_input`.

    PyTorch's default init with unit running statistics shrinks activations level after level,
    so an uncalibrated model outputs an almost constant map.  One forward pass in training mode
    (cumulative statistics, dropout off) sets the statistics; the final bias is then set so the
    mean daily probability is ``prior`` (burns are rare), as is usual before training.
    """
    if not 0 < prior < 1:
        raise ModelError(f"expected 0 < prior < 1, found {prior}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BANet(len(MODEL_BANDS), 1, SEQUENCE_DAYS)
    x = calibration_input(seed)
    model.train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average of the calibration batch
            module.reset_running_stats()
        if isinstance(module, nn.Dropout3d):
            module.eval()
    with torch.no_grad():
        model(x)
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.1
        model.eval()
        logits = model(x)
        bias = model.final_conv.bias
        if bias is not None:
            bias.add_(math.log(prior / (1 - prior)) - float(logits.mean()))
    return model


def init_weights(path: str | Path, seed: int = 0, *, prior: float = 0.005) -> ModelRef:
    """Write the weights of :func:`initialise_model` to ``path`` (for the demo and tests)."""
    sha = save_weights(initialise_model(seed, prior=prior), path)
    return ModelRef(sha256=sha, path=str(path), model_id=None)
