"""lstm_zero_lib.zeroing: zero_timesteps, zero_features, null_invalid (NaN-safe, never x*mask)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lstm_zero_lib import null_invalid, zero_features, zero_timesteps

NAN, INF = float("nan"), float("inf")
numeric_masks = pytest.mark.parametrize(
    "dtype",
    [torch.bool, torch.int64, torch.uint8, torch.float32, torch.float64],
    ids=lambda d: str(d).removeprefix("torch."),
)


def _x(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _loop_zero_timesteps(x: Tensor, mask: Tensor) -> Tensor:
    out = x.clone()
    for i in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            if not mask[i, j]:
                out[i, j] = 0.0
    return out


# --------------------------------------------------------------------------- zero_timesteps


@numeric_masks
def test_zero_timesteps_values(dtype):
    x = _x(3, 4, 2)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 0]])
    out = zero_timesteps(x, mask.to(dtype))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, _loop_zero_timesteps(x, mask.bool()))


def test_zero_timesteps_time_major_layout():
    x = _x(4, 3, 2)  # (T, B, F)
    mask = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool).t()
    assert torch.equal(zero_timesteps(x, mask), _loop_zero_timesteps(x, mask))


def test_zero_timesteps_is_nan_safe_unlike_multiplication():
    mask = torch.tensor([[True, False, True], [False, True, True]])
    x = _x(2, 3, 2)
    x[~mask] = torch.tensor([NAN, INF])
    naive = x * mask.unsqueeze(-1)
    assert torch.isnan(naive).any(), "the contrast: nan * 0 is nan"
    out = zero_timesteps(x, mask)
    assert torch.isfinite(out).all()
    assert torch.all(out[~mask] == 0)
    assert torch.equal(out[mask], x[mask])


def test_zero_timesteps_gradient_nan_safe():
    mask = torch.tensor([[True, False, True], [False, True, True]])
    x = _x(2, 3, 2)
    x[~mask] = NAN
    x.requires_grad_()
    zero_timesteps(x, mask).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.all(x.grad[~mask] == 0) and torch.all(x.grad[mask] == 1)


def test_zero_timesteps_does_not_modify_input():
    x = _x(2, 3, 2)
    before = x.clone()
    zero_timesteps(x, torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(x, before)


# --------------------------------------------------------------------------- zero_features


def test_zero_features_per_feature_mask():
    x = _x(2, 3, 4)
    keep = torch.tensor([True, False, True, False])
    out = zero_features(x, keep)
    assert torch.all(out[..., ~keep] == 0)
    assert torch.equal(out[..., keep], x[..., keep])


@pytest.mark.parametrize("batch_first", [True, False])
def test_zero_features_per_step_mask(batch_first: bool):
    x = _x(2, 3, 4) if batch_first else _x(3, 2, 4)  # B=2, T=3, F=4
    keep = torch.tensor([[1, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)  # (T, F)
    out = zero_features(x, keep, batch_first=batch_first)
    xb = x if batch_first else x.transpose(0, 1)
    ob = out if batch_first else out.transpose(0, 1)
    expected = torch.where(keep.unsqueeze(0), xb, torch.zeros(()))
    assert torch.equal(ob, expected)


@pytest.mark.parametrize("batch_first", [True, False])
def test_zero_features_full_mask(batch_first: bool):
    x = _x(2, 3, 4)
    keep = _x(2, 3, 4, seed=1) > 0
    out = zero_features(x, keep, batch_first=batch_first)
    assert torch.all(out[~keep] == 0)
    assert torch.equal(out[keep], x[keep])


@numeric_masks
def test_zero_features_numeric_masks(dtype):
    x = _x(2, 3, 4)
    keep = torch.tensor([1, 0, 0, 1])
    assert torch.equal(zero_features(x, keep.to(dtype)), zero_features(x, keep.bool()))


def test_zero_features_nan_safe():
    x = _x(2, 3, 4)
    x[..., 1] = NAN
    x[..., 2] = -INF
    keep = torch.tensor([True, False, False, True])
    assert torch.isnan(x * keep).any()
    out = zero_features(x, keep)
    assert torch.isfinite(out).all()
    assert torch.all(out[..., 1:3] == 0)


# --------------------------------------------------------------------------- null_invalid


def _with_bad_values() -> tuple[Tensor, Tensor]:
    x = _x(2, 3, 2)
    valid = torch.ones(2, 3, 2, dtype=torch.bool)
    valid[0, 1, 0] = False  # an ordinary masked value
    valid[1, 2, :] = False
    x[0, 0, 1] = NAN  # NaN / inf where valid_mask is True
    x[1, 0, 0] = INF
    x[1, 1, 1] = -INF
    x[1, 2, 0] = NAN  # NaN where masked anyway
    return x, valid


@pytest.mark.parametrize("fill", [0.0, -1.0])
def test_null_invalid_fills_masked_and_nonfinite(fill: float):
    x, valid = _with_bad_values()
    out = null_invalid(x, valid, fill=fill)
    usable = valid & torch.isfinite(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.all(out[~usable] == fill)
    assert torch.equal(out[usable], x[usable])
    assert torch.isfinite(out).all()


def test_null_invalid_default_fill_is_zero():
    x, valid = _with_bad_values()
    out = null_invalid(x, valid)
    assert torch.all(out[~(valid & torch.isfinite(x))] == 0)


@numeric_masks
def test_null_invalid_numeric_masks(dtype):
    x, valid = _with_bad_values()
    assert torch.equal(null_invalid(x, valid.to(dtype)), null_invalid(x, valid))


def test_null_invalid_gradient_nan_safe():
    x, valid = _with_bad_values()
    x.requires_grad_()
    null_invalid(x, valid).sum().backward()
    usable = valid & torch.isfinite(x.detach())
    assert torch.isfinite(x.grad).all()
    assert torch.all(x.grad[~usable] == 0) and torch.all(x.grad[usable] == 1)


def test_null_invalid_does_not_modify_input():
    x, valid = _with_bad_values()
    before = x.clone()
    null_invalid(x, valid)
    assert torch.equal(torch.nan_to_num(x), torch.nan_to_num(before))
    assert torch.equal(torch.isnan(x), torch.isnan(before))
