"""Missing sensor readings: fill them, flag them, and time them (GRU-D's inputs).

A ``(B, T, F)`` validity mask (True = a valid reading) says which readings to trust.
Writing a constant into the others (:func:`~lstm_zero_lib.zeroing.null_invalid`) cleans the
values, but leaves the model unable to tell a missing reading from a genuine one. The
helpers here build the inputs that fix that, following Che et al. (2018, GRU-D):

* :func:`forward_fill` and :func:`mean_fill`: impute with the last valid value of the
  feature, or with a per-feature mean (:func:`observed_means`);
* :func:`add_mask_channels`: append the mask itself as ``F`` extra input channels;
* :func:`time_since_observed`: GRU-D's ``delta``, how long each feature has gone unobserved;
* :class:`DecayLSTM`: GRU-D's trainable input decay toward the mean, feeding an ``nn.LSTM``.

Every function treats NaN and inf in ``x`` as invalid whatever the mask says, selects with
:func:`torch.where` (never ``x * mask``: ``nan * 0`` is NaN), and so returns finite values
and sends exactly zero gradient to invalid readings. Bad input raises
:class:`~lstm_zero_lib.errors.InputError` naming the argument, the expected shape and the
shape received.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._checks import as_bool_mask, require_ndim, require_same_device, require_tensor, shape_str
from .errors import InputError
from .zeroing import null_invalid

__all__ = [
    "forward_fill",
    "mean_fill",
    "observed_means",
    "add_mask_channels",
    "time_since_observed",
    "DecayLSTM",
]

_LAYOUT = {True: "(B, T, F)", False: "(T, B, F)"}
_TIME_LAYOUT = {True: "(B, T)", False: "(T, B)"}


def _readings(x: object, batch_first: bool = True) -> Tensor:
    x = require_tensor(x, "x")
    require_ndim(x, "x", (3,), _LAYOUT[batch_first])
    if x.dtype == torch.bool or x.is_complex():
        raise InputError(f"x: expected a real-valued tensor, got dtype {x.dtype}")
    return x


def _observed(x: Tensor, valid_mask: object, batch_first: bool = True) -> Tensor:
    """The readings that are used: ``valid_mask`` True and ``x`` finite."""
    valid = as_bool_mask(
        valid_mask, "valid_mask", x.shape, like=x, layout=f"{_LAYOUT[batch_first]} like x"
    )
    return valid & torch.isfinite(x) if x.is_floating_point() else valid


def _per_feature(values: object, name: str, x: Tensor) -> Tensor:
    """Validate a finite ``(F,)`` vector (tensor or sequence) and cast it to ``x``'s dtype."""
    if not isinstance(values, Tensor):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise InputError(
                f"{name}: expected a tensor or sequence of shape (F,), got {type(values).__name__}"
            )
        values = torch.as_tensor(list(values), dtype=x.dtype, device=x.device)
    require_same_device(values, name, x)
    n_features = x.shape[-1]
    if tuple(values.shape) != (n_features,):
        raise InputError(
            f"{name}: expected shape (F,) = {shape_str((n_features,))} (one value per feature "
            f"of x), got {shape_str(values.shape)}"
        )
    if values.dtype == torch.bool or values.is_complex():
        raise InputError(f"{name}: expected real values, got dtype {values.dtype}")
    if values.is_floating_point() and not bool(torch.isfinite(values).all()):
        raise InputError(f"{name}: expected finite values, got {values.tolist()}")
    return values.to(x.dtype)


