"""lstm_zero_lib: zero, mask and null the inputs of an LSTM, exactly.

The public names are re-exported here; the modules are importable as
``lstm_zero_lib.masks``, ``lstm_zero_lib.zeroing``, ``lstm_zero_lib.rnn``,
``lstm_zero_lib.gru_rnn``, ``lstm_zero_lib.pooling``, ``lstm_zero_lib.diagnostics``,
``lstm_zero_lib.ablation`` and ``lstm_zero_lib.missing``; helpers for the book live in
``lstm_zero_lib.book.synthetic``, ``lstm_zero_lib.book.train``,
``lstm_zero_lib.book.plotting`` and ``lstm_zero_lib.book.benchmark``.
"""

from __future__ import annotations

from . import ablation, diagnostics, errors, gru_rnn, masks, missing, pooling, rnn, zeroing
from .ablation import ablate, feature_ablation, occlusion_map, permutation_importance
from .diagnostics import PaddingError, padding_error, reference_forward
from .errors import InputError, MaskError
from .gru_rnn import MaskedGRU, MaskedRNN, masked_gru, masked_rnn
from .masks import is_right_padded, lengths_to_mask, mask_to_lengths
from .missing import (
    DecayLSTM,
    add_mask_channels,
    forward_fill,
    mean_fill,
    observed_means,
    time_since_observed,
)
from .pooling import last_valid, masked_loss, masked_max, masked_mean, masked_softmax
from .rnn import MaskedLSTM, masked_lstm
from .zeroing import null_invalid, zero_features, zero_timesteps

__all__ = [
    "DecayLSTM",
    "ablate",
    "ablation",
    "add_mask_channels",
    "feature_ablation",
    "forward_fill",
    "mean_fill",
    "missing",
    "observed_means",
    "occlusion_map",
    "permutation_importance",
    "time_since_observed",
    "InputError",
    "MaskError",
    "MaskedGRU",
    "MaskedLSTM",
    "MaskedRNN",
    "PaddingError",
    "diagnostics",
    "errors",
    "gru_rnn",
    "is_right_padded",
    "last_valid",
    "lengths_to_mask",
    "mask_to_lengths",
    "masked_loss",
    "masked_gru",
    "masked_lstm",
    "masked_max",
    "masked_mean",
    "masked_rnn",
    "masked_softmax",
    "masks",
    "null_invalid",
    "padding_error",
    "pooling",
    "reference_forward",
    "rnn",
    "zero_features",
    "zero_timesteps",
    "zeroing",
]

__version__ = "0.2.0"
