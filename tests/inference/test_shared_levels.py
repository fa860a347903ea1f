"""Encoder levels computed once per row of tiles (inference/shared_levels.py) equal them tile by tile."""

from __future__ import annotations

import copy
import weakref
from typing import cast

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from banet_ops.inference import shared_levels as shared_levels_module
from banet_ops.inference.cpu_forms import use_cpu_forms
from banet_ops.inference.engine import standardise_
from banet_ops.inference.shared_levels import Band, Carry, Geometry, shareable_levels, shared_levels
from banet_ops.models.banet import BANet, FusedBANet, _Level, fuse_for_inference

TILE = 128
LEVEL_ATOL = 5e-5  # level outputs are O(1-10); float rounding of other summation orders


@pytest.fixture(scope="module")
def fused(banet: BANet) -> FusedBANet:
    net = fuse_for_inference(banet)
    for m in net.modules():
        if isinstance(m, nn.Conv3d):
            m.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    return net


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "n_in", "r_low", "r_high"), [(7, 1, 3, 128, 0, 0), (3, 2, 1, 128, 3, 3), (3, 2, 1, 64, 2, 2), (3, 2, 1, 17, 1, 2)]
)
def test_rings_hold_every_output_that_sees_the_input_ring_or_the_padding(kernel: int, stride: int, padding: int, n_in: int, r_low: int, r_high: int) -> None:
    g = Geometry(k=kernel, s=stride, p=padding)
    conv = nn.Conv1d(1, 1, kernel, stride=stride, padding=padding, bias=False)
    nn.init.uniform_(conv.weight, 0.5, 1.0)  # positive: no change can cancel out
    x = torch.rand(1, 1, n_in)
    # what an output cell computes inside a tile, against the same cell with real context all around
    context = torch.rand(1, 1, n_in + 2 * kernel)
    context[..., kernel : kernel + n_in] = x
    changed = x.clone()
    changed[..., :r_low] += 1.0
    if r_high:
        changed[..., -r_high:] += 1.0
    context[..., kernel : kernel + n_in] = changed
    with torch.no_grad():
        inside = conv(x)[0, 0]
        with_context = nn.functional.conv1d(context, conv.weight, stride=stride)[0, 0]
    # output i of the tile reads inputs s*i - p ..; in `context` that window starts at kernel + s*i - p
    offset = kernel - padding
    assert offset % stride == 0
    ref = with_context[offset // stride : offset // stride + g.size_out(n_in)]
    differs = np.flatnonzero((inside - ref).abs().numpy() > 1e-6)
    low, high = g.ring_low(r_low, n_in), g.ring_high(r_high, n_in)
    assert len(differs) > 0
    assert all(i < low or i >= g.size_out(n_in) - high for i in differs), (differs, low, high)


def test_a_band_gives_its_first_cells_with_the_fill_past_its_exact_ones() -> None:
    values = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(1, 2, 3, 4, 5)
    fill = torch.full((1, 2, 3, 1, 1), -1.0)
    band = Band(values, (3, 4), fill, (10, 10))
    assert band.first(4, 5).data_ptr() == values.data_ptr()  # held: a view, cells past the exact ones as they are
    out = band.first(6, 7)
    assert torch.equal(out[..., :3, :4], values[..., :3, :4])
    assert (out[..., 3:, :] == -1).all() and (out[..., :, 4:] == -1).all()


def test_levels_shareable_while_the_tile_starts_are_on_their_grid() -> None:
    strides = [1, 2, 2, 2, 2]
    assert shareable_levels([0, 100, 200], TILE, strides) == 3  # the published grid: 100 = 4 * 25
    assert shareable_levels([0, 96, 192], TILE, strides) == 5
    assert shareable_levels([0, 50], TILE, strides) == 2
    assert shareable_levels([0, 33], TILE, strides) == 1


@pytest.mark.parametrize(
    ("valid", "offsets"),
    [((TILE, 328), [0, 100, 200]), ((60, 150), [0, 100]), ((20, 110), [0, 100]), ((TILE, 110), [0, 100]), ((3, 40), [0]), ((TILE, 2), [0])],
    ids=["full-rows-past-right", "past-bottom-and-right", "thin-bottom-row", "full-rows-thin-second", "tiny-corner", "two-columns"],
)
def test_shared_levels_equal_each_tile_on_its_own(fused: FusedBANet, valid: tuple[int, int], offsets: list[int]) -> None:
    span = offsets[-1] + TILE
    raw = np.zeros((1, 4, 16, TILE, span), np.float32)
    raw[..., : valid[0], : valid[1]] = np.random.default_rng(sum(valid)).random((1, 4, 16, *valid), dtype=np.float32)
    raw[:, 3] *= 30.0  # fire radiative power: spread the standardised values
    with torch.inference_mode():
        band = standardise_(torch.from_numpy(raw)).contiguous(memory_format=torch.channels_last_3d)
        pad = standardise_(torch.zeros((1, 4, 1, 1, 1)))
        outs, _ = shared_levels(list(fused.levels)[:3], band, offsets, TILE, valid, pad)
        _assert_each_tile_on_its_own(fused, band, offsets, outs)


def _assert_each_tile_on_its_own(fused: FusedBANet, band: torch.Tensor, offsets: list[int], outs: list[torch.Tensor], what: str = "") -> None:
    for i, x in enumerate(offsets):
        tile = band[..., x : x + TILE]
        for k, out in enumerate(outs):
            tile = fused.levels[k](tile)
            assert out.shape[0] == len(offsets) and out[i : i + 1].shape == tile.shape
            np.testing.assert_allclose(out[i : i + 1].numpy(), tile.numpy(), atol=LEVEL_ATOL, err_msg=f"{what}tile {i}, level {k + 1}")


def test_rows_of_tiles_hand_their_overlap_down_and_still_equal_each_tile(fused: FusedBANet) -> None:
    # the published grid on a 228 x 200 region: rows of tiles at 0, 100 and 200 (28 region rows, the rest padding)
    height, width, offsets = 228, 200, [0, 100]
    window = np.random.default_rng(3).random((1, 4, 16, height, width), dtype=np.float32)
    window[:, 3] *= 30.0
    above: Carry | None = None
    with torch.inference_mode():
        pad = standardise_(torch.zeros((1, 4, 1, 1, 1)))
        for y in (0, 100, 200):
            raw = np.zeros((1, 4, 16, TILE, 228), np.float32)
            rows = min(TILE, height - y)
            raw[..., :rows, :width] = window[..., y : y + rows, :]
            band = standardise_(torch.from_numpy(raw)).contiguous(memory_format=torch.channels_last_3d)
            shift = 100 if y < 200 else None
            outs, below = shared_levels(list(fused.levels)[:3], band, offsets, TILE, (rows, width), pad, above=above, next_shift=shift)
            _assert_each_tile_on_its_own(fused, band, offsets, outs, f"row at {y}: ")
            if shift is None:
                assert below is None
            else:  # the overlap less the rows that the band's bottom edge reaches, per level
                assert below is not None and [r.shape[-2] for r in below.rows] == [25, 12, 6]
            above = below


def test_shared_levels_refuse_tiles_off_the_grid(fused: FusedBANet) -> None:
    band = torch.zeros((1, 4, 16, TILE, 51 + TILE))
    with pytest.raises(ValueError, match="stride-2 grid"):
        shared_levels(list(fused.levels)[:2], band, [0, 51], TILE, (TILE, 51 + TILE), torch.zeros((1, 4, 1, 1, 1)))
    with pytest.raises(ValueError, match="past the band"):
        shared_levels(list(fused.levels)[:1], band, [0, 52], TILE, (TILE, 51 + TILE), torch.zeros((1, 4, 1, 1, 1)))


class _Space(nn.Module):
    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        self.space = conv


@pytest.mark.parametrize(("kernel", "stride"), [(7, 1), (3, 2)])
@pytest.mark.parametrize(("rows", "cols"), [(4, 5), (5, 17), (17, 64), (64, 9)])
@pytest.mark.parametrize("side", ["top", "bottom", "left", "right"])
def test_ring_strips_equal_the_tiles_own_convolution_cut_to_the_ring(
    kernel: int, stride: int, rows: int, cols: int, side: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(rows * cols)
    conv = nn.Conv3d(3, 5, (1, kernel, kernel), stride=(1, stride, stride), padding=(0, kernel // 2, kernel // 2))
    level, g = _Space(conv), Geometry(k=kernel, s=stride, p=kernel // 2)
    tiles = [torch.randn(1, 3, 4, rows, cols).contiguous(memory_format=torch.channels_last_3d) for _ in range(3)]
    paddings: list[tuple[int, int]] = []
    real = shared_levels_module._space_by_day

    def space_by_day(c: nn.Conv3d, x: torch.Tensor, padding: tuple[int, int]) -> torch.Tensor:
        paddings.append(padding)
        return real(c, x, padding)

    monkeypatch.setattr(shared_levels_module, "_space_by_day", space_by_day)
    axis = 3 if side in ("top", "bottom") else 4
    n_out = g.size_out((rows, cols)[axis - 3])
    for r in range(1, min(3, n_out) + 1):
        paddings.clear()
        strips = shared_levels_module._strips(level, tiles, side, r, g)
        assert len(strips) == len(tiles)
        for tile, strip in zip(tiles, strips, strict=True):
            with torch.no_grad():
                whole = F.relu(conv(tile))
            want = whole.narrow(axis, 0 if side in ("top", "left") else n_out - r, r)
            torch.testing.assert_close(strip, want, atol=1e-5, rtol=1e-5)
        if kernel == 7 and (rows, cols)[axis - 3] >= 16:  # level 1's geometry makes twice the wanted cells with its own padding: the padded copy, one call
            assert paddings == [(0, 0)]
        else:
            assert paddings in ([(g.p, g.p)] * len(tiles), [(0, 0)])


def test_geometry_refuses_a_spatial_convolution_padded_unequally() -> None:
    with pytest.raises(ValueError, match="same zero padding"):
        Geometry.of(_Space(nn.Conv3d(2, 2, (1, 3, 3), padding=(0, 1, 0))))
    with pytest.raises(ValueError, match="same zero padding"):
        Geometry.of(_Space(nn.Conv3d(2, 2, (1, 3, 3), padding=(0, 3, 3))))  # p >= k: cells of padding only
    odd = [
        nn.Conv3d(2, 2, (1, 3, 3), padding=(0, 1, 1), dilation=(1, 2, 2)),
        nn.Conv3d(2, 2, (1, 3, 3), padding=(0, 1, 1), groups=2),
        nn.Conv3d(2, 2, (1, 3, 3), padding=(0, 1, 1), padding_mode="reflect"),
        nn.Conv3d(2, 2, (3, 3, 3), padding=(1, 1, 1)),  # in time too
        nn.Conv3d(2, 2, (1, 3, 3), padding="same"),
    ]
    for conv in odd:
        with pytest.raises(ValueError, match="plain 1xkxk"):
            Geometry.of(_Space(conv))


@pytest.mark.parametrize(("kernel", "stride"), [(7, 1), (3, 2)])
@pytest.mark.parametrize(("rows", "cols"), [((0, 20), (0, 17)), ((5, 20), (0, 9)), ((1, 20), (2, 17)), ((2, 8), (0, 17)), ((0, 1), (16, 17))])
@pytest.mark.parametrize("cut", [0, 3])
def test_space_cells_are_exactly_the_wanted_cells_of_the_convolution(
    kernel: int, stride: int, rows: tuple[int, int], cols: tuple[int, int], cut: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(kernel + rows[0] + cols[0] + cut)
    g = Geometry(k=kernel, s=stride, p=kernel // 2)
    conv = nn.Conv3d(3, 5, (1, kernel, kernel), stride=(1, stride, stride), padding=(0, g.p, g.p))
    conv.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]  # as the engine's
    n_rows, n_cols = 20 * stride, 17 * stride
    x = torch.randn(1, 3, 4, n_rows, n_cols).contiguous(memory_format=torch.channels_last_3d)
    # the input as next_band cuts it: up to what the wanted cells read, zero padding past the band's edges.
    # ``cut``: columns fewer still, which the cells must then see as zeros (past an edge)
    band = x[..., : g.need_in(rows[1], n_rows), : g.need_in(cols[1], n_cols) - cut]
    reference = x.clone()
    reference[..., band.shape[-1] :] = 0.0
    copies: list[torch.Size] = []
    real = F.pad

    def pad(t: torch.Tensor, widths: tuple[int, ...]) -> torch.Tensor:
        copies.append(t.shape)
        return real(t, widths)

    monkeypatch.setattr(shared_levels_module.F, "pad", pad)
    with torch.no_grad():
        got = shared_levels_module._space_cells(conv, band, rows, cols)
        want = conv(reference)[..., rows[0] : rows[1], cols[0] : cols[1]]
    assert got.shape == want.shape and got._base is None  # a whole tensor, not a cut of a larger one
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # the padded copy exactly where the convolution's own padding would make other cells than the wanted ones:
    # stride 1 makes as many cells as it reads, so any cut but the whole band; stride 2 halves, but not past a cut
    whole_band = (rows, cols) == ((0, 20), (0, 17))
    assert len(copies) == int(cut > 0 or (stride == 1 and not whole_band))


def test_a_band_frees_each_per_pixel_step_input_once_the_step_is_done(fused: FusedBANet, monkeypatch: pytest.MonkeyPatch) -> None:
    level = cast(_Level, use_cpu_forms(copy.deepcopy(fused)).levels[0])  # as the engine runs it on CPU
    assert [step.__name__ for step in level.pixel_steps()] == ["_lstm_step", "_time_step"]
    spaces: list[weakref.ref[torch.Tensor]] = []  # the band's spatial convolution output, once made
    real_cells = shared_levels_module._space_cells

    def cells(*args: object) -> torch.Tensor:
        out = real_cells(*args)  # type: ignore[arg-type]
        spaces.append(weakref.ref(out))
        return out

    alive_in_time: list[bool] = []
    real_time_step = type(level)._time_step

    def time_step(self: _Level, x: torch.Tensor) -> torch.Tensor:
        if spaces:  # not the fill's own cell, computed before the band
            alive_in_time.append(spaces[-1]() is not None)
        return real_time_step(self, x)

    monkeypatch.setattr(shared_levels_module, "_space_cells", cells)
    monkeypatch.setattr(type(level), "_time_step", time_step)
    raw = np.random.default_rng(5).random((1, 4, 16, 40, 48), dtype=np.float32)
    with torch.inference_mode():
        band = standardise_(torch.from_numpy(raw)).contiguous(memory_format=torch.channels_last_3d)
        pad = standardise_(torch.zeros((1, 4, 1, 1, 1)))
        out = shared_levels_module.next_band(level, Band(band, (40, 48), pad.expand(1, 4, 16, 1, 1), (40, 48)))
        # the spatial convolution's output is gone while the temporal convolution runs (the LSTM's output replaced it);
        # the LSTM's output is made by the LSTM, not a view of its input, so nothing else keeps that memory
        assert alive_in_time == [False]
        assert out.values.is_contiguous(memory_format=torch.channels_last_3d)  # the next level reads it whole, no copy
        np.testing.assert_allclose(out.values.numpy(), level(band).numpy(), atol=LEVEL_ATOL)
