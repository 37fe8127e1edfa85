"""The one exception type the library raises for bad input."""

from __future__ import annotations

__all__ = ["MaskError"]


class MaskError(ValueError):
    """Bad mask, lengths, shape, device or dtype given to an ``lstm_zero_lib`` function.

    A subclass of :class:`ValueError`, so ``except ValueError`` still catches it. The message
    names the argument, what was expected and what was received.

    Examples
    --------
    >>> import torch
    >>> from lstm_zero_lib import MaskError, mask_to_lengths
    >>> try:
    ...     mask_to_lengths(torch.tensor([[1.0, 0.5]]))
    ... except MaskError as err:
    ...     print(err)
    mask: expected only 0 and 1 (or a bool tensor), got a value 0.5
    """
