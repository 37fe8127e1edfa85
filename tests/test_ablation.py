"""lstm_zero_lib.ablation: ablate, feature_ablation, occlusion_map, permutation_importance.

Reference answers come from explicit loops, from linear "models" whose ablation effect is
known in closed form, from the per-sequence oracle (``reference_forward``) and, for
``feature_ablation`` and ``occlusion_map``, from ``captum.attr`` on the same model.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lstm_zero_lib import InputError, lengths_to_mask, reference_forward
from lstm_zero_lib.ablation import (
    _donors,
    ablate,
    feature_ablation,
    occlusion_map,
    permutation_importance,
)
from lstm_zero_lib.book.models import Classifier
from lstm_zero_lib.book.synthetic.attribution import make_attribution_task

B, T, F, H = 5, 7, 4, 6
NAN = float("nan")


def _x(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _mask() -> Tensor:
    return lengths_to_mask(torch.tensor([7, 5, 3, 6, 1]), max_len=T)


def _poisoned(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` with NaN in every padded slot."""
    return torch.where(mask.unsqueeze(2), x, torch.full((), NAN))


def _model(seed: int = 0) -> Classifier:
    """The book's shared classifier: plain run without a mask, exact masked run with one."""
    torch.manual_seed(seed)
    return Classifier(F, hidden=H, n_classes=3).eval()


@pytest.fixture(scope="module")
def model() -> Classifier:
    return _model()


# ------------------------------------------------------------------------------- ablate


def _loop_ablate(x: Tensor, keep: Tensor, values: Tensor, mask: Tensor | None) -> Tensor:
    out = x.clone()
    keep = keep.expand_as(x)
    values = values.expand_as(x)
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            if mask is not None and not mask[b, t]:
                continue
            for f in range(x.shape[2]):
                if not keep[b, t, f]:
                    out[b, t, f] = values[b, t, f]
    return out


@pytest.mark.parametrize("keep_shape", [(F,), (T, F), (B, T, F)], ids=["F", "TF", "BTF"])
@pytest.mark.parametrize("use_mask", [False, True], ids=["nomask", "mask"])
def test_ablate_matches_loop(keep_shape, use_mask):
    x = _x(B, T, F)
    keep = _x(*keep_shape, seed=1) > 0
    mask = _mask() if use_mask else None
    zero = torch.zeros(())
    assert torch.equal(ablate(x, keep, mask=mask), _loop_ablate(x, keep, zero, mask))
    base = _x(T, F, seed=2)
    assert torch.equal(ablate(x, keep, base, mask=mask), _loop_ablate(x, keep, base, mask))


def test_ablate_mean_uses_valid_steps_only_and_keeps_padding():
    x, mask = _x(B, T, F) + 3.0, _mask()
    poisoned = _poisoned(x, mask)
    out = ablate(poisoned, torch.zeros(F, dtype=torch.bool), "mean", mask=mask)
    expected = x[mask].mean(dim=0)  # (F,): mean over valid steps of all examples
    torch.testing.assert_close(out[mask], expected.expand(int(mask.sum()), F))
    assert torch.isnan(out[~mask]).all(), "padded positions are never replaced"


def test_ablate_mean_without_mask_is_the_feature_mean():
    x = _x(B, T, F)
    out = ablate(x, torch.tensor([False, True, True, True]), "mean")
    torch.testing.assert_close(out[:, :, 0], x[:, :, 0].mean().expand(B, T))
    assert torch.equal(out[:, :, 1:], x[:, :, 1:])


def test_ablate_is_nan_safe():
    x = _x(B, T, F)
    x[0, 0, 1] = NAN
    x[1, 2, 1] = float("inf")
    x[2, 3, 0] = NAN  # in a kept feature: stays
    keep = torch.tensor([True, False, True, True])
    naive = x * keep  # the contrast: nan * 0 is nan
    assert torch.isnan(naive[:, :, 1]).any()
    for baseline in ("zero", "mean"):
        out = ablate(x, keep, baseline)
        assert torch.isfinite(out[:, :, 1]).all()
        assert torch.isnan(out[2, 3, 0])
    # The mean leaves the non-finite entries out instead of becoming NaN itself.
    out = ablate(x, torch.zeros(F, dtype=torch.bool), "mean")
    finite = torch.isfinite(x[:, :, 1])
    torch.testing.assert_close(out[0, 0, 1], x[:, :, 1][finite].mean())


