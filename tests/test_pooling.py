"""Pooling over valid steps: last_valid, masked_mean, masked_max, masked_softmax."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lstm_zero_lib import MaskedLSTM, last_valid, masked_max, masked_mean, masked_softmax

NAN, INF = float("nan"), float("inf")

# (B, T) = (4, 5): gaps, all-masked, left-padded, fully valid
MASK = torch.tensor(
    [[1, 0, 1, 1, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=torch.bool
)
layouts = pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tm"])


def _values(*trailing: int, seed: int = 0) -> Tensor:
    return torch.randn(4, 5, *trailing, generator=torch.Generator().manual_seed(seed))


def _layout(t: Tensor, batch_first: bool) -> Tensor:
    return t if batch_first else t.transpose(0, 1).contiguous()


def _poisoned(values: Tensor) -> Tensor:
    """values with NaN / +inf / -inf in the masked slots of MASK."""
    out = values.clone()
    filler = torch.tensor([NAN, INF, -INF]).repeat(out[~MASK].numel())[: out[~MASK].numel()]
    out[~MASK] = filler.view(out[~MASK].shape)
    return out


def _loop_pool(values: Tensor, reduce) -> Tensor:
    rows = []
    for b in range(values.shape[0]):
        valid = values[b][MASK[b]]
        rows.append(reduce(valid) if len(valid) else torch.zeros(values.shape[2:]))
    return torch.stack(rows)


# --------------------------------------------------------------------------- last_valid


@layouts
def test_last_valid(batch_first: bool):
    out = _values(3)
    got = last_valid(_layout(out, batch_first), _layout(MASK, batch_first), batch_first=batch_first)
    expected = torch.stack([out[0, 3], torch.zeros(3), out[2, 4], out[3, 4]])
    assert got.shape == (4, 3)
    assert torch.equal(got, expected)


def test_last_valid_ignores_nan_in_masked_slots():
    got = last_valid(_poisoned(_values(3)), MASK)
    assert torch.isfinite(got).all()
    assert torch.all(got[1] == 0)


@layouts
def test_last_valid_of_unidirectional_output_is_top_layer_h_n(batch_first: bool):
    torch.manual_seed(0)
    m = MaskedLSTM(2, 3, 2, batch_first=batch_first)
    mask = _layout(MASK, batch_first)
    x = torch.randn(*mask.shape, 2)
    out, (h_n, _) = m(x, mask)
    torch.testing.assert_close(last_valid(out, mask, batch_first=batch_first), h_n[-1])


# --------------------------------------------------------------------------- masked_mean


@layouts
@pytest.mark.parametrize("trailing", [(), (3,), (2, 3)], ids=["BT", "BTH", "BTHW"])
def test_masked_mean(batch_first: bool, trailing: tuple[int, ...]):
    values = _values(*trailing)
    got = masked_mean(
        _layout(_poisoned(values), batch_first),
        _layout(MASK, batch_first),
        batch_first=batch_first,
    )
    expected = _loop_pool(values, lambda v: v.mean(0))
    assert got.shape == (4, *trailing)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert torch.all(got[1] == 0), "all-masked row gives zeros"


def test_masked_mean_gradient_nan_safe():
    values = _poisoned(_values(3)).requires_grad_()
    masked_mean(values, MASK).sum().backward()
    assert torch.isfinite(values.grad).all()
    assert torch.all(values.grad[~MASK] == 0)
    torch.testing.assert_close(values.grad[0, 0], torch.full((3,), 1 / 3))


# --------------------------------------------------------------------------- masked_max


@layouts
@pytest.mark.parametrize("trailing", [(), (3,)], ids=["BT", "BTH"])
def test_masked_max(batch_first: bool, trailing: tuple[int, ...]):
    values = _values(*trailing) - 10.0  # all negative: a zero in a masked slot must not win
    got = masked_max(
        _layout(_poisoned(values), batch_first),
        _layout(MASK, batch_first),
        batch_first=batch_first,
    )
    expected = _loop_pool(values, lambda v: v.max(0).values)
    assert got.shape == (4, *trailing)
    assert torch.equal(got, expected)
    assert torch.all(got[1] == 0)


def test_masked_max_gradient_nan_safe():
    values = _poisoned(_values(3)).requires_grad_()
    masked_max(values, MASK).sum().backward()
    assert torch.isfinite(values.grad).all()
    assert torch.all(values.grad[~MASK] == 0)
    assert torch.all(values.grad.sum(1)[[0, 2, 3]] == 1), "one argmax per valid row and feature"


# --------------------------------------------------------------------------- masked_softmax


def _loop_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    out = torch.zeros_like(scores)
    for b in range(scores.shape[0]):
        if mask[b].any():
            out[b, mask[b]] = torch.softmax(scores[b, mask[b]], dim=0)
    return out


def test_masked_softmax_values():
    scores = _poisoned(_values())
    scores[0, 1] = 1e9  # a huge masked score must not win either
    got = masked_softmax(scores, MASK)
    assert torch.isfinite(got).all()
    assert torch.all(got[~MASK] == 0), "masked entries exactly 0"
    assert torch.all(got[1] == 0), "all-masked row gives zeros"
    torch.testing.assert_close(got.sum(-1)[[0, 2, 3]], torch.ones(3))
    torch.testing.assert_close(got, _loop_softmax(_values(), MASK))


def test_masked_softmax_other_dim():
    scores = torch.randn(5, 4, 3, generator=torch.Generator().manual_seed(1))  # (T, B, heads)
    mask = MASK.t().unsqueeze(-1).expand(5, 4, 3).clone()
    mask[:, 0, 1] = False  # one more all-masked column
    got = masked_softmax(scores, mask, dim=0)
    expected = _loop_softmax(
        scores.permute(1, 2, 0).reshape(12, 5), mask.permute(1, 2, 0).reshape(12, 5)
    )
    torch.testing.assert_close(got.permute(1, 2, 0).reshape(12, 5), expected)


def test_masked_softmax_gradient_nan_safe_and_correct():
    clean = _values()
    weights = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    scores = _poisoned(clean).requires_grad_()
    (masked_softmax(scores, MASK) * weights).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.all(scores.grad[~MASK] == 0)

    reference = clean.clone().requires_grad_()
    (_loop_softmax(reference, MASK) * weights).sum().backward()
    torch.testing.assert_close(scores.grad, reference.grad)


def test_masked_softmax_attention_over_lstm_outputs():
    """End-to-end: attention pooling of MaskedLSTM outputs ignores padding completely."""
    torch.manual_seed(0)
    m = MaskedLSTM(2, 3)
    score = nn.Linear(3, 1)
    x = torch.randn(4, 5, 2)
    x_padded = torch.where(MASK.unsqueeze(-1), x, torch.full_like(x, NAN))
    pooled = []
    for inp in (x, x_padded):
        out, _ = m(inp, MASK)
        weights = masked_softmax(score(out).squeeze(-1), MASK)
        pooled.append((weights.unsqueeze(-1) * out).sum(1))
    assert torch.isfinite(pooled[1]).all()
    torch.testing.assert_close(pooled[1], pooled[0])
