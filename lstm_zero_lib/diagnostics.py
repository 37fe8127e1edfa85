"""The slow, obviously-right oracle, and how far a plain padded run is from it."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ._checks import State, check_lstm, check_lstm_inputs

__all__ = ["reference_forward", "padding_error", "PaddingError"]


def reference_forward(
    lstm: nn.LSTM, x: Tensor, mask: Tensor, hx: State | None = None
) -> tuple[Tensor, State]:
    """Run ``lstm`` on each sequence's valid steps alone: the definition of exact.

    A Python loop over the batch; slow, and meant to be. Outputs at masked steps are zero,
    ``h_n``/``c_n`` are the state after the last valid step (the initial state for a
    sequence with no valid step). Use the LSTM in ``eval()`` mode if it has dropout.

    Parameters
    ----------
    lstm
        A ``torch.nn.LSTM``; ``x`` and ``mask`` follow its ``batch_first``.
    x, mask, hx
        As for :func:`~lstm_zero_lib.masked_lstm`.

    Returns
    -------
    tuple
        ``(output, (h_n, c_n))`` with ``nn.LSTM``'s shapes.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> lstm = torch.nn.LSTM(2, 3, batch_first=True)
    >>> x = torch.randn(2, 4, 2)
    >>> mask = torch.tensor([[True, False, True, True], [False, False, False, False]])
    >>> out, (h_n, c_n) = reference_forward(lstm, x, mask)
    >>> out[0, 1].abs().max().item(), h_n[0, 1].abs().max().item()
    (0.0, 0.0)
    """
    lstm = check_lstm(lstm)
    x, keep, hx = check_lstm_inputs(lstm, x, mask, hx)
    if not lstm.batch_first:
        x, keep = x.transpose(0, 1), keep.t()
    batch, steps, _ = x.shape
    dirs = 2 if lstm.bidirectional else 1
    if hx is None:
        zeros = x.new_zeros(lstm.num_layers * dirs, batch, lstm.hidden_size)
        hx = (zeros, zeros)
    outputs, h_rows, c_rows = [], [], []
    for b in range(batch):
        state = (hx[0][:, b : b + 1].contiguous(), hx[1][:, b : b + 1].contiguous())
        row = x.new_zeros(steps, dirs * lstm.hidden_size)
        if keep[b].any():
            seq = x[b, keep[b]].unsqueeze(0 if lstm.batch_first else 1)
            out, state = lstm(seq, state)
            row = row.index_put((keep[b].nonzero().squeeze(1),), out.reshape(-1, row.shape[1]))
        outputs.append(row)
        h_rows.append(state[0])
        c_rows.append(state[1])
    output = torch.stack(outputs)
    if not lstm.batch_first:
        output = output.transpose(0, 1)
    return output, (torch.cat(h_rows, dim=1), torch.cat(c_rows, dim=1))


class PaddingError(NamedTuple):
    """Per-sequence max abs deviation of a plain padded run from the oracle; each ``(B,)``."""

    output_valid: Tensor
    """Outputs at valid steps (0 for a sequence with no valid step)."""
    output_padded: Tensor
    """Outputs at masked steps, against the zeros a masked LSTM gives (0 if none)."""
    h_n: Tensor
    """Final hidden state, all layers and directions."""
    c_n: Tensor
    """Final cell state, all layers and directions."""


def padding_error(lstm: nn.LSTM, x: Tensor, mask: Tensor) -> PaddingError:
    """Measure what running ``lstm`` plainly over a padded batch gets wrong.

    The plain run is ``lstm(x)`` on ``x`` exactly as given (whatever the padding holds);
    the truth is :func:`reference_forward`. Gradients are not tracked.

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
    """
    lstm = check_lstm(lstm)
    x, keep, _ = check_lstm_inputs(lstm, x, mask, None)
    with torch.no_grad():
        plain, (h_plain, c_plain) = lstm(x)
        ref, (h_ref, c_ref) = reference_forward(lstm, x, keep)
    if not lstm.batch_first:
        plain, ref, keep = plain.transpose(0, 1), ref.transpose(0, 1), keep.t()
    diff = (plain - ref).abs().amax(dim=2)  # (B, T)
    zero = torch.zeros((), dtype=diff.dtype, device=diff.device)

    def row_max(values: Tensor, where: Tensor) -> Tensor:
        return torch.where(where, values, zero).amax(dim=1) if values.shape[1] else values.sum(1)

    return PaddingError(
        output_valid=row_max(diff, keep),
        output_padded=row_max(diff, ~keep),
        h_n=(h_plain - h_ref).abs().amax(dim=(0, 2)),
        c_n=(c_plain - c_ref).abs().amax(dim=(0, 2)),
    )