def test_ablate_gradient_flows_to_kept_entries_only():
    x = _x(B, T, F).requires_grad_()
    keep = torch.tensor([True, False, True, False])
    ablate(x, keep, "zero").sum().backward()
    assert torch.equal(x.grad, keep.float().expand(B, T, F))


@pytest.mark.parametrize("dtype", [torch.int64, torch.float32, torch.uint8])
def test_ablate_accepts_01_masks(dtype):
    x = _x(B, T, F)
    keep = torch.tensor([1, 0, 1, 1])
    assert torch.equal(ablate(x, keep.to(dtype)), ablate(x, keep.bool()))
    mask = _mask()
    assert torch.equal(ablate(x, keep, mask=mask.to(dtype)), ablate(x, keep, mask=mask))


def test_ablate_does_not_modify_its_input():
    x = _x(B, T, F)
    before = x.clone()
    ablate(x, torch.zeros(F, dtype=torch.bool), "mean", mask=_mask())
    assert torch.equal(x, before)


@pytest.mark.parametrize(
    ("kwargs", "arg", "fragments"),
    [
        ({"x": _x(T, F)}, "x", ["(B, T, F)", "(7, 4)"]),
        ({"x": torch.ones(B, T, F, dtype=torch.long)}, "x", ["floating-point", "int64"]),
        ({"keep_mask": torch.ones(F + 1)}, "keep_mask", ["(4,)", "(7, 4)", "(5,)"]),
        ({"keep_mask": torch.ones(T, F, 1)}, "keep_mask", ["(5, 7, 4)", "(7, 4, 1)"]),
        ({"keep_mask": torch.full((F,), 0.5)}, "keep_mask", ["0 and 1", "0.5"]),
        ({"mask": torch.ones(B, T + 1)}, "mask", ["(5, 7)", "(5, 8)"]),
        ({"baseline": "median"}, "baseline", ["'zero'", "'mean'", "'median'"]),
        ({"baseline": torch.zeros(3)}, "baseline", ["(5, 7, 4)", "(3,)"]),
        ({"baseline": 0.0}, "baseline", ["'zero'", "0.0"]),
    ],
)
def test_ablate_errors_name_argument_and_shapes(says, kwargs, arg, fragments):
    call = {"x": _x(B, T, F), "keep_mask": torch.ones(F, dtype=torch.bool)} | kwargs
    with pytest.raises(InputError, match=says(arg, *fragments)):
        ablate(**call)


# ---------------------------------------------------------------------- feature_ablation


def _loop_feature_ablation(score, x, groups, baseline, mask=None) -> Tensor:
    """One forward per group, through ``ablate``."""
    base = score(x) if mask is None else score(x, mask)
    cols = []
    for g in range(int(groups.max()) + 1):
        ablated = ablate(x, (groups != g).expand_as(x), baseline, mask=mask)
        cols.append(base - (score(ablated) if mask is None else score(ablated, mask)))
    return torch.stack(cols, dim=1)


