"""Bad input raises lstm_zero_lib.InputError (a ValueError) naming the argument and the shapes.

One type for every argument, masks or not, in the core and in the book layer;
``MaskError``, its earlier name, is the same class. The ``says(arg, *fragments)`` fixture
(tests/conftest.py) builds an order-independent regex: the message must contain the
argument name as a word and every fragment (shapes are written like Python tuples,
e.g. "(4, 6)" / "(4,)").
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lstm_zero_lib
from lstm_zero_lib import (
    InputError,
    MaskedLSTM,
    is_right_padded,
    last_valid,
    lengths_to_mask,
    mask_to_lengths,
    masked_lstm,
    masked_max,
    masked_mean,
    masked_softmax,
    null_invalid,
    zero_features,
    zero_timesteps,
)

B, T, F, H = 4, 6, 3, 5


@pytest.fixture
def m() -> MaskedLSTM:
    torch.manual_seed(0)
    return MaskedLSTM(F, H, 2)


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(B, T, F)


@pytest.fixture
def mask() -> torch.Tensor:
    return torch.ones(B, T, dtype=torch.bool)


def test_input_error_is_a_value_error_and_mask_error_is_the_same_class():
    from lstm_zero_lib.errors import InputError as FromErrorsModule
    from lstm_zero_lib.errors import MaskError

    assert issubclass(InputError, ValueError)
    assert FromErrorsModule is InputError is lstm_zero_lib.InputError
    # The earlier name is an alias, not a subclass: `except MaskError` catches everything.
    assert MaskError is InputError is lstm_zero_lib.MaskError


def test_input_error_can_be_caught_as_value_error(says, m, x):
    with pytest.raises(ValueError, match=says("mask")):
        m(x, torch.ones(B, T - 1, dtype=torch.bool))


# --------------------------------------------------------------------------- MaskedLSTM.forward


def test_mask_shape_mismatch(says, m, x):
    with pytest.raises(InputError, match=says("mask", "(4, 6)", "(4, 5)")):
        m(x, torch.ones(B, T - 1, dtype=torch.bool))


def test_mask_in_batch_first_layout_for_time_major_module(says):
    torch.manual_seed(0)
    tm = MaskedLSTM(F, H, batch_first=False)
    with pytest.raises(InputError, match=says("mask", "(6, 4)", "(4, 6)")):
        tm(torch.randn(T, B, F), torch.ones(B, T, dtype=torch.bool))


def test_mask_with_extra_dimension(says, m, x):
    with pytest.raises(InputError, match=says("mask", "(4, 6)", "(4, 6, 1)")):
        m(x, torch.ones(B, T, 1, dtype=torch.bool))


@pytest.mark.parametrize("shape", [(B, T, F, 1), (F,)], ids=["4d", "1d"])
def test_x_wrong_ndim(says, m, shape):
    x = torch.randn(*shape)
    received = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    with pytest.raises(InputError, match=says("x", received)):
        m(x, torch.ones(B, T, dtype=torch.bool))


def test_x_wrong_feature_size(says, m, mask):
    with pytest.raises(InputError, match=says("x", "(4, 6, 5)", "3")):
        m(torch.randn(B, T, 5), mask)


@pytest.mark.parametrize(
    "bad",
    [torch.full((B, T), 0.5), torch.full((B, T), 2), torch.full((B, T), -1.0)],
    ids=["float_0.5", "int_2", "float_-1"],
)
def test_non_binary_mask(says, m, x, bad):
    with pytest.raises(InputError, match=says("mask")):
        m(x, bad)


@pytest.mark.parametrize("lengths", [[6, -1, 2, 3], [7, 1, 2, 3]], ids=["negative", "above_T"])
def test_lengths_out_of_range(says, m, x, lengths):
    with pytest.raises(InputError, match=says("lengths")):
        m(x, lengths=torch.tensor(lengths))


def test_lengths_wrong_batch_size(says, m, x):
    with pytest.raises(InputError, match=says("lengths", "(4,)", "(3,)")):
        m(x, lengths=torch.tensor([1, 2, 3]))


def test_state_passed_by_position_where_lengths_go(says, m, x, mask):
    # forward(x, mask, hx) as for nn.LSTM: the third argument is lengths here.
    state = (torch.zeros(2, 4, 5), torch.zeros(2, 4, 5))
    for args in [(x, mask, state), (x, None, state), (x, mask, state[0])]:
        with pytest.raises(InputError, match=says("lengths", "hx=hx")):
            m(*args)


def test_mask_and_lengths_together(says, m, x, mask):
    with pytest.raises(InputError, match=says("mask", "lengths")):
        m(x, mask, lengths=torch.full((B,), T))


@pytest.mark.parametrize("which", [0, 1], ids=["h0", "c0"])
@pytest.mark.parametrize("bad_shape", [(1, B, H), (2, B - 1, H), (2, B, H + 1), (B, H)], ids=str)
def test_hx_wrong_shape(says, m, x, mask, which, bad_shape):
    hx = [torch.zeros(2, B, H), torch.zeros(2, B, H)]
    hx[which] = torch.zeros(bad_shape)
    received = "(" + ", ".join(map(str, bad_shape)) + ")"
    with pytest.raises(InputError, match=says("hx", "(2, 4, 5)", received)):
        m(x, mask, hx=tuple(hx))


def test_hx_wrong_shape_bidirectional(says, x, mask):
    torch.manual_seed(0)
    bi = MaskedLSTM(F, H, 2, bidirectional=True)
    hx = (torch.zeros(2, B, H), torch.zeros(2, B, H))
    with pytest.raises(InputError, match=says("hx", "(4, 4, 5)", "(2, 4, 5)")):
        bi(x, mask, hx=hx)


def test_mask_on_other_device_meta(says, m, x, mask):
    with pytest.raises(InputError, match=says("mask", "meta")):
        m(x, mask.to("meta"))


@pytest.mark.cuda  # run by make test-gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mask_on_other_device_cuda(says, m, x, mask):
    with pytest.raises(InputError, match=says("mask", "cuda")):
        m(x, mask.cuda())


def test_x_dtype_differs_from_weights(says, m, mask):
    with pytest.raises(InputError, match=says("x", "float64")):
        m(torch.randn(B, T, F, dtype=torch.float64), mask)


def test_unknown_masked_output_constructor(says):
    with pytest.raises(InputError, match=says("masked_output", "last")):
        MaskedLSTM(F, H, masked_output="last")


def test_unknown_masked_output_from_lstm(says):
    with pytest.raises(InputError, match=says("masked_output", "last")):
        MaskedLSTM.from_lstm(nn.LSTM(F, H, batch_first=True), masked_output="last")


def test_unknown_masked_output_functional(says, x, mask):
    lstm = nn.LSTM(F, H, batch_first=True)
    with pytest.raises(InputError, match=says("masked_output", "last")):
        masked_lstm(lstm, x, mask, masked_output="last")


def test_functional_mask_shape_mismatch(says, x):
    lstm = nn.LSTM(F, H, batch_first=True)
    with pytest.raises(InputError, match=says("mask", "(4, 6)", "(6, 4)")):
        masked_lstm(lstm, x, torch.ones(T, B, dtype=torch.bool))


# --------------------------------------------------------------------------- masks.py


@pytest.mark.parametrize(
    ("lengths", "max_len"),
    [([2, -1], None), ([5, 1], 3), (torch.ones(2, 2, dtype=torch.long), None)],
    ids=["negative", "above_max_len", "2d"],
)
def test_lengths_to_mask_bad_lengths(says, lengths, max_len):
    with pytest.raises(InputError, match=says("lengths")):
        lengths_to_mask(lengths, max_len)


def test_mask_to_lengths_bad_mask(says):
    with pytest.raises(InputError, match=says("mask", "(2, 3, 4)")):
        mask_to_lengths(torch.ones(2, 3, 4, dtype=torch.bool))
    with pytest.raises(InputError, match=says("mask")):
        mask_to_lengths(torch.full((2, 3), 0.5))


def test_is_right_padded_bad_mask(says):
    with pytest.raises(InputError, match=says("mask", "(5,)")):
        is_right_padded(torch.ones(5, dtype=torch.bool))


# --------------------------------------------------------------------------- zeroing.py


def test_zero_timesteps_bad_mask(says):
    x = torch.randn(2, 3, 4)
    with pytest.raises(InputError, match=says("mask", "(2, 3)", "(2, 4)")):
        zero_timesteps(x, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(InputError, match=says("mask")):
        zero_timesteps(x, torch.full((2, 3), 2))


@pytest.mark.parametrize("bad_shape", [(5,), (4, 4), (2, 3, 5)], ids=str)
def test_zero_features_bad_mask(says, bad_shape):
    x = torch.randn(2, 3, 4)
    received = "(" + ", ".join(map(str, bad_shape)) + ("," if len(bad_shape) == 1 else "") + ")"
    with pytest.raises(InputError, match=says("feature_mask", received)):
        zero_features(x, torch.ones(bad_shape, dtype=torch.bool))


def test_null_invalid_bad_mask(says):
    x = torch.randn(2, 3, 4)
    with pytest.raises(InputError, match=says("valid_mask", "(2, 3, 4)", "(2, 3)")):
        null_invalid(x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(InputError, match=says("valid_mask")):
        null_invalid(x, torch.full((2, 3, 4), 0.5))


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("pool", [last_valid, masked_mean, masked_max], ids=lambda f: f.__name__)
def test_pooling_bad_mask(says, pool):
    values = torch.randn(4, 5, 3)
    with pytest.raises(InputError, match=says("mask", "(4, 5)", "(5, 4)")):
        pool(values, torch.ones(5, 4, dtype=torch.bool))


def test_masked_softmax_bad_mask(says):
    scores = torch.randn(4, 5)
    with pytest.raises(InputError, match=says("mask", "(4, 5)", "(4, 4)")):
        masked_softmax(scores, torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(InputError, match=says("mask")):
        masked_softmax(scores, torch.full((4, 5), 0.5))


# ------------------------------------------- arguments that are not masks, and the book layer


def test_non_mask_arguments_raise_input_error(says):
    x = torch.randn(B, T, F)
    score = lambda v: v.sum(dim=(1, 2))  # noqa: E731
    with pytest.raises(InputError, match=says("window", "(0, 1)")):
        lstm_zero_lib.occlusion_map(score, x, window=(0, 1))
    with pytest.raises(InputError, match=says("n_repeats", "0")):
        lstm_zero_lib.permutation_importance(lambda v: v.sum(), x, torch.arange(F), n_repeats=0)
    with pytest.raises(InputError, match=says("n_features", "0")):
        lstm_zero_lib.DecayLSTM(n_features=0, hidden_size=H, means=[])


def test_book_helpers_raise_input_error(says):
    import matplotlib.pyplot as plt

    from lstm_zero_lib.book.plotting import finish, new_figure
    from lstm_zero_lib.book.synthetic import (
        make_attribution_task,
        make_sensor_data,
        make_variable_length_task,
    )
    from lstm_zero_lib.book.train import fit

    with pytest.raises(InputError, match=says("missing_rate", "1.5")):
        make_sensor_data(8, missing_rate=1.5)
    with pytest.raises(InputError, match=says("n_noise", "-1")):
        make_attribution_task(8, n_noise=-1)
    with pytest.raises(InputError, match=says("min_len", "9, 3")):
        make_variable_length_task(4, min_len=9, max_len=3)
    with pytest.raises(InputError, match=says("epochs", "0")):
        fit(nn.Linear(1, 1), [], loss_fn=nn.functional.mse_loss, epochs=0)
    fig, (ax,) = new_figure()
    try:
        with pytest.raises(InputError, match=says("xlabel")):
            finish(ax, xlabel="", ylabel="y")
    finally:
        plt.close(fig)
