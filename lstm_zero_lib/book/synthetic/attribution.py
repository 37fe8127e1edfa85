"""An attribution task whose answer is known: which inputs the label depends on."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ...errors import InputError
from ...masks import lengths_to_mask
from ._base import PaddedSequences

__all__ = ["AttributionTask", "make_attribution_task"]


@dataclass(frozen=True)
class AttributionTask(PaddedSequences):
    """Sequences, labels and the ground-truth map of the inputs the labels depend on.

    Attributes
    ----------
    x
        ``(N, T, F)`` float32 inputs, zeros after each sequence's end.
    lengths
        ``(N,)`` valid lengths.
    y
        ``(N,)`` integer class labels (0 or 1).
    relevant
        ``(N, T, F)`` bool, True at exactly the entries the label is computed from.
    feature_names
        One name per feature: ``"a"``, ``"b"``, then ``"noise1"``... and ``"offset"``.
    """

    x: Tensor
    lengths: Tensor
    y: Tensor
    relevant: Tensor
    feature_names: tuple[str, ...]


def make_attribution_task(
    n: int,
    *,
    n_steps: int = 16,
    window: int = 4,
    n_noise: int = 2,
    offset: float = 5.0,
    min_len: int | None = None,
    seed: int = 0,
) -> AttributionTask:
    """Label = sign of feature ``a`` early plus feature ``b`` late; the rest is noise.

    Every feature is drawn independently with standard deviation 1. Feature 0 (``a``)
    counts on the first ``window`` valid steps, feature 1 (``b``) on the last ``window``
    valid steps, and ``y = 1`` if the sum of those ``2 * window`` values is positive.
    Features ``2 .. n_noise + 1`` are centred noise (``"noise1"``, ...). The last
    feature, ``"offset"``, is noise with mean ``offset``: irrelevant to the label, but far
    from zero, which is what makes zero a misleading ablation baseline for it.

    Parameters
    ----------
    n
        Number of sequences.
    n_steps
        ``T``, the padded length (and the length of every sequence by default).
    window
        Number of steps at the start (for ``a``) and at the end (for ``b``) that count.
    n_noise
        Number of centred noise features (0 or more).
    offset
        Mean of the ``"offset"`` feature.
    min_len
        If given, lengths are drawn uniformly from ``min_len..n_steps`` and sequences are
        right-padded with zeros; "late" then means the last steps of each sequence.
        Needs ``window <= min_len``.
    seed
        Seed of the private generator; the global RNG is not touched.

    Examples
    --------
    >>> task = make_attribution_task(3, n_steps=6, window=2, n_noise=1, seed=0)
    >>> task.x.shape, task.feature_names
    (torch.Size([3, 6, 4]), ('a', 'b', 'noise1', 'offset'))
    >>> task.relevant[0].nonzero().tolist()  # (step, feature): a early, b late
    [[0, 0], [1, 0], [4, 1], [5, 1]]
    >>> x, rel = task.x, task.relevant
    >>> torch.equal(task.y, (torch.where(rel, x, 0.0).sum(dim=(1, 2)) > 0).long())
    True
    """
    min_len = n_steps if min_len is None else min_len
    if not 1 <= window <= min_len <= n_steps:
        raise InputError(
            f"window, min_len, n_steps: expected 1 <= window <= min_len <= n_steps, "
            f"got {window}, {min_len}, {n_steps}"
        )
    if n < 0 or n_noise < 0:
        raise InputError(f"n, n_noise: expected both >= 0, got {n}, {n_noise}")
    gen = torch.Generator().manual_seed(seed)
    n_features = 3 + n_noise
    lengths = torch.randint(min_len, n_steps + 1, (n,), generator=gen)
    x = torch.randn(n, n_steps, n_features, generator=gen)
    x[:, :, -1] += offset
    mask = lengths_to_mask(lengths, max_len=n_steps)
    x = torch.where(mask.unsqueeze(2), x, torch.zeros(()))
    steps = torch.arange(n_steps)
    early = steps < window  # (T,)
    late = (steps >= (lengths - window).unsqueeze(1)) & mask  # (N, T)
    relevant = torch.zeros(n, n_steps, n_features, dtype=torch.bool)
    relevant[:, :, 0] = early
    relevant[:, :, 1] = late
    y = (torch.where(relevant, x, torch.zeros(())).sum(dim=(1, 2)) > 0).long()
    names = ("a", "b", *(f"noise{k + 1}" for k in range(n_noise)), "offset")
    return AttributionTask(x, lengths, y, relevant, names)
