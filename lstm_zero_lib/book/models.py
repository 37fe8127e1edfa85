"""The models that several chapters (and the tests) train."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..rnn import MaskedLSTM
from ..zeroing import zero_features

__all__ = ["Classifier"]


class Classifier(nn.Module):
    """An LSTM read at its final hidden state, then a linear head.

    ``forward(x)`` runs the plain ``nn.LSTM`` over every step, padding included (the
    common recipe); ``forward(x, mask)`` runs the same weights through
    :class:`~lstm_zero_lib.MaskedLSTM`, which skips masked steps.

    Parameters
    ----------
    n_features, hidden, n_classes
        Input features, LSTM hidden size, number of output classes.
    feature_dropout
        During training, the probability of zeroing a whole feature (every step) of an
        example; 0 disables it.

    Examples
    --------
    >>> import torch
    >>> from lstm_zero_lib import lengths_to_mask
    >>> _ = torch.manual_seed(0)
    >>> model = Classifier(n_features=4, hidden=8)
    >>> x = torch.randn(3, 5, 4)
    >>> model(x, lengths_to_mask([5, 3, 1])).shape
    torch.Size([3, 2])
    """

    def __init__(
        self, n_features: int, hidden: int = 24, n_classes: int = 2, feature_dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.masked = MaskedLSTM(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)
        self.feature_dropout = feature_dropout

    @property
    def lstm(self) -> nn.LSTM:
        """The wrapped ``nn.LSTM`` (the weights both forward paths share)."""
        return self.masked.lstm

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.training and self.feature_dropout > 0:
            keep = torch.rand(x.shape[0], 1, x.shape[2], device=x.device) >= self.feature_dropout
            x = zero_features(x, keep.expand_as(x))
        if mask is None:  # the common recipe: the LSTM also runs over the padding
            _, (h_n, _) = self.lstm(x)
        else:  # padded steps skipped, same weights
            _, (h_n, _) = self.masked(x, mask)
        return self.head(h_n[-1])
