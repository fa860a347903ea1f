"""Load, save and initialise model weight files (``.pth``: a state_dict or ``{"model": state_dict}``).

A file records its architecture (:mod:`banet_ops.models.zoo`): zoo models are saved as
``{"architecture": name, "config": {...}, "model": state_dict}`` and get a JSON sidecar
(``<file>.json``, keys ``architecture`` and ``arch_config``); a plain state_dict with no sidecar
saying otherwise is BA-Net — the published weight files load unchanged, strictly.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from banet_ops.bands import BANET_MEAN, BANET_STD, SEQUENCE_DAYS
from banet_ops.errors import ModelError, ValidationError
from banet_ops.models import zoo
from banet_ops.product import ModelRef
from banet_ops.util import atomic_write

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


def check_state_dict(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str, arch: str = "banet") -> None:
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
    if arch == "banet":
        raise ModelError(
            f"{source}: not BA-Net(4 bands, 1 class, 64 days) weights: " + "; ".join(parts),
            hint="use a weight file of the published BA-Net architecture (banet_ops.models.banet.BANet)",
        )
    raise ModelError(f"{source}: not {arch} weights of the recorded config: " + "; ".join(parts), hint="re-save them with models.weights.save_weights")


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a weight file (``x.pth`` → ``x.json``)."""
    return Path(path).with_suffix(".json")


def _file_architecture(obj: object, path: Path) -> tuple[str, dict[str, Any]]:
    """Architecture recorded in the loaded file, else in its sidecar, else ``banet``."""
    if isinstance(obj, Mapping) and "architecture" in obj:
        name, cfg = obj["architecture"], obj.get("config") or {}
        where = str(path)
    else:
        side = sidecar_path(path)
        meta: Any = {}
        if side.is_file():
            try:
                meta = json.loads(side.read_text())
            except (OSError, ValueError) as exc:
                raise ModelError(f"{side}: expected a JSON sidecar, found unreadable content ({exc})") from None
        if not isinstance(meta, Mapping) or "architecture" not in meta:
            return zoo.DEFAULT_ARCH, {}
        name, cfg = meta["architecture"], meta.get("arch_config") or {}
        where = str(side)
    if not isinstance(name, str) or not isinstance(cfg, Mapping):
        raise ModelError(f"{where}: expected field 'architecture' a name and 'config' a mapping, found {name!r}, {type(cfg).__name__}")
    return name, dict(cfg)


def load_weights(
    path: str | Path, device: str | torch.device = "cpu", *, model_id: str | None = None, architecture: str | None = None
) -> tuple[nn.Module, ModelRef]:
    """Load a weight file into a fresh model of its recorded architecture, in eval mode on ``device``.

    Strict: every key and shape must match.  ``architecture`` (e.g. from the registry row) must
    agree with what the file records.  The sha256 is of the file's bytes.
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
    arch, cfg = _file_architecture(obj, p)
    if architecture is not None and architecture != arch:
        raise ModelError(f"{p}: expected architecture {architecture!r} (registry), found {arch!r} recorded with the weights")
    sd = _extract_state_dict(obj, p)
    try:
        model = zoo.build_model(arch, cfg)
    except ValidationError as exc:
        raise ModelError(f"{p}: {exc}") from None
    check_state_dict(model, sd, str(p), arch)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{p}: weights do not load into {arch}: {str(exc)[:300]}") from exc
    model.to(dev).eval()
    return model, ModelRef(sha256=digest, path=str(p), model_id=model_id)


def write_sidecar(path: str | Path, architecture: str, config: Mapping[str, Any]) -> Path:
    """Record ``architecture`` and ``arch_config`` in the weight file's JSON sidecar (other keys kept)."""
    side = sidecar_path(path)
    meta: dict[str, Any] = {}
    if side.is_file():
        try:
            loaded = json.loads(side.read_text())
            meta = dict(loaded) if isinstance(loaded, Mapping) else {}
        except (OSError, ValueError):
            meta = {}
    meta.update({"file": Path(path).name, "architecture": architecture, "arch_config": dict(config)})
    atomic_write(side, json.dumps(meta, indent=1) + "\n", fsync=True)
    return side


def save_weights(model: nn.Module, path: str | Path) -> str:
    """Write ``model``'s weights to ``path`` atomically (temp file then rename); returns the file's sha256.

    BA-Net is saved as a plain state_dict (the published format); other architectures as
    ``{"architecture", "config", "model"}`` plus a JSON sidecar recording the same.
    """
    p = Path(path)
    arch, cfg = zoo.architecture_of(model)
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save(sd if arch == "banet" else {"architecture": arch, "config": cfg, "model": sd}, buf)
    data = buf.getvalue()
    atomic_write(p, data, fsync=True)
    if arch != "banet":
        write_sidecar(p, arch, cfg)
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


def initialise_model(seed: int = 0, *, prior: float = 0.005, architecture: str = "banet", config: Mapping[str, Any] | None = None) -> nn.Module:
    """A freshly initialised model whose norm statistics are calibrated on :func:`calibration_input`.

    PyTorch's default init with unit running statistics shrinks activations level after level,
    so an uncalibrated model outputs an almost constant map.  One forward pass in training mode
    (cumulative statistics, dropout off) sets the statistics; the output bias is then set so the
    mean daily probability is ``prior`` (burns are rare), as is usual before training.
    """
    if not 0 < prior < 1:
        raise ModelError(f"expected 0 < prior < 1, found {prior}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = zoo.build_model(architecture, config)
    x = calibration_input(seed)
    model.train()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in model.modules():
        if isinstance(module, nn.Dropout3d):
            module.eval()
    for norm in norms:
        norm.momentum = None  # cumulative average of the calibration batch
        norm.reset_running_stats()
    with torch.no_grad():
        model(x)
        for norm in norms:
            norm.momentum = 0.1
        model.eval()
        logits = model(x)
        bias = zoo.output_layer(model).bias
        if bias is not None:
            bias.add_(math.log(prior / (1 - prior)) - float(logits.mean()))
    return model


def init_weights(path: str | Path, seed: int = 0, *, prior: float = 0.005, architecture: str = "banet", config: Mapping[str, Any] | None = None) -> ModelRef:
    """Write the weights of :func:`initialise_model` to ``path`` (for the demo and tests)."""
    sha = save_weights(initialise_model(seed, prior=prior, architecture=architecture, config=config), path)
    return ModelRef(sha256=sha, path=str(path), model_id=None)
