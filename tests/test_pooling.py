"""Pooling over valid steps: last_valid, masked_mean, masked_max, masked_softmax, masked_loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstm_zero_lib import (
    MaskedLSTM,
    MaskError,
    last_valid,
    masked_loss,
    masked_max,
    masked_mean,
    masked_softmax,
)

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


# --------------------------------------------------------------------------- masked_loss

N_CLASSES = 3


def _class_targets(seed: int = 5) -> Tensor:
    return torch.randint(0, N_CLASSES, (4, 5), generator=torch.Generator().manual_seed(seed))


def _loop_loss(loss_fn, input: Tensor, target: Tensor) -> Tensor:
    """The obvious oracle: gather the valid (b, t) pairs one by one, then one loss call."""
    pairs = [(b, t) for b in range(MASK.shape[0]) for t in range(MASK.shape[1]) if MASK[b, t]]
    return loss_fn(
        torch.stack([input[b, t] for b, t in pairs]), torch.stack([target[b, t] for b, t in pairs])
    )


CASES = {
    # name: (loss_fn, input (B, T, ...), target (B, T, ...))
    "cross_entropy": (F.cross_entropy, lambda: _values(N_CLASSES), _class_targets),
    "mse": (F.mse_loss, lambda: _values(), lambda: _values(seed=7)),
    "mse_vector": (nn.MSELoss(), lambda: _values(2), lambda: _values(2, seed=7)),
    "l1_sum": (nn.L1Loss(reduction="sum"), lambda: _values(), lambda: _values(seed=7)),
}
cases = pytest.mark.parametrize("case", list(CASES))


def _poisoned_target(target: Tensor) -> Tensor:
    if target.is_floating_point():
        return _poisoned(target)
    out = target.clone()
    out[~MASK] = 0  # class indices cannot be NaN; any in-range class must not matter
    return out


@layouts
@cases
def test_masked_loss_matches_loop_oracle_despite_nan_inf(batch_first: bool, case: str):
    loss_fn, make_input, make_target = CASES[case]
    clean_input, clean_target = make_input(), make_target()
    expected = _loop_loss(loss_fn, clean_input, clean_target)

    poisoned = _poisoned(clean_input).requires_grad_()
    got = masked_loss(
        loss_fn,
        _layout(poisoned, batch_first),
        _layout(_poisoned_target(clean_target), batch_first),
        _layout(MASK, batch_first),
        batch_first=batch_first,
    )
    torch.testing.assert_close(got, expected)
    got.backward()
    assert poisoned.grad is not None
    assert torch.isfinite(poisoned.grad).all()
    assert torch.all(poisoned.grad[~MASK] == 0), "masked steps get exactly zero gradient"

    reference = clean_input.clone().requires_grad_()
    _loop_loss(loss_fn, reference, clean_target).backward()
    torch.testing.assert_close(poisoned.grad, reference.grad)


def test_masked_loss_selecting_after_the_loss_leaks_nan_into_the_gradient():
    """The bug masked_loss exists for: the value is protected, the gradient is not."""
    pred = torch.tensor([[1.0, 2.0, NAN]], requires_grad=True)
    target = torch.zeros(1, 3)
    keep = torch.tensor([[True, True, False]])
    per_step = F.mse_loss(pred, target, reduction="none")
    after = per_step[keep].mean()
    assert torch.isfinite(after)
    after.backward()
    assert pred.grad is not None and torch.isnan(pred.grad).any()

    pred.grad = None
    masked_loss(F.mse_loss, pred, target, keep).backward()
    assert pred.grad.tolist() == [[1.0, 2.0, 0.0]]


@cases
def test_masked_loss_all_masked_is_zero_and_attached(case: str):
    loss_fn, make_input, make_target = CASES[case]
    nothing = torch.zeros(4, 5, dtype=torch.bool)
    pred = torch.full_like(make_input(), NAN).requires_grad_()
    loss = masked_loss(loss_fn, pred, make_target(), nothing)
    assert loss.shape == () and loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert pred.grad is not None and torch.all(pred.grad == 0)


def test_masked_loss_reduction_none_gives_one_entry_per_valid_step():
    pred, target = _values(), _values(seed=7)
    got = masked_loss(nn.MSELoss(reduction="none"), pred, target, MASK)
    assert got.shape == (int(MASK.sum()),)
    torch.testing.assert_close(got, (pred - target)[MASK] ** 2)
    empty = masked_loss(nn.MSELoss(reduction="none"), pred, target, torch.zeros_like(MASK))
    assert empty.shape == (0,)


def test_masked_loss_trains_a_masked_lstm_with_nan_padding():
    """End-to-end: a per-step head on MaskedLSTM, NaN in every padded input and target."""
    torch.manual_seed(0)
    encoder, head = MaskedLSTM(2, 3), nn.Linear(3, N_CLASSES)
    x = torch.where(MASK.unsqueeze(-1), torch.randn(4, 5, 2), NAN).requires_grad_()
    loss = masked_loss(F.cross_entropy, head(encoder(x, MASK)[0]), _class_targets(), MASK)
    loss.backward()
    assert torch.isfinite(loss)
    assert x.grad is not None and torch.all(x.grad[~MASK] == 0) and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in [*encoder.parameters(), *head.parameters()])


@pytest.mark.parametrize(
    ("input_shape", "target_shape", "mask_shape", "batch_first", "words"),
    [
        ((4,), (4,), (4, 5), True, ["input:", "at least 2 dims", "(B, T)", "(4,)"]),
        ((4, 5, 3), (4, 6), (4, 5), True, ["target:", "(4, 5)[, ...]", "(4, 6)"]),
        ((4, 5, 3), (5,), (4, 5), True, ["target:", "(4, 5)[, ...]", "(5,)"]),
        ((4, 5, 3), (4, 5), (5, 4), True, ["mask:", "(4, 5)", "(B, T)", "(5, 4)"]),
        ((5, 4, 3), (5, 4), (4, 5), False, ["mask:", "(5, 4)", "(T, B)", "(4, 5)"]),
    ],
)
def test_masked_loss_bad_shapes_raise_mask_error(
    input_shape: tuple[int, ...],
    target_shape: tuple[int, ...],
    mask_shape: tuple[int, ...],
    batch_first: bool,
    words: list[str],
):
    with pytest.raises(MaskError) as info:
        masked_loss(
            F.mse_loss,
            torch.zeros(input_shape),
            torch.zeros(target_shape),
            torch.ones(mask_shape, dtype=torch.bool),
            batch_first=batch_first,
        )
    for word in words:
        assert word in str(info.value)


def test_masked_loss_rejects_non_tensors_and_soft_masks():
    with pytest.raises(MaskError, match="target: expected a torch.Tensor"):
        masked_loss(F.mse_loss, torch.zeros(4, 5), [[0.0] * 5] * 4, MASK)  # type: ignore[arg-type]
    with pytest.raises(MaskError, match="mask: expected only 0 and 1"):
        masked_loss(F.mse_loss, torch.zeros(4, 5), torch.zeros(4, 5), torch.full((4, 5), 0.5))
