"""lstm_zero_lib.missing and lstm_zero_lib.book.synthetic.sensors: fills, mask channels,
GRU-D's delta and input decay, checked against literal loops; NaN-safety; error messages."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from lstm_zero_lib import InputError
from lstm_zero_lib.book.synthetic.sensors import FAULTS, SENSOR_NAMES, SensorData, make_sensor_data
from lstm_zero_lib.missing import (
    DecayLSTM,
    add_mask_channels,
    forward_fill,
    mean_fill,
    observed_means,
    time_since_observed,
)

NAN, INF = float("nan"), float("inf")
mask_dtypes = pytest.mark.parametrize(
    "dtype", [torch.bool, torch.int64, torch.float32], ids=lambda d: str(d).removeprefix("torch.")
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _case(b: int = 3, t: int = 7, f: int = 2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Readings with NaN/inf poured into half the invalid slots, and a random mask."""
    x = torch.randn(b, t, f, generator=_gen(seed))
    valid = torch.rand(b, t, f, generator=_gen(seed + 1)) < 0.5
    poison = torch.tensor([NAN, INF, -INF, 7.0]).repeat(x.numel())[: x.numel()].view(x.shape)
    return torch.where(valid, x, poison), valid


def _loop_forward_fill(x: Tensor, valid: Tensor, fill: Tensor) -> Tensor:
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        for f in range(x.shape[2]):
            last = fill[f]
            for t in range(x.shape[1]):
                if valid[b, t, f] and math.isfinite(x[b, t, f]):
                    last = x[b, t, f]
                out[b, t, f] = last
    return out


def _loop_delta(valid: Tensor, stamps: Tensor) -> Tensor:
    """The GRU-D recurrence, literally; ``stamps`` is (B, T)."""
    b_size, steps, n_features = valid.shape
    delta = torch.zeros(b_size, steps, n_features, dtype=stamps.dtype)
    for b in range(b_size):
        for f in range(n_features):
            for t in range(1, steps):
                gap = stamps[b, t] - stamps[b, t - 1]
                delta[b, t, f] = gap if valid[b, t - 1, f] else gap + delta[b, t - 1, f]
    return delta


# ----------------------------------------------------------------------------- forward_fill


@mask_dtypes
def test_forward_fill_matches_loop(dtype):
    x, valid = _case()
    out = forward_fill(x, valid.to(dtype), fill=-3.0)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    assert torch.equal(out, _loop_forward_fill(x, valid, torch.full((2,), -3.0)))


def test_forward_fill_per_feature_fill_and_time_major():
    x, valid = _case(seed=4)
    fill = torch.tensor([10.0, -10.0])
    expected = _loop_forward_fill(x, valid, fill)
    assert torch.equal(forward_fill(x, valid, fill=fill), expected)
    tm = forward_fill(x.transpose(0, 1), valid.transpose(0, 1), fill=fill, batch_first=False)
    assert torch.equal(tm, expected.transpose(0, 1))


def test_forward_fill_is_nan_safe_and_sends_no_gradient_to_invalid_readings():
    x, valid = _case(seed=2)
    assert torch.isnan(x * valid).any(), "the contrast: nan * 0 is nan"
    x.requires_grad_(True)
    forward_fill(x, valid).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.all(x.grad[~valid] == 0)
    # Each valid reading's gradient counts the steps it is carried to (itself included).
    assert torch.all(x.grad[valid] >= 1)


def test_forward_fill_edge_cases():
    empty = torch.zeros(2, 0, 3)
    assert forward_fill(empty, torch.zeros(2, 0, 3, dtype=torch.bool)).shape == (2, 0, 3)
    x = torch.tensor([[[NAN], [NAN]]])
    assert forward_fill(x, torch.ones(1, 2, 1), fill=5.0).flatten().tolist() == [5.0, 5.0]


def test_forward_fill_errors():
    x, valid = _case()
    with pytest.raises(InputError, match=r"x: expected a 3-D tensor of shape \(B, T, F\)"):
        forward_fill(x[0], valid[0])
    with pytest.raises(InputError, match=r"valid_mask: expected shape \(3, 7, 2\).*got \(3, 7\)"):
        forward_fill(x, valid[..., 0])
    with pytest.raises(InputError, match=r"fill: expected shape \(F,\) = \(2,\).*got \(3,\)"):
        forward_fill(x, valid, fill=torch.zeros(3))
    with pytest.raises(InputError, match=r"valid_mask: expected only 0 and 1"):
        forward_fill(x, valid.float() * 0.5)
    with pytest.raises(InputError, match=r"valid_mask: expected a tensor on x's device cpu"):
        forward_fill(x, valid.to("meta"))


