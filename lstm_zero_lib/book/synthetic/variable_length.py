"""A variable-length sequence classification task with a known answer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...errors import InputError
from ...masks import lengths_to_mask
from ._base import PaddedSequences

__all__ = ["SequenceBatch", "make_variable_length_task"]


@dataclass(frozen=True)
class SequenceBatch(PaddedSequences):
    """Right-padded sequences with their lengths and labels.

    Attributes
    ----------
    x
        ``(N, T, F)`` float32 inputs, zeros after each sequence's end.
    lengths
        ``(N,)`` valid lengths.
    y
        ``(N,)`` integer class labels.
    """

    x: Tensor
    lengths: Tensor
    y: Tensor


def make_variable_length_task(
    n: int,
    *,
    min_len: int = 5,
    max_len: int = 30,
    n_features: int = 4,
    seed: int = 0,
) -> SequenceBatch:
    """Sequences of random length whose label is the sign of the sum of feature 0.

    Feature 0 carries the signal (``label = sum_t x[t, 0] > 0`` over the valid steps);
    the other features are standard normal noise. The answer needs the whole sequence and
    nothing but the sequence, so any influence of padding on a prediction is an error.

    Parameters
    ----------
    n
        Number of sequences.
    min_len, max_len
        Lengths are drawn uniformly from ``min_len..max_len``; ``x`` has ``max_len`` steps.
    n_features
        Number of input features (at least 1).
    seed
        Seed of the private generator; the global RNG is not touched.

    Examples
    --------
    >>> data = make_variable_length_task(4, min_len=2, max_len=6, seed=0)
    >>> data.x.shape, data.lengths.tolist(), data.y.tolist()
    (torch.Size([4, 6, 4]), [6, 6, 5, 2], [1, 1, 0, 0])
    >>> bool((data.x[~data.mask] == 0).all())
    True
    """
    if not 1 <= min_len <= max_len:
        raise InputError(
            f"min_len, max_len: expected 1 <= min_len <= max_len, got {min_len}, {max_len}"
        )
    if n_features < 1 or n < 0:
        raise InputError(
            f"n, n_features: expected n >= 0 and n_features >= 1, got {n}, {n_features}"
        )
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=gen)
    x = torch.randn(n, max_len, n_features, generator=gen)
    mask = lengths_to_mask(lengths, max_len=max_len)
    x = torch.where(mask.unsqueeze(2), x, torch.zeros(()))
    y = (x[:, :, 0].sum(dim=1) > 0).long()
    return SequenceBatch(x, lengths, y)
