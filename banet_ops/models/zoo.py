"""The registry of model architectures (DESIGN §6): ``banet`` and the sibling projects' models.

:func:`build_model` is the one way to make a model from an architecture name and a config dict;
the model remembers both (``model.arch_name``, ``model.arch_config``) so that
:func:`banet_ops.models.weights.save_weights` can record them with its weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from torch import nn

from banet_ops.bands import MODEL_BANDS, SEQUENCE_DAYS
from banet_ops.errors import ValidationError
from banet_ops.models import deepforest_early, deepforest_repr, segnet, unet_convlstm
from banet_ops.models.banet import BANet
from banet_ops.models.spec import ArchConfig, ArchSpec
from banet_ops.util import pydantic_problem

DEFAULT_ARCH = "banet"


class BANetConfig(ArchConfig):
    sequence_len: int = Field(SEQUENCE_DAYS, ge=16, multiple_of=16)


def _build_banet(cfg: ArchConfig) -> nn.Module:
    assert isinstance(cfg, BANetConfig)
    return BANet(cfg.in_channels, 1, cfg.sequence_len)


ARCHS: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec("banet", BANetConfig, _build_banet, "BA-Net space-time U-Net (Pinto et al. 2020), loads the published weights", 32, 16),
        unet_convlstm.SPEC,
        deepforest_early.SPEC,
        deepforest_repr.SPEC,
        segnet.SPEC,
    )
}


def get_spec(name: str) -> ArchSpec:
    spec = ARCHS.get(name)
    if spec is None:
        raise ValidationError(f"expected an architecture in {sorted(ARCHS)}, found {name!r}", hint="see `banet-ops models archs`")
    return spec


def arch_config(name: str, config: Mapping[str, Any] | None = None) -> ArchConfig:
    """The validated config of architecture ``name`` (defaults for missing keys, unknown keys refused)."""
    spec = get_spec(name)
    try:
        return spec.config.model_validate(dict(config or {}))
    except PydanticValidationError as exc:
        raise ValidationError(pydantic_problem(exc, field=f"{name} config field '{{}}'", default_field="config", show_input=True)) from None


def build_model(name: str = DEFAULT_ARCH, config: Mapping[str, Any] | None = None) -> nn.Module:
    """A fresh model of architecture ``name``; it carries ``arch_name`` and ``arch_config`` (the full, validated dict)."""
    spec = get_spec(name)
    cfg = arch_config(name, config)
    if cfg.in_channels != len(MODEL_BANDS):
        raise ValidationError(f"{name} config field 'in_channels': expected {len(MODEL_BANDS)} ({', '.join(MODEL_BANDS)}), found {cfg.in_channels}")
    model = spec.build(cfg)
    model.arch_name = name  # type: ignore[assignment]
    model.arch_config = cfg.model_dump(mode="json")  # type: ignore[assignment]
    return model


def architecture_of(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """``(name, config)`` of a model from :func:`build_model` (a bare :class:`BANet` is ``banet``)."""
    name = getattr(model, "arch_name", None)
    if name is None:
        if isinstance(model, BANet):
            return "banet", arch_config("banet", {"in_channels": model.in_channels, "sequence_len": model.sequence_len}).model_dump(mode="json")
        raise ValidationError(f"expected a model built by banet_ops.models.zoo.build_model, found {type(model).__name__}")
    return str(name), dict(getattr(model, "arch_config", {}))


def output_layer(model: nn.Module) -> nn.Conv3d | nn.Conv2d:
    """The layer that produces the logits (its bias sets the prior burn probability)."""
    layer = model.final_conv if isinstance(model, BANet) else getattr(model, "head", None)
    if not isinstance(layer, nn.Conv3d | nn.Conv2d):
        raise ValidationError(f"expected {type(model).__name__} to have a convolutional output layer 'head', found {type(layer).__name__}")
    return layer


def describe() -> list[dict[str, Any]]:
    """Every architecture with its default config and parameter count (for ``banet-ops models archs``)."""
    out = []
    for name, spec in ARCHS.items():
        model = build_model(name)
        out.append(
            {
                "name": name,
                "parameters": sum(p.numel() for p in model.parameters()),
                "config": getattr(model, "arch_config", {}),
                "summary": spec.summary,
            }
        )
    return out