# ------------------------------------------------------------------ mean_fill, observed_means


def test_mean_fill_matches_loop_and_accepts_a_list():
    x, valid = _case(seed=3)
    out = mean_fill(x, valid, [1.5, -2.5])
    expected = x.clone()
    for idx in torch.cartesian_prod(*(torch.arange(s) for s in x.shape)).tolist():
        b, t, f = idx
        if not (valid[b, t, f] and math.isfinite(x[b, t, f])):
            expected[b, t, f] = [1.5, -2.5][f]
    assert torch.equal(out, expected)


def test_mean_fill_errors():
    x, valid = _case()
    with pytest.raises(InputError, match=r"means: expected shape \(F,\) = \(2,\).*got \(1, 2\)"):
        mean_fill(x, valid, torch.zeros(1, 2))
    with pytest.raises(InputError, match=r"means: expected finite values"):
        mean_fill(x, valid, torch.tensor([0.0, NAN]))
    with pytest.raises(InputError, match=r"means: expected a tensor or sequence"):
        mean_fill(x, valid, 0.0)


def test_observed_means_skips_invalid_and_non_finite_readings():
    x, valid = _case(seed=5)
    used = valid & torch.isfinite(x)
    expected = torch.stack([x[..., f][used[..., f]].mean() for f in range(2)])
    torch.testing.assert_close(observed_means(x, valid), expected)
    none = observed_means(torch.full((1, 2, 1), NAN), torch.ones(1, 2, 1))
    assert none.tolist() == [0.0]


# ------------------------------------------------------------------------ add_mask_channels


def test_add_mask_channels_layout_and_values():
    x, valid = _case(seed=6)
    out = add_mask_channels(x, valid)
    used = valid & torch.isfinite(x)
    assert out.shape == (3, 7, 4) and torch.isfinite(out).all()
    assert torch.equal(out[..., :2], torch.where(used, x, 0.0))
    assert torch.equal(out[..., 2:], used.float())


def test_add_mask_channels_tells_a_true_zero_from_a_missing_reading():
    x = torch.tensor([[[0.0], [NAN], [0.0]]])
    valid = torch.tensor([[[True], [True], [False]]])
    out = add_mask_channels(x, valid)[0]
    assert out[:, 0].tolist() == [0.0, 0.0, 0.0], "nulled values alone are identical"
    assert out[:, 1].tolist() == [1.0, 0.0, 0.0], "the mask channel is not"


def test_add_mask_channels_errors():
    with pytest.raises(InputError, match=r"x: expected a floating-point tensor"):
        add_mask_channels(torch.zeros(1, 2, 3, dtype=torch.long), torch.ones(1, 2, 3))
    with pytest.raises(
        InputError, match=r"valid_mask: expected shape \(1, 2, 3\).*got \(1, 2, 1\)"
    ):
        add_mask_channels(torch.zeros(1, 2, 3), torch.ones(1, 2, 1))


# ---------------------------------------------------------------------- time_since_observed


@pytest.mark.parametrize("stamps_kind", ["none", "shared", "per_row", "integer"])
def test_time_since_observed_matches_the_recurrence(stamps_kind):
    b, t, f = 4, 9, 3
    valid = torch.rand(b, t, f, generator=_gen(7)) < 0.4
    valid[0] = False  # a row never observed
    gaps = 0.1 + torch.rand(b, t, generator=_gen(8))
    stamps = {
        "none": None,
        "shared": gaps[0].cumsum(0),
        "per_row": gaps.cumsum(1),
        "integer": torch.arange(t) * 3,
    }[stamps_kind]
    out = time_since_observed(valid, stamps)
    if stamps is None:
        full = torch.arange(t, dtype=torch.float32).expand(b, t)
    else:
        full = stamps.to(out.dtype).expand(b, t)
    assert out.shape == (b, t, f) and out.dtype == torch.float32
    torch.testing.assert_close(out, _loop_delta(valid, full), atol=1e-5, rtol=1e-6)


def test_time_since_observed_time_major_and_float64():
    valid = torch.rand(3, 6, 2, generator=_gen(9)) < 0.5
    stamps = torch.rand(3, 6, generator=_gen(10), dtype=torch.float64).cumsum(1)
    expected = _loop_delta(valid, stamps)
    out = time_since_observed(valid.transpose(0, 1), stamps.t(), batch_first=False)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected.transpose(0, 1))
    assert time_since_observed(torch.zeros(2, 0, 3, dtype=torch.bool)).shape == (2, 0, 3)


