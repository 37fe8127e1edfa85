"""Shared test helpers for the lstm_zero_lib core tests.

* ``oracle``: a per-sequence reference written here, independently of ``lstm_zero_lib``:
  loop over the batch, run the *same* ``nn.LSTM`` on ``x[b][mask[b]]`` alone (with the row's
  initial state when ``hx`` is given) and put the outputs back at the valid steps.
* ``pattern_mask`` / ``make_x`` / ``make_hx``: small deterministic inputs.
* The hypothesis profile ``ci`` (derandomized, no example database) so that the suite is
  deterministic; it is loaded here, before any test module is imported.

Helpers are exposed as session-scoped fixtures (not imported from this file) so that the
suite works in every pytest import mode and with hypothesis' ``@given``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, settings
from torch import Tensor, nn

# Tiny tensors gain nothing from intra-op threads, and on a 2-core machine shared with
# pytest-xdist workers or other jobs, OpenMP spin-waiting can slow the suite tenfold.
torch.set_num_threads(1)

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("ci")

BATCH = 4
STEPS = 6
FEATURES = 3
HIDDEN = 5

# Rows of (BATCH, STEPS) masks in batch-first layout; True = valid.
_MASK_ROWS: dict[str, list[list[int]]] = {
    "full": [[1] * STEPS] * BATCH,
    "right": [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
    ],
    "left": [
        [1, 1, 1, 1, 1, 1],
        [0, 0, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 1, 1, 1],
    ],
    "gaps": [
        [1, 0, 1, 1, 0, 1],
        [0, 1, 1, 0, 0, 1],
        [1, 1, 0, 1, 1, 1],
        [0, 0, 0, 1, 0, 0],
    ],
    "all_masked": [
        [0, 0, 0, 0, 0, 0],
        [1, 1, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1],
    ],
}
MASK_PATTERNS = list(_MASK_ROWS)


def _place_outputs(y: Tensor, valid: list[int], steps: int, hidden: int, masked_output: str):
    """Scatter the ``(len(valid), D*H)`` outputs of one sequence back onto ``steps`` steps."""
    width = y.shape[-1]
    bidirectional = width == 2 * hidden
    zeros = y.new_zeros(width)
    rows = []
    k = 0  # number of valid steps strictly before t
    for t in range(steps):
        if k < len(valid) and valid[k] == t:
            rows.append(y[k])
            k += 1
        elif masked_output == "zero":
            rows.append(zeros)
        else:  # "carry": forward = last valid before t, backward = next valid after t
            fwd = y[k - 1, :hidden] if k > 0 else zeros[:hidden]
            if not bidirectional:
                rows.append(fwd)
            else:
                bwd = y[k, hidden:] if k < len(valid) else zeros[hidden:]
                rows.append(torch.cat([fwd, bwd]))
    return torch.stack(rows) if rows else y.new_zeros(0, width)


def oracle_forward(
    lstm: nn.LSTM | nn.GRU | nn.RNN,
    x: Tensor,
    mask: Tensor,
    hx: tuple[Tensor, Tensor] | Tensor | None = None,
    masked_output: str = "zero",
) -> tuple[Tensor, tuple[Tensor, Tensor] | Tensor]:
    """Run ``lstm`` on every sequence's valid steps alone; differentiable.

    An ``nn.GRU`` or ``nn.RNN`` takes and returns ``h`` alone instead of ``(h, c)``.
    """
    is_lstm = isinstance(lstm, nn.LSTM)
    batch_first = lstm.batch_first
    xb = x if batch_first else x.transpose(0, 1)
    mb = (mask if batch_first else mask.transpose(0, 1)).bool()
    batch, steps, _ = xb.shape
    directions = 2 if lstm.bidirectional else 1
    hidden = lstm.hidden_size
    n_states = lstm.num_layers * directions
    outs, hs, cs = [], [], []
    for b in range(batch):
        valid = mb[b].nonzero().flatten().tolist()
        if hx is None:
            h0 = xb.new_zeros(n_states, 1, hidden)
            c0 = xb.new_zeros(n_states, 1, hidden)
        else:
            h0 = (hx[0] if is_lstm else hx)[:, b : b + 1].contiguous()
            c0 = hx[1][:, b : b + 1].contiguous() if is_lstm else h0
        if valid:
            seq = xb[b, valid]  # (L, F)
            seq = seq.unsqueeze(0) if batch_first else seq.unsqueeze(1)
            y, state = lstm(seq, (h0, c0) if is_lstm else h0)
            h_n, c_n = state if is_lstm else (state, c0)
            y = y[0] if batch_first else y[:, 0]
        else:
            y = xb.new_zeros(0, directions * hidden)
            h_n, c_n = h0, c0
        outs.append(_place_outputs(y, valid, steps, hidden, masked_output))
        hs.append(h_n)
        cs.append(c_n)
    out = torch.stack(outs)
    if not batch_first:
        out = out.transpose(0, 1)
    if not is_lstm:
        return out, torch.cat(hs, dim=1)
    return out, (torch.cat(hs, dim=1), torch.cat(cs, dim=1))


def pattern_mask_fn(pattern: str, batch_first: bool = True) -> Tensor:
    """The named (BATCH, STEPS) test mask, laid out like x: (T, B) when not batch_first."""
    mask = torch.tensor(_MASK_ROWS[pattern], dtype=torch.bool)
    return mask if batch_first else mask.t().contiguous()


def make_x_fn(mask: Tensor, features: int = FEATURES, seed: int = 1) -> Tensor:
    """Random float32 input shaped like ``mask`` plus a feature dimension (masked slots too)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*mask.shape, features, generator=gen)


