"""Exact masked LSTMs: masked steps are skipped, not fed as zeros.

How it stays exact without a per-step Python loop
-------------------------------------------------
1. **Compaction.** Each sequence's valid steps are gathered, in order, to the front of a
   ``(B, T_valid)`` buffer (``T_valid`` = the longest valid count), so every row becomes
   "valid steps, then padding" whatever its mask looked like (gaps, left padding...).
2. **Hold steps.** The padding behind the valid steps must not move the state. Each layer
   gets one extra input channel that is 1 on padding and 0 on valid steps, with a fixed
   weight of ``-BIG`` into the input gate and ``+BIG`` into the forget gate. On padding,
   ``sigmoid`` saturates to exactly ``i = 0`` and ``f = 1`` in floating point, so the
   cell update ``c' = f * c + i * g`` returns ``c`` bit for bit, and those gates pass
   exactly zero gradient. On valid steps the channel is 0 and contributes exactly
   nothing. The fused ``nn.LSTM`` kernel then runs unchanged, one call per layer and
   direction.
3. **Read-out.** ``c_n`` is the held cell. ``h`` is not held (the output gate still
   moves), so ``h_n`` is read from the output at the last valid step, or is the initial
   state for a sequence with no valid step.
4. **Backward direction.** From a zero initial state, one bidirectional kernel call does
   both directions: the backward pass reads the trailing padding first, and from
   ``h = c = 0`` a held step keeps ``c = 0`` and hence ``h = o * tanh(0) = 0`` exactly.
   With a given ``hx`` it runs separately on each row's valid steps reversed.
5. **Scatter.** Outputs are gathered back to the original time positions; masked steps get
   zeros (``"zero"``) or the previous valid output of that direction (``"carry"``).

All gathers are ``index_select`` on a buffer with one extra zero row that skipped slots
point to, and the compacted layout is time-major, the kernel's own, to avoid transposes.
"""

from __future__ import annotations

import functools
import warnings
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (
    BATCH_TIME,
    as_bool_mask,
    as_lengths,
    require_ndim,
    require_same_device,
    require_tensor,
    shape_str,
)
from .errors import MaskError
from .masks import lengths_to_mask
from .pooling import last_valid, masked_max, masked_mean, masked_softmax

__all__ = [
    "MaskedLSTM",
    "masked_lstm",
    "last_valid",
    "masked_mean",
    "masked_max",
    "masked_softmax",
]

MaskedOutput = Literal["zero", "carry"]
State = tuple[Tensor, Tensor]
_MASKED_OUTPUTS = ("zero", "carry")


def _check_masked_output(masked_output: object) -> None:
    if masked_output not in _MASKED_OUTPUTS:
        raise MaskError(f"masked_output: expected 'zero' or 'carry', got {masked_output!r}")


def _check_lstm(lstm: object) -> nn.LSTM:
    if not isinstance(lstm, nn.LSTM):
        raise MaskError(f"lstm: expected a torch.nn.LSTM, got {type(lstm).__name__}")
    if lstm.proj_size:
        raise MaskError(
            f"lstm: expected proj_size=0 (projections are not supported), got {lstm.proj_size}"
        )
    return lstm


def _hold_weight(dtype: torch.dtype) -> float:
    # Large enough to saturate sigmoid exactly for any sane pre-activation, small enough
    # that the weight stays finite in the dtype (0 * inf would be NaN on valid steps).
    return 1.0e4 if dtype == torch.float16 else 1.0e6


def _check_hold_margin(lstm: nn.LSTM, big: float) -> None:
    """Refuse weights so large that the hold gates might not saturate exactly.

    On a held step the gate pre-activation is ``+-big + W_hh h + b`` with ``|h| <= 1``, so
    ``|W_hh|`` row sums plus ``|b|`` bound the perturbation; sigmoid is exactly 0 or 1 in
    float32 once the pre-activation is past about -90 or +17. Any trained LSTM is far
    inside this margin; an error beats a silently inexact answer. The verdict is cached
    until a weight changes (tensor versions count in-place updates such as optimiser steps).
    """
    names = [f"{kind}_{sfx}" for sfx in _suffixes(lstm) for kind in _RECURRENT]
    params = [p for p in (getattr(lstm, n, None) for n in names) if p is not None]
    key = (big, tuple((id(p), p._version) for p in params))
    if getattr(lstm, "_lstm_zero_margin_ok", None) == key:
        return
    with torch.no_grad():
        bounds = []
        for sfx in _suffixes(lstm):
            bound = getattr(lstm, f"weight_hh_{sfx}").abs().sum(dim=1)
            if lstm.bias:
                bias = getattr(lstm, f"bias_ih_{sfx}") + getattr(lstm, f"bias_hh_{sfx}")
                bound = bound + bias.abs()
            bounds.append(bound.max())
        worst = float(torch.stack(bounds).max())
    if not worst < big - 1000:
        raise MaskError(
            f"lstm: expected recurrent weights with max row sum |W_hh| + |b| < {big - 1000:g} "
            f"for exact masking, got {worst:g}"
        )
    lstm._lstm_zero_margin_ok = key


