"""The three zeroings of the question: time steps, features, invalid values.

All three use :func:`torch.where`, never multiplication by the mask: ``nan * 0`` is NaN,
so multiplying leaves NaN and inf in place, while ``torch.where`` replaces them and sends
exactly zero gradient to the replaced entries.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import as_bool_mask, as_feature_mask, require_ndim, require_tensor, shape_str
from .errors import InputError

__all__ = ["zero_timesteps", "zero_features", "null_invalid"]


def zero_timesteps(x: Tensor, mask: Tensor) -> Tensor:
    """Zero whole time steps (padding, attention-style masks).

    This cleans the *values* in padded slots. It does not stop an LSTM from updating its
    state on those steps: use :class:`~lstm_zero_lib.MaskedLSTM` for that.

    Parameters
    ----------
    x
        ``(B, T, ...)`` (or ``(T, B, ...)``) tensor.
    mask
        Bool or 0/1 mask of shape ``x.shape[:2]``; True = keep.

    Examples
    --------
    >>> x = torch.tensor([[[1.0], [float("nan")]]])
    >>> zero_timesteps(x, torch.tensor([[True, False]]))
    tensor([[[1.],
             [0.]]])
    """
    x = require_tensor(x, "x")
    if x.ndim < 2:
        raise InputError(f"x: expected at least 2 dims (B, T, ...), got {shape_str(x.shape)}")
    keep = as_bool_mask(mask, "mask", x.shape[:2], like=x, layout="(x's first two dims)")
    keep = keep.reshape(keep.shape + (1,) * (x.ndim - 2))
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))


def zero_features(x: Tensor, feature_mask: Tensor, *, batch_first: bool = True) -> Tensor:
    """Zero chosen features, optionally only at chosen time steps (feature ablation).

    Parameters
    ----------
    x
        ``(B, T, F)`` tensor (``(T, B, F)`` if ``batch_first=False``).
    feature_mask
        True = keep. ``(F,)``: the same features everywhere; ``(T, F)``: per time step,
        shared by the batch; ``x.shape``: per element.
    batch_first
        Layout of ``x``; decides how a ``(T, F)`` mask lines up with it.

    Examples
    --------
    >>> x = torch.ones(1, 2, 3)
    >>> zero_features(x, torch.tensor([True, False, True]))
    tensor([[[1., 0., 1.],
             [1., 0., 1.]]])
    """
    x = require_tensor(x, "x")
    require_ndim(x, "x", (3,), "(B, T, F)" if batch_first else "(T, B, F)")
    keep = as_feature_mask(feature_mask, "feature_mask", x, batch_first=batch_first)
    return torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))


def null_invalid(x: Tensor, valid_mask: Tensor, fill: float = 0.0) -> Tensor:
    """Replace invalid readings (mask False, or NaN/inf in ``x``) by ``fill``.

    Parameters
    ----------
    x
        Tensor of readings, e.g. ``(B, T, F)`` sensor values.
    valid_mask
        Bool or 0/1 mask of ``x``'s shape; True = valid reading.
    fill
        The value written into invalid slots.

    Returns
    -------
    Tensor
        ``x`` with invalid entries replaced; always finite if ``fill`` is.

    Examples
    --------
    >>> x = torch.tensor([1.0, float("nan"), 3.0, float("inf")])
    >>> null_invalid(x, torch.tensor([True, True, False, True]), fill=-1.0)
    tensor([ 1., -1., -1., -1.])
    """
    x = require_tensor(x, "x")
    valid = as_bool_mask(valid_mask, "valid_mask", x.shape, like=x, layout="(like x)")
    if x.is_floating_point() or x.is_complex():
        valid = valid & torch.isfinite(x)
    return torch.where(valid, x, torch.as_tensor(fill, dtype=x.dtype, device=x.device))
