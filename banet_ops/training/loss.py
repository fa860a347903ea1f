"""A masked, class-weighted loss for per-day burned fraction whose output stays calibrated.

Cell-days without a usable label (unmapped, water, no MCD64A1, month not labelled) are left out
of the loss entirely; burned cell-days, which are rare (one day in 64 of a few per cent of the
cells), are up-weighted by ``pos_weight``.  Targets may be fractional (bafrac), so this is
binary cross-entropy against a soft target.

Class weighting alone moves the optimum of the model's daily probability from ``q`` (the chance
a cell-day burned) to ``pos_weight·q / (pos_weight·q + 1 − q)``: with ``pos_weight`` 13, fire
edges (bafrac 0.05–0.2, or an uncertain boundary) came out at 0.4–0.75 a day, and the product
rule (Σ daily probability over the month ≥ 0.5) burned a one- to two-cell halo around every scar
(commission ≈ 0.7 in the first bake-off, benchmarks/README.md ``## bakeoff``).  So the weighted
loss is taken on the logits shifted by ``log(pos_weight)`` (logit adjustment, Menon et al. 2021,
"Long-tail learning via logit adjustment", ICLR): the burned class keeps its larger gradient, and
the optimum of the model's own logit is ``logit(q)`` again — calibrated, as the products expect.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def masked_bce_loss(logits: Tensor, target: Tensor, valid: Tensor, pos_weight: float = 1.0) -> Tensor:
    """Mean class-weighted, logit-adjusted BCE over the valid elements (0 with a gradient when none is valid).

    ``logits``, ``target`` and ``valid`` share a shape (e.g. ``(batch, 1, time, y, x)``).  With
    ``pos_weight`` 1 this is plain masked BCE.
    """
    logits = logits.float() + math.log(pos_weight)
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
