"""BA-Net: the space-time U-Net of Pinto et al. (2020), with the published module tree (DESIGN §1).

The attribute names (``stconv1.stconv.0.conv.0``, ``timeConv``, ``timeLstm.lstm``, ``bn.bn``,
``upstconv``, ``final_conv`` …) are those of the published weight files, so a released ``.pth``
loads with ``strict=True``.  For (4 inputs, 1 class, 64 days) the model has 3,415,361 parameters.

Layout of one encoder level: a spatial ``1×k×k`` convolution (stride 2 in space from level 2 on),
batch-time norm and ReLU; then a temporal ``k×1×1`` convolution (stride 2 in time from level 2
on), batch-time norm, ReLU; then 3D dropout.  Level 1 runs an LSTM over time before its temporal
convolution.  The decoder mirrors it with ``1×2×2`` and ``2×1×1`` transposed convolutions and
concatenates the encoder outputs (skip connections).

:class:`FusedBANet` is the inference form of a trained :class:`BANet`: every batch-time norm is
folded into the convolution before it, so inference runs without the norm layers' permutes.
"""

from __future__ import annotations

import copy
import itertools
import numbers
from collections.abc import Callable, Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DROPOUT = 0.2
# (out channels, spatial kernel, temporal kernel) of encoder levels 1..5
ENCODER_LEVELS: tuple[tuple[int, int, int], ...] = ((32, 7, 7), (64, 3, 7), (128, 3, 5), (256, 3, 3), (256, 3, 3))
PARAMETER_COUNT = 3_415_361  # BANet(4, 1, 64), the published configuration


class _BatchNorm5d(nn.BatchNorm2d):
    """``BatchNorm2d`` that also accepts ``(N, C, T, H, W)`` input.

    Normalising ``(N*T, C, H, W)`` per channel uses the statistics over N, T, H and W — the same
    as normalising the 5D tensor directly, so no permute/copy is needed and the parameter names
    stay those of ``BatchNorm2d``.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() not in (4, 5):
            raise ValueError(f"expected 4D or 5D input to batch-time norm, found {input.dim()}D")


class BatchTimeNorm(nn.Module):
    """Batch norm over batch *and* time: one set of statistics per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn = _BatchNorm5d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x)


class TimeLSTM(nn.Module):
    """An LSTM run over the time axis of every pixel independently; returns ``(N, C, T, H, W)``."""

    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_channels, hidden, num_layers=1, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, h, w = x.shape
        seq = x.permute(0, 3, 4, 2, 1).reshape(n * h * w, t, c)
        out, _ = self.lstm(seq)
        return out.reshape(n, h, w, t, -1).permute(0, 4, 3, 1, 2).contiguous()


