"""Reductions over the valid steps of a sequence (pooling heads, attention, losses).

Each pooling function takes ``values`` laid out ``(B, T, ...)`` (``(T, B, ...)`` with
``batch_first=False``) and a ``(B, T)`` (``(T, B)``) mask, True = valid. Masked slots never
contribute, even if they hold NaN or inf, and rows with no valid step give zeros, never NaN.
:func:`masked_loss` selects the valid steps of a prediction and its target before the loss
is computed, so the same holds for the loss and its gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._checks import BATCH_TIME, as_bool_mask, require_same_device, require_tensor, shape_str
from .errors import MaskError

__all__ = ["last_valid", "masked_mean", "masked_max", "masked_softmax", "masked_loss"]


def _batch_first_pair(values: Tensor, mask: Tensor, batch_first: bool) -> tuple[Tensor, Tensor]:
    """Validate ``values``/``mask`` and return both batch-first, the mask broadcastable."""
    values = require_tensor(values, "values")
    if values.ndim < 2:
        raise MaskError(
            f"values: expected at least 2 dims {BATCH_TIME[batch_first]}[, ...], "
            f"got {shape_str(values.shape)}"
        )
    keep = as_bool_mask(
        mask, "mask", values.shape[:2], like=values, layout=f"{BATCH_TIME[batch_first]} like values"
    )
    if not batch_first:
        values, keep = values.transpose(0, 1), keep.t()
    return values, keep.reshape(keep.shape + (1,) * (values.ndim - 2))


def last_valid(output: Tensor, mask: Tensor, *, batch_first: bool = True) -> Tensor:
    """Pick each sequence's output at its last valid step.

    The usual summary of a unidirectional LSTM's padded run; rows with no valid step give
    zeros. (For a bidirectional LSTM the backward half of this is the backward direction's
    output at that step, which has seen only one step; prefer ``h_n`` there.)

    Parameters
    ----------
    output
        ``(B, T, ...)`` (``(T, B, ...)`` if ``batch_first=False``).
    mask
        ``(B, T)`` (``(T, B)``) valid-step mask; any pattern, not only right padding.

    Returns
    -------
    Tensor
        ``(B, ...)``.

    Examples
    --------
    >>> out = torch.arange(6.0).reshape(2, 3, 1)
    >>> last_valid(out, torch.tensor([[1, 1, 0], [0, 0, 0]])).flatten()
    tensor([1., 0.])
    """
    values, keep = _batch_first_pair(output, mask, batch_first)
    step_mask = keep.reshape(keep.shape[:2])
    steps = torch.arange(values.shape[1], device=values.device)
    last = torch.where(step_mask, steps, -1).amax(dim=1) if values.shape[1] else None
    if last is None:
        return values.new_zeros((values.shape[0],) + values.shape[2:])
    index = last.clamp(min=0).reshape((-1, 1) + (1,) * (values.ndim - 2))
    picked = values.gather(1, index.expand((-1, 1) + values.shape[2:])).squeeze(1)
    found = (last >= 0).reshape((-1,) + (1,) * (values.ndim - 2))
    return torch.where(found, picked, torch.zeros((), dtype=values.dtype, device=values.device))


def masked_mean(values: Tensor, mask: Tensor, *, batch_first: bool = True) -> Tensor:
    """Mean over valid steps; zeros for rows with no valid step.

    Examples
    --------
    >>> v = torch.tensor([[[1.0], [3.0], [float("nan")]]])
    >>> masked_mean(v, torch.tensor([[True, True, False]]))
    tensor([[2.]])
    """
    values, keep = _batch_first_pair(values, mask, batch_first)
    zero = torch.zeros((), dtype=values.dtype, device=values.device)
    total = torch.where(keep, values, zero).sum(dim=1)
    count = keep.sum(dim=1).clamp(min=1).to(values.dtype)
    return total / count


def masked_max(values: Tensor, mask: Tensor, *, batch_first: bool = True) -> Tensor:
    """Max over valid steps; zeros for rows with no valid step.

    Examples
    --------
    >>> v = torch.tensor([[[1.0], [-3.0], [9.0]]])
    >>> masked_max(v, torch.tensor([[True, True, False]]))
    tensor([[1.]])
    """
    values, keep = _batch_first_pair(values, mask, batch_first)
    if not values.is_floating_point():
        raise MaskError(f"values: expected a floating-point tensor, got dtype {values.dtype}")
    lowest = torch.tensor(float("-inf"), dtype=values.dtype, device=values.device)
    best = torch.where(keep, values, lowest).amax(dim=1)
    any_valid = keep.any(dim=1)
    return torch.where(any_valid, best, torch.zeros_like(best))


def masked_softmax(scores: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """Softmax over the valid entries only (attention over valid steps).

    Masked entries get exactly zero weight whatever their score (NaN included); a row with
    no valid entry gets all zeros instead of the NaN a plain ``-inf`` fill gives.

    Parameters
    ----------
    scores
        Attention scores, e.g. ``(B, T)``.
    mask
        Same shape as ``scores``; True = may be attended to.
    dim
        The dimension to normalise over.

    Examples
    --------
    >>> s = torch.tensor([[0.0, 0.0, 5.0], [1.0, 2.0, 3.0]])
    >>> masked_softmax(s, torch.tensor([[True, True, False], [False, False, False]]))
    tensor([[0.5000, 0.5000, 0.0000],
            [0.0000, 0.0000, 0.0000]])
    """
    scores = require_tensor(scores, "scores")
    keep = as_bool_mask(mask, "mask", scores.shape, like=scores, layout="(like scores)")
    if not scores.is_floating_point():
        raise MaskError(f"scores: expected a floating-point tensor, got dtype {scores.dtype}")
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    filled = torch.where(keep, scores, neg_inf)
    # Shift by the row max for stability; detached because softmax is shift-invariant,
    # and a row of -inf (all masked) gets shift 0 instead of NaN.
    shift = filled.amax(dim=dim, keepdim=True).detach()
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    zero = torch.zeros((), dtype=scores.dtype, device=scores.device)
    weights = torch.where(keep, torch.exp(filled - shift), zero)
    total = weights.sum(dim=dim, keepdim=True)
    return weights / torch.where(total > 0, total, torch.ones_like(total))


def masked_loss(
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    input: Tensor,  # noqa: A002 - the name torch's losses use
    target: Tensor,
    mask: Tensor,
    *,
    batch_first: bool = True,
) -> Tensor:
    """Apply ``loss_fn`` to the valid steps only, selecting them *before* the loss.

    Computing a per-step loss and then dropping (or multiplying away) the padded steps
    protects the value but not the gradient: a NaN or inf prediction at a padded step gives
    a NaN gradient through the discarded entries (the chain rule multiplies their zero
    weight by NaN). Here ``input[mask]`` and ``target[mask]`` are gathered first, so masked
    steps reach neither the loss nor its gradient; their gradient is exactly zero.

    Parameters
    ----------
    loss_fn
        ``loss_fn(input, target)`` on the selected steps, e.g.
        ``torch.nn.functional.cross_entropy`` or an ``nn.MSELoss()``. Its own reduction
        applies: the default ``"mean"`` averages over valid steps (so long sequences weigh
        more than short ones).
    input
        Predictions ``(B, T, ...)`` (``(T, B, ...)`` if ``batch_first=False``), e.g.
        ``(B, T, C)`` logits or ``(B, T)`` regression outputs.
    target
        ``(B, T, ...)`` (``(T, B, ...)``) with the same first two dimensions as ``input``,
        e.g. ``(B, T)`` class indices for ``(B, T, C)`` logits.
    mask
        ``(B, T)`` (``(T, B)``) valid-step mask, True = valid; any pattern.
    batch_first
        Layout of ``input``, ``target`` and ``mask``.

    Returns
    -------
    Tensor
        What ``loss_fn`` returns on the ``N`` valid steps (a scalar for reductions; with
        ``reduction="none"`` one entry per valid step, in the row-major order of the
        layout). A batch with no valid step gives zeros of that shape, still attached to
        ``input``'s graph (so ``backward()`` runs and gives a zero gradient), not the NaN of
        a mean over nothing.

    Raises
    ------
    MaskError
        If ``input`` or ``target`` has fewer than 2 dimensions, their first two dimensions
        differ, or ``mask`` is not shaped like those two dimensions (or not 0/1).

    Examples
    --------
    >>> import torch.nn.functional as F
    >>> pred = torch.tensor([[1.0, 2.0, float("nan")]], requires_grad=True)
    >>> target = torch.tensor([[0.0, 0.0, 0.0]])
    >>> loss = masked_loss(F.mse_loss, pred, target, torch.tensor([[True, True, False]]))
    >>> loss.backward()
    >>> loss.item(), pred.grad.tolist()
    (2.5, [[1.0, 2.0, 0.0]])
    """
    input = require_tensor(input, "input")  # noqa: A001
    target = require_tensor(target, "target")
    layout = BATCH_TIME[batch_first]
    if input.ndim < 2:
        raise MaskError(
            f"input: expected at least 2 dims {layout}[, ...], got {shape_str(input.shape)}"
        )
    if target.ndim < 2 or target.shape[:2] != input.shape[:2]:
        raise MaskError(
            f"target: expected shape {shape_str(input.shape[:2])}[, ...] {layout} like input, "
            f"got {shape_str(target.shape)}"
        )
    require_same_device(target, "target", input, "input")
    keep = as_bool_mask(mask, "mask", input.shape[:2], like=input, layout=f"{layout} like input")
    # Boolean indexing is a gather: its backward scatters into zeros, so the gradient at a
    # masked step is exactly 0 whatever the value there (where * 0 would give NaN * 0).
    chosen_input, chosen_target = input[keep], target[keep]
    loss = loss_fn(chosen_input, chosen_target)
    if chosen_input.shape[0] == 0 and loss.numel() > 0:
        # A mean over no step is 0 / 0; give an exact zero that backward() still reaches.
        return torch.zeros_like(loss) + chosen_input.sum().to(loss.dtype)
    return loss
