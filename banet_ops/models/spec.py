"""The contract every model-zoo architecture follows (DESIGN §6).

* **Constructor:** ``build(config)`` with a pydantic :class:`ArchConfig` subclass (extra keys are
  refused, so a typo in a stored config is an error, not a silent default).
* **Input:** ``(batch, in_channels, T, H, W)``, bands in :data:`banet_ops.bands.MODEL_BANDS` order
  (Red, NIR, MIR, FRP), standardised as for BA-Net.
* **Output:** daily logits ``(batch, 1, T, H, W)``, so the NRT and monthly products apply unchanged.
* Models with auxiliary heads (representation fusion) also offer ``forward_with_aux(x)`` →
  ``(logits, [(aux_logits, loss_weight), …])``; training adds the weighted auxiliary losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from torch import nn


class ArchConfig(BaseModel):
    """Fields shared by every architecture's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(4, ge=1, le=16, description="Input bands (Red, NIR, MIR, FRP).")


@dataclass(frozen=True)
class ArchSpec:
    """One registered architecture."""

    name: str
    config: type[ArchConfig]
    build: Callable[[ArchConfig], nn.Module]
    summary: str
    #: H and W must be multiples of ``space_multiple`` and T of ``time_multiple`` (1: any size)
    space_multiple: int = 1
    time_multiple: int = 1
