"""Intervals for the chapters' comparisons between methods over seeds.

The chapters compare methods over ten or more seeds, paired by seed (same data, same
initialisation where the architectures allow), and report the mean of the paired
differences with a Student-t interval. One function, so every chapter computes it the
same way and the quantile comes from scipy, not from a table typed into a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from scipy import stats

from ..errors import InputError

__all__ = ["Interval", "t_interval"]


class Interval(NamedTuple):
    """A mean and its two-sided confidence interval."""

    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        """True when the interval lies entirely above or entirely below 0."""
        return self.low > 0 or self.high < 0


def t_interval(values: Iterable[float], level: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval of the mean of ``values``.

    For paired comparisons pass the per-seed differences (method A minus method B on the
    same seed): the interval is then the paired t-interval of the mean difference.

    Parameters
    ----------
    values
        One number per seed (at least two, all finite): a quantity, or paired differences.
    level
        Confidence level, strictly between 0 and 1.

    Returns
    -------
    Interval
        ``(mean, low, high)`` as plain floats.

    Raises
    ------
    InputError
        Fewer than two values, a non-finite value, or a level outside (0, 1).

    Examples
    --------
    >>> t_interval([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    Interval(mean=5.5, low=3.33..., high=7.66...)
    >>> t_interval([0.1, -0.2, 0.3]).excludes_zero()
    False
    """
    v = np.asarray(list(values), dtype=float)
    if v.ndim != 1 or v.size < 2:
        raise InputError(
            f"values: expected at least 2 numbers (one per seed), got shape {tuple(v.shape)}"
        )
    if not np.isfinite(v).all():
        raise InputError(f"values: expected finite numbers, got {v.tolist()}")
    if not 0 < level < 1:
        raise InputError(f"level: expected a probability strictly between 0 and 1, got {level}")
    mean = float(v.mean())
    half = float(stats.t.ppf(0.5 + level / 2, df=v.size - 1)) * float(v.std(ddof=1))
    half /= math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half)
