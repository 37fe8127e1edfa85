"""Exact masked LSTMs: masked steps are skipped, not fed as zeros.

How it stays exact without a per-step Python loop
-------------------------------------------------
1. **Hold steps.** Each layer gets one extra input channel that is 1 on masked steps and 0
   on valid ones, with a fixed weight of ``-BIG`` into the input and output gates and
   ``+BIG`` into the forget gate. On a masked step ``sigmoid`` saturates to exactly
   ``i = 0``, ``f = 1``, ``o = 0`` in floating point, so ``c' = f * c + i * g`` returns
   ``c`` bit for bit, the step emits exactly ``h = 0``, and those gates pass exactly zero
   gradient. On valid steps the channel is 0 and contributes exactly nothing. The fused
   ``nn.LSTM`` kernel runs unchanged, one call per layer (both directions in one call).
2. **No compaction for one block of valid steps.** From a zero initial state, a masked
   step keeps ``c = 0`` and emits ``h = 0``, so leading masked steps leave the state at
   zero, and trailing ones hold ``c`` and emit zeros. Right and left padding (and a
   unidirectional right-padded run from a given ``hx``) therefore run on ``x`` as it is:
   the output is already exact, with zeros at masked steps. Steps that no row uses
   (past the longest row, or before it with left padding) are not run at all. A row with
   no valid step starts from ``h = 0`` whatever ``h_0`` is, so a large user ``h_0``
   cannot unsaturate its hold gates; its ``h_n``/``c_n`` are its initial state.
   ``c_n`` is the kernel's;
   ``h`` is not held (the step emits 0), so ``h_n`` is read from the output at the last
   valid step the direction reads (right padding: forward direction; left padding:
   backward direction).
3. **Compaction, where the mask has gaps** (or a given ``hx`` meets left padding or a
   backward direction). A hold step emits ``h = 0``, and the next valid step would read
   that 0 instead of the held ``h``; so each sequence's valid steps are first gathered, in
   order, to the front of a ``(T_valid + 1, B)`` buffer, then run as in 2, and gathered
   back to their time positions; a masked step reads a held slot of its own row, whose
   output is exactly 0 (the extra slot makes sure every row with a masked step has one).
   See :mod:`lstm_zero_lib._compaction`; it knows nothing of LSTM gates.

The mask is classified (right padding, left padding, anything else) from a few values
read on the host (on a GPU read together: one synchronisation for the classification; see
:mod:`lstm_zero_lib._mask_kind`);
``lengths=`` is right padding by construction: it needs no classification, only its
range checked (the same kind of read).

While ``torch.export``, an ONNX exporter or ``torch.jit.trace`` records a call there is no
host read: every mask takes the compaction of 3 with ``T`` slots (a size known from the
shapes alone), so the recorded graph is right for any mask, batch size and length.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import (
    State,
    check_lstm,
    check_lstm_inputs,
    check_lstm_x_hx,
    exporting,
    require_ndim,
    require_tensor,
)
from ._compaction import Compaction, with_padding_row
from ._mask_kind import (
    MaskKind,
    cached_arange,
    classify_mask,
    lengths_range,
    lengths_tensor,
    right_padding,
)
from ._masked_module import MaskedOutput, MaskedRecurrent, existing_config, module_config
from ._masked_module import check_masked_output as _check_masked_output
from .errors import InputError

__all__ = ["MaskedLSTM", "masked_lstm"]

KernelOut = TypeVar("KernelOut")


def _hold_weight(x: Tensor) -> float:
    """The padding channel's weight for the kernel that will run on ``x``.

    On a held step a gate's pre-activation is ``+-big + p``, with ``p = W_hh h + b``
    (the held step's features are zeroed). Any ``|p| < big / 2`` leaves it at least
    ``big / 2`` from zero, where sigmoid is exactly 0 or 1 (past about -104 and +17 in
    float32), so the larger ``big``, the larger the weights that stay exact. It must stay
    finite in the dtype the kernel computes in, autocast's where autocast is on (``0 * inf``
    would be NaN on valid steps): 1e30 is finite in float32, float64 and bfloat16 (TF32
    too); float16's largest finite value is 65504, so 1e4 there.
    """
    dtype = x.dtype
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
    return 1.0e4 if dtype == torch.float16 else 1.0e30


def _weights(lstm: nn.RNNBase) -> list[Tensor]:
    """The module's own weight list, in kernel order: per layer and direction
    ``w_ih, w_hh[, b_ih, b_hh]`` (what ``nn.LSTM.forward`` hands the kernel; ``all_weights``
    holds the same tensors but rebuilds its lists by name on every access)."""
    flat: list[Tensor] = lstm._flat_weights  # type: ignore[assignment]
    return flat


def _recurrent_bound(
    module: nn.RNNBase, rows: int | None = None, scales: Tensor | list[Tensor] | None = None
) -> Tensor:
    """``max |W_hh h + b_ih + b_hh|`` over layers, directions and rows, bounded (0-d tensor).

    Per layer and direction: each row's ``|W_hh|`` sum times that direction's bound on
    ``|h|`` (``scales``: one tensor for all, one per layer and direction, or None for 1),
    plus ``|b_ih + b_hh|``; only the first ``rows`` rows (gates) if given. The hold (or
    reset) channel's ``+-big`` must stay beyond this for its gates to saturate exactly.
    """
    flat = _weights(module)
    per = 4 if module.bias else 2
    with torch.no_grad():
        bounds = []
        for k, start in enumerate(range(0, len(flat), per)):
            bound = flat[start + 1][:rows].abs().sum(dim=1)
            if scales is not None:
                bound = bound * (scales[k] if isinstance(scales, list) else scales)
            if module.bias:
                bound = bound + (flat[start + 2][:rows] + flat[start + 3][:rows]).abs()
            bounds.append(bound.max())
        return torch.stack(bounds).max()


#: Per module, the state of the weights whose margin was last checked (its key).
_margin_checked: weakref.WeakKeyDictionary[nn.Module, tuple[object, ...]] = (
    weakref.WeakKeyDictionary()
)


def _weights_key(module: nn.RNNBase, big: float) -> tuple[object, ...] | None:
    """What identifies the weights' values: each one's storage and version counter.

    In-place updates through a parameter bump its version (``foreach`` and per-tensor
    optimizer steps, ``load_state_dict``, writes under ``no_grad``); new tensors change
    the storage. Some updates bump nothing: a write through ``.data``, a fused optimizer
    step (``fused=True``), anything under ``_unsafe_preserve_version_counter``. At a
    margin of 5e29 that can only miss absurd weights; where the kernel computes in
    float16 the margin is 5000, so there the check runs on every call (None). None also
    where there is no version to read: inference tensors, and while ``torch.compile``
    traces the call.
    """
    if big < 1e30 or torch.compiler.is_compiling():
        return None
    try:
        return (big, *[(w.data_ptr(), w._version) for w in _weights(module)])
    except RuntimeError:  # inference tensors keep no version counter
        return None


def _check_hold_margin(lstm: nn.LSTM, big: float) -> None:
    """Refuse weights so large that the hold gates might not saturate exactly.

    On a held step the gate pre-activation is ``+-big + W_hh h + b``. The kernel only
    reaches a held step with ``|h| <= 1`` (an LSTM output, or the 0 a held step emits):
    rows with no valid step, the only ones that would start held from a user's ``h_0``,
    run from ``h = 0`` instead (see :func:`_kernel_h0`). So ``|W_hh|`` row sums plus
    ``|b|`` bound the perturbation (:func:`_recurrent_bound`), which must stay under
    ``big / 2`` (:func:`_hold_weight`): 5e29, or 5000 where the kernel computes in float16.
    Any trained LSTM is far inside this margin; an error beats a silently inexact answer.

    Checked once per state of the weights (:func:`_weights_key`), not on every call: run
    on every call, its few small reductions and host read cost a sixth to a quarter of a plain
    ``nn.LSTM`` call at ``T = 10`` (B32, H64, CPU). An update that leaves the version
    counter alone (a write through ``.data``, a fused optimizer step) is not seen: weights
    made that way larger than the margin after a call are not refused. In float16, under
    ``torch.compile`` and for inference tensors the check runs on every call.
    """
    key = _weights_key(lstm, big)
    if key is not None and _margin_checked.get(lstm) == key:
        return
    # A loose bound first, one reduction over every recurrent weight and bias:
    # |W_hh| row sum <= H max |w|, |b_ih + b_hh| <= 2 max |w|. The exact row sums only
    # where that is not enough (never for a trained model in float32).
    per = 4 if lstm.bias else 2
    recurrent = [w.view(-1) for i, w in enumerate(_weights(lstm)) if i % per]
    with torch.no_grad():
        low, high = torch.aminmax(torch.cat(recurrent))
    worst = (lstm.hidden_size + 2) * max(-float(low), float(high))
    if not worst < big / 2:
        worst = float(_recurrent_bound(lstm))
    if not worst < big / 2:
        raise InputError(
            f"lstm: expected recurrent weights with max row sum |W_hh| + |b| < {big / 2:g} "
            f"for exact masking, got {worst:g}"
        )
    if key is not None:
        _margin_checked[lstm] = key


def _kernel_h0(h0: Tensor, lengths: Tensor) -> Tensor:
    """``h_0`` for the kernel: 0 for rows with no valid step.

    Such a row runs held steps only, and its state is the initial one whatever the kernel
    does; starting it from ``h = 0`` keeps the hold gates saturated however large the
    user's ``h_0`` (``nn.LSTM`` does not bound it), so its ``c`` stays ``c_0`` and its
    outputs stay 0. Rows with a valid step start with that step.
    """
    return torch.where((lengths > 0).unsqueeze(1), h0, 0.0)


@functools.lru_cache(maxsize=64)
def _hold_column(hidden: int, big: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The fixed ``(4H, 1)`` weight of the padding channel (gates i, f, g, o)."""
    # Input gate -> exactly 0, forget gate -> exactly 1, output gate -> exactly 0 (a held
    # step emits h = 0). Built without in-place writes: an ONNX export then folds it, and
    # the weights it joins, into constants.
    with torch.inference_mode(False), torch.no_grad():  # cached: must be a normal tensor
        per_gate = torch.tensor([-big, big, 0.0, -big], dtype=dtype, device=device)
        return per_gate.repeat_interleave(hidden).unsqueeze(1)


