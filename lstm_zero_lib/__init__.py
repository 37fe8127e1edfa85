"""lstm_zero_lib: zero, mask and null the inputs of an LSTM, exactly.

The public names are re-exported here; the modules are importable as
``lstm_zero_lib.masks``, ``lstm_zero_lib.zeroing``, ``lstm_zero_lib.rnn``,
``lstm_zero_lib.pooling`` and ``lstm_zero_lib.diagnostics``.
"""

from __future__ import annotations

from . import diagnostics, errors, masks, pooling, rnn, zeroing
from .diagnostics import PaddingError, padding_error, reference_forward
from .errors import MaskError
from .masks import is_right_padded, lengths_to_mask, mask_to_lengths
from .pooling import last_valid, masked_max, masked_mean, masked_softmax
from .rnn import MaskedLSTM, masked_lstm
from .zeroing import null_invalid, zero_features, zero_timesteps

__all__ = [
    "MaskError",
    "MaskedLSTM",
    "PaddingError",
    "diagnostics",
    "errors",
    "is_right_padded",
    "last_valid",
    "lengths_to_mask",
    "mask_to_lengths",
    "masked_lstm",
    "masked_max",
    "masked_mean",
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

__version__ = "0.1.0"