def _suffixes(lstm: nn.LSTM) -> list[str]:
    """Parameter name suffixes of every layer and direction, in nn.LSTM's order."""
    dirs = ("", "_reverse") if lstm.bidirectional else ("",)
    return [f"l{layer}{d}" for layer in range(lstm.num_layers) for d in dirs]


_RECURRENT = ("weight_hh", "bias_ih", "bias_hh")


def _check_inputs(lstm: nn.LSTM, x: object, mask: object, hx: object) -> tuple[Tensor, Tensor]:
    """Validate ``x``, ``mask`` and ``hx`` against ``lstm``; return x and the bool mask."""
    layout = "(B, T, F)" if lstm.batch_first else "(T, B, F)"
    x = require_tensor(x, "x")
    require_ndim(x, "x", (3,), layout)
    if x.shape[2] != lstm.input_size:
        raise MaskError(
            f"x: expected shape {layout} with F = input_size = {lstm.input_size}, "
            f"got {shape_str(x.shape)}"
        )
    weight = lstm.weight_ih_l0
    if x.device != weight.device:
        raise MaskError(
            f"x: expected a tensor on the LSTM's device {weight.device}, got {x.device}"
        )
    if x.dtype != weight.dtype:
        raise MaskError(f"x: expected dtype {weight.dtype} (the LSTM's weights), got {x.dtype}")
    bool_mask = as_bool_mask(
        mask, "mask", x.shape[:2], like=x, layout=f"{BATCH_TIME[lstm.batch_first]} like x"
    )
    if hx is not None:
        batch = x.shape[0] if lstm.batch_first else x.shape[1]
        expected = (lstm.num_layers * (2 if lstm.bidirectional else 1), batch, lstm.hidden_size)
        ok = isinstance(hx, (tuple, list)) and len(hx) == 2
        if not ok or not all(isinstance(t, Tensor) for t in hx):
            raise MaskError(
                f"hx: expected a tuple (h_0, c_0) of two tensors of shape {shape_str(expected)}, "
                f"got {type(hx).__name__}"
            )
        for part, t in zip(("h_0", "c_0"), hx, strict=True):
            if tuple(t.shape) != expected:
                raise MaskError(
                    f"hx: expected {part} of shape {shape_str(expected)} "
                    f"(num_layers * num_directions, B, hidden_size), got {shape_str(t.shape)}"
                )
            require_same_device(t, f"hx ({part})", x)
            if t.dtype != x.dtype:
                raise MaskError(f"hx: expected {part} of dtype {x.dtype}, got {t.dtype}")
    return x, bool_mask


def _direction_params(lstm: nn.LSTM, layer: int, reverse: bool, hold: Tensor) -> list[Tensor]:
    """The weights of one layer/direction, with the hold column appended to ``W_ih``."""
    suffix = f"l{layer}" + ("_reverse" if reverse else "")
    params = [torch.cat([getattr(lstm, f"weight_ih_{suffix}"), hold], dim=1)]
    params.append(getattr(lstm, f"weight_hh_{suffix}"))
    if lstm.bias:
        params += [getattr(lstm, f"bias_ih_{suffix}"), getattr(lstm, f"bias_hh_{suffix}")]
    return params


