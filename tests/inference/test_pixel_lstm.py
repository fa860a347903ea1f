"""Level 1's LSTM as blocks of matrix products (inference/pixel_lstm.py): equal to torch's LSTM, used on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from banet_ops.inference import pixel_lstm
from banet_ops.inference.cpu_forms import use_cpu_forms
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
    pixel = PixelLSTM(lstm)
    with torch.inference_mode():
        ref, _ = lstm(seq)
        monkeypatch.setattr(lstm, "forward", _refuse)  # the blocks, not torch's LSTM, must make the result
        ours, state = pixel(seq)
    assert state is None
    torch.testing.assert_close(ours, ref, atol=2e-6, rtol=1e-5)


def _refuse(*args: object) -> None:
    raise AssertionError("the fallback layer ran")


def test_pixel_lstm_leaves_autograd_and_float64_to_torch_and_refuses_other_lstms() -> None:
    lstm = nn.LSTM(3, 4)
    seq = torch.randn(5, 7, 3, requires_grad=True)
    out, _ = PixelLSTM(lstm)(seq)
    assert out.requires_grad and out.grad_fn is not None  # torch's LSTM ran: the blocks build no graph
    wide = nn.LSTM(3, 4).double()
    with torch.inference_mode():
        torch.testing.assert_close(PixelLSTM(wide)(seq.detach().double())[0], wide(seq.detach().double())[0])
    options: list[dict[str, object]] = [{"num_layers": 2}, {"batch_first": True}, {"bidirectional": True}, {"bias": False}, {"proj_size": 2}]
    for other in (nn.LSTM(3, 4, **kw) for kw in options):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="one-layer, one-way, time-major"):
            PixelLSTM(other)


def test_engine_cpu_forms_swap_level_one_lstm_once(banet: BANet) -> None:
    net = use_cpu_forms(fuse_for_inference(banet))
    assert isinstance(net.levels[0].lstm, PixelLSTM)
    assert all(level.lstm is None for level in net.levels[1:])
    assert use_cpu_forms(net) is net and isinstance(net.levels[0].lstm, PixelLSTM)  # a second call changes nothing
