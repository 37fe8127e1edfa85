"""Multivariate sensor streams with dropouts, stuck-at-zero faults and genuine zeros."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ...errors import InputError
from ._base import Examples

__all__ = ["SENSOR_NAMES", "FAULTS", "SensorData", "make_sensor_data"]

#: The four sensors, in feature order. ``flow`` and ``load`` are often exactly zero.
SENSOR_NAMES = ("temperature", "pressure", "flow", "load")

#: Meaning of the codes in :attr:`SensorData.fault`.
FAULTS = ("ok", "dropout", "burst", "outage", "stuck_at_zero")

# Share of the target missing rate taken by each structured mechanism (random dropouts
# make up the rest), and the length of their runs in steps.
_BURST_SHARE, _BURST_LEN = 0.25, 4
_OUTAGE_SHARE, _OUTAGE_LEN = 0.10, 3
_STUCK_SHARE, _STUCK_LEN = 0.10, 6
_PHI = 0.85  # autocorrelation of the latent signals per unit of time
_COMMON = 0.5  # share of each latent signal's variance that all sensors have in common


@dataclass(frozen=True)
class SensorData(Examples):
    """Sensor readings as logged, the truth behind them, and a target to predict.

    Attributes
    ----------
    x
        ``(N, T, F)`` float32 readings **as the logger delivers them**: NaN where a reading
        was lost (random dropouts, bursts, outages), exactly 0.0 where a sensor was stuck
        at zero, the true value elsewhere. ``x`` alone cannot tell a stuck sensor from a
        genuine zero: use :attr:`valid`.
    values
        ``(N, T, F)`` the true values (no missing entries). ``flow`` and ``load`` are
        genuinely 0.0 at roughly half and two thirds of the steps.
    valid
        ``(N, T, F)`` bool, True where ``x`` holds the true value.
    y
        ``(N,)`` float32 target, standardised over the data set (mean 0, std 1).
    timestamps
        ``(N, T)`` float32 reading times in minutes: 0 at the first step, irregular gaps
        between 0.5 and 1.5.
    fault
        ``(N, T, F)`` int8 cause of each invalid reading, an index into :data:`FAULTS`
        (0 = ``"ok"``, a valid reading).
    feature_names
        :data:`SENSOR_NAMES`.
    """

    x: Tensor
    values: Tensor
    valid: Tensor
    y: Tensor
    timestamps: Tensor
    fault: Tensor
    feature_names: tuple[str, ...] = SENSOR_NAMES

    @property
    def missing_rate(self) -> float:
        """Fraction of invalid readings."""
        return 1.0 - float(self.valid.float().mean()) if self.valid.numel() else 0.0


def _runs(shape: tuple[int, int, int], rate: float, length: int, gen: torch.Generator) -> Tensor:
    """Bool ``(N, T, C)``: runs of ``length`` steps, covering a fraction ``rate`` on average.

    Runs start independently at every step, including ``length - 1`` steps before the
    first one, with the probability that makes each step covered with probability ``rate``.
    """
    n, steps, channels = shape
    if rate <= 0 or steps == 0:
        return torch.zeros(shape, dtype=torch.bool)
    p_start = 1.0 - (1.0 - rate) ** (1.0 / length)
    starts = torch.rand(n, steps + length - 1, channels, generator=gen) < p_start
    window = starts.unfold(1, length, 1)  # (N, T, C, length): starts that cover step t
    return window.any(dim=-1)


def make_sensor_data(
    n: int,
    *,
    n_steps: int = 24,
    missing_rate: float = 0.2,
    informative: bool = False,
    seed: int = 0,
) -> SensorData:
    """Seeded sensor streams with a known target and four kinds of invalid readings.

    **Signals.** Four sensors (:data:`SENSOR_NAMES`) read smooth latent signals at
    irregular times (gaps uniform in 0.5-1.5 min). Each latent signal is a stationary
    Gaussian AR(1) process in continuous time (autocorrelation 0.85 per minute, variance
    1), half of whose variance is shared by all sensors, so a sensor can be partly inferred
    from the others. ``temperature`` and ``pressure`` read their latent signal;
    ``flow = max(0, latent)`` and ``load = max(0, latent - 0.5)`` are exactly zero much of
    the time: **genuine zero readings**.

    **Target.** ``y`` is the time average of the sum of the four true values,
    standardised over the data set: a quantity that needs every sensor at every step.

    **Invalid readings.** The mechanisms, each a fixed share of ``missing_rate``:

    * ``"outage"`` (10 %): the logger is offline for 3 steps: every sensor is NaN;
    * ``"burst"`` (25 %): one sensor drops out for 4 steps (NaN);
    * ``"stuck_at_zero"`` (10 %): one sensor reports 0.0 for 6 steps; flagged invalid in
      :attr:`SensorData.valid`, but indistinguishable from a genuine zero in ``x``;
    * ``"dropout"`` (the rest): single readings lost (NaN). With ``informative=False``
      they are chosen at random. With ``informative=True`` a sensor drops a reading
      preferentially when its true value is high, like a sensor that saturates: the
      readings dropped are those with the largest standardised true value plus noise
      (std 0.5). *Whether* a reading is missing then carries information about the
      value, and hence about ``y``.

    Dropouts top up the structured mechanisms so that the fraction of invalid readings
    is ``missing_rate`` (exactly, up to rounding, unless the structured mechanisms alone
    already exceed it). The true values and ``y`` depend on ``seed`` only, not on
    ``missing_rate`` or ``informative``, so data sets that differ only in those compare
    strategies on the same underlying signals.

    Parameters
    ----------
    n
        Number of sequences.
    n_steps
        ``T``, readings per sequence.
    missing_rate
        Target fraction of invalid readings, in ``[0, 1)``.
    informative
        Make the dropouts depend on the true values (missing not at random).
    seed
        Seed of the private generator; the global RNG is not touched.

    Returns
    -------
    SensorData

    Examples
    --------
    >>> data = make_sensor_data(64, missing_rate=0.5, seed=0)
    >>> data.x.shape, round(data.missing_rate, 2)
    (torch.Size([64, 24, 4]), 0.5)
    >>> bool(torch.equal(data.x[data.valid], data.values[data.valid]))
    True
    >>> stuck = data.fault == FAULTS.index("stuck_at_zero")
    >>> bool((data.x[stuck] == 0).all()), bool(data.x[~data.valid & ~stuck].isnan().all())
    (True, True)
    """
    if n < 0 or n_steps < 1:
        raise InputError(f"n, n_steps: expected n >= 0 and n_steps >= 1, got {n}, {n_steps}")
    if not 0.0 <= missing_rate < 1.0:
        raise InputError(f"missing_rate: expected a value in [0, 1), got {missing_rate}")
    gen = torch.Generator().manual_seed(seed)
    n_features = len(SENSOR_NAMES)
    shape = (n, n_steps, n_features)

    # Signals first, so they do not depend on the missingness settings.
    gaps = 0.5 + torch.rand(n, n_steps, generator=gen)
    gaps[:, 0] = 0.0
    timestamps = gaps.cumsum(dim=1)
    rho = _PHI ** gaps[:, 1:]  # per-step autocorrelation for the irregular gaps
    noise = torch.randn(n, n_steps, n_features + 1, generator=gen)  # + the common factor
    latent = torch.empty_like(noise)
    latent[:, 0] = noise[:, 0]
    for t in range(1, n_steps):  # AR(1) over time: T steps, vectorised over N and F
        r = rho[:, t - 1 : t]
        latent[:, t] = r * latent[:, t - 1] + torch.sqrt(1 - r**2) * noise[:, t]
    mixed = math.sqrt(_COMMON) * latent[:, :, -1:] + math.sqrt(1 - _COMMON) * latent[:, :, :-1]
    values = torch.stack(
        [
            mixed[..., 0],
            mixed[..., 1],
            torch.relu(mixed[..., 2]),
            torch.relu(mixed[..., 3] - 0.5),
        ],
        dim=-1,
    )
    y = values.mean(dim=1).sum(dim=1)
    if n > 1:
        y = (y - y.mean()) / y.std()

    # Invalid readings: structured mechanisms, then dropouts up to the target rate.
    fault = torch.zeros(shape, dtype=torch.int8)
    outage = _runs((n, n_steps, 1), _OUTAGE_SHARE * missing_rate, _OUTAGE_LEN, gen)
    burst = _runs(shape, _BURST_SHARE * missing_rate, _BURST_LEN, gen)
    stuck = _runs(shape, _STUCK_SHARE * missing_rate, _STUCK_LEN, gen)
    for code, hit in (("stuck_at_zero", stuck), ("burst", burst), ("outage", outage)):
        fault = torch.where(hit, torch.tensor(FAULTS.index(code), dtype=torch.int8), fault)
    ok = fault == 0
    wanted = round(missing_rate * ok.numel()) - int((~ok).sum())
    if wanted > 0:
        if informative:
            mean, std = values.mean(dim=(0, 1)), values.std(dim=(0, 1)).clamp(min=1e-6)
            score = (values - mean) / std + 0.5 * torch.randn(shape, generator=gen)
        else:
            score = torch.rand(shape, generator=gen)
        score = torch.where(ok, score, -math.inf)  # only readings still valid can drop
        dropped = torch.zeros(ok.numel(), dtype=torch.bool)
        dropped[score.flatten().topk(wanted).indices] = True
        fault = torch.where(dropped.view(shape), FAULTS.index("dropout"), fault).to(torch.int8)
    valid = fault == 0
    stuck_now = fault == FAULTS.index("stuck_at_zero")
    x = torch.where(valid, values, torch.where(stuck_now, 0.0, math.nan))
    return SensorData(x, values, valid, y, timestamps, fault)
