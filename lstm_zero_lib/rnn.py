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
   state for a sequence with no valid step. The backward direction runs the same way on
   each row's valid steps reversed.
4. **Scatter.** Outputs are gathered back to the original time positions; masked steps get
   zeros (``"zero"``) or the previous valid output of that direction (``"carry"``).
"""

from __future__ import annotations

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


def _run_direction(
    inp: Tensor, params: list[Tensor], state: State, lengths: Tensor, has_bias: bool
) -> tuple[Tensor, State]:
    """Run one layer/direction over left-aligned ``inp`` whose last channel marks padding.

    Returns the output (garbage at padding), and the state after each row's last valid step.
    """
    h0, c0 = state
    out, _, c_n = torch._VF.lstm(  # the fused kernel behind nn.LSTM
        inp, (h0.unsqueeze(0), c0.unsqueeze(0)), params, has_bias, 1, 0.0, False, False, True
    )
    # c is held exactly through padding; h is not, so read it off the last valid output.
    h_n = _state_at_last_step(out, lengths, fallback=h0)
    return out, (h_n, c_n.squeeze(0))


def _state_at_last_step(out: Tensor, lengths: Tensor, fallback: Tensor) -> Tensor:
    """``out[b, lengths[b] - 1]`` for each row, ``fallback[b]`` where ``lengths[b] == 0``."""
    index = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, out.shape[2])
    picked = out.gather(1, index).squeeze(1)
    return torch.where((lengths > 0).unsqueeze(1), picked, fallback)


def _reverse_valid(t: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the order of each row's first ``lengths[b]`` steps; padding stays in place.

    A permutation that is its own inverse, so it also maps reversed outputs back.
    """
    steps = torch.arange(t.shape[1], device=t.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return t.gather(1, index.unsqueeze(2).expand(-1, -1, t.shape[2]))


def _scatter_back(out_c: Tensor, mask: Tensor, carry: bool, half: int | None) -> Tensor:
    """Map compacted outputs ``(B, T_valid, H)`` back to the mask's time positions."""
    upto = mask.cumsum(dim=1)  # valid steps seen up to and including t
    zero = torch.zeros((), dtype=out_c.dtype, device=out_c.device)
    if not carry:
        picked = out_c.gather(
            1, (upto - 1).clamp(min=0).unsqueeze(2).expand(-1, -1, out_c.shape[2])
        )
        return torch.where(mask.unsqueeze(2), picked, zero)
    # Forward direction: the last valid step at or before t. Backward: the first at or after t.
    parts = [(out_c[..., :half] if half else out_c, upto - 1, upto > 0)]
    if half:
        before = upto - mask.long()
        lengths = upto[:, -1:]
        parts.append((out_c[..., half:], before, before < lengths))
    pieces = []
    for values, index, found in parts:
        idx = (
            index.clamp(min=0, max=out_c.shape[1] - 1).unsqueeze(2).expand(-1, -1, values.shape[2])
        )
        pieces.append(torch.where(found.unsqueeze(2), values.gather(1, idx), zero))
    return torch.cat(pieces, dim=2)


def _masked_forward(
    lstm: nn.LSTM, x: Tensor, mask: Tensor, hx: State | None, carry: bool
) -> tuple[Tensor, State]:
    """Batch-first core of :func:`masked_lstm` on validated input."""
    batch, steps, _ = x.shape
    dirs = 2 if lstm.bidirectional else 1
    hidden = lstm.hidden_size
    lengths = mask.sum(dim=1)
    longest = int(lengths.max()) if batch else 0
    if hx is None:
        zeros = x.new_zeros(lstm.num_layers * dirs, batch, hidden)
        hx = (zeros, zeros)
    if longest == 0:  # nothing to run: every sequence keeps its initial state
        return x.new_zeros(batch, steps, dirs * hidden), (hx[0].clone(), hx[1].clone())

    # Compaction: a stable sort puts each row's valid steps first, in their order.
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :longest]
    valid = torch.arange(longest, device=x.device).unsqueeze(0) < lengths.unsqueeze(1)
    padding = (~valid).to(x.dtype).unsqueeze(2)
    inp = x.gather(1, order.unsqueeze(2).expand(-1, -1, x.shape[2]))

    hold = x.new_zeros(4 * hidden, 1)
    big = _hold_weight(x.dtype)
    hold[:hidden] = -big  # input gate -> exactly 0
    hold[hidden : 2 * hidden] = big  # forget gate -> exactly 1

    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    h_n: list[Tensor] = []
    c_n: list[Tensor] = []
    for layer in range(lstm.num_layers):
        if layer and lstm.dropout and lstm.training:
            inp = F.dropout(inp, p=lstm.dropout, training=True)
        # where, not multiplication: NaN/inf in skipped slots must not reach the kernel.
        inp = torch.cat([torch.where(valid.unsqueeze(2), inp, zero), padding], dim=2)
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            params = _direction_params(lstm, layer, reverse=d == 1, hold=hold)
            seq = _reverse_valid(inp, lengths) if d else inp
            out, (h, c) = _run_direction(seq, params, (hx[0][k], hx[1][k]), lengths, lstm.bias)
            outs.append(_reverse_valid(out, lengths) if d else out)
            h_n.append(h)
            c_n.append(c)
        inp = torch.cat(outs, dim=2) if dirs == 2 else outs[0]

    output = _scatter_back(inp, mask, carry, hidden if dirs == 2 else None)
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
        x, bool_mask = x.transpose(0, 1), bool_mask.t()
    state = None if hx is None else (hx[0], hx[1])
    output, (h_n, c_n) = _masked_forward(lstm, x, bool_mask, state, masked_output == "carry")
    if not lstm.batch_first:
        output = output.transpose(0, 1)
    return output, (h_n, c_n)


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
