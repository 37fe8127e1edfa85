"""Seeding, device choice and a small training loop for the chapters."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm  # plain bar: tqdm.auto warns without ipywidgets

from ..errors import InputError

__all__ = ["seed_everything", "get_device", "fit", "evaluate"]

Batch = Sequence[Tensor]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a fresh ``torch.Generator`` for loaders.

    Examples
    --------
    >>> g = seed_everything(0)
    >>> a = torch.rand(1); _ = seed_everything(0); bool(torch.equal(a, torch.rand(1)))
    True
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds code that still uses the legacy global RNG
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA when available, else CPU; ``prefer`` or ``$LSTM_ZERO_DEVICE`` override it.

    Examples
    --------
    >>> get_device("cpu")
    device(type='cpu')
    """
    choice = prefer or os.environ.get("LSTM_ZERO_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _to(batch: Batch, device: torch.device | None) -> list[Tensor]:
    return [t.to(device) if device is not None else t for t in batch]


def fit(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    epochs: int = 1,
    lr: float = 1e-2,
    device: torch.device | None = None,
    progress: bool = False,
) -> list[float]:
    """Train ``model`` with Adam; return the mean training loss of each epoch.

    Parameters
    ----------
    model
        Called as ``model(*inputs)`` where a batch is ``(*inputs, target)``.
    batches
        Re-iterable batches, e.g. a ``torch.utils.data.DataLoader`` with a seeded generator.
    loss_fn
        ``loss_fn(prediction, target) -> scalar``.
    progress
        Show a tqdm bar (on stderr; leave it off in notebooks validated by nbval).

    Examples
    --------
    >>> _ = seed_everything(0)
    >>> model = torch.nn.Linear(1, 1)
    >>> xs = torch.linspace(-1, 1, 32).unsqueeze(1)
    >>> mse = torch.nn.functional.mse_loss
    >>> losses = fit(model, [(xs, 3 * xs)], loss_fn=mse, epochs=200, lr=0.05)
    >>> losses[-1] < 0.01 * losses[0]
    True
    """
    if epochs < 1:
        raise InputError(f"epochs: expected >= 1, got {epochs}")
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in tqdm(range(epochs), desc="epochs", disable=not progress, leave=False):
        model.train()
        total, count = 0.0, 0
        for batch in batches:
            *inputs, target = _to(batch, device)
            optimiser.zero_grad()
            loss = loss_fn(model(*inputs), target)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(target)
            count += len(target)
        history.append(total / max(count, 1))
    return history


@torch.no_grad()
def evaluate(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    metric: Callable[[Tensor, Tensor], Tensor],
    device: torch.device | None = None,
) -> float:
    """Average ``metric(prediction, target)`` over batches, weighted by batch size, in eval mode.

    Examples
    --------
    >>> model = torch.nn.Identity()
    >>> batch = (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]))
    >>> evaluate(model, [batch], metric=lambda p, t: (p - t).abs().mean())
    1.0
    """
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        *inputs, target = _to(batch, device)
        total += float(metric(model(*inputs), target)) * len(target)
        count += len(target)
    return total / max(count, 1)
