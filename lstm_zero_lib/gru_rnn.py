"""Exact masked GRUs and plain (Elman) RNNs: masked steps are skipped, not fed as zeros.

The contract is :class:`~lstm_zero_lib.MaskedLSTM`'s; what differs is how it is met.
A GRU's and an RNN's state *is* its output, so nothing like the LSTM's hidden cell state
has to be carried past a step that emits something else.

GRU: one kernel call per layer, any mask, any initial state
------------------------------------------------------------
PyTorch's GRU computes ``h' = (1 - z) * n + z * h`` (its CPU kernel as
``n + z * (h - n)``). Each layer gets one extra input channel that is 1 on masked steps
and 0 on valid ones. Its weight is ``+BIG`` into the update gate ``z``, ``-BIG`` into the
reset gate ``r`` and ``-b_in`` into the candidate ``n``. On a masked step (its input zeroed
first, so NaN/inf there cannot leak) ``sigmoid`` saturates to exactly ``z = 1`` and
``r = 0``, so ``n``'s pre-activation is ``b_in - b_in + 0 = 0`` and ``n = 0`` exactly:
``h' == h`` bit for bit, however the kernel orders the arithmetic, and the step *emits
the held state*. Because the next valid step reads exactly that held ``h``, this is exact
for gaps and left padding too, in both directions and from any ``h_0``; ``nn.GRU``'s kernel
is called once per layer for both directions (on the CPU that kernel is ATen's per-step
loop), and ``h_n`` is the kernel's own. Every gate's gradient on a held step is exactly
zero (``z (1 - z) = r (1 - r) = 0``, ``dn = dh' (1 - z) = 0``), while ``dh' / dh = z = 1``
passes the gradient through. The output at a masked step is the held value: ``"carry"``
keeps it (except before a direction's first valid step, which the contract makes 0),
``"zero"`` replaces it. The gates stay saturated while ``|W_h h + b|`` stays far below
``BIG``; ``|h| <= max(1, max |h_0|)`` bounds it, and weights or an ``h_0`` beyond the margin raise
:class:`~lstm_zero_lib.InputError` rather than answer inexactly.

RNN: compaction
---------------
``h' = tanh(W x + U h + b)`` has no gate to hold, so each sequence's valid steps are
gathered to the front of a ``(T_valid, B)`` buffer (:mod:`lstm_zero_lib._compaction`,
shared with :class:`~lstm_zero_lib.MaskedLSTM`), the backward direction runs forward over
each row's reversed valid steps, ``h_n`` is the output at each row's last valid slot, and
the outputs are gathered back to their time positions. A unidirectional right-padded batch
needs none of this: by causality the valid steps are already exact, so it runs on ``x``
with the padding zeroed and reads ``h_n`` at each row's last valid step.

Both ways run some padded steps (past a row's end), where a relu state, being unbounded,
could grow to inf under an expanding ``W_hh``, and the padding's zero gradient times inf
is NaN. So a relu RNN gets a padding channel too, with ``-BIG`` into its pre-activation:
a padded step emits exactly 0 and passes exactly zero gradient, checked after the run
against the state it starts from (an :class:`~lstm_zero_lib.InputError` otherwise). A
tanh state is bounded and needs none.

Outputs at masked steps are selected, never multiplied, so they are exact zeros even in a
row whose *valid* inputs hold NaN (whose valid outputs are NaN from there on, as in
``nn.GRU``/``nn.RNN``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (
    BATCH_TIME,
    as_bool_mask,
    check_gru,
    check_h0,
    check_rnn,
    check_x,
)
from ._compaction import Compaction, with_padding_row
from ._mask_kind import classify_mask, lengths_range, lengths_tensor, right_padding
from ._masked_module import (
    MaskedOutput,
    MaskedRecurrent,
    check_masked_output,
    existing_config,
    module_config,
)
from .errors import InputError
from .rnn import (
    _held_input,
    _hold_weight,
    _kernel_call,
    _nothing_valid,
    _recurrent_bound,
    _weights,
)

__all__ = ["MaskedGRU", "MaskedRNN", "masked_gru", "masked_rnn"]

Result = tuple[Tensor, Tensor]


# --------------------------------------------------------------------------- validation


def _prepare(
    module: nn.RNNBase, x: object, mask: object, hx: object, lengths: object
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Validate the inputs; return ``x``, the mask as ``(B, T)`` bool, and ``h_0``."""
    if lengths is not None:
        if mask is not None:
            raise InputError("mask, lengths: expected at most one of them, got both")
        x = check_x(module, x)
        batch, steps = (x.shape[0], x.shape[1]) if module.batch_first else x.shape[1::-1]
        lengths = lengths_tensor(lengths, batch, x.device)
        if batch:
            lengths_range(lengths, steps)
        bool_mask = right_padding(lengths, steps)
    else:
        if mask is None:
            raise InputError("mask: expected a (B, T) mask or lengths=, got neither")
        x = check_x(module, x)
        layout = f"{BATCH_TIME[module.batch_first]} like x"
        bool_mask = as_bool_mask(mask, "mask", x.shape[:2], like=x, layout=layout)
        if not module.batch_first:
            bool_mask = bool_mask.t()
    return x, bool_mask, check_h0(module, x, hx)


