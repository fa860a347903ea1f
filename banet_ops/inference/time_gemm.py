"""BA-Net's temporal ``k×1×1`` convolutions and ``s×1×1`` up-convolutions as matrix products on ``channels_last_3d`` tensors (CPU, exact).

A ``k×1×1`` convolution acts pixel by pixel: with the tensor laid out ``(N, T, H, W, C)`` (the
memory order of ``channels_last_3d``), output day ``t`` is ``bias + Σ_k x[s·t + k − p] @ W_k``,
``k`` matrix products of ``(H·W, C_in) @ (C_in, C_out)`` accumulated in place, with no copy of
the input.  oneDNN's 3-D convolution runs these kernels 4–7× slower on CPU (measured on the
development machine, one thread: level 1's 7×1×1 convolution 2.37 s → 0.36 s, the head's 3×1×1
2.33 s → 0.55 s per 128² × 64 tile; benchmarks/README.md).  Same sums in another order: equal to
the convolution to float rounding.  A :class:`TimeGemm` takes its input in parts side by side in
channels (splitting its weights), so a skip connection needs no concatenation.  The decoder's
``s×1×1`` up-convolutions with stride ``s`` are ``s`` matrix products per input day
(:class:`UpTimeGemm`).  Both share their (tile, output day) pairs among torch's threads
(:mod:`.threads`).  :func:`banet_ops.inference.cpu_forms.use_cpu_forms` swaps them in.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from banet_ops.inference.threads import share_among_threads, tile_days


def runs_as_products(x: Tensor) -> bool:
    """Whether the CPU forms compute on ``x``: float32 on the CPU without autograd; otherwise torch's own layers do."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()


def product_into(out: Tensor, x: Tensor, w: Tensor, bias: Tensor | None, *, accumulate: bool = False) -> Tensor:
    """``out = bias + x @ w`` (no bias: ``x @ w``), or ``out += x @ w`` with ``accumulate``, in place; returns ``out``."""
    if accumulate:
        return out.addmm_(x, w)
    return torch.mm(x, w, out=out) if bias is None else torch.addmm(bias, x, w, out=out)


class _TemporalGemm(nn.Module):
    """A temporal (transposed) convolution's weights as ``(taps, C_in, C_out)`` matrices and its bias, the layer kept for torch's path."""

    w: Tensor
    b: Tensor | None

    def __init__(self, conv: nn.Conv3d | nn.ConvTranspose3d, taps_in_out: Tensor) -> None:
        super().__init__()
        self.conv = conv  # off the CPU, with autograd or another dtype: the layer itself
        with torch.no_grad():
            self.register_buffer("w", taps_in_out.contiguous())
            self.register_buffer("b", None if conv.bias is None else conv.bias.detach().clone())


