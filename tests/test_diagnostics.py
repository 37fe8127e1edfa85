"""lstm_zero_lib.diagnostics.padding_error: what a plain padded nn.LSTM run gets wrong."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lstm_zero_lib import PaddingError, padding_error

# Row 0 fully valid, rows 1-2 right-padded, row 3 all masked.
RIGHT = torch.tensor(
    [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool
)
PADDED_ROWS = [1, 2]
TINY, BIG = 1e-5, 1e-4


def _lstm(bidirectional: bool, batch_first: bool = True) -> nn.LSTM:
    torch.manual_seed(0)
    return nn.LSTM(3, 8, 2, batch_first=batch_first, bidirectional=bidirectional)


def _zero_padded_x(mask: torch.Tensor) -> torch.Tensor:
    x = torch.randn(*mask.shape, 3, generator=torch.Generator().manual_seed(1))
    return torch.where(mask.unsqueeze(-1), x, torch.zeros(()))  # the usual x * mask, NaN-free


@pytest.mark.parametrize("batch_first", [True, False])
def test_unidirectional_right_padding_outputs_ok_states_wrong(batch_first: bool):
    mask = RIGHT if batch_first else RIGHT.t()
    err = padding_error(_lstm(False, batch_first), _zero_padded_x(mask), mask)
    assert isinstance(err, PaddingError)
    for field in err:
        assert field.shape == (4,)
        assert torch.isfinite(field).all() and torch.all(field >= 0)
    assert torch.all(err.output_valid < TINY), "causality: valid outputs are unaffected"
    for row in PADDED_ROWS:
        assert err.h_n[row] > BIG and err.c_n[row] > BIG
        assert err.output_padded[row] > BIG, "outputs at padded steps are not zero"


def test_bidirectional_right_padding_corrupts_valid_outputs():
    err = padding_error(_lstm(True), _zero_padded_x(RIGHT), RIGHT)
    for row in PADDED_ROWS:
        assert err.output_valid[row] > BIG
        assert err.h_n[row] > BIG and err.c_n[row] > BIG


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fully_valid_row_has_no_error(bidirectional: bool):
    err = padding_error(_lstm(bidirectional), _zero_padded_x(RIGHT), RIGHT)
    for field in err:
        assert field[0] < TINY
    assert err.output_valid[3] == 0, "all-masked rows have output_valid 0"


def test_fully_valid_batch_is_all_zero():
    mask = torch.ones(3, 4, dtype=torch.bool)
    err = padding_error(_lstm(True), _zero_padded_x(mask), mask)
    for field in err:
        assert torch.all(field < TINY)
    assert torch.all(err.output_padded == 0), "no padded steps, nothing to deviate"


def test_left_padding_corrupts_unidirectional_outputs():
    left = RIGHT.flip(1)
    err = padding_error(_lstm(False), _zero_padded_x(left), left)
    for row in PADDED_ROWS:
        assert err.output_valid[row] > BIG