def forward_fill(
    x: Tensor,
    valid_mask: Tensor,
    fill: float | Tensor = 0.0,
    *,
    batch_first: bool = True,
) -> Tensor:
    """Replace each invalid reading by the last valid reading of the same feature.

    Vectorised (no Python loop over time): a running maximum over the indices of the
    valid positions finds, for every slot, the last valid step at or before it, and one
    gather reads the values there.

    Parameters
    ----------
    x
        ``(B, T, F)`` readings (``(T, B, F)`` if ``batch_first=False``). NaN and inf count
        as invalid whatever the mask says.
    valid_mask
        Bool or 0/1 mask of ``x``'s shape; True = valid reading.
    fill
        The value used before a feature's first valid reading: a number, or a ``(F,)``
        tensor (e.g. the per-feature means, as GRU-D does).
    batch_first
        Layout of ``x`` and ``valid_mask``.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``; finite wherever ``fill`` is.

    Examples
    --------
    >>> nan = float("nan")
    >>> x = torch.tensor([[[nan], [2.0], [nan], [5.0], [9.0]]])
    >>> valid = torch.tensor([[[1], [1], [0], [1], [0]]], dtype=torch.bool)
    >>> forward_fill(x, valid, fill=-1.0).flatten()
    tensor([-1.,  2.,  2.,  5.,  5.])
    """
    x = _readings(x, batch_first)
    observed = _observed(x, valid_mask, batch_first)
    fill_value = (
        _per_feature(fill, "fill", x)
        if isinstance(fill, Tensor)
        else torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    )
    t_dim = 1 if batch_first else 0
    steps = x.shape[t_dim]
    if steps == 0 or x.numel() == 0:
        return x.clone()
    shape = [1, 1, 1]
    shape[t_dim] = steps
    index = torch.arange(steps, device=x.device).view(shape)
    # The last valid step at or before t (-1: none yet), per sequence and feature.
    last = torch.where(observed, index, -1).cummax(dim=t_dim).values
    held = torch.gather(x, t_dim, last.clamp(min=0))
    return torch.where(last >= 0, held, fill_value)


def observed_means(x: Tensor, valid_mask: Tensor) -> Tensor:
    """Per-feature mean of the valid readings, over batch and time (GRU-D's empirical mean).

    Compute it on the training set and pass it to :func:`mean_fill` or :class:`DecayLSTM`.

    Parameters
    ----------
    x
        ``(B, T, F)`` or ``(T, B, F)`` readings; NaN and inf count as invalid.
    valid_mask
        Bool or 0/1 mask of ``x``'s shape.

    Returns
    -------
    Tensor
        ``(F,)``, in ``x``'s dtype; 0 for a feature with no valid reading at all.

    Examples
    --------
    >>> x = torch.tensor([[[1.0, float("nan")], [3.0, 4.0]]])
    >>> observed_means(x, torch.ones(1, 2, 2, dtype=torch.bool))
    tensor([2., 4.])
    """
    x = _readings(x)
    observed = _observed(x, valid_mask)
    total = null_invalid(x, observed).sum(dim=(0, 1))
    means = total / observed.sum(dim=(0, 1)).clamp(min=1)
    return means.to(x.dtype) if x.is_floating_point() else means


def mean_fill(x: Tensor, valid_mask: Tensor, means: Tensor | Sequence[float]) -> Tensor:
    """Replace each invalid reading by its feature's mean (GRU-mean's input).

    Parameters
    ----------
    x
        ``(B, T, F)`` (or ``(T, B, F)``) readings; NaN and inf count as invalid.
    valid_mask
        Bool or 0/1 mask of ``x``'s shape; True = valid reading.
    means
        ``(F,)`` finite values, one per feature, e.g. :func:`observed_means` of the
        training set.

    Returns
    -------
    Tensor
        Same shape and dtype as ``x``; always finite.

    Examples
    --------
    >>> x = torch.tensor([[[1.0, float("nan")], [3.0, 4.0]]])
    >>> valid = torch.tensor([[[True, True], [False, True]]])
    >>> mean_fill(x, valid, means=torch.tensor([10.0, 20.0]))
    tensor([[[ 1., 20.],
             [10.,  4.]]])
    """
    x = _readings(x)
    observed = _observed(x, valid_mask)
    return torch.where(observed, x, _per_feature(means, "means", x))


def add_mask_channels(x: Tensor, valid_mask: Tensor) -> Tensor:
    """Nulled readings followed by the mask as floats: ``(B, T, 2F)``.

    The first ``F`` channels are :func:`~lstm_zero_lib.zeroing.null_invalid` of ``x`` (0 at
    invalid readings); the last ``F`` are 1.0 where a reading was used and 0.0 where it
    was not, so a genuine zero (``[0, 1]``) and a missing reading (``[0, 0]``) differ.
    A reading that is NaN or inf counts as missing in the mask channel too.

    Parameters
    ----------
    x
        ``(B, T, F)`` (or ``(T, B, F)``) readings, floating point.
    valid_mask
        Bool or 0/1 mask of ``x``'s shape; True = valid reading.

    Returns
    -------
    Tensor
        ``(B, T, 2F)`` in ``x``'s dtype; always finite.

    Examples
    --------
    >>> x = torch.tensor([[[0.0], [float("nan")], [0.0]]])
    >>> valid = torch.tensor([[[True], [True], [False]]])
    >>> add_mask_channels(x, valid).squeeze(0)  # a true zero, a NaN, a dead sensor
    tensor([[0., 1.],
            [0., 0.],
            [0., 0.]])
    """
    x = _readings(x)
    if not x.is_floating_point():
        raise InputError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    observed = _observed(x, valid_mask)
    return torch.cat([null_invalid(x, observed), observed.to(x.dtype)], dim=-1)


