"""The slow, obviously-right oracle, and how far a plain padded run is from it.

Both work for ``nn.LSTM`` (state ``(h, c)``), ``nn.GRU`` and ``nn.RNN`` (state ``h``).
"""

from __future__ import annotations

from typing import NamedTuple, TypeAlias

import torch
from torch import Tensor, nn

from ._checks import (
    BATCH_TIME,
    State,
    as_bool_mask,
    check_h0,
    check_lstm,
    check_lstm_inputs,
    check_x,
)
from .errors import InputError

__all__ = ["reference_forward", "padding_error", "PaddingError"]

#: The recurrent layers the oracle runs, and their states.
Recurrent: TypeAlias = nn.LSTM | nn.GRU | nn.RNN
AnyState: TypeAlias = State | Tensor


def _validate(
    module: object, x: object, mask: object, hx: object
) -> tuple[Recurrent, Tensor, Tensor, tuple[Tensor, ...] | None]:
    """Typed inputs; the state comes back as a tuple of parts (``(h, c)`` or ``(h,)``)."""
    if isinstance(module, (nn.GRU, nn.RNN)):
        x = check_x(module, x)
        layout = f"{BATCH_TIME[module.batch_first]} like x"
        keep = as_bool_mask(mask, "mask", x.shape[:2], like=x, layout=layout)
        h0 = check_h0(module, x, hx)
        return module, x, keep, None if h0 is None else (h0,)
    if not isinstance(module, nn.LSTM):
        raise InputError(
            f"lstm: expected a torch.nn.LSTM, nn.GRU or nn.RNN, got {type(module).__name__}"
        )
    lstm = check_lstm(module)
    x, keep, state = check_lstm_inputs(lstm, x, mask, hx)
    return lstm, x, keep, state


def _parts(result: tuple[Tensor, AnyState]) -> tuple[Tensor, tuple[Tensor, ...]]:
    out, state = result
    return out, state if isinstance(state, tuple) else (state,)


def reference_forward(
    lstm: Recurrent, x: Tensor, mask: Tensor, hx: AnyState | None = None
) -> tuple[Tensor, AnyState]:
    """Run ``lstm`` on each sequence's valid steps alone: the definition of exact.

    A Python loop over the batch; slow, and meant to be. Outputs at masked steps are zero,
    the final state is the state after the last valid step (the initial state for a
    sequence with no valid step). Use the module in ``eval()`` mode if it has dropout.

    Parameters
    ----------
    lstm
        A ``torch.nn.LSTM``, ``torch.nn.GRU`` or ``torch.nn.RNN``; ``x`` and ``mask``
        follow its ``batch_first``.
    x, mask, hx
        As for :func:`~lstm_zero_lib.masked_lstm` (``hx`` is ``h_0`` alone for a GRU or
        an RNN).

    Returns
    -------
    tuple
        ``(output, (h_n, c_n))`` for an LSTM, ``(output, h_n)`` for a GRU or an RNN: the
        module's own shapes.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> lstm = torch.nn.LSTM(2, 3, batch_first=True)
    >>> x = torch.randn(2, 4, 2)
    >>> mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    >>> out, (h_n, c_n) = reference_forward(lstm, x, mask)
    >>> out[0, 1].abs().max().item(), h_n[0, 1].abs().max().item()
    (0.0, 0.0)
    >>> gru_out, gru_h = reference_forward(torch.nn.GRU(2, 3, batch_first=True), x, mask)
    >>> gru_h.shape
    torch.Size([1, 2, 3])
    """
    module, x, keep, state = _validate(lstm, x, mask, hx)
    if not module.batch_first:
        x, keep = x.transpose(0, 1), keep.t()
    batch, steps, _ = x.shape
    dirs = 2 if module.bidirectional else 1
    is_lstm = isinstance(module, nn.LSTM)
    if state is None:
        zeros = x.new_zeros(module.num_layers * dirs, batch, module.hidden_size)
        state = (zeros, zeros) if is_lstm else (zeros,)
    outputs = []
    final: list[list[Tensor]] = [[] for _ in state]
    for b in range(batch):
        row_state = tuple(part[:, b : b + 1].contiguous() for part in state)
        row = x.new_zeros(steps, dirs * module.hidden_size)
        if keep[b].any():
            seq = x[b, keep[b]].unsqueeze(0 if module.batch_first else 1)
            out, row_state = _parts(module(seq, row_state if is_lstm else row_state[0]))
            row = row.index_put((keep[b].nonzero().squeeze(1),), out.reshape(-1, row.shape[1]))
        outputs.append(row)
        for parts, part in zip(final, row_state, strict=True):
            parts.append(part)
    output = torch.stack(outputs)
    if not module.batch_first:
        output = output.transpose(0, 1)
    finals = tuple(torch.cat(parts, dim=1) for parts in final)
    if is_lstm:
        return output, (finals[0], finals[1])
    return output, finals[0]


class PaddingError(NamedTuple):
    """Per-sequence max abs deviation of a plain padded run from the oracle; each ``(B,)``."""

    output_valid: Tensor
    """Outputs at valid steps (0 for a sequence with no valid step)."""
    output_padded: Tensor
    """Outputs at masked steps, against the zeros a masked LSTM gives (0 if none)."""
    h_n: Tensor
    """Final hidden state, all layers and directions."""
    c_n: Tensor
    """Final cell state, all layers and directions (0 for a GRU or an RNN, which have none)."""


def padding_error(lstm: Recurrent, x: Tensor, mask: Tensor) -> PaddingError:
    """Measure what running ``lstm`` plainly over a padded batch gets wrong.

    The plain run is ``lstm(x)`` on ``x`` exactly as given (whatever the padding holds);
    the truth is :func:`reference_forward`. Gradients are not tracked. ``lstm`` may be an
    ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> lstm = torch.nn.LSTM(2, 3, batch_first=True)
    >>> x = torch.randn(2, 5, 2)
    >>> err = padding_error(lstm, x, torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]))
    >>> err.output_valid.max().item()  # unidirectional, right padding: causal, so exact
    0.0
    >>> bool(err.h_n[1] > 1e-3), err.h_n[0].item()  # the padded row's h_n has drifted
    (True, 0.0)
    >>> gru = torch.nn.GRU(2, 3, batch_first=True)
    >>> bool(padding_error(gru, x, torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])).h_n[1] > 0)
    True
    """
    module, x, keep, _ = _validate(lstm, x, mask, None)
    with torch.no_grad():
        plain, plain_state = _parts(module(x))
        ref, ref_state = _parts(reference_forward(module, x, keep))
    if not module.batch_first:
        plain, ref, keep = plain.transpose(0, 1), ref.transpose(0, 1), keep.t()
    diff = (plain - ref).abs().amax(dim=2)  # (B, T)
    zero = torch.zeros((), dtype=diff.dtype, device=diff.device)

    def row_max(values: Tensor, where: Tensor) -> Tensor:
        return torch.where(where, values, zero).amax(dim=1) if values.shape[1] else values.sum(1)

    pairs = zip(plain_state, ref_state, strict=True)
    state_error = [(p - r).abs().amax(dim=(0, 2)) for p, r in pairs]
    return PaddingError(
        output_valid=row_max(diff, keep),
        output_padded=row_max(diff, ~keep),
        h_n=state_error[0],
        c_n=state_error[1] if len(state_error) == 2 else torch.zeros_like(state_error[0]),
    )