def test_feature_ablation_linear_closed_form():
    weights = _x(T, F, seed=3)
    x = _x(B, T, F)
    groups = torch.tensor([0, 1, 1, 2])
    out = feature_ablation(lambda v: (v * weights).sum(dim=(1, 2)), x, groups)
    contrib = (x * weights).sum(dim=1)  # (B, F)
    expected = torch.stack([contrib[:, 0], contrib[:, 1] + contrib[:, 2], contrib[:, 3]], 1)
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("baseline", ["zero", "mean", "tensor"])
@pytest.mark.parametrize("groups_shape", ["F", "TF", "BTF"])
def test_feature_ablation_matches_loop_and_chunking(model, baseline, groups_shape):
    x = _x(B, T, F)
    shape = {"F": (F,), "TF": (T, F), "BTF": (B, T, F)}[groups_shape]
    groups = torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(4))
    base = _x(F, seed=5) if baseline == "tensor" else baseline
    score = lambda v: model(v)[:, 0]  # noqa: E731
    expected = _loop_feature_ablation(score, x, groups, base)
    for max_batch in (None, 1, 2 * B):
        out = feature_ablation(score, x, groups, baseline=base, max_batch=max_batch)
        assert out.shape == (B, int(groups.max()) + 1)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_feature_ablation_stacks_copies_into_few_calls(model):
    calls = []

    def score(v: Tensor) -> Tensor:
        calls.append(v.shape[0])
        return model(v)[:, 0]

    feature_ablation(score, _x(B, T, F), torch.arange(F))
    assert calls == [B, F * B], "one call for x, one for all four ablated copies"
    calls.clear()
    feature_ablation(score, _x(B, T, F), torch.arange(F), max_batch=2 * B)
    assert calls == [B, 2 * B, 2 * B]


def test_feature_ablation_equals_captum(model):
    captum_attr = pytest.importorskip("captum.attr")
    x = _x(B, T, F)
    y = torch.tensor([0, 1, 2, 1, 0])
    groups = torch.randint(0, 5, (T, F), generator=torch.Generator().manual_seed(6))
    ablator = captum_attr.FeatureAblation(model)
    for ours_baseline, captum_baseline in (
        ("zero", 0.0),
        (x.mean(dim=(0, 1)), x.mean(dim=(0, 1)).expand(1, T, F)),
    ):
        theirs = ablator.attribute(
            x, baselines=captum_baseline, target=y, feature_mask=groups.unsqueeze(0)
        )  # (B, T, F): each entry holds its group's attribution
        ours = feature_ablation(model, x, groups, baseline=ours_baseline, target=y)
        per_entry = ours.gather(1, groups.flatten().expand(B, -1)).view(B, T, F)
        torch.testing.assert_close(per_entry, theirs, atol=1e-5, rtol=0)
        # An int target, too.
        theirs = ablator.attribute(
            x, baselines=captum_baseline, target=2, feature_mask=groups.unsqueeze(0)
        )
        ours = feature_ablation(model, x, groups, baseline=ours_baseline, target=2)
        per_entry = ours.gather(1, groups.flatten().expand(B, -1)).view(B, T, F)
        torch.testing.assert_close(per_entry, theirs, atol=1e-5, rtol=0)


def test_feature_ablation_never_touches_padding(model):
    mask = _mask()
    x = _poisoned(_x(B, T, F), mask)
    seen = []

    def score(v: Tensor, m: Tensor) -> Tensor:
        assert m.shape == v.shape[:2]
        copies = v.shape[0] // B
        assert torch.equal(m, mask.repeat(copies, 1)), "the mask follows the stacked copies"
        assert torch.isnan(v[~m]).all(), "padding keeps its values: never ablated"
        seen.append(copies)
        return model(v, m)[:, 1]

    groups = torch.where(mask.unsqueeze(2), torch.arange(F), F)  # group F: the padding
    out = feature_ablation(score, x, groups, baseline="mean", mask=mask)
    assert seen == [1, F + 1]
    assert torch.isfinite(out).all(), "NaN in padding never reaches an attribution"
    assert torch.equal(out[:, F], torch.zeros(B)), "padding has exactly zero importance"


def test_feature_ablation_group_absent_from_an_example_scores_exactly_zero(model):
    # Group 0 is feature 0 of example 0 only; elsewhere nothing is ablated for it, so the
    # importance is exactly 0 there (not the ~1e-8 a larger stacked batch rounds to).
    x, mask = _x(B, T, F), _mask()
    groups = torch.arange(1, F + 1).repeat(B, T, 1)
    groups[0, :, 0] = 0
    out = feature_ablation(lambda v, m: model(v, m)[:, 1], x, groups, baseline="mean", mask=mask)
    assert out[0, 0] != 0, "where group 0 occurs, ablating it moves the score"
    assert torch.equal(out[1:, 0], torch.zeros(B - 1))