def _timestamps(
    timestamps: object, batch: int, steps: int, like: Tensor, batch_first: bool
) -> Tensor:
    """Validate ``timestamps`` and return them ``(B, T)``, floating point."""
    stamps = require_tensor(timestamps, "timestamps")
    require_same_device(stamps, "timestamps", like, "valid_mask")
    allowed = {1: (steps,), 2: (batch, steps) if batch_first else (steps, batch)}
    expected = allowed.get(stamps.ndim)
    if expected is None or tuple(stamps.shape) != expected:
        raise InputError(
            f"timestamps: expected shape (T,) = {shape_str(allowed[1])} or "
            f"{_TIME_LAYOUT[batch_first]} = {shape_str(allowed[2])}, "
            f"got {shape_str(stamps.shape)}"
        )
    if stamps.dtype == torch.bool or stamps.is_complex():
        raise InputError(f"timestamps: expected real numbers, got dtype {stamps.dtype}")
    if not stamps.is_floating_point():
        stamps = stamps.to(torch.get_default_dtype())
    if stamps.ndim == 2 and not batch_first:
        stamps = stamps.t()
    stamps = stamps.expand(batch, steps)
    if not bool(torch.isfinite(stamps).all()):
        raise InputError("timestamps: expected finite values, got NaN or inf")
    if steps > 1 and not bool((stamps[:, 1:] >= stamps[:, :-1]).all()):
        raise InputError("timestamps: expected values non-decreasing along time")
    return stamps


def time_since_observed(
    valid_mask: Tensor,
    timestamps: Tensor | None = None,
    *,
    batch_first: bool = True,
) -> Tensor:
    """GRU-D's ``delta``: time since each feature was last observed, before each step.

    The recurrence of Che et al. (2018), with ``s`` the timestamps and ``m`` the mask::

        d[0] = 0
        d[t] = s[t] - s[t-1]            if m[t-1]
        d[t] = s[t] - s[t-1] + d[t-1]   otherwise

    is computed in closed form, without a loop over time:
    ``d[t] = s[t] - s[t']`` with ``t'`` the last observed step *before* ``t``, or
    ``s[t] - s[0]`` if there is none. Whether the feature is observed *at* ``t`` does not
    change ``d[t]``.

    Parameters
    ----------
    valid_mask
        ``(B, T, F)`` (``(T, B, F)`` if ``batch_first=False``) bool or 0/1 mask,
        True = observed. To count NaN readings as missing, pass
        ``valid_mask & torch.isfinite(x)``.
    timestamps
        Time of each step: ``(T,)`` shared by the batch, or ``(B, T)`` (``(T, B)``),
        finite and non-decreasing along time. ``None``: unit steps, ``s[t] = t``.
    batch_first
        Layout of ``valid_mask`` (and of 2-D ``timestamps``).

    Returns
    -------
    Tensor
        ``(B, T, F)`` (``(T, B, F)``), in the timestamps' floating dtype (the default dtype
        when ``timestamps`` is None or an integer tensor).

    Examples
    --------
    >>> m = torch.tensor([[[1], [0], [0], [1], [1]]])
    >>> time_since_observed(m).flatten()
    tensor([0., 1., 2., 3., 1.])
    >>> time_since_observed(m, torch.tensor([0.0, 0.5, 2.0, 2.5, 4.0])).flatten()
    tensor([0.0000, 0.5000, 2.0000, 2.5000, 1.5000])
    """
    mask = require_tensor(valid_mask, "valid_mask")
    require_ndim(mask, "valid_mask", (3,), _LAYOUT[batch_first])
    observed = as_bool_mask(mask, "valid_mask", None)
    if not batch_first:
        observed = observed.transpose(0, 1)
    batch, steps, n_features = observed.shape
    if timestamps is None:
        stamps = torch.arange(steps, dtype=torch.get_default_dtype(), device=mask.device)
        stamps = stamps.expand(batch, steps)
    else:
        stamps = _timestamps(timestamps, batch, steps, mask, batch_first)
    if steps == 0 or observed.numel() == 0:
        delta = stamps.new_zeros(batch, steps, n_features)
        return delta if batch_first else delta.transpose(0, 1)
    index = torch.arange(steps, device=mask.device).view(1, steps, 1)
    last_at = torch.where(observed, index, -1).cummax(dim=1).values
    # Last observed step strictly before t; "none" (-1) reads s[0], the recurrence's base.
    last_before = torch.cat([last_at.new_full((batch, 1, n_features), -1), last_at[:, :-1]], 1)
    s = stamps.unsqueeze(2).expand(batch, steps, n_features)
    delta = s - torch.gather(s, 1, last_before.clamp(min=0))
    return delta if batch_first else delta.transpose(0, 1)


