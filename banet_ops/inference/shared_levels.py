"""BA-Net's first encoder levels computed once per region cell instead of once per overlapping tile (exact).

An encoder level is a spatial convolution (level 1: 7x7, stride 1; levels 2-5: 3x3, stride 2)
followed by work pixel by pixel (level 1's LSTM, every level's temporal convolution).  Over a row
of tiles whose starts are multiples of the level's total stride, the level computed once over the
whole row (the *band*) equals each tile's own output except in a thin ring along the tile's edges,
where the tile's own zero padding replaces the band's context: 3 cells at level 1, 2 at level 2,
1-2 at level 3.  :func:`shared_levels` computes levels 1..k over the band, cuts the tiles out of
it and recomputes only those rings, each from the tile's own previous level.  Past the region
edge the input is raw-zero padding, so every cell far enough from the region and from a tile
edge holds one value per level (the *fill*), computed once.  Rows of tiles overlap too: a row
hands the rows of its bands that the next row over the same columns starts with (:class:`Carry`;
the published grid: 25 of 128 at level 1), and the next row computes only the rest (its tiles'
top rings then differ from the band and are recomputed).  The result equals the per-tile
computation to float rounding."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from banet_ops.models.banet import memory_format_of

Sides = dict[str, int]  # ring width per side ("top", "bottom", "left", "right") at one level


@dataclass(frozen=True)
class Geometry:
    """Kernel ``k``, stride ``s`` and padding ``p`` of a level's spatial convolution (the same on both axes)."""

    k: int
    s: int
    p: int

    @classmethod
    def of(cls, level: nn.Module) -> Geometry:
        conv = level.space
        if not isinstance(conv, nn.Conv3d):
            raise ValueError(f"expected a 1xkxk spatial convolution, found {conv}")
        return cls.of_conv(conv)

    @classmethod
    def of_conv(cls, conv: nn.Conv3d) -> Geometry:
        """The geometry of a plain ``1×k×k`` convolution with the same zero padding ``p < k`` on both axes; refuses any other."""
        padding = conv.padding
        plain = conv.groups == 1 and conv.dilation == (1, 1, 1) and conv.padding_mode == "zeros" and isinstance(padding, tuple)
        if not plain or conv.kernel_size[0] != 1 or conv.stride[0] != 1 or padding[0] != 0:
            raise ValueError(f"expected a plain 1xkxk convolution, zero-padded in space only, found {conv}")
        (_, kh, kw), (_, sh, sw), (_, ph, pw) = conv.kernel_size, conv.stride, cast(tuple[int, int, int], padding)
        if kh != kw or sh != sw or ph != pw or ph >= kh:
            raise ValueError(f"expected a square 1xkxk spatial convolution, the same zero padding (below k) on both axes, found {conv}")
        return cls(k=kh, s=sh, p=ph)

    def reads(self, lo: int, hi: int) -> tuple[int, int]:
        """Input cells ``[start, stop)`` that output cells ``[lo, hi)`` read, past the edges included (``start`` < 0: padding)."""
        return self.s * lo - self.p, self.s * (hi - 1) - self.p + self.k

    def size_out(self, n_in: int) -> int:
        return (n_in + 2 * self.p - self.k) // self.s + 1

    def exact_out(self, e_in: int, n_in: int) -> int:
        """Cells of the output that read any input cell before ``e_in`` (those after read fill only)."""
        return self.size_out(n_in) if e_in >= n_in else min(self.size_out(n_in), math.ceil((e_in + self.p) / self.s))

    def need_in(self, e_out: int, n_in: int) -> int:
        """Input cells that the first ``e_out`` output cells read."""
        return min(n_in, (e_out - 1) * self.s - self.p + self.k)

    def ring_low(self, r_in: int, n_in: int) -> int:
        """Width of the ring at the start of an axis of ``n_in`` input cells, given the input's ring ``r_in`` there."""
        return min(self.size_out(n_in), math.ceil((r_in + self.p) / self.s))

    def ring_high(self, r_in: int, n_in: int) -> int:
        """Width of the ring at the end of an axis of ``n_in`` input cells, given the input's ring ``r_in`` there."""
        n_out = self.size_out(n_in)
        return min(n_out, max(0, n_out - math.ceil((n_in - r_in - self.k + 1 + self.p) / self.s)))