def test_feature_ablation_with_masked_lstm_equals_per_sequence_oracle(model):
    mask = _mask()
    x = _x(B, T, F)
    y = torch.tensor([2, 1, 0, 1, 2])

    def oracle(v: Tensor, m: Tensor) -> Tensor:
        _, (h, _) = reference_forward(model.lstm, v, m)
        return model.head(h[-1])

    groups = torch.arange(F)
    ours = feature_ablation(model, x, groups, baseline="mean", mask=mask, target=y)
    expected = feature_ablation(oracle, x, groups, baseline="mean", mask=mask, target=y)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    plain = feature_ablation(lambda v, m: model(v), x, groups, baseline="mean", mask=mask, target=y)
    assert (plain - expected).abs().max() > 1e-3, "a plain LSTM's run over padding differs"


def test_feature_ablation_empty_group_and_empty_batch():
    score = lambda v: v.sum(dim=(1, 2))  # noqa: E731
    out = feature_ablation(score, torch.ones(2, 3, 2), torch.tensor([0, 2]))
    assert torch.equal(out, torch.tensor([[3.0, 0.0, 3.0], [3.0, 0.0, 3.0]]))
    assert feature_ablation(score, torch.ones(0, 3, 2), torch.tensor([0, 1])).shape == (0, 2)


@pytest.mark.parametrize(
    ("kwargs", "arg", "fragments"),
    [
        ({"groups": torch.zeros(F)}, "groups", ["integer", "float32"]),
        ({"groups": torch.tensor([0, -1, 1, 2])}, "groups", [">= 0", "-1"]),
        ({"groups": torch.zeros(3, dtype=torch.long)}, "groups", ["(5, 7, 4)", "(3,)"]),
        ({"groups": torch.zeros(2, T, F, dtype=torch.long)}, "groups", ["(5, 7, 4)", "(2, 7, 4)"]),
        ({"mask": torch.ones(B + 1, T)}, "mask", ["(5, 7)", "(6, 7)"]),
        ({"target": torch.zeros(B + 1, dtype=torch.long)}, "target", ["(5,)", "(6,)"]),
        ({"target": torch.zeros(B)}, "target", ["integer", "float32"]),
        ({"target": 7}, "target", ["< C = 3", "7"]),
        ({"target": "a"}, "target", ["int", "str"]),
        ({"max_batch": 0}, "max_batch", ["positive", "0"]),
    ],
)
def test_feature_ablation_errors(says, model, kwargs, arg, fragments):
    fn = model if "target" in kwargs else (lambda v, m=None: model(v)[:, 0])
    call = {"groups": torch.arange(F)} | kwargs
    with pytest.raises(InputError, match=says(arg, *fragments)):
        feature_ablation(fn, _x(B, T, F), **call)


def test_feature_ablation_checks_forward_fn_output(says, model):
    x = _x(B, T, F)
    with pytest.raises(InputError, match=says("forward_fn", "(5,)", "(5, 3)", "target")):
        feature_ablation(model, x, torch.arange(F))
    with pytest.raises(InputError, match=says("forward_fn", "(5, C)", "(5,)")):
        feature_ablation(lambda v: model(v)[:, 0], x, torch.arange(F), target=0)
    with pytest.raises(InputError, match=says("forward_fn", "tensor", "float")):
        feature_ablation(lambda v: 1.0, x, torch.arange(F))


# ------------------------------------------------------------------------- occlusion_map


def test_occlusion_single_cells_of_a_linear_model_are_its_terms():
    weights = _x(T, F, seed=3)
    x = _x(B, T, F)
    score = lambda v: (v * weights).sum(dim=(1, 2))  # noqa: E731
    out = occlusion_map(score, x, window=(1, 1))
    torch.testing.assert_close(out, x * weights)
    torch.testing.assert_close(occlusion_map(score, x, window=(1, 1), reduce="mean"), out.mean(0))