class SpaceConv(nn.Module):
    """``1×k×k`` convolution (optionally strided in space), batch-time norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv3d(in_ch, out_ch, (1, kernel, kernel), stride=(1, stride, stride), padding=(0, kernel // 2, kernel // 2), bias=False),
            BatchTimeNorm(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class TimeConv(nn.Module):
    """Optional LSTM, then ``k×1×1`` convolution (optionally strided in time), batch-time norm, ReLU."""

    def __init__(self, channels: int, kernel: int, stride: int, use_lstm: bool) -> None:
        super().__init__()
        self.use_lstm = use_lstm
        self.timeConv = nn.Conv3d(channels, channels, (kernel, 1, 1), stride=(stride, 1, 1), padding=(kernel // 2, 0, 0), bias=False)
        if use_lstm:
            self.timeLstm = TimeLSTM(channels, channels)
        self.bn = BatchTimeNorm(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if self.use_lstm:
            x = self.timeLstm(x)
        return self.relu(self.bn(self.timeConv(x)))


class UpSpaceConv(nn.Module):
    """``1×2×2`` transposed convolution (doubles H and W), batch-time norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.ConvTranspose3d(in_ch, out_ch, (1, 2, 2), stride=(1, 2, 2), bias=False),
            BatchTimeNorm(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class UpTimeConv(nn.Module):
    """``2×1×1`` transposed convolution (doubles T), batch-time norm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.ConvTranspose3d(in_ch, out_ch, (2, 1, 1), stride=(2, 1, 1), bias=False),
            BatchTimeNorm(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class SpaceTimeConv(nn.Module):
    """One encoder level: space conv, time conv (with LSTM at level 1), dropout."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, time_kernel: int, stride: int, time_stride: int, use_lstm: bool = False) -> None:
        super().__init__()
        self.stconv = nn.Sequential(
            SpaceConv(in_ch, out_ch, kernel, stride),
            TimeConv(out_ch, time_kernel, time_stride, use_lstm),
            nn.Dropout3d(DROPOUT),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.stconv(x)


class UpSpaceTimeConv(nn.Module):
    """One decoder level: up in space, up in time, dropout."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.upstconv = nn.Sequential(UpSpaceConv(in_ch, out_ch), UpTimeConv(out_ch, out_ch), nn.Dropout3d(DROPOUT))

    def forward(self, x: Tensor) -> Tensor:
        return self.upstconv(x)


class BANet(nn.Module):
    """BA-Net for ``(batch, in_channels, sequence_len, H, W)`` input; returns logits ``(batch, n_classes, sequence_len, H, W)``.

    H and W must be multiples of 32 (five halvings) and ``sequence_len`` a multiple of 16.
    """

    def __init__(self, in_channels: int = 4, n_classes: int = 1, sequence_len: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.sequence_len = sequence_len
        (c1, k1, t1), (c2, k2, t2), (c3, k3, t3), (c4, k4, t4), (c5, k5, t5) = ENCODER_LEVELS
        self.stconv1 = SpaceTimeConv(in_channels, c1, k1, t1, 1, 1, use_lstm=True)
        self.stconv2 = SpaceTimeConv(c1, c2, k2, t2, 2, 2)
        self.stconv3 = SpaceTimeConv(c2, c3, k3, t3, 2, 2)
        self.stconv4 = SpaceTimeConv(c3, c4, k4, t4, 2, 2)
        self.stconv5 = SpaceTimeConv(c4, c5, k5, t5, 2, 2)
        self.stconv6 = SpaceConv(c5, c5, 3, 2)
        self.ustconv6 = UpSpaceConv(c5, c5)
        self.ustconv5 = UpSpaceTimeConv(c5 + c5, c4)
        self.ustconv4 = UpSpaceTimeConv(c4 + c4, c3)
        self.ustconv3 = UpSpaceTimeConv(c3 + c3, c2)
        self.ustconv2 = UpSpaceTimeConv(c2 + c2, c1)
        self.conv3 = nn.Conv3d(c1 + c1, c1 + c1, (3, 1, 1), padding=(1, 0, 0), bias=False)
        self.bn = BatchTimeNorm(c1 + c1)
        self.relu = nn.ReLU(inplace=True)
        self.final_conv = nn.Conv3d(c1 + c1, n_classes, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        c1 = self.stconv1(x)
        c2 = self.stconv2(c1)
        c3 = self.stconv3(c2)
        c4 = self.stconv4(c3)
        c5 = self.stconv5(c4)
        up = self.ustconv6(self.stconv6(c5))
        up = self.ustconv5(torch.cat((c5, up), dim=1))
        up = self.ustconv4(torch.cat((c4, up), dim=1))
        up = self.ustconv3(torch.cat((c3, up), dim=1))
        up = self.ustconv2(torch.cat((c2, up), dim=1))
        up = torch.cat((c1, up), dim=1)
        return self.final_conv(self.relu(self.bn(self.conv3(up))))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable and frozen parameters (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


# --- inference form ---------------------------------------------------------------------------


def _bn_scale_shift(norm: BatchTimeNorm) -> tuple[Tensor, Tensor]:
    bn = norm.bn
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("expected batch norm with running statistics, found track_running_stats=False")
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _conv_norm(seq: nn.Sequential) -> tuple[Any, BatchTimeNorm]:
    """The (convolution, norm) pair at the head of a ``Sequential(conv, norm, relu)``."""
    return seq[0], cast(BatchTimeNorm, seq[1])


def _fold_conv(conv: nn.Conv3d, norm: BatchTimeNorm) -> nn.Conv3d:
    scale, shift = _bn_scale_shift(norm)
    fused = nn.Conv3d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding, bias=True)  # type: ignore[arg-type]
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1, 1))
        bias = shift if conv.bias is None else conv.bias * scale + shift
        fused.bias.copy_(bias)  # type: ignore[union-attr]
    return fused


def _fold_up(conv: nn.ConvTranspose3d, norm: BatchTimeNorm) -> nn.ConvTranspose3d:
    scale, shift = _bn_scale_shift(norm)
    fused = nn.ConvTranspose3d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, bias=True)  # type: ignore[arg-type]
    with torch.no_grad():
        # ConvTranspose weights are (in, out, kT, kH, kW): the norm scales the output axis.
        fused.weight.copy_(conv.weight * scale.view(1, -1, 1, 1, 1))
        fused.bias.copy_(shift)  # type: ignore[union-attr]
    return fused


class _Level(nn.Module):
    def __init__(self, space: nn.Conv3d, time: nn.Conv3d, lstm: nn.LSTM | None) -> None:
        super().__init__()
        self.space = space
        self.time = time
        self.lstm = lstm

    def forward(self, x: Tensor) -> Tensor:
        return self.per_pixel(F.relu(self.space(x), inplace=True))

    def per_pixel(self, x: Tensor) -> Tensor:
        """The level after its spatial convolution: LSTM (level 1) and temporal convolution, pixel by pixel."""
        for step in self.pixel_steps():
            x = step(x)
        return x

    def pixel_steps(self) -> list[Callable[[Tensor], Tensor]]:
        """The layers of :meth:`per_pixel` in order.

        A caller that walks them itself (``x = step(x)``) frees each step's input once the step is
        done; through :meth:`per_pixel` the first input lives until the end, since a caller holds its
        arguments for the whole call.
        """
        return [self._lstm_step, self._time_step] if self.lstm is not None else [self._time_step]

    def _lstm_step(self, x: Tensor) -> Tensor:
        # time-major (T, pixels, C), the LSTM's own layout: for one channels_last_3d tile (the
        # engine's shared level 1 and its column of ring cells) a view on the way in and out;
        # otherwise one copy each way
        n, c, t, h, w = x.shape
        seq, _ = cast(nn.LSTM, self.lstm)(x.permute(2, 0, 3, 4, 1).reshape(t, n * h * w, c))
        return seq.reshape(t, n, h, w, -1).permute(1, 4, 0, 2, 3).contiguous(memory_format=memory_format_of(x))

    def _time_step(self, x: Tensor) -> Tensor:
        return F.relu(self.time(x), inplace=True)


class _Output(nn.Module):
    """BA-Net's head: a ``3×1×1`` convolution of the full-resolution skip and decoder output side by side, ReLU, the ``1×1×1`` output layer."""

    def __init__(self, head: nn.Conv3d, final_conv: nn.Conv3d) -> None:
        super().__init__()
        self.head = head
        self.final_conv = final_conv

    def forward(self, full: Tensor, x: Tensor) -> Tensor:
        return self.final_conv(F.relu(self.head(torch.cat((full, x), dim=1)), inplace=True))


class _UpLevel(nn.Module):
    def __init__(self, space: nn.ConvTranspose3d, time: nn.ConvTranspose3d | None) -> None:
        super().__init__()
        self.space = space
        self.time = time

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.space(x), inplace=True)
        if self.time is not None:
            x = F.relu(self.time(x), inplace=True)
        return x


def _time_major(lstm: nn.LSTM) -> nn.LSTM:
    """A copy of ``lstm`` that takes ``(T, batch, C)`` sequences (``batch_first=False``)."""
    out = nn.LSTM(lstm.input_size, lstm.hidden_size, num_layers=lstm.num_layers, bias=lstm.bias, batch_first=False)
    out.load_state_dict(lstm.state_dict())
    like = next(lstm.parameters())
    return out.to(device=like.device, dtype=like.dtype)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def memory_format_of(x: Tensor) -> torch.memory_format:
    """The memory format a 5-D tensor is (or, for a slice, was cut from): ``channels_last_3d`` when its channels are innermost."""
    if x.dim() == 5 and x.shape[1] > 1 and x.stride(1) == 1 and not x.is_contiguous():
        return torch.channels_last_3d
    return torch.contiguous_format


class FusedBANet(nn.Module):
    """Inference-only BA-Net with every batch-time norm folded into the preceding convolution.

    Same function as ``BANet.eval()`` up to float rounding; ~2x less memory traffic (no norm
    layers, no permutes).  Build it with :func:`fuse_for_inference`.
    """

    def __init__(self, model: BANet) -> None:
        super().__init__()
        levels = []
        for block in (model.stconv1, model.stconv2, model.stconv3, model.stconv4, model.stconv5):
            space = cast(SpaceConv, block.stconv[0])
            time = cast(TimeConv, block.stconv[1])
            lstm = _time_major(cast(TimeLSTM, time.timeLstm).lstm) if time.use_lstm else None
            levels.append(_Level(_fold_conv(*_conv_norm(space.conv)), _fold_conv(time.timeConv, time.bn), lstm))
        self.levels = nn.ModuleList(levels)
        self.bottom = _fold_conv(*_conv_norm(model.stconv6.conv))
        ups = [_UpLevel(_fold_up(*_conv_norm(model.ustconv6.conv)), None)]
        for ublock in (model.ustconv5, model.ustconv4, model.ustconv3, model.ustconv2):
            uspace = cast(UpSpaceConv, ublock.upstconv[0])
            utime = cast(UpTimeConv, ublock.upstconv[1])
            ups.append(_UpLevel(_fold_up(*_conv_norm(uspace.conv)), _fold_up(*_conv_norm(utime.conv))))
        self.ups = nn.ModuleList(ups)
        self.output = _Output(_fold_conv(model.conv3, model.bn), copy.deepcopy(model.final_conv))  # a copy: the engine may change its layout
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_from_levels([self.levels[0](x)])

    def forward_from_levels(self, shared: Sequence[Tensor], out_size: tuple[int, int] | Sequence[tuple[int, int]] | None = None) -> Tensor:
        """Logits from the outputs of the first encoder levels (the inference engine may compute them once per row of tiles).

        ``shared``: the outputs of levels 1..k (k >= 1), in order.  ``out_size=(h, w)``, or one per
        tile: only the top-left ``h x w`` (rounded up to even) of a tile's output is wanted.  Past
        the bottom level the decoder has no spatial context (each up-convolution's ``2×2`` kernel
        equals its stride, the rest acts pixel by pixel), so from the first skip connection on it
        runs only on the coarser cells that hold that part.  The output is cropped to the largest of them;
        where a tile's own part is smaller, the logits past it are zeros (the engine throws that
        part, past the region's edge, away).
        """
        if not 1 <= len(shared) <= len(self.levels):
            raise ValueError(f"expected the outputs of 1..{len(self.levels)} encoder levels, found {len(shared)}")
        skips = list(shared)
        x = skips[-1]
        for level in self.levels[len(skips) :]:
            x = level(x)
            skips.append(x)
        x = self.ups[0](F.relu(self.bottom(x), inplace=True))
        if x.shape[-2:] != skips[-1].shape[-2:]:  # the decoder below crops by powers of two, which needs exact halvings
            multiple = 2 ** len(self.levels)  # one halving per encoder level
            raise ValueError(f"expected tiles whose height and width are multiples of {multiple}, found level-1 cells {tuple(skips[0].shape[-2:])}")
        half, full = skips[1], skips[0]
        if out_size is None:
            return self._tail(half, self._decode(skips, x, half.shape[-2:]), full)
        sizes = [cast(tuple[int, int], out_size)] * x.shape[0] if isinstance(out_size[0], numbers.Integral) else list(cast(Sequence[tuple[int, int]], out_size))
        if len(sizes) != x.shape[0]:
            raise ValueError(f"expected one out_size per tile ({x.shape[0]}), found {len(sizes)}")
        halves = [(min(_ceil_div(int(h), 2), half.shape[-2]), min(_ceil_div(int(w), 2), half.shape[-1])) for h, w in sizes]
        # consecutive tiles of one size run together (a row's last tile, cut by the region's edge, on its own part)
        runs = []
        for size, group in itertools.groupby(range(len(halves)), key=halves.__getitem__):
            tiles = list(group)
            runs.append((tiles[0], tiles[-1] + 1, size))
        parts = []
        for a, b, (hh, wh) in runs:
            decoded = self._decode([s[a:b] for s in skips], x[a:b], (hh, wh))
            parts.append(self._tail(half[a:b, ..., :hh, :wh], decoded, full[a:b, ..., : 2 * hh, : 2 * wh]))
        if len(parts) == 1:
            return parts[0]
        out = parts[0].new_zeros((len(halves), *parts[0].shape[1:3], 2 * max(h for h, _ in halves), 2 * max(w for _, w in halves)))
        for (a, b, _), part in zip(runs, parts, strict=True):
            out[a:b, ..., : part.shape[3], : part.shape[4]] = part
        return out

    def _decode(self, skips: Sequence[Tensor], x: Tensor, half_size: Sequence[int]) -> Tensor:
        """The decoder from the bottom level's up-convolution ``x`` to half resolution, computed only for the top-left ``half_size`` cells there.

        At each skip connection only the cells those depend on are taken: the wanted part scaled
        to that resolution, rounded up.
        """
        half = skips[1]
        for up, skip in zip(self.ups[1:-1], reversed(skips[2:]), strict=True):
            rows = _ceil_div(int(half_size[0]) * skip.shape[-2], half.shape[-2])
            cols = _ceil_div(int(half_size[1]) * skip.shape[-1], half.shape[-1])
            x = up(torch.cat((skip[..., :rows, :cols], x[..., :rows, :cols]), dim=1))
        return x[..., : half_size[0], : half_size[1]]

    def _tail(self, half: Tensor, x: Tensor, full: Tensor) -> Tensor:
        """The last decoder level and the head; the head takes (full, x) as two parts, so its CPU form is spared the concatenation."""
        x = self.ups[-1](torch.cat((half, x), dim=1))
        return cast(Tensor, self.output(full, x))


def fuse_for_inference(model: BANet) -> FusedBANet:
    """The inference form of ``model`` (norms folded, dropout dropped); ``model`` is left unchanged."""
    with torch.no_grad():
        return FusedBANet(model).to(next(model.parameters()).device)