class DecayLSTM(nn.Module):
    """GRU-D's trainable input decay toward the mean, feeding an ``nn.LSTM``.

    For each feature ``d`` and step ``t``, with ``m`` the mask (valid and finite),
    ``x'`` the last valid reading (:func:`forward_fill`, the mean before the first one),
    ``delta`` the time since it was read (:func:`time_since_observed`) and ``mean`` the
    feature's empirical mean (Che et al. 2018, Eqs. 4-5)::

        gamma = exp(-relu(w[d] * delta + b[d]))          # 1 just after a reading, -> 0
        x_hat = x                                 if m
        x_hat = gamma * x' + (1 - gamma) * mean   otherwise

    ``w`` and ``b`` are trained with the LSTM, so the model learns per feature how fast
    an old reading stops being informative. ``x_hat`` is selected with
    :func:`torch.where`, so NaN in invalid readings never reaches the LSTM or the
    gradients. As GRU-D does, the mask is also fed to the LSTM (``mask_channels=True``).
    GRU-D additionally decays the *hidden* state; that needs a per-step loop, so it is
    left out here and the fused ``nn.LSTM`` kernel runs unchanged. The input decay
    itself acts on the inputs only, so it does not depend on the recurrent cell: here it
    feeds an LSTM where GRU-D feeds a GRU.

    Parameters
    ----------
    n_features
        ``F``, the number of sensor features.
    hidden_size, num_layers, bias, batch_first, dropout, bidirectional
        As for ``nn.LSTM`` (``batch_first`` defaults to True here).
    means
        ``(F,)`` empirical means of the features (:func:`observed_means` of the training
        set); stored as a buffer, not trained.
    mask_channels
        Concatenate the mask (as floats) to ``x_hat``, so the LSTM gets ``2F`` inputs.
    decay_init
        Initial value of every ``w[d]`` (``b`` starts at 0). Must be positive so that the
        decay starts active: at ``w = b = 0``, ``relu`` passes no gradient. It suits
        timestamps in units where the gap between readings is of order 1; rescale the
        timestamps (or this value) otherwise.

    Attributes
    ----------
    lstm
        The ``nn.LSTM`` that reads ``x_hat`` (and the mask).
    decay_weight, decay_bias
        ``w`` and ``b``, ``(F,)`` each.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> model = DecayLSTM(n_features=3, hidden_size=5, means=torch.zeros(3))
    >>> x = torch.randn(2, 4, 3)
    >>> valid = torch.rand(2, 4, 3) > 0.5
    >>> x = torch.where(valid, x, float("nan"))  # missing readings may be NaN
    >>> out, (h_n, c_n) = model(x, valid)
    >>> out.shape, h_n.shape, bool(out.isfinite().all())
    (torch.Size([2, 4, 5]), torch.Size([1, 2, 5]), True)
    """

    means: Tensor  # a buffer (register_buffer in __init__): moves with .to(device)

    def __init__(
        self,
        n_features: int,
        hidden_size: int,
        means: Tensor | Sequence[float],
        *,
        num_layers: int = 1,
        mask_channels: bool = True,
        bias: bool = True,
        batch_first: bool = True,
        dropout: float = 0.0,
        bidirectional: bool = False,
        decay_init: float = 0.1,
    ) -> None:
        super().__init__()
        if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
            raise InputError(f"n_features: expected an int >= 1, got {n_features!r}")
        if not (math.isfinite(decay_init) and decay_init > 0):
            raise InputError(f"decay_init: expected a finite value > 0, got {decay_init!r}")
        if isinstance(means, Tensor):
            means = means.detach().cpu()  # a buffer: moves with the module's .to(device)
        like = torch.empty(0, n_features, dtype=torch.get_default_dtype())
        means = _per_feature(means, "means", like)
        self.register_buffer("means", means.clone())
        self.decay_weight = nn.Parameter(torch.full((n_features,), float(decay_init)))
        self.decay_bias = nn.Parameter(torch.zeros(n_features))
        self.n_features = n_features
        self.mask_channels = mask_channels
        self.batch_first = batch_first
        self.lstm = nn.LSTM(
            n_features * (2 if mask_channels else 1),
            hidden_size,
            num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
        )

    def decay(self, delta: Tensor) -> Tensor:
        """``gamma = exp(-relu(w * delta + b))`` for a ``(..., F)`` tensor of times.

        Examples
        --------
        >>> model = DecayLSTM(2, 4, means=[0.0, 0.0], decay_init=1.0)
        >>> model.decay(torch.tensor([[0.0, 1.0]]))
        tensor([[1.0000, 0.3679]], grad_fn=<ExpBackward0>)
        """
        return torch.exp(-torch.relu(self.decay_weight * delta + self.decay_bias))

    def impute(
        self, x: Tensor, valid_mask: Tensor, timestamps: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The decayed inputs ``x_hat`` and the mask actually used (valid and finite).

        Parameters
        ----------
        x, valid_mask, timestamps
            As for :meth:`forward`.

        Returns
        -------
        tuple of Tensor
            ``x_hat`` (``x``'s shape, finite) and the bool mask ``m``.

        Examples
        --------
        >>> model = DecayLSTM(1, 2, means=[10.0], decay_init=1.0)
        >>> x = torch.tensor([[[0.0], [float("nan")], [float("nan")]]])
        >>> x_hat, m = model.impute(x, torch.ones(1, 3, 1, dtype=torch.bool))
        >>> x_hat.flatten().detach()  # 0, then exp(-1) and exp(-2) of the way from 10 to 0
        tensor([0.0000, 6.3212, 8.6466])
        """
        x = _readings(x, self.batch_first)
        if x.shape[-1] != self.n_features:
            raise InputError(
                f"x: expected {self.n_features} features, shape "
                f"{_LAYOUT[self.batch_first][:-2]}{self.n_features}), got {shape_str(x.shape)}"
            )
        observed = _observed(x, valid_mask, self.batch_first)
        means = self.means.to(x.dtype)
        last = forward_fill(x, observed, fill=means, batch_first=self.batch_first)
        delta = time_since_observed(observed, timestamps, batch_first=self.batch_first)
        gamma = self.decay(delta.to(x.dtype))
        decayed = gamma * last + (1 - gamma) * means
        return torch.where(observed, x, decayed), observed

    def forward(
        self,
        x: Tensor,
        valid_mask: Tensor,
        timestamps: Tensor | None = None,
        hx: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Run the LSTM on the decayed inputs (and the mask).

        Parameters
        ----------
        x
            ``(B, T, F)`` readings (``(T, B, F)`` if ``batch_first=False``); NaN/inf count
            as missing.
        valid_mask
            Bool or 0/1 mask of ``x``'s shape; True = valid reading.
        timestamps
            ``(T,)`` or ``(B, T)`` (``(T, B)``) times of the steps, non-decreasing;
            ``None`` for unit steps. See :func:`time_since_observed`.
        hx
            Optional initial ``(h_0, c_0)``, as for ``nn.LSTM``.

        Returns
        -------
        tuple
            ``(output, (h_n, c_n))``, exactly what ``self.lstm`` returns.
        """
        x_hat, observed = self.impute(x, valid_mask, timestamps)
        inputs = torch.cat([x_hat, observed.to(x_hat.dtype)], -1) if self.mask_channels else x_hat
        result: tuple[Tensor, tuple[Tensor, Tensor]] = self.lstm(inputs, hx)
        return result