@pytest.mark.parametrize(
    ("window", "stride"), [((2, 2), (1, 1)), ((3, 2), (2, 1)), ((T, 1), (1, 1)), ((4, 3), (3, 2))]
)
def test_occlusion_equals_captum(model, window, stride):
    captum_attr = pytest.importorskip("captum.attr")
    x = _x(B, T, F)
    y = torch.tensor([0, 1, 2, 1, 0])
    theirs = captum_attr.Occlusion(model).attribute(
        x, sliding_window_shapes=window, strides=stride, baselines=0.0, target=y
    )
    ours = occlusion_map(model, x, window=window, stride=stride, target=y)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_occlusion_with_disjoint_windows_is_feature_ablation(model):
    x = _x(B, T, F)
    t_id = torch.arange(T) // 2
    f_id = torch.arange(F) // 2
    groups = t_id.unsqueeze(1) * 2 + f_id.unsqueeze(0)  # (T, F) window ids
    score = lambda v: model(v)[:, 1]  # noqa: E731
    per_group = feature_ablation(score, x, groups, baseline="mean")
    expected = per_group.gather(1, groups.flatten().expand(B, -1)).view(B, T, F)
    out = occlusion_map(score, x, window=(2, 2), stride=(2, 2), baseline="mean")
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_occlusion_uncovered_cells_are_zero():
    score = lambda v: v.sum(dim=(1, 2))  # noqa: E731
    out = occlusion_map(score, torch.ones(1, 5, 1), window=(1, 1), stride=(2, 1))
    assert out.flatten().tolist() == [1.0, 0.0, 1.0, 0.0, 1.0]


def test_occlusion_is_length_aware(model):
    mask = _mask()
    x = _poisoned(_x(B, T, F), mask)

    def score(v: Tensor, m: Tensor) -> Tensor:
        assert torch.isnan(v[~m]).all(), "padding is never occluded"
        return model(v, m)[:, 0]

    per_example = occlusion_map(score, x, window=(2, 1), mask=mask)
    assert torch.isfinite(per_example).all()
    assert torch.equal(per_example[~mask], torch.zeros(int((~mask).sum()), F))
    mean = occlusion_map(score, x, window=(2, 1), mask=mask, reduce="mean")
    valid = mask.unsqueeze(2)
    expected = torch.where(valid, per_example, 0.0).sum(0) / mask.sum(0).unsqueeze(1)
    torch.testing.assert_close(mean, expected)
    # Step 6 is valid in one example only: its average is that example's value.
    torch.testing.assert_close(mean[6], per_example[0, 6])


@pytest.mark.parametrize(
    ("kwargs", "arg", "fragments"),
    [
        ({"window": (T + 1, 1)}, "window", ["T = 7", "(8, 1)"]),
        ({"window": (1, 0)}, "window", ["F = 4", "(1, 0)"]),
        ({"window": 2}, "window", ["pair", "2"]),
        ({"stride": (0, 1)}, "stride", [">= 1", "(0, 1)"]),
        ({"reduce": "sum"}, "reduce", ["'mean'", "'sum'"]),
        ({"mask": torch.ones(T, B)}, "mask", ["(5, 7)", "(7, 5)"]),
    ],
)
def test_occlusion_errors(says, kwargs, arg, fragments):
    call = {"window": (1, 1)} | kwargs
    with pytest.raises(InputError, match=says(arg, *fragments)):
        occlusion_map(lambda v: v.sum(dim=(1, 2)), _x(B, T, F), **call)


# ---------------------------------------------------------------- permutation_importance


@pytest.mark.parametrize("pattern", ["full", "right", "random"])
def test_donors_permute_valid_rows_within_each_step(pattern):
    gen = torch.Generator().manual_seed(7)
    rows, steps = 9, 6
    if pattern == "full":
        valid = torch.ones(rows, steps, dtype=torch.bool)
    elif pattern == "right":
        valid = lengths_to_mask(torch.randint(0, steps + 1, (rows,), generator=gen), steps)
    else:
        valid = torch.rand(rows, steps, generator=gen) > 0.4
    order = torch.randperm(rows, generator=gen)
    donors = _donors(valid, order)
    for t in range(steps):
        ok = valid[:, t]
        assert torch.equal(donors[~ok, t], torch.arange(rows)[~ok]), "padding stays put"
        assert sorted(donors[ok, t].tolist()) == torch.arange(rows)[ok].tolist()
    if pattern == "full":
        assert torch.equal(donors, order.unsqueeze(1).expand(rows, steps)), "one permutation"