def test_time_since_observed_errors():
    valid = torch.ones(2, 5, 3, dtype=torch.bool)
    with pytest.raises(InputError, match=r"valid_mask: expected a 3-D tensor.*got shape \(2, 5\)"):
        time_since_observed(valid[..., 0])
    with pytest.raises(InputError, match=r"timestamps: expected shape \(T,\) = \(5,\) or "):
        time_since_observed(valid, torch.arange(4.0))
    with pytest.raises(InputError, match=r"\(B, T\) = \(2, 5\), got \(5, 2\)"):
        time_since_observed(valid, torch.zeros(5, 2))
    with pytest.raises(InputError, match=r"timestamps: expected values non-decreasing"):
        time_since_observed(valid, torch.tensor([0.0, 1.0, 0.5, 2.0, 3.0]))
    with pytest.raises(InputError, match=r"timestamps: expected finite values"):
        time_since_observed(valid, torch.tensor([0.0, 1.0, NAN, 2.0, 3.0]))
    with pytest.raises(InputError, match=r"timestamps: expected a torch.Tensor"):
        time_since_observed(valid, [0, 1, 2, 3, 4])
    with pytest.raises(InputError, match=r"timestamps: expected a tensor on valid_mask's device"):
        time_since_observed(valid, torch.zeros(5, device="meta"))


# -------------------------------------------------------------------------------- DecayLSTM


def _decay_model(**kwargs) -> DecayLSTM:
    torch.manual_seed(0)
    return DecayLSTM(2, 5, means=torch.tensor([0.5, -1.0]), **kwargs)


def test_decay_lstm_impute_matches_the_gru_d_formula():
    x, valid = _case(b=2, t=6, seed=11)
    stamps = torch.rand(2, 6, generator=_gen(12)).cumsum(1)
    model = _decay_model(decay_init=0.7)
    with torch.no_grad():
        model.decay_bias.copy_(torch.tensor([0.2, -0.3]))
    x_hat, used = model.impute(x, valid, stamps)
    means = model.means
    last = _loop_forward_fill(x, valid, means)
    delta = _loop_delta(used, stamps)
    expected = x.clone()
    for b, t, f in torch.cartesian_prod(*(torch.arange(s) for s in x.shape)).tolist():
        if not used[b, t, f]:
            z = 0.7 * float(delta[b, t, f]) + [0.2, -0.3][f]
            gamma = math.exp(-max(0.0, z))
            expected[b, t, f] = gamma * last[b, t, f] + (1 - gamma) * means[f]
    assert torch.equal(used, valid & torch.isfinite(x))
    torch.testing.assert_close(x_hat.detach(), expected)


