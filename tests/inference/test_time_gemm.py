"""Temporal convolutions as matrix products (inference/time_gemm.py): equal to the convolutions, used by the engine on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from banet_ops.inference.cpu_forms import use_cpu_forms
from banet_ops.inference.engine import EngineOptions, predict_probabilities, prepare_models
from banet_ops.inference.output_gemm import OutputGemm
from banet_ops.inference.time_gemm import TimeGemm, UpTimeGemm
from banet_ops.models.banet import BANet, FusedBANet, fuse_for_inference


def _refuse(*args: object) -> None:
    raise AssertionError("the fallback layer ran")


@pytest.mark.parametrize(("kernel", "stride", "days"), [(7, 1, 16), (7, 2, 16), (5, 2, 8), (3, 2, 4), (3, 1, 16), (1, 1, 4), (7, 2, 2), (3, 2, 2)])
@pytest.mark.parametrize("batch", [1, 3])
def test_time_gemm_equals_the_convolution(kernel: int, stride: int, days: int, batch: int, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(kernel * 10 + stride)
    conv = nn.Conv3d(6, 5, (kernel, 1, 1), stride=(stride, 1, 1), padding=(kernel // 2, 0, 0))
    gemm = TimeGemm(conv)
    x = torch.randn(batch, 6, days, 3, 7)
    with torch.inference_mode():
        ref = conv(x)
        monkeypatch.setattr(conv, "forward", _refuse)  # the matrix products, not the convolution, must make the result
        for layout in (torch.contiguous_format, torch.channels_last_3d):
            ours = gemm(x.contiguous(memory_format=layout))
            assert ours.shape == ref.shape
            assert ours.is_contiguous(memory_format=torch.channels_last_3d)
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("kernel", "stride"), [(3, 1), (7, 2), (1, 1)])
def test_time_gemm_of_parts_equals_the_convolution_of_their_concatenation(kernel: int, stride: int) -> None:
    torch.manual_seed(kernel + stride)
    conv = nn.Conv3d(7, 5, (kernel, 1, 1), stride=(stride, 1, 1), padding=(kernel // 2, 0, 0))
    a, b = torch.randn(2, 3, 8, 4, 5), torch.randn(2, 4, 8, 6, 6)[..., :4, :5]  # the second one a spatial slice, as the head gets
    with torch.inference_mode():
        ref = conv(torch.cat((a, b), dim=1))
        for layout in (torch.contiguous_format, torch.channels_last_3d):
            ours = TimeGemm(conv)(a.contiguous(memory_format=layout), b)
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("kernel", "padding"), [(3, 2), (4, 2), (2, 0)])
def test_time_gemm_with_any_temporal_padding_equals_the_convolution(kernel: int, padding: int) -> None:
    # padding past (k - 1) / 2 makes the output longer than the input: the centre tap cannot write it all
    torch.manual_seed(kernel)
    conv = nn.Conv3d(3, 4, (kernel, 1, 1), padding=(padding, 0, 0))
    x = torch.randn(1, 3, 6, 2, 3).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        torch.testing.assert_close(TimeGemm(conv)(x), conv(x), atol=1e-5, rtol=1e-5)


def test_time_gemm_refuses_parts_that_do_not_make_its_input() -> None:
    gemm = TimeGemm(nn.Conv3d(6, 4, (3, 1, 1), padding=(1, 0, 0)))
    with torch.inference_mode(), pytest.raises(ValueError, match="6 channels"):
        gemm(torch.randn(1, 4, 8, 2, 2))
    with torch.inference_mode(), pytest.raises(ValueError, match="one \\(N, T, H, W\\)"):
        gemm(torch.randn(1, 3, 8, 2, 2), torch.randn(1, 3, 8, 2, 3))


def test_time_gemm_refuses_a_spatial_kernel_and_leaves_autograd_to_the_convolution() -> None:
    with pytest.raises(ValueError, match="k×1×1"):
        TimeGemm(nn.Conv3d(4, 4, (3, 3, 3), padding=1))
    conv = nn.Conv3d(4, 4, (3, 1, 1), padding=(1, 0, 0))
    x = torch.randn(1, 4, 8, 2, 2, requires_grad=True)
    TimeGemm(conv)(x).sum().backward()  # with grad enabled: the convolution itself
    assert x.grad is not None and conv.weight.grad is not None


def test_fused_banet_with_time_gemm_matches_and_the_engine_can_use_it_on_cpu(banet: BANet, make_window) -> None:  # type: ignore[no-untyped-def]
    fused = fuse_for_inference(banet)
    gemm = use_cpu_forms(fuse_for_inference(banet))
    x = torch.randn(1, 4, 16, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(gemm(x), fused(x), atol=1e-4, rtol=1e-4)
    (net,) = prepare_models([banet], torch.device("cpu"), time_gemm=True)
    assert isinstance(net, FusedBANet) and isinstance(net.output, OutputGemm) and all(isinstance(lv.time, TimeGemm) for lv in net.levels)
    assert all(isinstance(up.time, UpTimeGemm) for up in net.ups[1:-1]) and net.ups[-1].time is None
    assert isinstance(net.output.up, UpTimeGemm)  # the last up-convolution, made day by day for the head
    (plain,) = prepare_models([banet], torch.device("cpu"), time_gemm=False)
    assert isinstance(plain, FusedBANet) and isinstance(plain.output.head, nn.Conv3d)
    win = make_window(140, 90, days=16, seed=3)
    a = predict_probabilities(win, [banet], options=EngineOptions(time_gemm=True))
    b = predict_probabilities(win, [banet], options=EngineOptions(time_gemm=False))
    assert np.abs(a - b).max() <= 1e-5 and a.std() > 1e-3


def test_time_gemm_by_default_on_cpu_whatever_the_threads(banet: BANet) -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        (one,) = prepare_models([banet], torch.device("cpu"))
        torch.set_num_threads(2)
        (two,) = prepare_models([banet], torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    assert isinstance(one, FusedBANet) and isinstance(one.output, OutputGemm)
    assert isinstance(two, FusedBANet) and isinstance(two.output, OutputGemm)


@pytest.mark.parametrize(("stride", "bias"), [(2, True), (2, False), (3, True)])
def test_up_time_gemm_equals_the_transposed_convolution(stride: int, bias: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(stride)
    conv = nn.ConvTranspose3d(5, 4, (stride, 1, 1), stride=(stride, 1, 1), bias=bias)
    x = torch.randn(2, 5, 6, 3, 7)
    with torch.inference_mode():
        ref = conv(x)
        with monkeypatch.context() as m:
            m.setattr(conv, "forward", _refuse)
            for layout in (torch.contiguous_format, torch.channels_last_3d):
                ours = UpTimeGemm(conv)(x.contiguous(memory_format=layout))
                assert ours.shape == ref.shape and ours.is_contiguous(memory_format=torch.channels_last_3d)
                torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="s×1×1 transposed"):
        UpTimeGemm(nn.ConvTranspose3d(5, 4, (1, 2, 2), stride=(1, 2, 2)))
    x.requires_grad_(True)
    UpTimeGemm(conv)(x).sum().backward()  # with grad enabled: the transposed convolution itself
    assert x.grad is not None


@pytest.mark.parametrize(("classes", "taps"), [(1, 3), (3, 3), (1, 1)])
def test_output_gemm_equals_head_relu_and_output_layer(classes: int, taps: int, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(classes + taps)
    head, final = nn.Conv3d(7, 6, (taps, 1, 1), padding=(taps // 2, 0, 0)), nn.Conv3d(6, classes, 1)
    full, x = torch.randn(2, 3, 8, 5, 6), torch.randn(2, 4, 8, 7, 6)[..., :5, :]  # the second a spatial slice, as the tail gets
    with torch.inference_mode():
        ref = final(torch.relu(head(torch.cat((full, x), dim=1))))
        monkeypatch.setattr(head, "forward", _refuse)
        monkeypatch.setattr(final, "forward", _refuse)
        for layout in (torch.contiguous_format, torch.channels_last_3d):
            ours = OutputGemm(head, final)(full.contiguous(memory_format=layout), x)
            assert ours.shape == ref.shape
            torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
        with pytest.raises(ValueError, match="7 channels"):
            OutputGemm(head, final)(full, x[:, :3])
    heads = [((3, 1, 1), (2, 1, 1), (1, 0, 0)), ((3, 1, 1), (1, 1, 1), (0, 0, 0)), ((2, 1, 1), (1, 1, 1), (0, 0, 0)), ((5, 1, 1), (1, 1, 1), (2, 0, 0))]
    for other in (nn.Conv3d(7, 6, k, stride=s, padding=p) for k, s, p in heads):
        with pytest.raises(ValueError, match="keeps the days"):
            OutputGemm(other, final)  # a head that changes the number of days, or reads more than the three kept


@pytest.mark.parametrize(("days", "bias", "classes"), [(8, True, 1), (2, True, 1), (8, False, 2)])
def test_output_gemm_with_the_last_up_convolution_equals_the_layers_in_turn(days: int, bias: bool, classes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(days)
    up = nn.ConvTranspose3d(5, 4, (2, 1, 1), stride=(2, 1, 1), bias=bias)
    head, final = nn.Conv3d(7, 6, (3, 1, 1), padding=(1, 0, 0)), nn.Conv3d(6, classes, 1)
    full, y = torch.randn(2, 3, days, 5, 6), torch.randn(2, 5, days // 2, 5, 6)
    tail = OutputGemm(head, final, UpTimeGemm(up))
    with torch.inference_mode():
        ref = final(torch.relu(head(torch.cat((full, torch.relu(up(y))), dim=1))))
        with monkeypatch.context() as m:
            for layer in (up, head, final):
                m.setattr(layer, "forward", _refuse)
            torch.testing.assert_close(tail(full, y.contiguous(memory_format=torch.channels_last_3d)), ref, atol=1e-5, rtol=1e-5)
        with pytest.raises(ValueError, match="one \\(N, T, H, W\\)"):
            tail(full, y[..., :4, :])  # not the cells of ``full``
        with pytest.raises(ValueError, match="one \\(N, T, H, W\\)"):
            tail(full, torch.cat((y, y), dim=2))  # not half the days of ``full``
    y.requires_grad_(True)
    torch.testing.assert_close(tail(full, y), ref, atol=1e-5, rtol=1e-5)  # with grad enabled: the layers themselves


def test_fused_banet_computes_each_tile_only_on_its_own_out_size(banet: BANet) -> None:
    net = use_cpu_forms(fuse_for_inference(banet))
    x = torch.randn(4, 4, 16, 64, 64).contiguous(memory_format=torch.channels_last_3d)
    sizes = [(64, 64), (64, 64), (64, 30), (17, 64)]  # two tiles of one size run together
    seen: dict[int, list[tuple[int, ...]]] = {1: [], 2: [], 3: []}  # cells (rows, columns) that decoder levels 1-3 take in
    for k, cells in seen.items():
        net.ups[k].register_forward_pre_hook(lambda _m, args, cells=cells: cells.append(tuple(args[0].shape[-2:])))
    with torch.inference_mode():
        whole = net(x)
        shared = [net.levels[0](x)]
        for cells in seen.values():
            cells.clear()
        parts = net.forward_from_levels(shared, sizes)
    # from its first skip connection on the decoder runs only on the cells that hold each tile's part: at 1/16,
    # 1/8 and 1/4 resolution, 30 columns need 2 of 4, 4 of 8 and 8 of 16; 17 rows 2 of 4, 3 of 8 and 5 of 16
    assert seen == {1: [(4, 4), (4, 2), (2, 4)], 2: [(8, 8), (8, 4), (3, 8)], 3: [(16, 16), (16, 8), (5, 16)]}
    with torch.inference_mode():
        one_size = net.forward_from_levels(shared, (np.int64(40), np.int64(64)))  # type: ignore[arg-type]  # one size for all, numpy ints as the engine may pass
        with pytest.raises(ValueError, match="one out_size per tile \\(4\\), found 3"):
            net.forward_from_levels(shared, sizes[:3])
        with pytest.raises(ValueError, match="multiples of 32"):
            net.forward_from_levels([net.levels[0](x[..., :48, :48])], (48, 48))  # the published model refuses such tiles too
    assert parts.shape == whole.shape and one_size.shape[-2:] == (40, 64)
    with torch.no_grad():
        torch.testing.assert_close(whole, banet.eval()(x), atol=1e-4, rtol=1e-4)  # the uncropped path is the published model
    torch.testing.assert_close(one_size, whole[..., :40, :], atol=1e-5, rtol=1e-5)
    for j, (h, w) in enumerate(sizes):
        torch.testing.assert_close(parts[j, ..., :h, :w], whole[j, ..., :h, :w], atol=1e-5, rtol=1e-5)
    # past a tile's size (rounded up to even): zeros, not computed
    assert not parts[2, ..., 30:].any() and not parts[3, ..., 18:, :].any()
    assert parts[2, ..., :30].abs().sum() > 0 and parts[3, ..., :18, :].abs().sum() > 0


def test_fused_banet_decodes_parts_down_to_one_cell(banet: BANet) -> None:
    # the smallest parts a region's edge can leave: one row or column, rounded up to even, and odd sizes
    net = use_cpu_forms(fuse_for_inference(banet))
    x = torch.randn(3, 4, 16, 64, 64).contiguous(memory_format=torch.channels_last_3d)
    sizes = [(1, 1), (2, 63), (63, 1)]
    with torch.inference_mode():
        whole = net(x)
        parts = net.forward_from_levels([net.levels[0](x)], sizes)
    for j, (h, w) in enumerate(sizes):
        torch.testing.assert_close(parts[j, ..., :h, :w], whole[j, ..., :h, :w], atol=1e-5, rtol=1e-5)
