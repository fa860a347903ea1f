"""Level 1's LSTM as blocks of matrix products (inference/pixel_lstm.py): equal to torch's LSTM, used on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from banet_ops.inference import pixel_lstm
from banet_ops.inference.cpu_forms import use_time_gemm
from banet_ops.inference.pixel_lstm import PixelLSTM
from banet_ops.models.banet import BANet, fuse_for_inference


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_pixel_lstm_equals_torch_lstm_over_blocks_and_a_ragged_last_block(layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pixel_lstm, "BLOCK_PIXELS", 64)  # 150 pixels: two whole blocks and a ragged one
    torch.manual_seed(3)
    lstm = nn.LSTM(6, 5)
    with torch.no_grad():
        for p in lstm.parameters():
            p.mul_(3.0)  # saturating gates, where tanh(z) = 2·sigmoid(2z) − 1 is tested hardest
    seq = 4 * torch.randn(20, 150, 6)
    if layout == "columns":  # the ring strips of the shared levels hand the LSTM (T, pixels, C) with pixels innermost
        seq = seq.permute(2, 0, 1).contiguous().permute(1, 2, 0)
    with torch.inference_mode():
        ref, _ = lstm(seq)
        ours, state = PixelLSTM(lstm)(seq)
    assert state is None
    torch.testing.assert_close(ours, ref, atol=2e-6, rtol=1e-5)


def test_pixel_lstm_leaves_autograd_and_other_devices_to_torch_and_refuses_other_lstms() -> None:
    lstm = nn.LSTM(3, 4)
    seq = torch.randn(5, 7, 3, requires_grad=True)
    out, _ = PixelLSTM(lstm)(seq)
    assert out.requires_grad
    torch.testing.assert_close(out, lstm(seq)[0])
    for other in (nn.LSTM(3, 4, num_layers=2), nn.LSTM(3, 4, batch_first=True), nn.LSTM(3, 4, bidirectional=True), nn.LSTM(3, 4, bias=False)):
        with pytest.raises(ValueError, match="one-layer, one-way, time-major"):
            PixelLSTM(other)


def test_engine_cpu_form_swaps_level_one_lstm() -> None:
    torch.manual_seed(0)
    net = use_time_gemm(fuse_for_inference(BANet().eval()))
    assert isinstance(net.levels[0].lstm, PixelLSTM)
    assert all(level.lstm is None for level in net.levels[1:])