@pytest.mark.parametrize(
    ("kwargs", "in_size", "out_width", "n_states"),
    [
        ({}, 4, 5, 1),
        ({"mask_channels": False}, 2, 5, 1),
        ({"num_layers": 2, "bidirectional": True}, 4, 10, 4),
    ],
)
def test_decay_lstm_shapes_and_gradients(kwargs, in_size, out_width, n_states):
    model = _decay_model(**kwargs)
    assert model.lstm.input_size == in_size
    x, valid = _case(b=3, t=6, seed=13)
    x.requires_grad_(True)
    out, (h_n, c_n) = model(x, valid)
    assert out.shape == (3, 6, out_width)
    assert h_n.shape == c_n.shape == (n_states, 3, 5)
    (out.sum() + h_n.sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert torch.all(x.grad[~(valid & torch.isfinite(x.detach()))] == 0)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.decay_weight.grad.abs().sum() > 0, "the decay is trained"


def test_decay_lstm_time_major_equals_batch_first():
    x, valid = _case(b=3, t=5, seed=14)
    bf = _decay_model()
    tm = _decay_model(batch_first=False)
    tm.load_state_dict(bf.state_dict())
    out_bf, (h_bf, _) = bf(x, valid)
    out_tm, (h_tm, _) = tm(x.transpose(0, 1), valid.transpose(0, 1))
    torch.testing.assert_close(out_tm.transpose(0, 1), out_bf)
    torch.testing.assert_close(h_tm, h_bf)


def test_decay_lstm_errors():
    with pytest.raises(InputError, match=r"means: expected shape \(F,\) = \(2,\).*got \(3,\)"):
        DecayLSTM(2, 4, means=torch.zeros(3))
    with pytest.raises(InputError, match=r"decay_init: expected a finite value > 0"):
        DecayLSTM(2, 4, means=[0.0, 0.0], decay_init=0.0)
    with pytest.raises(InputError, match=r"n_features: expected an int >= 1"):
        DecayLSTM(0, 4, means=[])
    model = _decay_model()
    with pytest.raises(InputError, match=r"x: expected 2 features, shape \(B, T, 2\).*\(1, 4, 3\)"):
        model(torch.zeros(1, 4, 3), torch.ones(1, 4, 3))
    with pytest.raises(InputError, match=r"valid_mask: expected shape \(1, 4, 2\)"):
        model(torch.zeros(1, 4, 2), torch.ones(1, 4))


# ------------------------------------------------------------------------- sensor generator


def test_sensor_data_is_seeded_and_has_the_promised_structure():
    data = make_sensor_data(96, missing_rate=0.5, seed=3)
    again = make_sensor_data(96, missing_rate=0.5, seed=3)
    assert isinstance(data, SensorData) and len(data) == 96
    assert data.feature_names == SENSOR_NAMES
    for name in ("x", "values", "valid", "y", "timestamps", "fault"):
        assert torch.equal(getattr(data, name).nan_to_num(), getattr(again, name).nan_to_num())
    assert data.x.shape == data.values.shape == (96, 24, 4)
    assert abs(data.missing_rate - 0.5) < 1e-3
    assert torch.equal(data.x[data.valid], data.values[data.valid])
    assert torch.equal(data.valid, data.fault == 0)
    stuck = data.fault == FAULTS.index("stuck_at_zero")
    assert stuck.any() and torch.all(data.x[stuck] == 0)
    assert torch.isnan(data.x[~data.valid & ~stuck]).all()
    outage = data.fault == FAULTS.index("outage")
    assert outage.any() and torch.equal(outage.all(-1), outage.any(-1)), "outages hit every sensor"
    assert all((data.fault == FAULTS.index(k)).any() for k in ("dropout", "burst"))
    genuine_zero = (data.values == 0).float().mean(dim=(0, 1))
    assert genuine_zero[:2].tolist() == [0.0, 0.0] and torch.all(genuine_zero[2:] > 0.3)
    assert torch.all(data.timestamps[:, 1:] > data.timestamps[:, :-1])
    assert abs(float(data.y.mean())) < 1e-5 and abs(float(data.y.std()) - 1) < 1e-5
    part = data[:10]
    assert len(part) == 10 and torch.equal(part.y, data.y[:10])


def test_sensor_truth_does_not_depend_on_missingness_settings():
    base = make_sensor_data(32, missing_rate=0.0, seed=1)
    assert base.missing_rate == 0.0 and torch.equal(base.x, base.values)
    for rate, informative in ((0.2, False), (0.8, True)):
        other = make_sensor_data(32, missing_rate=rate, informative=informative, seed=1)
        assert torch.equal(other.values, base.values) and torch.equal(other.y, base.y)
        assert abs(other.missing_rate - rate) < 1e-3


def test_informative_dropouts_hit_high_values():
    random = make_sensor_data(128, missing_rate=0.5, seed=2)
    informative = make_sensor_data(128, missing_rate=0.5, informative=True, seed=2)
    dropout = FAULTS.index("dropout")
    z = (random.values - random.values.mean((0, 1))) / random.values.std((0, 1))
    assert abs(float(z[random.fault == dropout].mean())) < 0.1
    assert float(z[informative.fault == dropout].mean()) > 0.5


def test_sensor_data_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"missing_rate: expected a value in \[0, 1\), got 1.0"):
        make_sensor_data(4, missing_rate=1.0)
    with pytest.raises(ValueError, match=r"n, n_steps"):
        make_sensor_data(4, n_steps=0)


# ------------------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_missing_helpers_on_cuda_match_cpu():
    x, valid = _case(b=3, t=8, seed=15)
    stamps = torch.rand(3, 8, generator=_gen(16)).cumsum(1)
    model = _decay_model()
    out_cpu, (h_cpu, _) = model(x, valid, stamps)
    gpu = model.cuda()
    out_gpu, (h_gpu, _) = gpu(x.cuda(), valid.cuda(), stamps.cuda())
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(h_gpu.cpu(), h_cpu, atol=1e-5, rtol=1e-4)
    assert torch.equal(forward_fill(x.cuda(), valid.cuda()).cpu(), forward_fill(x, valid))
    used = valid & torch.isfinite(x)
    torch.testing.assert_close(
        time_since_observed(used.cuda(), stamps.cuda()).cpu(), time_since_observed(used, stamps)
    )
    with pytest.raises(InputError, match=r"timestamps: expected a tensor on valid_mask's device"):
        time_since_observed(used.cuda(), stamps)
