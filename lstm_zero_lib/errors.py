"""The one exception type the library raises for bad input: :class:`InputError`."""

from __future__ import annotations

__all__ = ["InputError", "MaskError"]


class InputError(ValueError):
    """Bad argument given to an ``lstm_zero_lib`` function: a mask, lengths, a shape, a
    device, a dtype or an option such as ``window`` or ``n_repeats``.

    Every check in the library, the core and the book layer (``lstm_zero_lib.book``)
    alike, raises this one type. It is a subclass of :class:`ValueError`, so
    ``except ValueError`` still catches it. The message names the argument, what was
    expected and what was received.

    ``MaskError`` is the same class under its earlier name (see :data:`MaskError`).

    Examples
    --------
    >>> import torch
    >>> from lstm_zero_lib import InputError, mask_to_lengths
    >>> try:
    ...     mask_to_lengths(torch.tensor([[1.0, 0.5]]))
    ... except InputError as err:
    ...     print(err)
    mask: expected only 0 and 1 (or a bool tensor), got a value 0.5
    """


#: The name :class:`InputError` had up to version 0.1, kept so that ``except MaskError``
#: and ``raise MaskError(...)`` keep working: it is the same class, not a subclass, so
#: it catches every bad-input error, for masks and for every other argument.
MaskError = InputError
