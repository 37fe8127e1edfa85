"""lstm_zero_lib.book.stats: the chapters' paired t-intervals."""

from __future__ import annotations

import math

import pytest

from lstm_zero_lib import MaskError
from lstm_zero_lib.book.stats import Interval, t_interval


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