def _at_step(out: Tensor, step: Tensor, batch_first: bool) -> Tensor:
    """``out`` at time ``step[b]`` for each row ``b``: ``(B, C)``."""
    width = out.shape[2]
    if batch_first:
        return out.gather(1, step.view(-1, 1, 1).expand(-1, 1, width)).squeeze(1)
    return out.gather(0, step.view(1, -1, 1).expand(1, -1, width)).squeeze(0)


def _empty(module: nn.RNNBase, x: Tensor, h0: Tensor | None) -> Result:
    """No valid step anywhere (or ``T = 0``): zero outputs, the initial state out."""
    out, (h_n, _) = _nothing_valid(module, x, None if h0 is None else (h0, h0))
    return out, h_n


def _started(mask: Tensor, bidirectional: bool, batch_first: bool) -> Tensor:
    """True where a direction has read a valid step at or before ``t`` (its own order)."""
    seen = mask.cumsum(dim=1)
    started = [seen > 0]
    if bidirectional:  # the backward direction reads from the end
        started.append(seen < seen[:, -1:] + mask.long())
    both = torch.stack(started, dim=2)  # (B, T, D)
    return both if batch_first else both.transpose(0, 1)


def _direction_params(module: nn.RNNBase, layer: int, direction: int) -> list[Tensor]:
    """``w_ih, w_hh[, b_ih, b_hh]`` of one layer and direction, in kernel order."""
    per = 4 if module.bias else 2
    start = (layer * (2 if module.bidirectional else 1) + direction) * per
    return _weights(module)[start : start + per]


# --------------------------------------------------------------------------- GRU


def _hold_margin(gru: nn.GRU, h0: Tensor | None) -> Tensor:
    """A bound on ``|W_h h + b|`` over the reset and update gates' rows (0-d tensor).

    On a held step those gates' pre-activations are ``-+big + W_h h + b`` (the masked
    input is zeroed). A GRU step keeps ``|h'| <= max(1, |h|)``, so
    ``|h| <= max(1, max |h_0|)`` throughout, and the row sums of ``|W_hr|``, ``|W_hz|`` times
    that, plus ``|b|``, bound the perturbation (:func:`~lstm_zero_lib.rnn._recurrent_bound`);
    sigmoid is exactly 0 or 1 once the pre-activation is past about -90 or 17 (float32;
    -750 or 37 in float64). Checked on every call: it depends on ``h_0`` too.
    """
    scale = None
    if h0 is not None and h0.numel():
        scale = h0.detach().abs().max().clamp(min=1)
    return _recurrent_bound(gru, 2 * gru.hidden_size, scale)  # gate order r, z, n