class TimeGemm(_TemporalGemm):
    """A ``k×1×1`` :class:`torch.nn.Conv3d` (stride ``s`` in time, padding ``p`` in time) as ``k`` matrix products."""

    def __init__(self, conv: nn.Conv3d) -> None:
        kt, kh, kw = conv.kernel_size
        st, sh, sw = conv.stride
        pt, ph, pw = conv.padding  # type: ignore[misc,str-unpack]
        if (kh, kw, sh, sw, ph, pw) != (1, 1, 1, 1, 0, 0) or conv.groups != 1 or conv.dilation != (1, 1, 1):
            raise ValueError(f"expected a k×1×1 convolution, found kernel {conv.kernel_size}, stride {conv.stride}, padding {conv.padding}")
        super().__init__(conv, conv.weight.detach()[:, :, :, 0, 0].permute(2, 1, 0))  # (k, C_in, C_out)
        self.k, self.stride, self.pad = kt, st, int(pt)
        # the centre tap first: where it reads a day for every output day, it can write ``bias + x @ W`` straight into the output
        self.taps = sorted(range(kt), key=lambda i: i != self.pad)

    def forward(self, *parts: Tensor) -> Tensor:
        """The convolution of ``parts`` concatenated along channels (one part: of that tensor), without the concatenation."""
        if not runs_as_products(parts[0]):
            return self.conv(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))
        n, _, t_in, h, w = parts[0].shape
        if sum(x.shape[1] for x in parts) != self.w.shape[1] or any(x.shape[0] != n or x.shape[2:] != parts[0].shape[2:] for x in parts):
            raise ValueError(f"expected parts with {self.w.shape[1]} channels in all and one (N, T, H, W), found {[tuple(x.shape) for x in parts]}")
        c_out = int(self.w.shape[2])
        t_out = (t_in + 2 * self.pad - self.k) // self.stride + 1
        out = parts[0].new_empty((n, t_out, h, w, c_out))
        xts = [x.permute(0, 2, 3, 4, 1).contiguous() for x in parts]  # (N, T, H, W, C): views when the parts are channels_last_3d
        # the centre tap reads a day for every output day (stride 1, no more output days than input days)
        direct = self.stride == 1 and self.b is not None and 0 <= self.pad < self.k and t_out <= t_in

        def walk(share: range) -> None:
            for j, days in tile_days(share, t_out):
                self._run(out[j, days.start : days.stop], [xt[j] for xt in xts], days.start, direct)

        share_among_threads(n * t_out, walk)
        return out.permute(0, 4, 1, 2, 3)  # channels_last_3d

    def _run(self, out: Tensor, xts: list[Tensor], lo: int, direct: bool) -> None:
        """Output days ``lo, lo + 1, …`` of one tile into ``out`` ``(days, H, W, C_out)`` from its parts ``xts`` ``(T_in, H, W, C)``."""
        t_in, s, hi = xts[0].shape[0], self.stride, lo + out.shape[0]
        rows, c_out = out.shape[1] * out.shape[2], out.shape[3]
        if not direct and self.b is not None:
            out.copy_(self.b.expand_as(out))
        elif not direct:
            out.zero_()
        c0 = 0
        for xt in xts:
            w, c = self.w[:, c0 : c0 + xt.shape[3]], xt.shape[3]
            for i in self.taps:
                d = i - self.pad  # output day t reads input day s·t + d
                first, stop = max(lo, -(d // s)), min(hi, (t_in - 1 - d) // s + 1)  # output days whose input day exists
                if stop <= first:
                    continue
                o = out[first - lo : stop - lo].view(stop - first, rows, c_out)
                xs = xt[s * first + d : s * (stop - 1) + d + 1 : s].view(stop - first, rows, c)
                if direct and c0 == 0 and d == 0:
                    torch.addmm(self.b, xs.view(-1, c), w[i], out=o.view(-1, c_out))  # type: ignore[arg-type]
                elif s == 1:
                    o.view(-1, c_out).addmm_(xs.view(-1, c), w[i])
                else:
                    o.baddbmm_(xs, w[i].expand(stop - first, c, c_out))
            c0 += c


class UpTimeGemm(_TemporalGemm):
    """A ``s×1×1`` :class:`torch.nn.ConvTranspose3d` with stride ``s`` in time as matrix products: input day ``t`` makes output days ``s·t + a``."""

    def __init__(self, conv: nn.ConvTranspose3d) -> None:
        kt, kh, kw = conv.kernel_size
        plain = conv.padding == (0, 0, 0) and conv.output_padding == (0, 0, 0) and conv.groups == 1 and conv.dilation == (1, 1, 1)
        if (kh, kw) != (1, 1) or conv.stride != (kt, 1, 1) or not plain:
            raise ValueError(f"expected an s×1×1 transposed convolution with stride s, found kernel {conv.kernel_size}, stride {conv.stride}")
        super().__init__(conv, conv.weight.detach()[:, :, :, 0, 0].permute(2, 0, 1))  # (s, C_in, C_out)

    def day_into(self, out: Tensor, x_day: Tensor, day: int) -> Tensor:
        """Output day ``day`` ``(H·W, C_out)`` into ``out`` from input day ``day // s`` ``(H·W, C_in)``, before any ReLU."""
        return product_into(out, x_day, self.w[day % self.w.shape[0]], self.b)

    def forward(self, x: Tensor) -> Tensor:
        if not runs_as_products(x):
            return self.conv(x)
        n, c_in, t_in, h, w = x.shape
        s, c_out = int(self.w.shape[0]), int(self.w.shape[2])
        xt = x.permute(0, 2, 3, 4, 1).contiguous()  # (N, T, H, W, C): a view when x is channels_last_3d
        out = x.new_empty((n, s * t_in, h, w, c_out))

        def walk(share: range) -> None:
            for j, days in tile_days(share, s * t_in):
                for day in days:
                    self.day_into(out[j, day].view(h * w, c_out), xt[j, day // s].view(h * w, c_in), day)

        share_among_threads(n * s * t_in, walk)
        return out.permute(0, 4, 1, 2, 3)  # channels_last_3d
