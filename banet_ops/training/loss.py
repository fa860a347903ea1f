"""A masked, class-weighted loss for per-day burned fraction.

Cell-days without a usable label (unmapped, water, no MCD64A1, month not labelled) are left out
of the loss entirely; burned cell-days, which are rare (one day in 64 of a few per cent of the
cells), are up-weighted by ``pos_weight``.  Targets may be fractional (bafrac), so this is
binary cross-entropy against a soft target.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def masked_bce_loss(logits: Tensor, target: Tensor, valid: Tensor, pos_weight: float = 1.0) -> Tensor:
    """Mean weighted BCE over the valid elements (0 with a gradient when none is valid).

    ``logits``, ``target`` and ``valid`` share a shape (e.g. ``(batch, 1, time, y, x)``).
    """
    logits = logits.float()
    per = F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none", pos_weight=torch.tensor(pos_weight, device=logits.device))
    w = valid.to(per.dtype)
    n = w.sum()
    return (per * w).sum() / n.clamp(min=1.0)


def auto_pos_weight(targets: list[np.ndarray], valids: list[np.ndarray], cap: float = 50.0) -> float:
    """sqrt(negatives / positives) over the training targets, within [1, cap] (full inverse frequency over-predicts)."""
    pos = sum(float(t[v].sum()) for t, v in zip(targets, valids))
    total = sum(float(v.sum()) for v in valids)
    if pos <= 0:
        return 1.0
    return float(np.clip(np.sqrt((total - pos) / pos), 1.0, cap))
