"""Training options from the sibling projects (DESIGN §6), applied per sample and per loss.

* **Random day subsets** (Sefrin et al. 2021): each draw of a sample keeps a fresh, seeded random
  subset of ``day_subset`` of its days (in order), so the sequence model sees varied sequences.
* **Incomplete tiles kept** (Sefrin et al. 2021): with ``ignore_nodata``, cells never observed in
  the sample (no-data areas) weigh 0 in the loss instead of the tile being discarded.
* **Class weights** (DeepForest): the burned class is weighted by ``pos_weight``
  (:func:`banet_ops.training.loss.masked_bce_loss`).
* **Two-head weighting** (DeepForest representation fusion): a model with ``forward_with_aux``
  adds its branch heads' losses with their weights (70/30 optical/thermal by default).
* **2-D pre-training** (Sefrin et al. 2021): the first ``pretrain_2d_steps`` steps of a
  ``unet_convlstm`` train the FCN alone (``temporal=False``), then the sequence model goes on from it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from torch import Tensor, nn

from banet_ops.training.loss import masked_bce_loss


def day_subset(
    x: NDArray[np.float32], target: NDArray[np.float32], valid: NDArray[np.bool_], n_days: int, rng: np.random.Generator
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_]]:
    """``n_days`` random days (kept in time order) of a sample ``x`` (band, time, y, x), ``target``/``valid`` (time, y, x)."""
    t = x.shape[1]
    if n_days >= t:
        return x, target, valid
    days = np.sort(rng.choice(t, size=n_days, replace=False))
    return np.ascontiguousarray(x[:, days]), np.ascontiguousarray(target[days]), np.ascontiguousarray(valid[days])


def observed_cells(raw: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Cells (y, x) with at least one observed reflectance in a raw sample (time, band, y, x) (NaN = no data)."""
    return np.asarray(np.isfinite(raw[:, :3]).any(axis=(0, 1)), dtype=bool)


def model_loss(model: nn.Module, x: Tensor, y: Tensor, v: Tensor, pos_weight: float, *, temporal: bool = True) -> Tensor:
    """The training loss of one batch: the output's masked BCE, plus the weighted auxiliary heads' losses if any."""
    if not temporal:
        return masked_bce_loss(model(x, temporal=False), y, v, pos_weight)
    with_aux = getattr(model, "forward_with_aux", None)
    if with_aux is None:
        return masked_bce_loss(model(x), y, v, pos_weight)
    logits, aux = with_aux(x)
    loss = masked_bce_loss(logits, y, v, pos_weight)
    for head, weight in aux:
        loss = loss + weight * masked_bce_loss(head, y, v, pos_weight)
    return loss
