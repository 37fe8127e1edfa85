"""Intervals for the chapters' comparisons between methods over seeds.

The chapters compare methods over ten or more seeds, paired by seed (same data, same
initialisation where the architectures allow), and report the mean of the paired
differences with a Student-t interval. One function, so every chapter computes it the
same way and the quantile comes from scipy, not from a table typed into a notebook.
Timings, whose spread is skewed by the odd slow repeat, are read by their median, with the
distribution-free interval of :func:`median_interval`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from scipy import stats

from ..errors import InputError

__all__ = ["Interval", "MedianInterval", "median_interval", "t_interval"]


def _excludes_zero(low: float, high: float) -> bool:
    # One rule for both interval types (NamedTuples cannot share a base class's method).
    return low > 0 or high < 0


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise InputError(f"level: expected a probability strictly between 0 and 1, got {level}")


class Interval(NamedTuple):
    """A mean and its two-sided confidence interval."""

    mean: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        """True when the interval lies entirely above or entirely below 0."""
        return _excludes_zero(self.low, self.high)


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
    _check_level(level)
    mean = float(v.mean())
    half = float(stats.t.ppf(0.5 + level / 2, df=v.size - 1)) * float(v.std(ddof=1))
    half /= math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half)


class MedianInterval(NamedTuple):
    """A median, its distribution-free confidence interval, and the interval's exact level."""

    median: float
    low: float
    high: float
    level: float

    def excludes_zero(self) -> bool:
        """True when the interval lies entirely above or entirely below 0."""
        return _excludes_zero(self.low, self.high)


def median_interval(values: Iterable[float], level: float = 0.95) -> MedianInterval:
    """Median of ``values`` and the order-statistic confidence interval of the median.

    The interval is ``[x_(k), x_(n+1-k)]`` of the sorted values, with the largest ``k``
    whose binomial tail ``P(Bin(n, 1/2) <= k - 1)`` is at most ``(1 - level) / 2``: it
    assumes nothing about the distribution (for paired differences it is the sign test's
    interval), and its exact level, at least ``level``, is returned with it.

    Parameters
    ----------
    values
        At least 6 finite numbers (fewer cannot reach 95 %): a quantity per repeat, or
        paired differences.
    level
        The least confidence level, strictly between 0 and 1.

    Returns
    -------
    MedianInterval
        ``(median, low, high, level)`` as plain floats.

    Raises
    ------
    InputError
        Too few values for ``level``, a non-finite value, or a level outside (0, 1).

    Examples
    --------
    >>> iv = median_interval(range(1, 16))  # 15 repeats: the 4th and 12th smallest
    >>> iv.median, iv.low, iv.high, round(iv.level, 4)
    (8.0, 4.0, 12.0, 0.9648)
    >>> median_interval([-0.3, 0.1, 0.2, 0.4, 0.5, 0.6, 0.7, 0.9]).excludes_zero()
    False
    """
    v = np.sort(np.asarray(list(values), dtype=float))
    _check_level(level)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise InputError(f"values: expected a 1-D sequence of finite numbers, got {v.tolist()}")
    n = v.size
    tail = (1 - level) / 2
    ranks = [k for k in range(1, n // 2 + 1) if stats.binom.cdf(k - 1, n, 0.5) <= tail]
    if not ranks:
        needed = next(m for m in range(n + 1, 10_000) if 0.5**m <= tail)
        raise InputError(
            f"values: {n} numbers cannot give a {level:.0%} interval of the median "
            f"(it needs at least {needed})"
        )
    k = ranks[-1]
    exact = 1 - 2 * float(stats.binom.cdf(k - 1, n, 0.5))
    return MedianInterval(float(np.median(v)), float(v[k - 1]), float(v[n - k]), exact)
