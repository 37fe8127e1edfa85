"""Conversions between sequence lengths and boolean masks (True = valid step)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ._checks import BATCH_TIME, as_bool_mask, as_lengths, require_ndim, require_tensor
from ._mask_kind import right_padding
from .errors import InputError

__all__ = ["lengths_to_mask", "mask_to_lengths", "is_right_padded"]


def lengths_to_mask(
    lengths: Tensor | Sequence[int],
    max_len: int | None = None,
    *,
    batch_first: bool = True,
) -> Tensor:
    """Build the right-padded mask of a batch from its sequence lengths.

    Parameters
    ----------
    lengths
        ``(B,)`` integer lengths, each in ``0..max_len``.
    max_len
        Number of time steps ``T``; defaults to ``max(lengths)`` (0 for an empty batch).
    batch_first
        Return ``(B, T)`` if True, ``(T, B)`` otherwise.

    Returns
    -------
    Tensor
        Bool mask, True at the first ``lengths[b]`` steps of row ``b``, on ``lengths``' device.

    Examples
    --------
    >>> lengths_to_mask([3, 1, 0], max_len=4).int()
    tensor([[1, 1, 1, 0],
            [1, 0, 0, 0],
            [0, 0, 0, 0]], dtype=torch.int32)
    """
    lengths = as_lengths(lengths)
    longest = int(lengths.max()) if lengths.numel() else 0
    if max_len is None:
        max_len = longest
    elif not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 0:
        raise InputError(f"max_len: expected a non-negative int, got {max_len!r}")
    elif longest > max_len:
        raise InputError(f"lengths: expected every length <= max_len={max_len}, got {longest}")
    mask = right_padding(lengths, max_len)
    return mask if batch_first else mask.t()


def mask_to_lengths(mask: Tensor, *, batch_first: bool = True) -> Tensor:
    """Count the valid steps of each sequence.

    Works for any mask, not only right-padded ones: the result is the number of True
    entries per row, which is the length of the sequence after masked steps are skipped.

    Parameters
    ----------
    mask
        ``(B, T)`` (or ``(T, B)`` if ``batch_first=False``) bool or 0/1 mask.

    Returns
    -------
    Tensor
        ``(B,)`` long tensor.

    Examples
    --------
    >>> mask_to_lengths(torch.tensor([[True, False, True], [False, False, False]]))
    tensor([2, 0])
    """
    mask = as_bool_mask(mask, "mask", None)
    require_ndim(mask, "mask", (2,), BATCH_TIME[batch_first])
    return mask.sum(dim=1 if batch_first else 0)


def is_right_padded(mask: Tensor, *, batch_first: bool = True) -> bool:
    """Return True if every row is valid steps followed only by padding.

    That is the only layout ``pack_padded_sequence`` and cuDNN-backed Keras masking handle;
    left padding or gaps make this False.

    Examples
    --------
    >>> is_right_padded(torch.tensor([[1, 1, 0], [1, 0, 0]]))
    True
    >>> is_right_padded(torch.tensor([[0, 1, 1]]))
    False
    """
    mask = as_bool_mask(require_tensor(mask, "mask"), "mask", None)
    require_ndim(mask, "mask", (2,), BATCH_TIME[batch_first])
    if not batch_first:
        mask = mask.t()
    expected = lengths_to_mask(mask.sum(dim=1), max_len=mask.shape[1])
    return bool(torch.equal(mask, expected))
