"""lstm_zero_lib.masks: lengths_to_mask, mask_to_lengths, is_right_padded."""

from __future__ import annotations

import pytest
import torch

from lstm_zero_lib import is_right_padded, lengths_to_mask, mask_to_lengths

EXPECTED_3_0_2 = torch.tensor(
    [
        [True, True, True],
        [False, False, False],
        [True, True, False],
    ]
)


@pytest.mark.parametrize("as_list", [False, True], ids=["tensor", "list"])
def test_lengths_to_mask_values(as_list: bool):
    lengths = [3, 0, 2] if as_list else torch.tensor([3, 0, 2])
    mask = lengths_to_mask(lengths)
    assert mask.dtype == torch.bool
    assert torch.equal(mask, EXPECTED_3_0_2)


def test_lengths_to_mask_max_len_pads_right():
    mask = lengths_to_mask(torch.tensor([1, 2]), max_len=4)
    assert torch.equal(mask, torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool))


def test_lengths_to_mask_time_major_is_transpose():
    mask = lengths_to_mask([3, 0, 2], max_len=5, batch_first=False)
    assert mask.shape == (5, 3)
    assert torch.equal(mask, lengths_to_mask([3, 0, 2], max_len=5).t())


def test_lengths_to_mask_all_zero_lengths():
    assert lengths_to_mask([0, 0], max_len=3).shape == (2, 3)
    assert not lengths_to_mask([0, 0], max_len=3).any()
    assert lengths_to_mask(torch.tensor([0, 0])).shape == (2, 0)


def test_lengths_to_mask_keeps_device():
    lengths = torch.tensor([2, 1])
    assert lengths_to_mask(lengths).device == lengths.device


def test_mask_to_lengths_counts_valid_steps_any_pattern():
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    lengths = mask_to_lengths(mask.bool())
    assert lengths.dtype == torch.long
    assert torch.equal(lengths, torch.tensor([3, 0, 3, 5]))


def test_mask_to_lengths_time_major():
    mask = torch.tensor([[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask_to_lengths(mask.t(), batch_first=False), torch.tensor([3, 0, 3]))


@pytest.mark.parametrize("dtype", [torch.int64, torch.float32], ids=str)
def test_mask_to_lengths_accepts_01_numeric_masks(dtype):
    mask = torch.tensor([[1, 1, 0], [0, 1, 0]], dtype=dtype)
    lengths = mask_to_lengths(mask)
    assert lengths.dtype == torch.long
    assert torch.equal(lengths, torch.tensor([2, 1]))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("lengths", [[4, 1, 0, 3], [0], [2, 2], [5, 0, 5]])
def test_round_trip(lengths: list[int], batch_first: bool):
    t = torch.tensor(lengths)
    mask = lengths_to_mask(t, max_len=5, batch_first=batch_first)
    assert torch.equal(mask_to_lengths(mask, batch_first=batch_first), t)
    assert is_right_padded(mask, batch_first=batch_first)
    again = mask_to_lengths(mask, batch_first=batch_first)
    assert torch.equal(lengths_to_mask(again, max_len=5, batch_first=batch_first), mask)


RIGHT = [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]
LEFT = [[0, 1, 1, 1], [1, 1, 1, 1]]
GAP = [[1, 0, 1, 0], [1, 1, 1, 1]]
LEADING_GAP = [[0, 1, 0, 0]]


@pytest.mark.parametrize(
    ("rows", "expected"),
    [(RIGHT, True), (LEFT, False), (GAP, False), (LEADING_GAP, False)],
    ids=["right", "left", "gap", "leading_gap"],
)
@pytest.mark.parametrize("batch_first", [True, False])
def test_is_right_padded(rows, expected: bool, batch_first: bool):
    mask = torch.tensor(rows, dtype=torch.bool)
    if not batch_first:
        mask = mask.t()
    result = is_right_padded(mask, batch_first=batch_first)
    assert isinstance(result, bool)
    assert result is expected


def test_is_right_padded_layout_matters():
    # Right-padded as (B, T) = (2, 3) rows; read as time-major its columns are the sequences.
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert is_right_padded(mask) is True
    assert is_right_padded(mask, batch_first=False) is False  # sequence 2 is [0, 1]


def test_is_right_padded_fully_valid_and_empty_rows():
    assert is_right_padded(torch.ones(3, 4, dtype=torch.bool))
    assert is_right_padded(torch.zeros(3, 4, dtype=torch.bool))


def test_arange_cache_keeps_small_sizes_only():
    # The cache holds up to 64 aranges; large ones are built afresh, so that a long
    # lengths_to_mask (or a long batch) does not stay in memory for the process' life.
    from lstm_zero_lib._mask_kind import _ARANGE_CACHED_UP_TO, _cached_arange, cached_arange

    _cached_arange.cache_clear()
    cpu = torch.device("cpu")
    assert torch.equal(
        cached_arange(_ARANGE_CACHED_UP_TO + 1, cpu), torch.arange(_ARANGE_CACHED_UP_TO + 1)
    )
    assert _cached_arange.cache_info().currsize == 0
    assert cached_arange(_ARANGE_CACHED_UP_TO, cpu) is cached_arange(_ARANGE_CACHED_UP_TO, cpu)
