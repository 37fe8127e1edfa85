"""lstm_zero_lib.book.stats: the chapters' paired t-intervals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_zero_lib import MaskError
from lstm_zero_lib.book.stats import Interval, median_interval, t_interval
from lstm_zero_lib.errors import InputError


def test_matches_the_tabulated_t_interval():
    # Ten seeds: 9 degrees of freedom, whose 97.5 % quantile is tabulated as 2.262.
    values = [0.3, -0.1, 0.4, 0.2, 0.0, 0.5, 0.1, 0.2, 0.3, 0.1]
    mean = sum(values) / 10
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 9)
    got = t_interval(values)
    assert got.mean == pytest.approx(mean)
    assert got.high - got.mean == pytest.approx(2.2622 * sd / math.sqrt(10), rel=1e-4)
    assert got.mean - got.low == pytest.approx(got.high - got.mean)
    assert all(isinstance(x, float) for x in got)


def test_level_widens_the_interval():
    values = [1.0, 2.0, 4.0, 3.0]
    narrow, wide = t_interval(values, 0.8), t_interval(values, 0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_excludes_zero():
    assert Interval(1.0, 0.5, 1.5).excludes_zero()
    assert Interval(-1.0, -1.5, -0.5).excludes_zero()
    assert not Interval(0.1, -0.5, 0.7).excludes_zero()


@pytest.mark.parametrize(
    ("values", "level", "says"),
    [
        ([1.0], 0.95, "at least 2"),
        ([1.0, float("nan")], 0.95, "finite"),
        ([1.0, 2.0], 1.0, "level"),
    ],
)
def test_bad_input_says_what_was_wrong(values, level, says):
    with pytest.raises(MaskError, match=says):
        t_interval(values, level)


def test_median_interval_order_statistics_match_the_sign_test_table():
    # Ranks from the binomial tail, by hand: n = 10 -> 2nd
    # and 9th smallest at 97.85 %; n = 15 -> 4th and 12th at 96.48 %; n = 6 -> the extremes.
    for n, k, level in ((10, 2, 0.9785), (15, 4, 0.9648), (6, 1, 0.9688)):
        values = [float(v) for v in range(100, 100 + n)][::-1]  # order must not matter
        iv = median_interval(values)
        assert (iv.low, iv.high) == (100.0 + k - 1, 100.0 + n - k), n
        assert abs(iv.level - level) < 1e-4 and iv.level >= 0.95


def test_median_interval_covers_a_skewed_median_at_its_level():
    # Lognormal samples (skewed like timings): the interval holds the true median (1.0) in
    # at least 95 % of 2000 draws of 15 (its exact level is 96.48 %; binomial sd ~0.4 %).
    rng = np.random.default_rng(0)
    hits = sum(
        (iv := median_interval(rng.lognormal(0.0, 0.5, 15))).low <= 1.0 <= iv.high
        for _ in range(2000)
    )
    assert 0.95 <= hits / 2000 <= 0.98


def test_median_interval_refuses_bad_input():
    with pytest.raises(InputError, match="5 numbers cannot give a 95% interval"):
        median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(InputError, match="finite"):
        median_interval([1.0] * 9 + [float("nan")])
    with pytest.raises(InputError, match="level"):
        median_interval(range(10), level=1.0)