def _checked_hold(lstm: nn.LSTM, x: Tensor) -> Tensor:
    """The hold column for ``x``'s dtype, after checking the weights' margin for it.

    Under ``torch.export`` (and the dynamo-based ONNX exporter), neither: the weights are
    fake tensors there, so the margin cannot be read, and the cache must not keep a tensor
    made under fake-tensor mode; the column is built afresh (a constant of the graph).
    ``torch.jit.trace`` (and the TorchScript-based ONNX exporter) runs on the real
    weights, so the check runs there too: weights beyond the margin refuse to export.
    """
    big = _hold_weight(x)
    if torch.compiler.is_exporting():
        return _hold_column.__wrapped__(lstm.hidden_size, big, x.dtype, x.device)
    _check_hold_margin(lstm, big)
    return _hold_column(lstm.hidden_size, big, x.dtype, x.device)


def _layer_params(lstm: nn.LSTM, layer: int, hold: Tensor, directions: range) -> list[Tensor]:
    """The weights of one layer's directions, in kernel order, with the hold column."""
    flat = _weights(lstm)
    per = 4 if lstm.bias else 2
    dirs = 2 if lstm.bidirectional else 1
    params: list[Tensor] = []
    for d in directions:
        start = (layer * dirs + d) * per
        w_ih, *rest = flat[start : start + per]
        params += [torch.cat([w_ih, hold], dim=1), *rest]
    return params