@functools.lru_cache(maxsize=64)
def _hold_column(hidden: int, big: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The fixed ``(4H, 1)`` weight of the padding channel: input gate -big, forget +big."""
    with torch.inference_mode(False), torch.no_grad():  # cached: must be a normal tensor
        hold = torch.zeros(4 * hidden, 1, dtype=dtype, device=device)
        hold[:hidden] = -big  # input gate -> exactly 0
        hold[hidden : 2 * hidden] = big  # forget gate -> exactly 1
    return hold


def _with_padding_row(values: Tensor) -> Tensor:
    """``(N, C)`` rows plus a padding channel (0), then one extra row: zeros with channel 1.

    Gathering rows of this buffer with ``index_select`` builds a layer's input in one pass:
    valid steps pick their row, skipped steps pick the last row. No arithmetic touches
    skipped values, so NaN/inf there cannot leak and get exactly zero gradient.
    """
    rows, channels = values.shape
    buffer = F.pad(values, (0, 1, 0, 1))  # one allocation, one copy
    buffer[rows, channels] = 1
    return buffer


class _Compaction:
    """Index maps between a batch's time positions and its compacted valid steps.

    Slot ``k`` of sequence ``b`` in the compacted layout holds that sequence's ``k``-th
    valid step; slots past its length are padding. The compacted layout is time-major
    (row ``k * B + b``), the kernel's native layout, so it runs without transposes. All
    maps are flat row indices for ``index_select``.
    """

    def __init__(self, mask: Tensor, longest: int, x_batch_first: bool) -> None:
        batch, steps = mask.shape  # mask is (B, T) whatever x's layout
        device = mask.device
        self.batch, self.longest = batch, longest
        self.lengths = mask.sum(dim=1)
        # A stable sort puts each row's valid steps first, keeping their order.
        order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :longest]
        pos = torch.arange(longest, device=device).unsqueeze(0)
        valid = pos < self.lengths.unsqueeze(1)
        row = torch.arange(batch, device=device).unsqueeze(1)
        # Layer 0 reads x's rows (padding row B * T); later layers read the compacted
        # output of the layer below (padding row B * T_valid). Both (T_valid, B).
        x_row = row * steps + order if x_batch_first else order * batch + row
        self.from_x = torch.where(valid, x_row, batch * steps).t()
        self.from_compact = torch.where(valid, pos * batch + row, batch * longest).t()
        # Each row's valid steps reversed (for the backward direction); padding stays put.
        reverse = torch.where(valid, self.lengths.unsqueeze(1) - 1 - pos, pos)
        self.reverse = reverse.t()
        self.reverse_flat = (reverse * batch + row).t().reshape(-1)
        self.last = (self.lengths - 1).clamp(min=0) * batch + row.squeeze(1)

    def gather(self, buffer: Tensor, index: Tensor, reverse: bool) -> Tensor:
        """Rows of ``buffer`` in compacted (optionally reversed) order, ``(T_valid, B, C)``."""
        if reverse:
            index = index.gather(0, self.reverse)
        return buffer.index_select(0, index.reshape(-1)).view(self.longest, self.batch, -1)

    def unreverse(self, out: Tensor) -> Tensor:
        """Undo :meth:`gather`'s reversal of a ``(T_valid, B, C)`` output, as rows."""
        return out.reshape(self.longest * self.batch, -1).index_select(0, self.reverse_flat)

    def final_h(self, out: Tensor, h0: Tensor) -> Tensor:
        """Output at each row's last valid step, or ``h0`` for rows with none."""
        picked = out.reshape(self.longest * self.batch, -1).index_select(0, self.last)
        return torch.where((self.lengths > 0).unsqueeze(1), picked, h0)


def _run_direction(
    inp: Tensor, params: list[Tensor], state: State, comp: _Compaction, has_bias: bool
) -> tuple[Tensor, State]:
    """Run one layer/direction over compacted ``inp`` whose last channel marks padding.

    Returns the output (garbage at padding), and the state after each row's last valid step.
    """
    h0, c0 = state
    out, _, c_n = _fused_lstm(inp, (h0.unsqueeze(0), c0.unsqueeze(0)), params, has_bias, False)
    # c is held exactly through padding; h is not, so read it off the last valid output.
    return out, (comp.final_h(out, h0), c_n.squeeze(0))


def _run_both_directions(
    inp: Tensor, params: list[Tensor], comp: _Compaction, has_bias: bool
) -> tuple[Tensor, list[State]]:
    """One bidirectional kernel call; valid only from a zero initial state.

    The backward direction reads the trailing padding first: from ``h = c = 0`` a held step
    keeps ``c = 0`` and so ``h = o * tanh(0) = 0`` exactly, so it reaches each row's last
    valid step in its initial state, and its final state is exact as the kernel returns it.
    """
    batch, hidden = comp.batch, params[1].shape[1]
    zeros = inp.new_zeros(2, batch, hidden)
    out, h_k, c_k = _fused_lstm(inp, (zeros, zeros), params, has_bias, True)
    forward = (comp.final_h(out[..., :hidden], zeros[0]), c_k[0])
    return out.reshape(comp.longest * batch, 2 * hidden), [forward, (h_k[1], c_k[1])]


@torch.compiler.disable  # inductor's lowering of the CPU LSTM kernel fails on this call
def _fused_lstm(
    inp: Tensor, hx: State, params: list[Tensor], has_bias: bool, bidirectional: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """One single-layer, time-major call of the kernel behind ``nn.LSTM``."""
    args = (inp, hx, params, has_bias, 1, 0.0, False, bidirectional, False)
    if not inp.is_cuda:
        return torch._VF.lstm(*args)
    with warnings.catch_warnings():
        # cuDNN copies weights that are not in one flat buffer, and warns each call.
        warnings.filterwarnings("ignore", message="RNN module weights are not part")
        return torch._VF.lstm(*args)


def _scatter_back(
    rows: Tensor, mask: Tensor, carry: bool, half: int | None, batch_first: bool
) -> Tensor:
    """Map compacted output rows (``k * B + b``) back to the mask's time positions.

    ``mask`` is ``(B, T)``; the result is laid out like the caller's ``x``.
    """
    batch, steps = mask.shape
    channels = rows.shape[1]
    empty = rows.shape[0]
    rows = F.pad(rows, (0, 0, 0, 1))  # one more row: zeros
    upto = mask.cumsum(dim=1)  # valid steps seen up to and including t
    seq = torch.arange(batch, device=mask.device).unsqueeze(1)
    shape = (batch, steps, channels) if batch_first else (steps, batch, channels)

    def pick(values: Tensor, found: Tensor, slot: Tensor) -> Tensor:
        index = torch.where(found, slot * batch + seq, empty)
        index = index if batch_first else index.t()
        return values.index_select(0, index.reshape(-1))

    if not carry:
        return pick(rows, mask, upto - 1).view(shape)
    # Forward direction: the last valid step at or before t. Backward: the first at or after t.
    if not half:
        return pick(rows, upto > 0, upto - 1).view(shape)
    before = upto - mask.long()
    forward = pick(rows[:, :half], upto > 0, upto - 1)
    backward = pick(rows[:, half:], before < upto[:, -1:], before)
    return torch.cat([forward, backward], dim=1).view(shape)


def _masked_forward(
    lstm: nn.LSTM, x: Tensor, mask: Tensor, hx: State | None, carry: bool
) -> tuple[Tensor, State]:
    """Core of :func:`masked_lstm` on validated input; ``mask`` is ``(B, T)``."""
    batch, steps = mask.shape
    dirs = 2 if lstm.bidirectional else 1
    hidden = lstm.hidden_size
    lengths = mask.sum(dim=1)
    longest = int(lengths.max()) if batch else 0
    if longest == steps and bool((lengths == steps).all()):
        return lstm(x, hx)  # nothing is masked: the plain kernel is already exact
    zero_start = hx is None
    if hx is None:
        zeros = x.new_zeros(lstm.num_layers * dirs, batch, hidden)
        hx = (zeros, zeros)
    if longest == 0:  # nothing to run: every sequence keeps its initial state
        # Still tied to the graph (with zero gradient), so a training step on an
        # all-padding batch can call backward() like it could with nn.LSTM.
        anchor = torch.stack([p.sum() for p in lstm.parameters()] + [x.sum()]).sum()
        zero = torch.where(torch.zeros((), dtype=torch.bool, device=x.device), anchor, 0.0)
        output = x.new_zeros(x.shape[:2] + (dirs * hidden,)) + zero
        return output, (hx[0] + zero, hx[1] + zero)

    comp = _Compaction(mask, longest, lstm.batch_first)
    big = _hold_weight(x.dtype)
    _check_hold_margin(lstm, big)
    hold = _hold_column(hidden, big, x.dtype, x.device)

    buffer = _with_padding_row(x.reshape(batch * steps, x.shape[2]))
    index = comp.from_x
    h_n: list[Tensor] = []
    c_n: list[Tensor] = []
    for layer in range(lstm.num_layers):
        if dirs == 2 and zero_start:  # both directions in one kernel call
            params = _direction_params(lstm, layer, reverse=False, hold=hold)
            params += _direction_params(lstm, layer, reverse=True, hold=hold)
            seq = comp.gather(buffer, index, reverse=False)
            layer_out, states = _run_both_directions(seq, params, comp, lstm.bias)
        else:
            outs, states = [], []
            for d in range(dirs):
                k = layer * dirs + d
                params = _direction_params(lstm, layer, reverse=d == 1, hold=hold)
                seq = comp.gather(buffer, index, reverse=d == 1)
                out, state = _run_direction(seq, params, (hx[0][k], hx[1][k]), comp, lstm.bias)
                outs.append(comp.unreverse(out) if d else out.reshape(longest * batch, hidden))
                states.append(state)
            layer_out = torch.cat(outs, dim=1) if dirs == 2 else outs[0]
        h_n += [h for h, _ in states]
        c_n += [c for _, c in states]
        if layer + 1 < lstm.num_layers:
            if lstm.dropout and lstm.training:
                layer_out = F.dropout(layer_out, p=lstm.dropout, training=True)
            buffer, index = _with_padding_row(layer_out), comp.from_compact

    half = hidden if dirs == 2 else None
    output = _scatter_back(layer_out, mask, carry, half, lstm.batch_first)
    return output, (torch.stack(h_n), torch.stack(c_n))


def masked_lstm(
    lstm: nn.LSTM,
    x: Tensor,
    mask: Tensor,
    hx: State | None = None,
    masked_output: MaskedOutput = "zero",
) -> tuple[Tensor, State]:
    """Run an existing ``nn.LSTM`` with masked steps skipped, exactly.

    The functional form of :class:`MaskedLSTM`; see there for the semantics. The layout of
    ``x`` and ``mask`` follows ``lstm.batch_first``.

    Parameters
    ----------
    lstm
        A ``torch.nn.LSTM`` (``proj_size=0``). Its weights are used as they are.
    x
        ``(B, T, F)`` (``(T, B, F)`` if not ``lstm.batch_first``).
    mask
        ``(B, T)`` (``(T, B)``) bool or 0/1 mask, True = valid step. Any pattern.
    hx
        Optional initial ``(h_0, c_0)``, each ``(num_layers * num_directions, B, H)``.
    masked_output
        ``"zero"`` or ``"carry"``.

    Returns
    -------
    tuple
        ``(output, (h_n, c_n))`` with the shapes ``nn.LSTM`` returns.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> lstm = torch.nn.LSTM(3, 4, batch_first=True)
    >>> x = torch.randn(2, 5, 3)
    >>> mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 0, 1, 1]], dtype=torch.bool)
    >>> out, (h_n, c_n) = masked_lstm(lstm, x, mask)
    >>> alone, (h_alone, _) = lstm(x[1:2, mask[1]])  # row 1's valid steps on their own
    >>> torch.allclose(h_n[0, 1], h_alone[0, 0], atol=1e-6)
    True
    >>> out[0, 3:].abs().max().item()  # masked steps give exactly zero output
    0.0
    """
    lstm = _check_lstm(lstm)
    _check_masked_output(masked_output)
    x, bool_mask = _check_inputs(lstm, x, mask, hx)
    if not lstm.batch_first:
        bool_mask = bool_mask.t()
    state = None if hx is None else (hx[0], hx[1])
    return _masked_forward(lstm, x, bool_mask, state, masked_output == "carry")


class MaskedLSTM(nn.Module):
    """An ``nn.LSTM`` that skips masked time steps exactly, for any mask.

    Masked steps are **skipped**: the state is carried across them unchanged, in both
    directions, whether they are right padding, left padding or gaps in the middle. The
    result equals running ``nn.LSTM`` on each sequence's valid steps alone (float32,
    to about 1e-6), including ``h_n``/``c_n`` and gradients; masked inputs get exactly
    zero gradient and NaN/inf in them never reach any output.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        As for ``nn.LSTM`` (note ``batch_first`` defaults to True here). Dropout is applied
        to the outputs of each layer but the last, in training mode, like ``nn.LSTM``.
    masked_output
        What the output holds at a masked step. ``"zero"``: zeros. ``"carry"``: the
        previous valid output *of that direction* in its own processing order, as Keras'
        masking does: the forward half repeats the output of the last valid step before
        ``t``; the backward half (which reads time in reverse) repeats its output at the
        next valid step after ``t``. Where there is no such step, zeros.

    Attributes
    ----------
    lstm : torch.nn.LSTM
        The wrapped module; its parameters are this module's only parameters.
    masked_output : str
        ``"zero"`` or ``"carry"``.

    Notes
    -----
    ``h_n``/``c_n`` are the state after each sequence's last valid step (the first, for
    the backward direction), or the initial state if the sequence has no valid step.

    The weights are an ``nn.LSTM``'s (:attr:`lstm`); :meth:`from_lstm` wraps a trained one.
    The computation runs the fused LSTM kernel once per layer and direction on the
    compacted valid steps, so its cost tracks the longest *valid* length, not ``T``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedLSTM(input_size=3, hidden_size=4, bidirectional=True)
    >>> x = torch.randn(2, 6, 3)
    >>> out, (h_n, c_n) = model(x, lengths=torch.tensor([6, 2]))
    >>> out.shape, h_n.shape
    (torch.Size([2, 6, 8]), torch.Size([2, 2, 4]))
    >>> out[1, 2:].abs().max().item()  # padded steps: exactly zero
    0.0
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        masked_output: MaskedOutput = "zero",
    ) -> None:
        super().__init__()
        _check_masked_output(masked_output)
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.masked_output: MaskedOutput = masked_output

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, *, masked_output: MaskedOutput = "zero") -> MaskedLSTM:
        """Wrap an existing (e.g. trained) ``nn.LSTM``; the module is shared, not copied.

        Examples
        --------
        >>> lstm = torch.nn.LSTM(3, 4, batch_first=True)
        >>> MaskedLSTM.from_lstm(lstm).lstm is lstm
        True
        """
        lstm = _check_lstm(lstm)
        _check_masked_output(masked_output)
        module = cls.__new__(cls)
        nn.Module.__init__(module)
        module.lstm = lstm
        module.masked_output = masked_output
        return module

    @property
    def batch_first(self) -> bool:
        """Layout of inputs and outputs, as for ``nn.LSTM``."""
        return self.lstm.batch_first

    def extra_repr(self) -> str:
        return f"masked_output={self.masked_output!r}"

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        *,
        lengths: Tensor | None = None,
        hx: State | None = None,
    ) -> tuple[Tensor, State]:
        """Run the LSTM over the valid steps of ``x``.

        Parameters
        ----------
        x
            ``(B, T, F)`` (``(T, B, F)`` if ``batch_first=False``).
        mask
            ``(B, T)`` (``(T, B)``) bool or 0/1, True = valid step; any pattern.
        lengths
            Alternative to ``mask``: ``(B,)`` valid lengths, i.e. right padding. Give at
            most one of ``mask`` and ``lengths``; with neither, every step is valid.
        hx
            Optional initial ``(h_0, c_0)``, each ``(num_layers * num_directions, B, H)``.

        Returns
        -------
        tuple
            ``(output, (h_n, c_n))`` with ``nn.LSTM``'s shapes.
        """
        if mask is not None and lengths is not None:
            raise MaskError("mask, lengths: expected at most one of them, got both")
        if lengths is not None:
            x = require_tensor(x, "x")
            require_ndim(x, "x", (3,), "(B, T, F)" if self.batch_first else "(T, B, F)")
            batch, steps = (
                (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
            )
            lengths = as_lengths(lengths)
            if lengths.shape[0] != batch:
                raise MaskError(
                    f"lengths: expected shape ({batch},) (one length per sequence), "
                    f"got {shape_str(lengths.shape)}"
                )
            if lengths.numel() and int(lengths.max()) > steps:
                raise MaskError(
                    f"lengths: expected every length <= T = {steps}, got {int(lengths.max())}"
                )
            mask = lengths_to_mask(
                lengths.to(x.device), max_len=steps, batch_first=self.batch_first
            )
        elif mask is None:
            x = require_tensor(x, "x")
            require_ndim(x, "x", (3,), "(B, T, F)" if self.batch_first else "(T, B, F)")
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return masked_lstm(self.lstm, x, mask, hx=hx, masked_output=self.masked_output)