@dataclass
class Band:
    """A level's values over a row of tiles: exact in the first ``exact`` (rows, cols) of ``values``, ``fill`` past them.

    ``values`` may run past ``exact``, holding the fill there (the raw input does); ``size`` is
    the band's whole extent (rows, cols), the tiles' height and the row's span.
    """

    values: Tensor  # (1, C, T, rows, cols)
    exact: tuple[int, int]
    fill: Tensor  # (1, C, T, 1, 1)
    size: tuple[int, int]

    def first(self, rows: int, cols: int) -> Tensor:
        """The band's first ``rows x cols`` cells (a view when ``values`` holds them, else a copy with the fill)."""
        if self.values.shape[-2] >= rows and self.values.shape[-1] >= cols:
            return self.values[..., :rows, :cols]
        eh, ew = min(self.exact[0], rows), min(self.exact[1], cols)
        out = torch.empty((*self.values.shape[:3], rows, cols), dtype=self.values.dtype, device=self.values.device, memory_format=memory_format_of(self.values))
        out[..., :eh, :ew] = self.values[..., :eh, :ew]
        out[..., eh:, :] = self.fill
        out[..., :eh, ew:] = self.fill
        return out


def _space_cells(conv: nn.Conv3d, x: Tensor, rows: tuple[int, int], cols: tuple[int, int]) -> Tensor:
    """Cells ``rows x cols`` of ``conv`` over ``x`` (zero padding past its edges), exactly those: a whole tensor, not a view.

    The convolution pads by itself where that makes exactly the wanted cells; elsewhere (level 1:
    3 columns too many on the right, where the next level's input ends) ``x``'s cut is padded
    explicitly first, a copy of the input, which at level 1 holds 8 times fewer values than the
    output that would otherwise be cut and copied (benchmarks/README.md, session 10).
    """
    g = Geometry.of_conv(conv)
    cuts, pads, fits = [], [], True
    for (lo, hi), n in ((rows, x.shape[-2]), (cols, x.shape[-1])):
        start, stop = g.reads(lo, hi)
        low, length = max(0, -start), min(stop, n) - max(start, 0)
        cuts.append(slice(max(start, 0), min(stop, n)))
        pads.append((low, stop - min(stop, n)))
        # the convolution's own padding, ``low`` on both sides, makes exactly the wanted cells
        fits = fits and (length + 2 * low - g.k) // g.s + 1 == hi - lo
    piece = x[..., cuts[0], cuts[1]]
    if fits:
        # a cut of the band: copied here in its own layout (the convolution would copy it anyway, into the default layout)
        piece = piece.contiguous(memory_format=memory_format_of(x))
        return F.conv3d(piece, conv.weight, conv.bias, stride=conv.stride, padding=(0, pads[0][0], pads[1][0]))
    (top, bottom), (left, right) = pads
    return F.conv3d(F.pad(piece, (left, right, top, bottom)), conv.weight, conv.bias, stride=conv.stride)


def _deep_value(level: nn.Module, fill: Tensor, g: Geometry) -> Tensor:
    """Output ``(1, C, T, 1, 1)`` of a cell whose whole neighbourhood holds ``fill``."""
    patch = fill.expand(*fill.shape[:3], g.k, g.k).contiguous()
    space = cast(nn.Conv3d, level.space)
    return level.per_pixel(F.relu(F.conv3d(patch, space.weight, space.bias), inplace=True))  # type: ignore[operator,no-any-return]


def next_band(level: nn.Module, band: Band, extent: tuple[int, int] | None = None, above: Tensor | None = None) -> Band:
    """``level`` over ``band``: computed where the band's exact cells reach, the fill beyond.

    ``extent``: compute this many (rows, cols) at least, so that the next level finds its input
    in ``values`` (the cells past the exact ones then hold the fill, to float rounding) instead
    of a copy with the fill.  ``above``: the band's first rows, already computed by the previous
    row of tiles (:class:`Carry`); only the rows below them are computed.
    """
    g = Geometry.of(level)
    (h_in, w_in), (eh_in, ew_in) = band.size, band.exact
    eh, ew = g.exact_out(eh_in, h_in), g.exact_out(ew_in, w_in)
    ch, cw = max(eh, extent[0]) if extent else eh, max(ew, extent[1]) if extent else ew
    size, fill = (g.size_out(h_in), g.size_out(w_in)), _deep_value(level, band.fill, g)
    known = 0 if above is None or above.shape[-1] < cw else min(ch, above.shape[-2])
    if known == ch:
        return Band(above[..., :ch, :cw], (eh, ew), fill, size)  # type: ignore[index]
    x = band.first(g.need_in(ch, h_in), g.need_in(cw, w_in))
    values = F.relu(_space_cells(cast(nn.Conv3d, level.space), x, (known, ch), (0, cw)), inplace=True)
    for step in level.pixel_steps():  # type: ignore[operator]
        values = step(values)  # each step's input freed once it is done (level 1: one of three 270 MB band tensors fewer at the peak)
    if known:
        values = torch.cat((above[..., :known, :cw], values), dim=-2)  # type: ignore[index]
    return Band(values, (eh, ew), fill, size)


