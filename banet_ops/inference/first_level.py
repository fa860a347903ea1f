"""BA-Net's encoder level 1 computed once per row of tiles instead of once per overlapping tile (exact).

Level 1 (a 7x7 spatial convolution, an LSTM over time and a 7x1x1 temporal convolution; about a
third of a forward pass on CPU) reaches 3 pixels in space.  Inside a tile its output at a pixel
depends only on the input within 3 pixels, so for the tiles of one tile-row, level 1 computed over
their union equals each tile's own level 1 except in a 3-pixel ring along the tile's edges,
where the tile's own zero padding enters the 7x7 convolution.  :func:`first_level_tiles`
computes level 1 once over the union (region cells plus a 3-pixel margin; the cells deeper in the
raw-zero padding all share one value, computed once), cuts the tiles out of it and recomputes
only the rings that differ.  The result equals the per-tile computation to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from banet_ops.models.banet import memory_format_of

REACH = 3  # half the 7x7 kernel of level 1


def _level(level: nn.Module, x: Tensor) -> Tensor:
    return level.per_pixel(F.relu(level.space(x), inplace=True))  # type: ignore[operator]


def _padding_value(level: nn.Module, pad: Tensor, n_time: int) -> Tensor:
    """Level-1 output ``(1, C, T, 1, 1)`` of a cell whose 7x7 neighbourhood is all padding."""
    k = 2 * REACH + 1
    patch = pad.expand(1, pad.shape[1], n_time, k, k).contiguous()
    return _level(level, patch)[:, :, :, REACH : REACH + 1, REACH : REACH + 1]


def _rings(level: nn.Module, tile: Tensor, top: bool, bottom: bool, left: bool, right: bool) -> list[tuple[str, Tensor]]:
    """Spatial-convolution output of the requested 3-pixel rings of one tile ``(1, band, T, th, tw)``, each from the tile alone."""
    r2 = 2 * REACH
    pieces: list[tuple[str, Tensor]] = []
    if top:
        pieces.append(("top", F.relu(level.space(tile[..., :r2, :]), inplace=True)[..., :REACH, :]))  # type: ignore[operator]
    if left:
        pieces.append(("left", F.relu(level.space(tile[..., :r2]), inplace=True)[..., :REACH]))  # type: ignore[operator]
    if right:
        pieces.append(("right", F.relu(level.space(tile[..., -r2:]), inplace=True)[..., REACH:]))  # type: ignore[operator]
    if bottom:
        pieces.append(("bottom", F.relu(level.space(tile[..., -r2:, :]), inplace=True)[..., REACH:, :]))  # type: ignore[operator]
    return pieces


def first_level_tiles(level: nn.Module, band: Tensor, offsets: Sequence[int], tile_w: int, valid: tuple[int, int], pad: Tensor) -> Tensor:
    """Level-1 outputs ``(n, C, T, th, tile_w)`` of the tiles ``band[..., x : x + tile_w]`` for ``x`` in ``offsets``.

    ``band``: the standardised input ``(1, band, T, th, span)`` of a row of tiles (top edge = the
    tiles' top edge); ``valid``: its rows and columns holding region cells (the rest is raw-zero
    padding, whose standardised value per band is ``pad``, shape ``(1, band, 1, 1, 1)``).
    """
    _, _, n_time, th, span = band.shape
    rows_v, cols_v = valid
    rows_c, cols_c = min(th, rows_v + 2 * REACH), min(span, cols_v + 2 * REACH)
    rows_o = th if rows_c == th else rows_v + REACH
    cols_o = span if cols_c == span else cols_v + REACH
    computed = _level(level, band[..., :rows_c, :cols_c])
    n_ch = computed.shape[1]
    out = torch.empty((len(offsets), n_ch, n_time, th, tile_w), dtype=computed.dtype, device=computed.device, memory_format=memory_format_of(computed))
    fill = _padding_value(level, pad, n_time)[0] if rows_o < th or cols_o < span else None
    pieces: list[tuple[int, str, Tensor]] = []
    for i, x in enumerate(offsets):
        c1 = max(x, min(x + tile_w, cols_o))
        out[i, :, :, :rows_o, : c1 - x] = computed[0, :, :, :rows_o, x:c1]
        if fill is not None:  # past the shared computation: the value of a cell deep in the padding
            out[i, :, :, rows_o:, :] = fill
            out[i, :, :, :rows_o, c1 - x :] = fill
        # a ring differs where the tile's own padding replaces the band's context, or where the
        # shared computation stopped short of the tile's edge (outside it: the padding value)
        short_cols, short_rows = c1 < x + tile_w, rows_o < th
        top, bottom = short_cols, rows_c < th or short_cols
        left, right = x > 0 or short_rows, not (x + tile_w == cols_c == span) or short_rows
        pieces += [(i, side, t) for side, t in _rings(level, band[..., x : x + tile_w], top, bottom, left, right)]
    if not pieces:
        return out
    # the rings of all tiles through the LSTM and temporal convolution at once, pixel by pixel
    flat = torch.cat([t.reshape(1, n_ch, n_time, -1, 1) for _, _, t in pieces], dim=3)
    done = level.per_pixel(flat)  # type: ignore[operator]
    start = 0
    for i, side, t in pieces:
        n = t.shape[3] * t.shape[4]
        vals = done[0, :, :, start : start + n, 0].reshape(n_ch, n_time, t.shape[3], t.shape[4])
        start += n
        if side == "top":
            out[i, :, :, :REACH, :] = vals
        elif side == "left":
            out[i, :, :, :, :REACH] = vals
        elif side == "right":
            out[i, :, :, :, -REACH:] = vals
        else:
            out[i, :, :, -REACH:, :] = vals
    return out