def test_permutation_importance_linear_model():
    x = _x(64, T, F)
    weights = torch.tensor([2.0, 1.0, 0.0, 0.0])
    target = (x * weights).sum(dim=(1, 2))
    mse = lambda v: (((v * weights).sum(dim=(1, 2)) - target) ** 2).mean()  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    imp = permutation_importance(mse, x, torch.tensor([0, 1, 2, 2]), generator=gen)
    assert imp.shape == (3,) and imp.dtype == torch.float64
    assert imp[2] == 0.0, "an unused feature has exactly zero importance"
    # E[(sum w(x - x'))^2] = 2 T w^2 for independent unit-variance rows.
    assert 0.6 * 2 * T * 4 < imp[0] < 1.4 * 2 * T * 4
    assert 0.6 * 2 * T * 1 < imp[1] < 1.4 * 2 * T * 1


def test_permutation_importance_is_reproducible_and_moves_whole_sequences():
    x = _x(B, T, F)
    seen = []

    def metric(v: Tensor) -> Tensor:
        seen.append(v.clone())
        return v.sum() * 0.0

    kwargs = {"n_repeats": 2, "generator": torch.Generator().manual_seed(1)}
    permutation_importance(metric, x, torch.tensor([0, 0, 1, 1]), **kwargs)
    assert len(seen) == 1 + 2 * 2
    for v in seen[1:]:
        moved = (v != x).any(dim=(1, 2))
        for f in range(F):
            # each column block is some permutation of the examples' whole sequences
            rows = [int(torch.nonzero((x[:, :, f] == v[b, :, f]).all(dim=1))[0]) for b in range(B)]
            assert sorted(rows) == list(range(B))
        assert moved.any()
    first = [t.clone() for t in seen]
    seen.clear()
    kwargs["generator"] = torch.Generator().manual_seed(1)
    permutation_importance(metric, x, torch.tensor([0, 0, 1, 1]), **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(first, seen, strict=True))


def test_permutation_importance_never_moves_padding(model):
    mask = lengths_to_mask(torch.tensor([7, 5, 3, 6, 1, 7, 2, 4]), max_len=T)
    x = _poisoned(_x(8, T, F), mask)
    y = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1])
    shuffled = []

    def loss(v: Tensor, m: Tensor) -> Tensor:
        assert torch.equal(m, mask)
        assert torch.isnan(v[~m]).all() and torch.isfinite(v[m]).all()
        for t in range(T):  # valid values of a step are only exchanged among themselves
            a = v[:, t][m[:, t]].sort(dim=0).values
            assert torch.equal(a, x[:, t][m[:, t]].sort(dim=0).values)
        shuffled.append(v)
        return nn.functional.cross_entropy(model(v, m), y)

    groups = torch.arange(F).expand(T, F)
    imp = permutation_importance(loss, x, groups, mask=mask, n_repeats=3)
    assert imp.shape == (F,) and torch.isfinite(imp).all()
    assert len(shuffled) == 1 + 3 * F


@pytest.mark.parametrize(
    ("kwargs", "arg", "fragments"),
    [
        ({"groups": torch.zeros(B, T, F, dtype=torch.long)}, "groups", ["shared", "(5, 7, 4)"]),
        ({"groups": torch.zeros(F, dtype=torch.float32)}, "groups", ["integer", "float32"]),
        ({"n_repeats": 0}, "n_repeats", [">= 1", "0"]),
        ({"generator": 3}, "generator", ["torch.Generator", "int"]),
        ({"mask": torch.ones(B)}, "mask", ["(5, 7)", "(5,)"]),
    ],
)
def test_permutation_importance_errors(says, kwargs, arg, fragments):
    call = {"groups": torch.arange(F)} | kwargs
    with pytest.raises(InputError, match=says(arg, *fragments)):
        permutation_importance(lambda v, m=None: v.sum(), _x(B, T, F), **call)