def make_hx_fn(lstm: nn.LSTM, batch: int, seed: int = 2) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (lstm.num_layers * (2 if lstm.bidirectional else 1), batch, lstm.hidden_size)
    return torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)


def poison_fn(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with its masked slots (mask is x.shape[:-1]) cycling through NaN, inf, -inf, 1e30."""
    bad = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30], dtype=x.dtype)
    filler = bad.repeat(x.numel() // 4 + 1)[: x.numel()].view(x.shape)
    return torch.where(mask.bool().unsqueeze(-1), x, filler)


def assert_close(actual: Tensor, expected: Tensor, atol: float = 1e-5) -> None:
    torch.testing.assert_close(actual, expected, atol=atol, rtol=0)


@pytest.fixture(scope="session")
def oracle() -> Callable[..., tuple[Tensor, tuple[Tensor, Tensor]]]:
    return oracle_forward


@pytest.fixture(scope="session")
def pattern_mask() -> Callable[..., Tensor]:
    return pattern_mask_fn


@pytest.fixture(scope="session")
def make_x() -> Callable[..., Tensor]:
    return make_x_fn


@pytest.fixture(scope="session")
def make_hx() -> Callable[..., tuple[Tensor, Tensor]]:
    return make_hx_fn


@pytest.fixture(scope="session")
def poison() -> Callable[[Tensor, Tensor], Tensor]:
    return poison_fn


@pytest.fixture(scope="session")
def close() -> Callable[..., None]:
    return assert_close


def says_fn(arg: str, *fragments: str) -> str:
    """Regex: the message names ``arg`` as a word and contains every fragment, any order."""
    parts = [rf"\b{re.escape(arg)}\b", *(re.escape(f) for f in fragments)]
    return "(?s)" + "".join(f"(?=.*{p})" for p in parts)


@pytest.fixture(scope="session")
def says() -> Callable[..., str]:
    """``pytest.raises(InputError, match=says("mask", "(4, 6)"))``: see ``says_fn``."""
    return says_fn


@contextmanager
def forced_held_input_fn(row_fill: bool) -> Iterator[None]:
    """Inside, every held input (``rnn._held_input``) is built by the row fill (True) or
    by ``masked_fill`` (False), whatever its size: small CPU inputs get only the latter."""
    from lstm_zero_lib import rnn

    with mock.patch.object(rnn, "_ROW_FILL_FROM", 0 if row_fill else 2**62):
        yield


@pytest.fixture(scope="session")
def forced_held_input() -> Callable[[bool], AbstractContextManager[None]]:
    """``with forced_held_input(row_fill):`` (usable under hypothesis' ``@given``)."""
    return forced_held_input_fn


@pytest.fixture
def held_input_way() -> Iterator[Callable[[bool], None]]:
    """``held_input_way(row_fill)``: :func:`forced_held_input_fn` for the rest of the test."""
    with ExitStack() as stack:
        yield lambda row_fill: stack.enter_context(forced_held_input_fn(row_fill))


@pytest.fixture(params=MASK_PATTERNS)
def mask_pattern(request: pytest.FixtureRequest) -> str:
    """Each named mask pattern: full, right, left, gaps, all_masked."""
    return request.param