@functools.lru_cache(maxsize=64)
def _gate_hold(hidden: int, big: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The fixed ``(2H, 1)`` part of the padding channel's weight (gates r, z)."""
    with torch.inference_mode(False), torch.no_grad():  # cached: must be a normal tensor
        hold = torch.full((2 * hidden, 1), big, dtype=dtype, device=device)
        hold[:hidden] = -big  # reset gate -> exactly 0: n ignores h
    return hold


def _gru_layer_params(gru: nn.GRU, layer: int, gates: Tensor) -> list[Tensor]:
    """One layer's weights, both directions, with the padding channel's column.

    Its weight into the candidate ``n`` is ``-b_in``, so on a held step ``n``'s
    pre-activation is ``b_in - b_in + 0 * (W_hn h + b_hn) = 0`` exactly and ``n = 0``: the
    kernel's ``h' = n + z * (h - n)`` is then ``h`` bit for bit (with ``n != 0`` it would be
    exact only to rounding). Detached: the column is a constant, not a parameter.
    """
    params: list[Tensor] = []
    hidden = gru.hidden_size
    for d in range(2 if gru.bidirectional else 1):
        w_ih, *rest = _direction_params(gru, layer, d)
        if gru.bias:
            candidate = -rest[1][2 * hidden :].detach().unsqueeze(1)
        else:
            candidate = w_ih.new_zeros(hidden, 1)
        params += [torch.cat([w_ih, torch.cat([gates, candidate])], dim=1), *rest]
    return params


def _gru_forward(gru: nn.GRU, x: Tensor, mask: Tensor, h0: Tensor | None, carry: bool) -> Result:
    """Core of :func:`masked_gru` on validated input; ``mask`` is ``(B, T)``."""
    batch, steps = mask.shape
    if steps == 0 or batch == 0:
        return _empty(gru, x, h0)
    big = _hold_weight(x)
    # One host read for both: is anything masked, and do the hold gates saturate?
    worst_t = _hold_margin(gru, h0)
    nothing_masked, worst = torch.stack([mask.all().to(worst_t.dtype), worst_t]).tolist()
    if nothing_masked:
        plain: Result = gru(x, h0)  # the plain kernel is already exact
        return plain
    if not worst < big / 2:
        raise InputError(
            f"gru: expected reset/update-gate weights and h_0 with max row sum "
            f"|W_h| * max(1, |h_0|) + |b| < {big / 2:g} for exact masking, got {worst:g}"
        )
    batch_first = gru.batch_first
    dirs = 2 if gru.bidirectional else 1
    gates = _gate_hold(gru.hidden_size, big, x.dtype, x.device)
    skip = ~(mask if batch_first else mask.t()).unsqueeze(2)
    given = h0 is not None
    if h0 is None:
        h0 = x.new_zeros(gru.num_layers * dirs, batch, gru.hidden_size)
    out = x
    h_n = []
    for layer in range(gru.num_layers):
        if layer and gru.dropout and gru.training:
            out = F.dropout(out, p=gru.dropout, training=True)
        # Masked slots become (0, ..., 0, 1) whatever they held: NaN/inf there cannot leak,
        # they get exactly zero gradient, and the gates' margin ignores them.
        inp = _held_input(out, skip)
        params = _gru_layer_params(gru, layer, gates)
        state = h0[layer * dirs : (layer + 1) * dirs]
        args = (inp, state, params, gru.bias, 1, 0.0, False, dirs == 2, batch_first)
        out, h_k = _kernel_call(torch._VF.gru, *args)
        h_n.append(h_k)
    if not carry:
        # Selected, never multiplied (a NaN at a valid step would survive 0 * NaN). Not in
        # place: compiled with inductor (torch 2.13), an in-place fill here reached h_n.
        out = out.masked_fill(skip, 0.0)
    elif given:
        # A masked step already emits the held state; before a direction's first valid step
        # that is h_0, and the contract says zeros there (from a zero h_0 it is 0 already).
        started = _started(mask, dirs == 2, batch_first).unsqueeze(3)
        shape = out.shape
        out = torch.where(started, out.view(*shape[:2], dirs, gru.hidden_size), 0.0).view(shape)
    return out, h_n[0] if len(h_n) == 1 else torch.cat(h_n)


# --------------------------------------------------------------------------- RNN


def _rnn_kernel(rnn: nn.RNN) -> Callable[..., Result]:
    kernel: Callable[..., Result] = (
        torch._VF.rnn_tanh if rnn.nonlinearity == "tanh" else torch._VF.rnn_relu
    )
    return kernel


def _rnn_params(rnn: nn.RNN, layer: int, direction: int, big: float | None) -> list[Tensor]:
    """One direction's weights; with ``big``, plus the padding channel's column ``-big``.

    A relu state is unbounded: run over padding (zero input) by an expanding ``W_hh``, it
    can grow to inf, and the padding's zero gradient times that inf is NaN in ``W_hh``'s
    gradient. With ``-big`` from the padding channel a padded step's pre-activation is
    negative, so it emits exactly 0 and passes exactly zero gradient
    (:func:`_check_reset_margin` makes sure). A tanh state is bounded and needs none.
    """
    params = _direction_params(rnn, layer, direction)
    if big is None:
        return params
    w_ih, *rest = params
    reset = w_ih.new_full((w_ih.shape[0], 1), -big).detach()
    return [torch.cat([w_ih, reset], dim=1), *rest]


def _check_reset_margin(rnn: nn.RNN, before: list[Tensor], big: float) -> None:
    """Refuse a relu run whose padded steps might not have been reset to exactly 0.

    The first padded step of a row (or layer) starts from the state ``before`` it: its
    ``h_n`` (the output at its last valid step, or ``h_0``). After that the state is 0.
    So :func:`~lstm_zero_lib.rnn._recurrent_bound` with ``max |h|`` per layer and direction
    below ``big`` keeps every padded pre-activation negative. Read after the run (one host
    read); a non-finite state comes from the valid steps themselves, as it would in
    ``nn.RNN``, and is not refused here.
    """
    worst = float(_recurrent_bound(rnn, None, [h.detach().abs().max() for h in before]))
    if math.isfinite(worst) and not worst < big / 2:
        raise InputError(
            f"rnn: expected relu weights and states with max row sum |W_hh| * max |h| + |b| "
            f"< {big / 2:g} for exact masking, got {worst:g}"
        )


def _right_padded_rnn(
    rnn: nn.RNN, x: Tensor, mask: Tensor, lengths: Tensor, longest: int, h0: Tensor, carry: bool
) -> Result:
    """Unidirectional, right padding: causal, so the valid steps are exact on ``x`` as is."""
    batch_first = rnn.batch_first
    time_dim = 1 if batch_first else 0
    steps = x.shape[time_dim]
    skip = ~(mask if batch_first else mask.t()).unsqueeze(2)
    # Steps past the longest row are not run; the padding is zeroed so NaN/inf cannot leak.
    big = _hold_weight(x) if rnn.nonlinearity == "relu" else None
    skip_run = skip.narrow(time_dim, 0, longest)
    out = _held_input(x.narrow(time_dim, 0, longest), skip_run, channel=big is not None)
    channel = out[..., -1:]
    last = (lengths - 1).clamp(min=0)
    some = (lengths > 0).unsqueeze(1)
    kernel = _rnn_kernel(rnn)
    h_n = []
    for layer in range(rnn.num_layers):
        if layer:
            if rnn.dropout and rnn.training:
                out = F.dropout(out, p=rnn.dropout, training=True)
            if big is not None:
                out = torch.cat([out, channel], dim=2)
        args = (out, h0[layer : layer + 1], _rnn_params(rnn, layer, 0, big), rnn.bias)
        out, _ = _kernel_call(kernel, *args, 1, 0.0, False, False, batch_first)
        h_n.append(torch.where(some, _at_step(out, last, batch_first), h0[layer]))
    if big is not None:
        _check_reset_margin(rnn, h_n, big)
    if longest < steps:
        pad = (0, 0, 0, steps - longest) if batch_first else (0, 0, 0, 0, 0, steps - longest)
        out = F.pad(out, pad)
    # Masked steps: zeros, or the last valid output (zeros for a row with none).
    if not carry:  # selected, never multiplied: 0 * NaN would stay NaN
        return torch.where(skip, 0.0, out), torch.stack(h_n)
    fill = torch.where(some, h_n[-1], 0.0).unsqueeze(time_dim)
    return torch.where(skip, fill, out), torch.stack(h_n)


def _compacted_rnn(
    rnn: nn.RNN, x: Tensor, mask: Tensor, lengths: Tensor, longest: int, h0: Tensor, carry: bool
) -> Result:
    """Any mask, both directions: run each direction on each row's (reversed) valid steps."""
    batch, steps = mask.shape
    dirs = 2 if rnn.bidirectional else 1
    hidden = rnn.hidden_size
    comp = Compaction(mask, lengths, longest, rnn.batch_first)
    kernel = _rnn_kernel(rnn)
    big = _hold_weight(x) if rnn.nonlinearity == "relu" else None
    # One extra row of zeros that the padding slots of the compacted layout read (and for
    # relu a padding channel, 1 on that row only).
    pad_rows = with_padding_row if big is not None else _with_zero_row
    buffer = pad_rows(x.reshape(batch * steps, x.shape[2]))
    index = comp.from_x
    h_n = []
    for layer in range(rnn.num_layers):
        outs = []
        for d in range(dirs):
            start = h0[layer * dirs + d]
            seq = comp.gather(buffer, index, reverse=d == 1)
            params = _rnn_params(rnn, layer, d, big)
            args = (seq, start.unsqueeze(0), params, rnn.bias, 1, 0.0, False, False, False)
            out, _ = _kernel_call(kernel, *args)
            # Padding slots after a row's valid steps move h: read it at the last valid one.
            h_n.append(comp.final_h(out, start))
            outs.append(comp.unreverse(out) if d else out.reshape(longest * batch, hidden))
        layer_out = torch.cat(outs, dim=1) if dirs == 2 else outs[0]
        if layer + 1 < rnn.num_layers:
            if rnn.dropout and rnn.training:
                layer_out = F.dropout(layer_out, p=rnn.dropout, training=True)
            buffer, index = pad_rows(layer_out), comp.from_compact
    if big is not None:
        _check_reset_margin(rnn, h_n, big)
    half = hidden if dirs == 2 else None
    output = comp.scatter_back(layer_out, carry, half, rnn.batch_first, held_zero=False)
    return output, torch.stack(h_n)


def _with_zero_row(values: Tensor) -> Tensor:
    return F.pad(values, (0, 0, 0, 1))


def _rnn_forward(rnn: nn.RNN, x: Tensor, mask: Tensor, h0: Tensor | None, carry: bool) -> Result:
    """Core of :func:`masked_rnn` on validated input; ``mask`` is ``(B, T)``."""
    batch, steps = mask.shape
    if steps == 0 or batch == 0:
        return _empty(rnn, x, h0)
    lengths, shortest, longest, right, _ = classify_mask(mask)
    if shortest == steps:
        plain: Result = rnn(x, h0)  # nothing is masked: the plain kernel is already exact
        return plain
    if longest == 0:
        return _empty(rnn, x, h0)
    if h0 is None:
        dirs = 2 if rnn.bidirectional else 1
        h0 = x.new_zeros(rnn.num_layers * dirs, batch, rnn.hidden_size)
    if right and not rnn.bidirectional:
        return _right_padded_rnn(rnn, x, mask, lengths, longest, h0, carry)
    return _compacted_rnn(rnn, x, mask, lengths, longest, h0, carry)


# --------------------------------------------------------------------------- public API


def masked_gru(
    gru: nn.GRU,
    x: Tensor,
    mask: Tensor | None,
    hx: Tensor | None = None,
    masked_output: MaskedOutput = "zero",
    *,
    lengths: Tensor | None = None,
) -> Result:
    """Run an existing ``nn.GRU`` with masked steps skipped, exactly.

    The functional form of :class:`MaskedGRU`; see there for the semantics. The layout of
    ``x`` and ``mask`` follows ``gru.batch_first``.

    Parameters
    ----------
    gru
        A ``torch.nn.GRU``. Its weights are used as they are.
    x
        ``(B, T, F)`` (``(T, B, F)`` if not ``gru.batch_first``).
    mask
        ``(B, T)`` (``(T, B)``) bool or 0/1 mask, True = valid step. Any pattern.
    hx
        Optional initial ``h_0``, ``(num_layers * num_directions, B, H)``.
    masked_output
        ``"zero"`` or ``"carry"``.
    lengths
        Instead of ``mask`` (pass ``mask=None``): ``(B,)`` valid lengths (right padding).

    Returns
    -------
    tuple
        ``(output, h_n)`` with the shapes ``nn.GRU`` returns.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> gru = torch.nn.GRU(3, 4, batch_first=True)
    >>> x = torch.randn(2, 5, 3)
    >>> mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 0, 1, 1]], dtype=torch.bool)
    >>> out, h_n = masked_gru(gru, x, mask)
    >>> alone, h_alone = gru(x[1:2, mask[1]])  # row 1's valid steps on their own
    >>> torch.allclose(h_n[0, 1], h_alone[0, 0], atol=1e-6)
    True
    >>> out[0, 3:].abs().max().item()  # masked steps give exactly zero output
    0.0
    """
    gru = check_gru(gru)
    check_masked_output(masked_output)
    x, bool_mask, h0 = _prepare(gru, x, mask, hx, lengths)
    return _gru_forward(gru, x, bool_mask, h0, masked_output == "carry")


def masked_rnn(
    rnn: nn.RNN,
    x: Tensor,
    mask: Tensor | None,
    hx: Tensor | None = None,
    masked_output: MaskedOutput = "zero",
    *,
    lengths: Tensor | None = None,
) -> Result:
    """Run an existing ``nn.RNN`` (tanh or relu) with masked steps skipped, exactly.

    The functional form of :class:`MaskedRNN`; the arguments are :func:`masked_gru`'s,
    for an ``nn.RNN``.

    Returns
    -------
    tuple
        ``(output, h_n)`` with the shapes ``nn.RNN`` returns.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> rnn = torch.nn.RNN(3, 4, batch_first=True, bidirectional=True)
    >>> x = torch.randn(2, 5, 3)
    >>> mask = torch.tensor([[1, 1, 1, 0, 0], [0, 1, 0, 1, 1]], dtype=torch.bool)
    >>> out, h_n = masked_rnn(rnn, x, mask)
    >>> alone, h_alone = rnn(x[0:1, mask[0]])  # row 0's valid steps on their own
    >>> torch.allclose(out[0, :3], alone[0], atol=1e-6), out[0, 3:].abs().max().item()
    (True, 0.0)
    """
    rnn = check_rnn(rnn)
    check_masked_output(masked_output)
    x, bool_mask, h0 = _prepare(rnn, x, mask, hx, lengths)
    return _rnn_forward(rnn, x, bool_mask, h0, masked_output == "carry")


class MaskedGRU(MaskedRecurrent):
    """An ``nn.GRU`` that skips masked time steps exactly, for any mask.

    The contract of :class:`~lstm_zero_lib.MaskedLSTM`, for a GRU: masked steps are
    **skipped** (the state carried across them unchanged, in both directions, for right
    and left padding and gaps alike), and the result equals running ``nn.GRU`` on each
    sequence's valid steps alone, including ``h_n`` and gradients; masked inputs get
    exactly zero gradient and NaN/inf in them never reach any output.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        As for ``nn.GRU`` (note ``batch_first`` defaults to True here).
    masked_output
        ``"zero"``: zeros at masked steps. ``"carry"``: each direction's previous valid
        output in its own reading order (zeros before its first valid step), as
        :class:`~lstm_zero_lib.MaskedLSTM` documents.

    Attributes
    ----------
    gru : torch.nn.GRU
        The wrapped module; its parameters are this module's only parameters.

    Notes
    -----
    One GRU kernel call per layer, both directions together, for every mask and
    initial state: a padding channel saturates the reset and update gates, so a masked
    step holds ``h`` bit for bit (see :mod:`lstm_zero_lib.gru_rnn`). Recurrent weights or an ``h_0``
    too large for that margin raise :class:`~lstm_zero_lib.InputError`.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedGRU(input_size=3, hidden_size=4, bidirectional=True)
    >>> x = torch.randn(2, 6, 3)
    >>> out, h_n = model(x, lengths=torch.tensor([6, 2]))
    >>> out.shape, h_n.shape
    (torch.Size([2, 6, 8]), torch.Size([2, 2, 4]))
    >>> out[1, 2:].abs().max().item()  # padded steps: exactly zero
    0.0
    """

    _name = "gru"
    _functional = staticmethod(masked_gru)
    gru: nn.GRU

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
        gru: nn.GRU | None = None,
    ) -> None:
        config = module_config(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        super().__init__(gru, lambda: nn.GRU(**config), check_gru, config, masked_output)

    @classmethod
    def from_gru(cls, gru: nn.GRU, *, masked_output: MaskedOutput = "zero") -> MaskedGRU:
        """Wrap an existing (e.g. trained) ``nn.GRU``; the module is shared, not copied.

        Examples
        --------
        >>> gru = torch.nn.GRU(3, 4, batch_first=True)
        >>> MaskedGRU.from_gru(gru).gru is gru
        True
        """
        gru = check_gru(gru)
        return cls(**existing_config(gru), masked_output=masked_output, gru=gru)


class MaskedRNN(MaskedRecurrent):
    """An ``nn.RNN`` (Elman, tanh or relu) that skips masked time steps exactly.

    The contract of :class:`MaskedGRU`, for ``nn.RNN``; ``nonlinearity`` is ``nn.RNN``'s.
    A plain RNN has no gate to hold its state, so masks other than unidirectional right
    padding run on each row's compacted valid steps (see :mod:`lstm_zero_lib.gru_rnn`).

    Attributes
    ----------
    rnn : torch.nn.RNN
        The wrapped module; its parameters are this module's only parameters.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = MaskedRNN(3, 4, nonlinearity="relu", masked_output="carry")
    >>> x = torch.randn(1, 5, 3)
    >>> out, h_n = model(x, torch.tensor([[True, True, False, True, False]]))
    >>> torch.equal(out[0, 2], out[0, 1]), torch.equal(out[0, 4], h_n[0, 0])
    (True, True)
    """

    _name = "rnn"
    _functional = staticmethod(masked_rnn)
    rnn: nn.RNN

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        *,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        masked_output: MaskedOutput = "zero",
        rnn: nn.RNN | None = None,
    ) -> None:
        config = module_config(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        config["nonlinearity"] = nonlinearity
        super().__init__(rnn, lambda: nn.RNN(**config), check_rnn, config, masked_output)

    @classmethod
    def from_rnn(cls, rnn: nn.RNN, *, masked_output: MaskedOutput = "zero") -> MaskedRNN:
        """Wrap an existing (e.g. trained) ``nn.RNN``; the module is shared, not copied.

        Examples
        --------
        >>> rnn = torch.nn.RNN(3, 4, nonlinearity="relu")
        >>> MaskedRNN.from_rnn(rnn).rnn is rnn
        True
        """
        rnn = check_rnn(rnn)
        config = existing_config(rnn)
        return cls(**config, nonlinearity=rnn.nonlinearity, masked_output=masked_output, rnn=rnn)