@dataclass
class Carry:
    """What a row of tiles hands to the next row over the same columns: the rows of its bands the next one starts with.

    ``rows[k]``: level ``k + 1``'s values of the next band's first rows (the overlap of the two
    rows of tiles, less the cells that the band's bottom edge reaches).
    """

    rows: list[Tensor]


def _carry_rows(band: Band, shift: int, bottom_ring: int) -> Tensor | None:
    """The rows of ``band`` from ``shift`` on that hold exact values untouched by its bottom edge (a copy), if any."""
    end = min(band.exact[0], band.size[0] - bottom_ring, band.values.shape[-2])
    return band.values[..., shift:end, :].clone() if end > shift else None


def _extents(levels: Sequence[nn.Module], size: tuple[int, int], exact: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells (rows, cols) to compute at each level so that each next level reads only computed cells."""
    sizes, exacts = [size], [exact]
    for level in levels:
        g = Geometry.of(level)
        sizes.append((g.size_out(sizes[-1][0]), g.size_out(sizes[-1][1])))
        exacts.append((g.exact_out(exacts[-1][0], sizes[-2][0]), g.exact_out(exacts[-1][1], sizes[-2][1])))
    extents = [exacts[-1]]
    for i in range(len(levels) - 1, 0, -1):  # level i's extent: what level i + 1 reads of it
        g = Geometry.of(levels[i])
        (nh, nw), (eh, ew) = sizes[i], exacts[i]
        extents.insert(0, (max(eh, g.need_in(extents[0][0], nh)), max(ew, g.need_in(extents[0][1], nw))))
    return extents


def _strips(level: nn.Module, tiles: Sequence[Tensor], side: str, r: int, g: Geometry) -> list[Tensor]:
    """Spatial-convolution output (after ReLU) ``(1, C, T, rows, cols)`` of the ``r`` cells along ``side`` of each of ``tiles``, each from the tile alone."""
    axis = 3 if side in ("top", "bottom") else 4
    n_in = tiles[0].shape[axis]
    first_out = 0 if side in ("top", "left") else g.size_out(n_in) - r
    # the strip of input that a convolution with the level's own padding on both sides reads,
    # starting on the stride grid: it makes ``made`` cells, the ``r`` wanted from ``keep`` on
    q = max(0, first_out - math.ceil(g.p / g.s))
    lo, hi = g.s * q, g.need_in(first_out + r, n_in)
    made, keep = g.size_out(hi - lo), first_out - q
    conv = cast(nn.Conv3d, level.space)
    if made < 2 * r:
        return [F.relu(_space_by_day(conv, tile.narrow(axis, lo, hi - lo), (g.p, g.p)), inplace=True).narrow(axis, keep, r) for tile in tiles]
    # as many cells thrown away as kept, or more (level 1: 6 made for 3)
    return _wanted_cells(conv, tiles, axis, first_out, r, g)


def _wanted_cells(conv: nn.Conv3d, tiles: Sequence[Tensor], axis: int, first_out: int, r: int, g: Geometry) -> list[Tensor]:
    """Cells ``first_out .. first_out + r`` along ``axis`` of each tile's spatial convolution (after ReLU), all tiles in one convolution.

    Only those cells are computed: from a copy of the strip of input they read, with the tile's own
    zero padding in place wherever they reach past its edges.
    """
    n_in, cross = tiles[0].shape[axis], 7 - axis  # the strip's axis and the one across it (3: rows, 4: columns)
    start, stop = g.reads(first_out, first_out + r)
    lo, hi = max(start, 0), min(stop, n_in)
    c, t_len, n_cross = tiles[0].shape[1], tiles[0].shape[2], tiles[0].shape[cross]
    shape = [len(tiles), c, t_len, stop - start, n_cross + 2 * g.p]
    if axis == 4:
        shape[3:] = shape[4], shape[3]
    padded = torch.empty(shape, dtype=tiles[0].dtype, device=tiles[0].device, memory_format=torch.channels_last_3d).zero_()
    inner = padded.narrow(axis, lo - start, hi - lo).narrow(cross, g.p, n_cross)
    for j, tile in enumerate(tiles):
        inner[j] = tile[0].narrow(axis - 1, lo, hi - lo)
    return list(F.relu(_space_by_day(conv, padded, (0, 0)), inplace=True).split(1))


def _space_by_day(conv: nn.Conv3d, x: Tensor, padding: tuple[int, int]) -> Tensor:
    """A ``1×k×k`` convolution of ``x`` ``(N, C, T, h, w)`` with zero ``padding`` (rows, columns) as a 2-D one with the days as the batch.

    Same kernels and sums; on the thin strips of a ring, oneDNN's 3-D convolution is up to 5×
    slower than its 2-D one (benchmarks/README.md, session 7).  ``channels_last_3d`` in and out:
    folding the days into the batch is then a view.
    """
    Geometry.of_conv(conv)  # a plain 1×k×k convolution, or an error
    n, c, t, h, w = x.shape
    flat = x.permute(0, 2, 1, 3, 4).reshape(n * t, c, h, w)
    out = F.conv2d(flat, conv.weight[:, :, 0], conv.bias, stride=conv.stride[1:], padding=padding)
    return out.reshape(n, t, *out.shape[1:]).permute(0, 2, 1, 3, 4)


def _sides(band: Band, x: int, width: int, rings: Sides) -> list[str]:
    """The sides of the tile at column ``x`` whose ring differs from the band's values there."""
    (height, span), (eh, ew) = band.size, band.exact
    short_cols, short_rows = ew < x + width, eh < height  # fill inside the tile, which assumes cells deep in padding
    wanted = {
        "top": short_cols or eh < rings["top"],
        "bottom": short_rows or short_cols,
        "left": x > 0 or short_rows or ew < x + rings["left"],
        "right": x + width < span or short_rows or short_cols,
    }
    return [side for side, want in wanted.items() if want]


def _cut_tiles(band: Band, offsets: Sequence[int], width: int) -> Tensor:
    """The tiles ``band[..., x : x + width]`` for ``x`` in ``offsets``, the fill past the exact cells."""
    (height, _), (eh, ew) = band.size, band.exact
    v = band.values
    out = torch.empty((len(offsets), *v.shape[1:3], height, width), dtype=v.dtype, device=v.device, memory_format=memory_format_of(v))
    for i, x in enumerate(offsets):
        c1 = max(x, min(x + width, ew))
        out[i, :, :, :eh, : c1 - x] = v[0, :, :, :eh, x:c1]
        out[i, :, :, eh:, :] = band.fill[0]
        out[i, :, :, :eh, c1 - x :] = band.fill[0]
    return out


def _tiles_of_level(
    level: nn.Module, band: Band, inputs: Sequence[Tensor], offsets: Sequence[int], width: int, rings: Sides, sides: Sequence[set[str]]
) -> Tensor:
    """Each tile's output of ``level``: cut out of ``band`` (the level over the row), the rings on ``sides[i]`` recomputed from ``inputs[i]``."""
    g = Geometry.of(level)
    out = _cut_tiles(band, offsets, width)
    order = ("top", "bottom", "left", "right")
    pieces: list[tuple[int, str, Tensor]] = []
    for side in order:
        which = [i for i in range(len(offsets)) if side in sides[i]]
        if which and rings[side] > 0:
            strips = _strips(level, [inputs[i] for i in which], side, rings[side], g)
            pieces += [(i, side, strip) for i, strip in zip(which, strips, strict=True)]
    if not pieces:
        return out
    # the rings of all tiles through the pixel-by-pixel part at once (level 1: one LSTM call), their
    # cells side by side in a channels_last_3d column: the per-pixel layers read it as a view, no transposing copy
    n_ch, n_time = pieces[0][2].shape[1:3]
    cells = sum(t.shape[3] * t.shape[4] for _, _, t in pieces)
    flat = torch.empty((1, n_ch, n_time, cells, 1), dtype=out.dtype, device=out.device, memory_format=torch.channels_last_3d)
    start = 0
    for _, _, t in pieces:
        h, w = t.shape[3], t.shape[4]
        flat[0, :, :, start : start + h * w, 0].view(n_ch, n_time, h, w).copy_(t[0])
        start += h * w
    done = level.per_pixel(flat)  # type: ignore[operator]
    start = 0
    for i, side, t in pieces:
        h, w = t.shape[3], t.shape[4]
        vals = done[0, :, :, start : start + h * w, 0].view(done.shape[1], done.shape[2], h, w)
        start += h * w
        r = rings[side]
        if side == "top":
            out[i, :, :, :r, :] = vals
        elif side == "bottom":
            out[i, :, :, -r:, :] = vals
        elif side == "left":
            out[i, :, :, :, :r] = vals
        else:
            out[i, :, :, :, -r:] = vals
    return out


def shareable_levels(offsets: Sequence[int], tile_w: int, strides: Sequence[int]) -> int:
    """How many first levels (of spatial ``strides``) the tiles at ``offsets`` (relative to the first) can share: starts on each level's grid."""
    total = 1
    for k, s in enumerate(strides):
        total *= s
        if any(x % total for x in offsets) or tile_w % total:
            return k
    return len(strides)


def shared_levels(
    levels: Sequence[nn.Module],
    band: Tensor,
    offsets: Sequence[int],
    tile_w: int,
    valid: tuple[int, int],
    pad: Tensor,
    *,
    above: Carry | None = None,
    next_shift: int | None = None,
) -> tuple[list[Tensor], Carry | None]:
    """Outputs ``(n, C, T, h, w)`` of ``levels`` (the first encoder levels, in order) for the tiles ``band[..., x : x + tile_w]``.

    ``band``: the standardised input ``(1, band, T, th, span)`` of a row of tiles (top edge = the
    tiles' top edge); ``valid``: its rows and columns holding region cells (the rest is raw-zero
    padding, whose standardised value per band is ``pad``, shape ``(1, band, 1, 1, 1)``).  Every
    offset must be a multiple of the total stride of the levels before the last one.
    ``above``: what the previous row of tiles over the same columns handed on; ``next_shift``:
    rows from this row of tiles to the next over the same columns, to hand on (returned).
    """
    if min(offsets) < 0 or max(offsets) + tile_w > band.shape[-1]:
        raise ValueError(f"expected tiles inside the band of {band.shape[-1]} columns, found tiles at {list(offsets)} of {tile_w} running past the band")
    strides = [Geometry.of(level).s for level in levels]
    if (k := shareable_levels(offsets, tile_w, strides)) < len(levels):
        raise ValueError(f"expected tile offsets and width on the stride-{math.prod(strides[: k + 1])} grid of level {k + 1}, found {list(offsets)}, {tile_w}")
    current = Band(band, valid, pad.expand(*band.shape[:3], 1, 1), (band.shape[-2], band.shape[-1]))
    inputs: list[Tensor] = [band[..., x : x + tile_w] for x in offsets]
    rings: Sides = dict.fromkeys(("top", "bottom", "left", "right"), 0)
    # sides whose ring differs from the band at some level so far; with rows from above, the band's
    # top rows hold context the tiles do not see
    dirty: list[set[str]] = [{"top"} if above else set() for _ in offsets]
    outputs: list[Tensor] = []
    carried: list[Tensor] = []
    for k, (level, extent) in enumerate(zip(levels, _extents(levels, current.size, current.exact), strict=True)):
        g = Geometry.of(level)
        h_in, w_in = inputs[0].shape[-2:]
        rings = {
            "top": g.ring_low(rings["top"], h_in),
            "bottom": g.ring_high(rings["bottom"], h_in),
            "left": g.ring_low(rings["left"], w_in),
            "right": g.ring_high(rings["right"], w_in),
        }
        current = next_band(level, current, extent, above.rows[k] if above and k < len(above.rows) else None)
        offsets, tile_w = [x // g.s for x in offsets], g.size_out(tile_w)
        if next_shift is not None and next_shift % g.s == 0 and next_shift // g.s >= rings["top"] and len(carried) == k:
            next_shift //= g.s
            rows = _carry_rows(current, next_shift, rings["bottom"])
            carried += [] if rows is None else [rows]
        for i, x in enumerate(offsets):
            dirty[i] |= set(_sides(current, x, tile_w, rings))
        tiles = _tiles_of_level(level, current, inputs, offsets, tile_w, rings, dirty)
        outputs.append(tiles)
        inputs = list(tiles.split(1))
    return outputs, Carry(carried) if carried else None