def _fused_lstm_call(
    inp: Tensor,
    hx: State,
    params: list[Tensor],
    has_bias: bool,
    bidirectional: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """One single-layer, time-major call of the kernel behind ``nn.LSTM``."""
    args = (inp, hx, params, has_bias, 1, 0.0, False, bidirectional, False)
    out: tuple[Tensor, Tensor, Tensor] = _kernel_call(torch._VF.lstm, *args)
    return out


def _kernel_call(kernel: Callable[..., KernelOut], *args: object) -> KernelOut:
    """One call of a fused recurrent kernel (``torch._VF.lstm``, ``gru``, ``rnn_tanh``...)."""
    if not isinstance(args[0], Tensor) or not args[0].is_cuda:
        return kernel(*args)
    with warnings.catch_warnings():
        # cuDNN copies weights that are not in one flat buffer, and warns each call.
        warnings.filterwarnings("ignore", message="RNN module weights are not part")
        return kernel(*args)


# Inductor's lowering of the CPU LSTM kernel fails on this call: keep it out of the graph.
# (torch.compiler.disable carries no type hints.)
_kernel_outside_graph: Callable[..., tuple[Tensor, Tensor, Tensor]]
_kernel_outside_graph = torch.compiler.disable(_fused_lstm_call)  # type: ignore[no-untyped-call]


def _fused_lstm(
    inp: Tensor, hx: State, params: list[Tensor], has_bias: bool, bidirectional: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`_fused_lstm_call`, kept out of ``torch.compile``'s graph; eager calls skip the
    wrapper that does it (about a microsecond per call)."""
    if torch.compiler.is_compiling():
        return _kernel_outside_graph(inp, hx, params, has_bias, bidirectional)
    return _fused_lstm_call(inp, hx, params, has_bias, bidirectional)


# --------------------------------------------------------------------------- one block


#: From this many elements of the steps run (``x`` cut to the longest row), the CPU fills
#: held rows by index rather than by a ``masked_fill`` pass. What the choice costs is in
#: ``benchmarks/results/held_input_threshold.txt`` (``tools/held_input_threshold.py``: one
#: thread, B = 32, F = 32 only, forward calls, each after another kernel): the row fill is
#: slower below T = 30 (3.7 % of a forward call at T = 10, 1.7 % at T = 16 and 20), the
#: two are within 0.5 % at T = 30-50, and the row fill is faster above (1.8 % at
#: T = 100). So this threshold (T = 16 there) sits under the crossover and costs about
#: 2 % at T = 16-20; forward+backward calls showed no measurable difference from T = 20
#: on (measured once, not committed).
_ROW_FILL_FROM = 2**14


def _held_input(x: Tensor, skip: Tensor, channel: bool = True) -> Tensor:
    """``x`` with its held steps' features set to +0 and, with ``channel``, the padding
    channel (1 on held steps) appended: a held step then reads ``(0, ..., 0, 1)``.

    ``skip`` (bool, True on held steps) is laid out like ``x`` with a last dim of 1. Whatever
    ``x`` held at a held step (NaN, inf) cannot leak and gets exactly zero gradient: the
    zeros are selected, never multiplied in (``nan * 0`` is NaN).
    """
    if not channel:
        return x.masked_fill(skip, 0.0)
    if x.device.type != "cpu" or x.numel() < _ROW_FILL_FROM:
        # Two ops, one allocation; on a GPU no index search either (nonzero waits for the
        # device).
        inp = torch.cat([x, skip], dim=2)
        inp[..., :-1].masked_fill_(skip, 0.0)
        return inp
    # The held rows' features are filled by row index: on the CPU ``masked_fill`` over
    # ``(T, B, F)`` costs about twice the copy that ``cat`` makes, a row fill only touches
    # the held steps. (Their indices are found first: with them found in the tensor being
    # filled, inductor failed to compile the fill, single-threaded, torch 2.13, for a batch
    # whose rows were all shorter than T; the cause is not known.)
    held = skip.reshape(-1).nonzero().squeeze(1)
    inp = torch.cat([x, skip], dim=2)  # the bool joins as the channel, in x's dtype
    inp.view(-1, inp.shape[2])[:, :-1].index_fill_(0, held, 0.0)
    return inp


def _held_steps(lengths: Tensor, steps: int, left: bool) -> Tensor:
    """``(steps, B, 1)``, True on held steps, where each row's ``lengths`` valid steps are
    one block at the start (``left``: the end) of ``steps`` steps."""
    time = cached_arange(steps, lengths.device).unsqueeze(1)
    held = time < (steps - lengths) if left else time >= lengths
    return held.unsqueeze(2)


def _block_forward(
    lstm: nn.LSTM,
    x: Tensor,
    lengths: Tensor,
    shortest: int,
    longest: int,
    hx: State | None,
    left: bool,
    carry: bool,
) -> tuple[Tensor, State]:
    """Masks whose valid steps form one block at the end (``left``) or start of each row.

    ``lengths`` (``(B,)``) say where each block ends (or starts); ``shortest`` and
    ``longest`` are their extremes (read on the host already).
    Valid from a zero initial state, or with ``hx`` for a unidirectional right-padded run.
    """
    # Time-major inside, the kernel's own layout: the cat that builds the input also
    # transposes, and the kernel need not copy it again (nn.LSTM's batch_first does).
    xt = x.transpose(0, 1) if lstm.batch_first else x
    full_steps = xt.shape[0]
    if longest < full_steps:
        # Steps that no row uses are held steps for every row: they leave c as it is and
        # emit 0, so the kernel need not run them (packing's advantage, kept exactly).
        start = full_steps - longest if left else 0
        xt = xt.narrow(0, start, longest)
    steps = xt.shape[0]
    skip = _held_steps(lengths, steps, left)
    dirs = 2 if lstm.bidirectional else 1
    hidden = lstm.hidden_size
    hold = _checked_hold(lstm, x)
    inp = _held_input(xt, skip)
    # The step whose output is h_n: right padding, forward direction (backward ends at
    # t = 0, where the kernel stops); left padding, backward direction. A row with no valid
    # step picks a masked step, whose output is exactly 0 = its initial h (zero start).
    read = steps - lengths if left else lengths - 1
    if shortest == 0:
        read = read.clamp(max=steps - 1) if left else read.clamp(min=0)
    index = read.view(1, -1, 1)
    if hx is None:
        zeros = x.new_zeros(dirs, xt.shape[1], hidden)
    h_n: list[Tensor] = []  # (1, B, H) each
    c_n: list[Tensor] = []
    out = xt
    for layer in range(lstm.num_layers):
        if layer:
            if lstm.dropout and lstm.training:
                out = F.dropout(out, p=lstm.dropout, training=True)
            inp = torch.cat([out, skip], dim=2)
        params = _layer_params(lstm, layer, hold, range(dirs))
        if hx is None:
            state = (zeros, zeros)
        else:
            # Only a unidirectional right-padded run gets here with hx: one direction.
            h0 = hx[0][layer : layer + 1]
            state = (_kernel_h0(h0, lengths), hx[1][layer : layer + 1])
        out, h_k, c_k = _fused_lstm(inp, state, params, lstm.bias, dirs == 2)
        # (1, B, H) at the read step: gather reads the first H channels (forward half).
        if left:  # forward: the kernel's last step; backward: the first valid step
            h_n.append(h_k if dirs == 1 else h_k[:1])  # (a view would refuse detach_())
            if dirs == 2:
                h_n.append(out[..., hidden:].gather(0, index.expand(1, -1, hidden)))
        else:
            h_fwd = out.gather(0, index.expand(1, -1, hidden))
            if hx is not None:  # a row with no valid step keeps its own h_0
                h_fwd = torch.where((lengths > 0).unsqueeze(1), h_fwd, h0)
            h_n.append(h_fwd)
            if dirs == 2:
                h_n.append(h_k[1:])
        c_n.append(c_k)
    fill = None
    if carry and (dirs == 2 or not left):
        # Masked steps repeat the direction's nearest earlier output in its reading order:
        # after the block that is the output at the read step (0 for an empty row); the
        # other direction has none there and gives zeros.
        fill = out.gather(0, index.expand(1, -1, dirs * hidden))
        if dirs == 2:
            other = torch.zeros_like(fill[..., :hidden])
            halves = [other, fill[..., hidden:]] if left else [fill[..., :hidden], other]
            fill = torch.cat(halves, dim=2)
    if steps < full_steps:
        before, after = (full_steps - steps, 0) if left else (0, full_steps - steps)
        out = F.pad(out, (0, 0, 0, 0, before, after))
        if fill is not None:
            skip = _held_steps(lengths, full_steps, left)
    if fill is not None:
        out = torch.where(skip, fill, out)
    if lstm.batch_first:
        out = out.transpose(0, 1)  # a view, as nn.LSTM returns with batch_first
    if len(h_n) == 1:  # one layer and direction: no copies
        return out, (h_n[0], c_n[0])
    return out, (torch.cat(h_n), torch.cat(c_n))


# --------------------------------------------------------------------------- compaction


def _compacted_forward(
    lstm: nn.LSTM,
    x: Tensor,
    mask: Tensor,
    lengths: Tensor,
    slots: int,
    hx: State | None,
    carry: bool,
) -> tuple[Tensor, State]:
    """Any mask, any initial state: run on compacted valid steps; ``mask`` is ``(B, T)``.

    ``slots`` (steps the kernel runs) must leave every row with a masked step a padding
    slot, whose output (a held step's) is exactly 0, for its masked outputs to read
    (:meth:`Compaction.scatter_back`): ``T``, or one more than the longest row.
    """
    batch, steps = mask.shape
    dirs = 2 if lstm.bidirectional else 1
    hidden = lstm.hidden_size
    comp = Compaction(mask, lengths, slots, lstm.batch_first)
    hold = _checked_hold(lstm, x)
    zeros = x.new_zeros(dirs, batch, hidden)

    buffer = with_padding_row(x.reshape(batch * steps, x.shape[2]))
    index = comp.from_x
    h_n: list[Tensor] = []
    c_n: list[Tensor] = []
    for layer in range(lstm.num_layers):
        if dirs == 2 and hx is None:
            # One bidirectional call: the backward direction reads the trailing padding
            # first, where from h = c = 0 a held step keeps c = 0 and emits h = 0.
            seq = comp.gather(buffer, index, reverse=False)
            params = _layer_params(lstm, layer, hold, range(2))
            out, h_k, c_k = _fused_lstm(seq, (zeros, zeros), params, lstm.bias, True)
            layer_out = out.reshape(slots * batch, 2 * hidden)
            h_n += [comp.final_h(out[..., :hidden], None), h_k[1]]
            c_n.append(c_k)
        else:
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                seq = comp.gather(buffer, index, reverse=d == 1)
                params = _layer_params(lstm, layer, hold, range(d, d + 1))
                if hx is None:
                    h0, state = None, (zeros[d : d + 1], zeros[d : d + 1])
                else:
                    h0 = hx[0][k]
                    state = (_kernel_h0(h0, lengths).unsqueeze(0), hx[1][k : k + 1])
                out, _, c_k = _fused_lstm(seq, state, params, lstm.bias, False)
                # c is held exactly through padding; h is not, so read it at the last valid step.
                h_n.append(comp.final_h(out, h0))
                c_n.append(c_k)
                outs.append(comp.unreverse(out) if d else out.reshape(slots * batch, hidden))
            layer_out = torch.cat(outs, dim=1) if dirs == 2 else outs[0]
        if layer + 1 < lstm.num_layers:
            if lstm.dropout and lstm.training:
                layer_out = F.dropout(layer_out, p=lstm.dropout, training=True)
            buffer, index = with_padding_row(layer_out), comp.from_compact

    half = hidden if dirs == 2 else None
    output = comp.scatter_back(layer_out, carry, half, lstm.batch_first, held_zero=True)
    # c_n of one layer is the kernel's own (no copy); not a view, like nn.LSTM's, so that a
    # caller's detach_() or in-place update works.
    return output, (torch.stack(h_n), c_n[0] if len(c_n) == 1 else torch.cat(c_n))


# --------------------------------------------------------------------------- dispatch


def _plain(lstm: nn.LSTM, x: Tensor, hx: State | None) -> tuple[Tensor, State]:
    result: tuple[Tensor, State] = lstm(x, hx)
    return result


def _nothing_valid(lstm: nn.RNNBase, x: Tensor, hx: State | None) -> tuple[Tensor, State]:
    """Every sequence keeps its initial state; outputs are zeros (also for ``T = 0``).

    Still tied to the graph (with zero gradient), so a training step on an all-padding
    batch can call backward() like it could with nn.LSTM.
    """
    dirs = 2 if lstm.bidirectional else 1
    batch = x.shape[0] if lstm.batch_first else x.shape[1]
    if hx is None:
        zeros = x.new_zeros(lstm.num_layers * dirs, batch, lstm.hidden_size)
        hx = (zeros, zeros)
    anchor = torch.stack([p.sum() for p in lstm.parameters()] + [x.sum()]).sum()
    zero = torch.where(torch.zeros((), dtype=torch.bool, device=x.device), anchor, 0.0)
    output = x.new_zeros(x.shape[:2] + (dirs * lstm.hidden_size,)) + zero
    return output, (hx[0] + zero, hx[1] + zero)


def _masked_forward(
    lstm: nn.LSTM, x: Tensor, mask: Tensor, hx: State | None, carry: bool
) -> tuple[Tensor, State]:
    """Core of :func:`masked_lstm` on validated input; ``mask`` is ``(B, T)``."""
    if mask.numel() == 0:
        return _nothing_valid(lstm, x, hx)
    return _run_classified(lstm, x, mask, classify_mask(mask), hx, carry)


def _run_classified(
    lstm: nn.LSTM,
    x: Tensor,
    mask: Tensor | None,
    kind: MaskKind,
    hx: State | None,
    carry: bool,
) -> tuple[Tensor, State]:
    """The path for a classified ``(B, T)`` mask (None: the right padding of the lengths)."""
    steps = x.shape[1] if lstm.batch_first else x.shape[0]
    lengths, shortest, longest, right, left = kind
    if shortest == steps:
        return _plain(lstm, x, hx)  # nothing is masked: the plain kernel is already exact
    if longest == 0:
        return _nothing_valid(lstm, x, hx)
    if right and (hx is None or not lstm.bidirectional):
        return _block_forward(lstm, x, lengths, shortest, longest, hx, False, carry)
    if left and hx is None:
        return _block_forward(lstm, x, lengths, shortest, longest, hx, True, carry)
    if mask is None:
        mask = right_padding(lengths, steps)
    return _compacted_forward(lstm, x, mask, lengths, min(longest + 1, steps), hx, carry)


def masked_lstm(
    lstm: nn.LSTM,
    x: Tensor,
    mask: Tensor | None,
    hx: State | None = None,
    masked_output: MaskedOutput = "zero",
    *,
    lengths: Tensor | None = None,
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
    lengths
        Instead of ``mask`` (pass ``mask=None``): ``(B,)`` valid lengths, i.e. right
        padding. Slightly cheaper than the equivalent mask, which must be classified.

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
    lstm = check_lstm(lstm)
    _check_masked_output(masked_output)
    carry = masked_output == "carry"
    if lengths is not None:
        if mask is not None:
            raise InputError("mask, lengths: expected at most one of them, got both")
        return _lengths_forward(lstm, x, lengths, hx, carry)
    if mask is None:
        raise InputError("mask: expected a (B, T) mask or lengths=, got neither")
    x, bool_mask, state = check_lstm_inputs(lstm, x, mask, hx)
    if not lstm.batch_first:
        bool_mask = bool_mask.t()
    if exporting():
        return _export_forward(lstm, x, bool_mask, state, carry)
    return _masked_forward(lstm, x, bool_mask, state, carry)


def _export_forward(
    lstm: nn.LSTM, x: Tensor, mask: Tensor, hx: State | None, carry: bool
) -> tuple[Tensor, State]:
    """Any mask, while exporting or tracing: compaction into ``T`` slots, no host read.

    The fast paths of :func:`_masked_forward` are chosen by reading the mask, which a
    recorded graph would freeze to the example's mask; this path is exact for every mask
    (the slots past a row's valid steps are held steps), at the cost of running all ``T``.
    """
    lengths = mask.long().sum(dim=1)  # (ONNX cannot sum bools)
    return _compacted_forward(lstm, x, mask, lengths, mask.shape[1], hx, carry)


def _lengths_forward(
    lstm: nn.LSTM, x: Tensor, lengths: object, hx: object, carry: bool
) -> tuple[Tensor, State]:
    """Right padding given as lengths: their range read on the host, then no classification."""
    batch_first = lstm.batch_first
    layout = "(B, T, F)" if batch_first else "(T, B, F)"
    x = require_tensor(x, "x")
    require_ndim(x, "x", (3,), layout)
    batch, steps = (x.shape[0], x.shape[1]) if batch_first else (x.shape[1], x.shape[0])
    lengths = lengths_tensor(lengths, batch, x.device)
    x, state = check_lstm_x_hx(lstm, x, hx)
    if exporting():  # lengths outside [0, T] are not checked: a graph cannot raise
        return _export_forward(lstm, x, right_padding(lengths, steps), state, carry)
    if batch == 0:
        return _nothing_valid(lstm, x, state)
    shortest, longest = lengths_range(lengths, steps)
    if steps == 0:
        return _nothing_valid(lstm, x, state)
    # Right padding by construction: no mask to classify (nor to build, unless compacted).
    kind = MaskKind(lengths, shortest, longest, True, False)
    return _run_classified(lstm, x, None, kind, state, carry)


class MaskedLSTM(MaskedRecurrent):
    """An ``nn.LSTM`` that skips masked time steps exactly, for any mask.

    Masked steps are **skipped**: the state is carried across them unchanged, in both
    directions, whether they are right padding, left padding or gaps in the middle. The
    result equals running ``nn.LSTM`` on each sequence's valid steps alone (float32:
    to rounding, about 1e-6 relative to the outputs' scale), including ``h_n``/``c_n``
    and gradients; masked inputs get exactly zero gradient and NaN/inf in them never reach
    any output.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        As for ``nn.LSTM`` (note ``batch_first`` defaults to True here). Dropout is applied
        to the outputs of each layer but the last, in training mode, like ``nn.LSTM``.
    masked_output
        What the output holds at a masked step. ``"zero"``: zeros. ``"carry"``: the
        previous valid output *of that direction* in its own processing order: the
        forward half repeats the output of the last valid step before ``t``; the backward
        half (which reads time in reverse) repeats its output at the next valid step after
        ``t``. Where there is no such step, zeros.

        Porting from Keras: ``"carry"`` matches a single Keras ``LSTM`` with masking on its
        generic path (its default ``zero_output_for_mask=False``), or a forward layer plus
        a separate ``go_backwards=True`` layer (whose output sequence Keras returns
        time-reversed: flip it to line up). Keras' ``Bidirectional`` wrapper with
        ``return_sequences=True`` sets ``zero_output_for_mask=True`` on both halves, so its
        masked steps are zeros: port it with ``"zero"``. So is a single Keras ``LSTM`` that
        takes the TensorFlow backend's cuDNN path (a GPU and a strictly right-padded
        mask): the cuDNN kernel writes zeros at masked outputs and Keras patches only the
        last output. (Read in Keras' source, not run here:
        ``keras/src/layers/rnn/bidirectional.py``, ``force_zero_output_for_mask``, and
        ``keras/src/backend/tensorflow/rnn.py``, ``_cudnn_lstm``.)

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

    A NaN at a *valid* step makes that sequence's outputs NaN from there on, as in
    ``nn.LSTM``, and its masked outputs may be NaN too (they come from held steps, which
    emit ``0 * tanh(c)``); never another sequence's.

    Gradients: a masked output of ``"zero"`` mode is a held step's output, exactly 0, and
    a gradient sent to it flows into the kernel. A function with an infinite derivative at
    0 there (``sqrt`` of a norm, even behind ``torch.where``) then makes the weights'
    gradients NaN; plain ``nn.LSTM``, whose padded outputs are not 0, does not hit this.
    Select the valid steps before such a function (:func:`~lstm_zero_lib.masked_loss`).

    Exact holds need recurrent weights with ``|W_hh|`` row sums plus ``|b|`` below
    5e29 (5000 where the kernel computes in float16); anything else raises
    :class:`~lstm_zero_lib.InputError`. The check runs once per state of the weights
    (each weight's storage and version counter), in float16 on every call. An update
    that leaves the version counter alone is not seen: a write through ``weight.data``, a
    fused optimizer step (``fused=True``).

    The weights are an ``nn.LSTM``'s (:attr:`lstm`); :meth:`from_lstm` wraps a trained one
    (or pass it as ``lstm=``; the size arguments must then agree with it).
    The computation runs the fused LSTM kernel once per layer (both directions in one
    call where the initial state is zero). Right and left padding run on ``x`` as it is;
    masks with gaps are compacted first, and then the cost tracks the longest *valid*
    length rather than ``T``. An empty batch ``(B, 0, F)`` gives an empty output and the
    initial state.

    **Exporting.** While ``torch.export``, an ONNX exporter or ``torch.jit.trace`` records
    the module, it takes one path, exact for every mask, that reads nothing on the host:
    the recorded graph is right for masks and batch sizes it was not recorded with, and
    for other lengths where the exporter keeps the time axis dynamic.
    ``torch.onnx.export(model, (x, mask), f, dynamic_axes=..., dynamo=False)`` (the
    TorchScript-based exporter, deprecated in torch 2.13) maps the kernel to ONNX's
    ``LSTM`` op with a dynamic batch and length. The default, dynamo-based, exporter
    declares a dynamic time axis, but its graph runs only at the example's length (for a
    plain ``nn.LSTM`` it runs at any length). ``torch.export`` keeps the batch dynamic and
    fixes the length, as it does for ``nn.LSTM``. The check that the recurrent weights
    leave the hold gates saturated runs on eager calls and while ``torch.jit.trace`` or
    the TorchScript-based exporter records the module, which then refuses; ``torch.export``
    skips it, so a model beyond the margin exports to an inexact graph. An exported graph
    does not validate values: export with a bool mask (the graph then refuses other
    types; a float-mask graph counts any nonzero value as valid), and a ``lengths`` graph
    clamps lengths to ``[0, T]``.

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

    _name = "lstm"
    _functional = staticmethod(masked_lstm)
    lstm: nn.LSTM

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
        lstm: nn.LSTM | None = None,
    ) -> None:
        config = module_config(
            input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        )
        super().__init__(lstm, lambda: nn.LSTM(**config), check_lstm, config, masked_output)

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, *, masked_output: MaskedOutput = "zero") -> MaskedLSTM:
        """Wrap an existing (e.g. trained) ``nn.LSTM``; the module is shared, not copied.

        Examples
        --------
        >>> lstm = torch.nn.LSTM(3, 4, batch_first=True)
        >>> MaskedLSTM.from_lstm(lstm).lstm is lstm
        True
        """
        lstm = check_lstm(lstm)
        return cls(**existing_config(lstm), masked_output=masked_output, lstm=lstm)