def test_permutation_importance_checks_metric_is_scalar(says):
    with pytest.raises(InputError, match=says("metric_fn", "scalar", "(5,)")):
        permutation_importance(lambda v: v.sum(dim=(1, 2)), _x(B, T, F), torch.arange(F))


# -------------------------------------------------------------------------- data set


def test_attribution_task_ground_truth_and_determinism():
    task = make_attribution_task(50, n_steps=10, window=3, min_len=5, seed=3)
    again = make_attribution_task(50, n_steps=10, window=3, min_len=5, seed=3)
    assert torch.equal(task.x, again.x) and torch.equal(task.y, again.y)
    mask = task.mask
    assert torch.equal(task.x[~mask], torch.zeros(int((~mask).sum()), task.x.shape[2]))
    assert torch.equal(task.relevant.sum(dim=(1, 2)), torch.full((50,), 6))
    for b in range(50):
        n = int(task.lengths[b])
        assert task.relevant[b, :3, 0].all() and task.relevant[b, n - 3 : n, 1].all()
    label = (torch.where(task.relevant, task.x, 0.0).sum(dim=(1, 2)) > 0).long()
    assert torch.equal(task.y, label)
    assert 4.5 < float(task.x[:, :, -1][mask].mean()) < 5.5, "the offset feature is not centred"
    assert task[:3].x.shape == (3, 10, 5) and task[:3].feature_names == task.feature_names
    with pytest.raises(ValueError, match="window"):
        make_attribution_task(5, n_steps=10, window=6, min_len=5)


# ---------------------------------------------------------------------------- devices


def test_tensors_on_another_device_are_refused(says):
    x = _x(B, T, F)
    meta = {"device": "meta"}
    with pytest.raises(InputError, match=says("groups", "device", "meta")):
        feature_ablation(lambda v: v.sum(dim=(1, 2)), x, torch.zeros(F, dtype=torch.long, **meta))
    with pytest.raises(InputError, match=says("baseline", "device", "meta")):
        ablate(x, torch.ones(F, dtype=torch.bool), torch.zeros(F, **meta))
    with pytest.raises(InputError, match=says("target", "device", "meta")):
        feature_ablation(
            lambda v: v.sum(dim=1), x, torch.arange(F), target=torch.zeros(B, **meta).long()
        )


def _all_four(module: nn.Module, x: Tensor, mask: Tensor, y: Tensor) -> list[Tensor]:
    """Every public function on ``module`` with inputs on their device."""

    def log_probs(v: Tensor, m: Tensor) -> Tensor:
        return module(v, m).log_softmax(dim=-1)

    def loss(v: Tensor, m: Tensor) -> Tensor:
        return nn.functional.nll_loss(log_probs(v, m), y)

    groups = torch.arange(F, device=x.device)
    kwargs = {"baseline": "mean", "mask": mask, "target": y}
    return [
        ablate(x, groups != 1, "mean", mask=mask),
        feature_ablation(log_probs, x, groups, **kwargs),
        occlusion_map(log_probs, x, window=(2, 1), reduce="mean", **kwargs),
        permutation_importance(
            loss, x, groups, mask=mask, generator=torch.Generator().manual_seed(0)
        ),
    ]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(model):
    mask = _mask()
    x = _poisoned(_x(B, T, F), mask)
    y = torch.tensor([0, 1, 2, 1, 0])
    expected = _all_four(model, x, mask, y)
    results = _all_four(_model().cuda(), x.cuda(), mask.cuda(), y.cuda())
    for ours, ref in zip(results, expected, strict=True):
        assert ours.is_cuda
        torch.testing.assert_close(ours.cpu(), ref, atol=1e-4, rtol=0, equal_nan=True)
