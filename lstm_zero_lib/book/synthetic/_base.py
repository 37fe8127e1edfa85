"""What every synthetic data set shares: its length, row selection and (padded) mask."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from torch import Tensor

from ...masks import lengths_to_mask

__all__ = ["Examples", "PaddedSequences"]

_E = TypeVar("_E", bound="Examples")


class Examples:
    """Base of a frozen dataclass whose tensor fields all hold one row per example.

    ``len(data)`` is the number of examples and ``data[index]`` (a slice, an index
    tensor or a bool tensor) the same kind of data set with the selected rows of every
    tensor field; the other fields (feature names, ...) are kept as they are.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> import torch
    >>> @dataclass(frozen=True)
    ... class Pairs(Examples):
    ...     x: Tensor
    ...     y: Tensor
    ...     name: str = "pairs"
    >>> data = Pairs(torch.arange(6).view(3, 2), torch.tensor([0, 1, 0]))
    >>> len(data), data[1:].y.tolist(), data[data.y == 0].x.tolist(), data[:1].name
    (3, [1, 0], [[0, 1], [4, 5]], 'pairs')
    """

    x: Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self: _E, index: slice | Tensor) -> _E:
        instance: Any = self  # a dataclass instance (see the class docstring)
        rows = {
            f.name: value[index]
            for f in dataclasses.fields(instance)
            if isinstance(value := getattr(self, f.name), Tensor)
        }
        selected: _E = dataclasses.replace(instance, **rows)
        return selected


class PaddedSequences(Examples):
    """:class:`Examples` of right-padded sequences ``x`` with their valid ``lengths``."""

    lengths: Tensor

    @property
    def mask(self) -> Tensor:
        """``(N, T)`` bool mask, True at valid steps."""
        return lengths_to_mask(self.lengths, max_len=self.x.shape[1])
