"""Feature ablation, occlusion and permutation importance that respect sequence lengths.

Ablation asks "how much does the model's output change when these inputs are replaced by
a baseline?". Three things decide whether the answer means anything:

* **The baseline.** Zero is neutral only for a centred feature; for a feature whose
  values sit around 5, "zero" is an out-of-distribution input and the measured change is
  the model's reaction to that, not the feature's importance. ``baseline="mean"`` (or a
  tensor of training-set means) avoids that.
* **Padding.** Padded positions are not data. With a ``(B, T)`` ``mask`` of valid steps,
  nothing here ever writes into a padded position, and the model function is given the
  mask, so it can skip padding (e.g. with :class:`~lstm_zero_lib.MaskedLSTM`).
* **NaN.** Replacement is done with :func:`torch.where`, never by multiplying with a
  mask, so NaN or inf in ablated (or padded) entries never leaks into the result.

Conventions: ``x`` is batch-first ``(B, T, F)``. Wherever a ``mask`` is given, the model
function is called with it as a second argument — ``forward_fn(x, mask)`` /
``metric_fn(x, mask)`` — with the mask repeated to match the rows of ``x`` when copies
of the batch are stacked; without a mask it is called as ``forward_fn(x)``. Model
functions run under :func:`torch.no_grad`; put the model in ``eval()`` mode first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Literal, TypeVar

import torch
from torch import Tensor

from ._checks import (
    as_bool_mask,
    as_feature_mask,
    require_ndim,
    require_same_device,
    require_tensor,
    shape_str,
)
from .errors import InputError
from .missing import observed_means
from .zeroing import zero_features

__all__ = ["ablate", "feature_ablation", "occlusion_map", "permutation_importance"]

Baseline = Literal["zero", "mean"] | Tensor
ForwardFn = Callable[..., Tensor]
MetricFn = Callable[..., Tensor | float]
_Out = TypeVar("_Out")

#: Default cap on the elements of one stacked forward call (64 MiB of float32).
_MAX_ELEMENTS = 2**24


# ------------------------------------------------------------------------------ checks


def _check_x(x: object) -> Tensor:
    x = require_tensor(x, "x")
    require_ndim(x, "x", (3,), "(B, T, F)")
    if not x.is_floating_point():
        raise InputError(f"x: expected a floating-point tensor of shape (B, T, F), got {x.dtype}")
    return x


def _valid_steps(mask: object | None, x: Tensor) -> Tensor | None:
    """The ``(B, T)`` bool mask of valid steps, or None when every step is valid."""
    if mask is None:
        return None
    return as_bool_mask(mask, "mask", x.shape[:2], like=x, layout="(B, T), x's first two dims")


def _keep_mask(keep_mask: object, x: Tensor) -> Tensor:
    """Validate ``keep_mask`` and return it as a 3-D bool tensor broadcastable to ``x``."""
    return as_feature_mask(keep_mask, "keep_mask", x)


def _broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    """True when a tensor of ``shape`` broadcasts to exactly ``target`` (not beyond it)."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(target), strict=False))


def _check_groups(groups: object, x: Tensor, *, shared: bool = False) -> tuple[Tensor, int]:
    """Validate group ids; return them as a 3-D tensor broadcastable to ``x`` and ``G``."""
    groups = require_tensor(groups, "groups")
    require_same_device(groups, "groups", x)
    if groups.dtype == torch.bool or groups.is_floating_point() or groups.is_complex():
        raise InputError(
            f"groups: expected an integer tensor of group ids 0..G-1, got dtype {groups.dtype}"
        )
    layout = "(F,), (T, F) or (1, T, F)" if shared else "(F,), (T, F) or (B, T, F)"
    ok = groups.ndim <= 3 and _broadcasts_to(groups.shape, x.shape)
    if ok and shared and groups.ndim == 3 and groups.shape[0] != 1:
        raise InputError(
            f"groups: expected shape {layout} (shared by every example, because values "
            f"are permuted across the batch), got {shape_str(groups.shape)}"
        )
    if not ok:
        raise InputError(
            f"groups: expected a shape broadcastable to x's {shape_str(x.shape)}, such as "
            f"{layout}, got {shape_str(groups.shape)}"
        )
    if groups.numel() and int(groups.min()) < 0:
        raise InputError(f"groups: expected ids >= 0, got {int(groups.min())}")
    n_groups = int(groups.max()) + 1 if groups.numel() else 0
    return groups.long().reshape((1,) * (3 - groups.ndim) + tuple(groups.shape)), n_groups


def _feature_mean(x: Tensor, valid: Tensor | None) -> Tensor:
    """Per-feature mean over valid, finite entries, shaped ``(1, 1, F)`` (0 if none)."""
    steps = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if valid is None else valid
    return observed_means(x, steps.unsqueeze(2).expand_as(x)).reshape(1, 1, -1)


def _baseline_values(baseline: object, x: Tensor, valid: Tensor | None) -> Tensor:
    """The replacement values, as a tensor broadcastable to ``x``."""
    if isinstance(baseline, str):
        if baseline == "zero":
            return torch.zeros((), dtype=x.dtype, device=x.device)
        if baseline == "mean":
            return _feature_mean(x, valid)
    elif isinstance(baseline, Tensor):
        require_same_device(baseline, "baseline", x)
        if not _broadcasts_to(baseline.shape, x.shape):
            raise InputError(
                f"baseline: expected a tensor broadcastable to x's shape {shape_str(x.shape)}, "
                f"such as (F,), (T, F) or (B, T, F), got {shape_str(baseline.shape)}"
            )
        return baseline.to(x.dtype)
    raise InputError(f"baseline: expected 'zero', 'mean' or a tensor, got {baseline!r}")


def _pair(value: object, name: str) -> tuple[int, int]:
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise InputError(f"{name}: expected a pair of ints (time, feature), got {value!r}")
    return int(value[0]), int(value[1])


def _call(fn: Callable[..., _Out], x: Tensor, valid: Tensor | None) -> _Out:
    return fn(x) if valid is None else fn(x, valid)


Target = int | Tensor | None


def _check_target(target: object, x: Tensor) -> Tensor | int | None:
    """Validate ``target``: None, a class index, or ``(B,)`` integer class indices."""
    if target is None:
        return None
    if isinstance(target, int) and not isinstance(target, bool):
        if target < 0:
            raise InputError(f"target: expected a class index >= 0, got {target}")
        return target
    if isinstance(target, Tensor):
        require_same_device(target, "target", x)
        if target.dtype == torch.bool or target.is_floating_point() or target.is_complex():
            raise InputError(f"target: expected integer class indices, got dtype {target.dtype}")
        if tuple(target.shape) != (x.shape[0],):
            raise InputError(
                f"target: expected shape ({x.shape[0]},), one class per example, "
                f"got {shape_str(target.shape)}"
            )
        return target.long()
    raise InputError(
        f"target: expected None, an int or a (B,) integer tensor, got {type(target).__name__}"
    )


def _scores(
    forward_fn: ForwardFn, x: Tensor, valid: Tensor | None, target: Tensor | int | None
) -> Tensor:
    """One score per row of ``x``: ``forward_fn``'s output, or its ``target`` column.

    A tensor ``target`` holds one class per example of the original batch; ``x`` may hold
    several copies of that batch stacked, so it is repeated to match.
    """
    rows = x.shape[0]
    out = _call(forward_fn, x, valid)
    if not isinstance(out, Tensor):
        raise InputError(f"forward_fn: expected a tensor, got {type(out).__name__}")
    if target is None:
        if tuple(out.shape) != (rows,):
            raise InputError(
                f"forward_fn: expected a tensor of shape ({rows},), one score per example "
                f"(or give target= to pick a column of a (N, C) output), "
                f"got {shape_str(out.shape)}"
            )
        return out
    if out.ndim != 2 or out.shape[0] != rows:
        raise InputError(
            f"forward_fn: expected a tensor of shape ({rows}, C) when target is given, "
            f"got {shape_str(out.shape)}"
        )
    if isinstance(target, int):
        if target >= out.shape[1]:
            raise InputError(f"target: expected a class index < C = {out.shape[1]}, got {target}")
        return out[:, target]
    if target.numel() and int(target.max()) >= out.shape[1]:
        raise InputError(
            f"target: expected class indices < C = {out.shape[1]}, got {int(target.max())}"
        )
    index = target.repeat(rows // max(target.shape[0], 1)).unsqueeze(1)
    return out.gather(1, index).squeeze(1)


def _rows_per_call(x: Tensor, max_batch: int | None) -> int:
    if max_batch is None:
        return max(x.shape[0], _MAX_ELEMENTS // max(x.shape[1] * x.shape[2], 1))
    if not isinstance(max_batch, int) or isinstance(max_batch, bool) or max_batch < 1:
        raise InputError(f"max_batch: expected a positive int or None, got {max_batch!r}")
    return max_batch


def _ablated_differences(
    forward_fn: ForwardFn,
    x: Tensor,
    valid: Tensor | None,
    target: Tensor | int | None,
    values: Tensor,
    keep_of: Callable[[int, int], Tensor],
    n_copies: int,
    max_batch: int | None,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(keep, diff)`` per chunk of ablated copies of the batch.

    ``keep_of(start, stop)`` returns the ``(k, B or 1, T, F)`` keep masks of copies
    ``start..stop-1``; ``diff`` is ``(k, B)``: ``score(x) - score(ablated copy)``. Copies
    are stacked along the batch and scored with as few calls as ``max_batch`` allows.

    A copy of an example in which nothing is replaced (its group covers only padding, or
    does not occur in it) is ``x`` itself: its difference is exactly 0. Its recomputed
    score is not used, because a stack of copies is a larger batch than ``x`` and may
    round differently (by ~1e-8), which would report a tiny importance for nothing.
    """
    batch = x.shape[0]
    per_call = max(1, _rows_per_call(x, max_batch) // max(batch, 1))
    base = _scores(forward_fn, x, valid, target)
    for start in range(0, n_copies, per_call):
        stop = min(start + per_call, n_copies)
        keep = keep_of(start, stop)
        replace = ~keep if valid is None else ~keep & valid.unsqueeze(2)
        stacked = torch.where(replace, values, x.unsqueeze(0))
        rows = stacked.reshape((stop - start) * batch, *x.shape[1:])
        stacked_valid = None if valid is None else valid.repeat(stop - start, 1)
        out = _scores(forward_fn, rows, stacked_valid, target).reshape(stop - start, batch)
        changed = replace.expand(stop - start, batch, *x.shape[1:]).flatten(2).any(2)
        yield keep, torch.where(changed, base.unsqueeze(0) - out, torch.zeros_like(out))


# --------------------------------------------------------------------------- public API


def ablate(
    x: Tensor,
    keep_mask: Tensor,
    baseline: Baseline = "zero",
    *,
    mask: Tensor | None = None,
) -> Tensor:
    """Replace the entries of ``x`` where ``keep_mask`` is False by a baseline.

    Parameters
    ----------
    x
        ``(B, T, F)`` floating-point inputs.
    keep_mask
        True = keep. ``(F,)``: the same features at every step; ``(T, F)``: per step and
        feature, shared by the batch; ``(B, T, F)``: per entry. Bool or 0/1.
    baseline
        ``"zero"``; ``"mean"``: each feature's mean over the valid, finite entries of
        ``x`` (valid steps of ``mask`` when given; 0 for a feature with none); or a tensor
        broadcastable to ``x``, e.g. ``(F,)`` training-set means.
    mask
        Optional ``(B, T)`` bool or 0/1 mask of valid steps. Padded positions (False) are
        never replaced: they keep their values, whatever ``keep_mask`` says.

    Returns
    -------
    Tensor
        A new tensor like ``x``. NaN-safe: a replaced NaN is gone, an untouched one stays.

    Examples
    --------
    >>> x = torch.tensor([[[1.0, 6.0], [3.0, float("nan")], [9.0, 9.0]]])  # (1, 3, 2)
    >>> mask = torch.tensor([[True, True, False]])  # the last step is padding
    >>> ablate(x, torch.tensor([True, False]), mask=mask)
    tensor([[[1., 0.],
             [3., 0.],
             [9., 9.]]])
    >>> ablate(x, torch.tensor([False, True]), "mean", mask=mask)  # mean of 1 and 3
    tensor([[[2., 6.],
             [2., nan],
             [9., 9.]]])
    """
    x = _check_x(x)
    keep = _keep_mask(keep_mask, x)
    valid = _valid_steps(mask, x)
    if isinstance(baseline, str) and baseline == "zero" and valid is None:
        return zero_features(x, keep.expand_as(x))
    values = _baseline_values(baseline, x, valid)
    replace = ~keep if valid is None else ~keep & valid.unsqueeze(2)
    return torch.where(replace, values, x)


@torch.no_grad()
def feature_ablation(
    forward_fn: ForwardFn,
    x: Tensor,
    groups: Tensor,
    *,
    baseline: Baseline = "zero",
    mask: Tensor | None = None,
    target: Target = None,
    max_batch: int | None = None,
) -> Tensor:
    """Importance of each group of inputs: the score drop when the group is ablated.

    For every group ``g`` the entries with ``groups == g`` are replaced by the baseline
    (at valid steps only, when ``mask`` is given) and the result is
    ``forward_fn(x) - forward_fn(x with group g ablated)``, per example. This is
    ``captum.attr.FeatureAblation`` with ``feature_mask=groups``, but reported once per
    group instead of once per input entry, and length-aware.

    Parameters
    ----------
    forward_fn
        ``forward_fn(x) -> (N,)``, one score per example, or ``(N, C)`` with ``target``;
        called as ``forward_fn(x, mask)`` when ``mask`` is given. It receives ``N = k * B``
        rows: ``k`` ablated copies of the batch stacked along dim 0 (and the mask
        repeated to match), so anything per example belongs in ``target``.
    x
        ``(B, T, F)`` inputs.
    groups
        Integer group ids ``0..G-1`` broadcastable to ``x``: ``(F,)`` groups features,
        ``(T, F)`` (or ``(1, T, F)``) groups step-feature cells shared by the batch,
        ``(B, T, F)`` per example. ``G = groups.max() + 1``; an id that does not occur
        gets importance 0.
    baseline
        ``"zero"``, ``"mean"`` (per-feature mean of the valid entries of ``x``) or a tensor
        broadcastable to ``x``; see :func:`ablate`.
    mask
        Optional ``(B, T)`` valid-step mask; padding is never ablated and ``forward_fn``
        is called with the mask.
    target
        As in Captum: ``None`` (``forward_fn`` returns ``(N,)`` scores), a class index,
        or ``(B,)`` class indices, one per example; then ``forward_fn`` returns
        ``(N, C)`` and the score of row ``n`` is its ``target`` column (e.g. the
        log-probability of each example's true class with ``model(x).log_softmax(-1)``).
    max_batch
        Most rows per ``forward_fn`` call (at least one copy of the batch is always
        scored together). Default: as many copies as fit in 2**24 input elements.

    Returns
    -------
    Tensor
        ``(B, G)``: ``[b, g]`` is how much example ``b``'s score drops when group ``g``
        is ablated (negative if it rises).

    Examples
    --------
    >>> weights = torch.tensor([1.0, 2.0, 0.0])
    >>> score = lambda x: (x * weights).sum(dim=(1, 2))  # a linear "model"
    >>> x = torch.ones(2, 4, 3)
    >>> feature_ablation(score, x, groups=torch.tensor([0, 1, 2]))
    tensor([[4., 8., 0.],
            [4., 8., 0.]])
    >>> mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])  # row 1 has 2 valid steps
    >>> masked_score = lambda x, mask: score(torch.where(mask.bool().unsqueeze(2), x, 0.0))
    >>> feature_ablation(masked_score, x, torch.tensor([0, 1, 2]), mask=mask)
    tensor([[4., 8., 0.],
            [2., 4., 0.]])
    >>> two_scores = lambda x: torch.stack([score(x), -score(x)], dim=1)  # (N, 2)
    >>> feature_ablation(two_scores, x, torch.tensor([0, 1, 2]), target=torch.tensor([0, 1]))
    tensor([[ 4.,  8.,  0.],
            [-4., -8.,  0.]])
    """
    x = _check_x(x)
    valid = _valid_steps(mask, x)
    ids, n_groups = _check_groups(groups, x)
    target = _check_target(target, x)
    if x.shape[0] == 0 or n_groups == 0:
        return x.new_zeros(x.shape[0], n_groups)
    values = _baseline_values(baseline, x, valid)

    def keep_of(start: int, stop: int) -> Tensor:
        chosen = torch.arange(start, stop, device=x.device).view(-1, 1, 1, 1)
        return ids.unsqueeze(0) != chosen

    diffs = [
        d
        for _, d in _ablated_differences(
            forward_fn, x, valid, target, values, keep_of, n_groups, max_batch
        )
    ]
    return torch.cat(diffs).t().contiguous()


@torch.no_grad()
def occlusion_map(
    forward_fn: ForwardFn,
    x: Tensor,
    *,
    window: tuple[int, int],
    stride: tuple[int, int] = (1, 1),
    baseline: Baseline = "zero",
    mask: Tensor | None = None,
    reduce: Literal["none", "mean"] = "none",
    target: Target = None,
    max_batch: int | None = None,
) -> Tensor:
    """Sliding-window occlusion over time and features: a map you can plot.

    A ``window = (wt, wf)`` patch of ``wt`` steps by ``wf`` features slides over the
    ``(T, F)`` grid with ``stride = (st, sf)``, starting at 0 and moving until it reaches
    the end (the last window along an axis is cut short at the edge if the stride does not
    land on it). For each position the patch is ablated in every example, and each cell
    ``(t, f)`` receives the **mean**, over the windows that cover it, of
    ``forward_fn(x) - forward_fn(x with the window ablated)``. These are the conventions of
    ``captum.attr.Occlusion`` with ``sliding_window_shapes=window``.

    Parameters
    ----------
    forward_fn
        As for :func:`feature_ablation`: ``forward_fn(x) -> (N,)`` (``(N, C)`` with
        ``target``), or ``forward_fn(x, mask)`` when ``mask`` is given.
    x
        ``(B, T, F)`` inputs.
    window
        ``(wt, wf)``, with ``1 <= wt <= T`` and ``1 <= wf <= F``.
    stride
        ``(st, sf)``, each >= 1. A cell no window covers (stride larger than window) is 0.
    baseline
        ``"zero"``, ``"mean"`` or a tensor broadcastable to ``x``; see :func:`ablate`.
    mask
        Optional ``(B, T)`` valid-step mask: only valid steps are ablated, and the map is
        0 at padded positions.
    reduce
        ``"none"``: return the per-example ``(B, T, F)`` map. ``"mean"``: return the
        ``(T, F)`` average over examples, where each step is averaged only over the
        examples for which it is valid (0 where none is).
    target
        ``None``, a class index or ``(B,)`` class indices; see :func:`feature_ablation`.
    max_batch
        Most rows per ``forward_fn`` call; see :func:`feature_ablation`.

    Returns
    -------
    Tensor
        ``(B, T, F)`` (``reduce="none"``) or ``(T, F)`` (``reduce="mean"``).

    Examples
    --------
    >>> weights = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 3.0]])  # (T, F) = (3, 2)
    >>> score = lambda x: (x * weights).sum(dim=(1, 2))
    >>> occlusion_map(score, torch.ones(4, 3, 2), window=(1, 1), reduce="mean")
    tensor([[1., 0.],
            [0., 0.],
            [0., 3.]])
    """
    x = _check_x(x)
    valid = _valid_steps(mask, x)
    if reduce not in ("none", "mean"):
        raise InputError(f"reduce: expected 'none' or 'mean', got {reduce!r}")
    steps, features = x.shape[1], x.shape[2]
    wt, wf = _pair(window, "window")
    st, sf = _pair(stride, "stride")
    if not (1 <= wt <= steps and 1 <= wf <= features):
        raise InputError(
            f"window: expected (wt, wf) with 1 <= wt <= T = {steps} and 1 <= wf <= F = "
            f"{features}, got {(wt, wf)}"
        )
    if st < 1 or sf < 1:
        raise InputError(f"stride: expected (st, sf) with both >= 1, got {(st, sf)}")
    target = _check_target(target, x)
    values = _baseline_values(baseline, x, valid)
    t_starts = torch.arange(0, -(-(steps - wt) // st) * st + 1, st, device=x.device)
    f_starts = torch.arange(0, -(-(features - wf) // sf) * sf + 1, sf, device=x.device)
    starts_t = t_starts.repeat_interleave(len(f_starts))
    starts_f = f_starts.repeat(len(t_starts))
    t_axis = torch.arange(steps, device=x.device)
    f_axis = torch.arange(features, device=x.device)

    def inside(start: int, stop: int) -> Tensor:
        """``(k, T, F)``: True inside windows ``start..stop-1``."""
        ts, fs = starts_t[start:stop, None], starts_f[start:stop, None]
        in_t = (t_axis >= ts) & (t_axis < ts + wt)
        in_f = (f_axis >= fs) & (f_axis < fs + wf)
        return in_t.unsqueeze(2) & in_f.unsqueeze(1)

    def keep_of(start: int, stop: int) -> Tensor:
        return ~inside(start, stop).unsqueeze(1)

    total = x.new_zeros(x.shape)
    count = torch.zeros(steps, features, dtype=torch.long, device=x.device)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    for keep, diff in _ablated_differences(
        forward_fn, x, valid, target, values, keep_of, len(starts_t), max_batch
    ):
        # where, not diff * mask: a NaN score must stay inside its own window.
        total += torch.where(~keep, diff[:, :, None, None], zero).sum(dim=0)
        count += (~keep[:, 0]).sum(dim=0)
    result = torch.where(count > 0, total / count.clamp(min=1), zero)
    if valid is not None:
        result = torch.where(valid.unsqueeze(2), result, zero)
    if reduce == "none":
        return result
    if valid is None:
        return result.mean(dim=0)
    n_valid = valid.sum(dim=0).unsqueeze(1)
    return torch.where(n_valid > 0, result.sum(dim=0) / n_valid.clamp(min=1), zero)


def _donors(valid: Tensor, order: Tensor) -> Tensor:
    """``(B, T)`` row index each entry takes its value from.

    At every step the valid rows, listed by index, take the values of the valid rows
    listed in the random ``order``; padded rows keep their own. With no padding this is
    one permutation of the batch shared by all steps, so whole sequences move together.
    """
    batch = valid.shape[0]
    rows = torch.arange(batch, device=valid.device)
    rank = torch.empty_like(order)
    rank[order] = rows
    by_index = torch.argsort((~valid).to(torch.uint8), dim=0, stable=True)
    big = torch.where(valid, rank.unsqueeze(1), batch + rows.unsqueeze(1))
    by_order = torch.argsort(big, dim=0)
    donors = torch.empty_like(by_index)
    donors.scatter_(0, by_index, by_order)
    return torch.where(valid, donors, rows.unsqueeze(1))


@torch.no_grad()
def permutation_importance(
    metric_fn: MetricFn,
    x: Tensor,
    groups: Tensor,
    *,
    mask: Tensor | None = None,
    n_repeats: int = 5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Importance of each group: how much a loss rises when the group is shuffled.

    For each group ``g`` and repeat, the values of the group's entries are exchanged
    between examples of the batch, by one random permutation per repeat and group, so
    each feature keeps its distribution (unlike zero ablation, no out-of-range value is
    ever fed to the model). Only valid entries are exchanged, and only with each other:
    padding is never moved into a valid slot nor a valid value into padding. The result is
    ``mean over repeats of metric_fn(shuffled x) - metric_fn(x)``.

    Parameters
    ----------
    metric_fn
        ``metric_fn(x) -> scalar`` (``metric_fn(x, mask)`` when ``mask`` is given): a loss
        over the whole batch where **higher is worse**, e.g.
        ``lambda x: F.cross_entropy(model(x), y)``. A 0-d tensor or a float.
    x
        ``(B, T, F)`` inputs.
    groups
        Integer group ids ``0..G-1`` shared by the batch: ``(F,)``, ``(T, F)`` or
        ``(1, T, F)`` (values are permuted across examples, so every example needs the
        same grouping).
    mask
        Optional ``(B, T)`` valid-step mask. At each step the examples valid there
        exchange values among themselves; with no padding, whole sequences are exchanged.
    n_repeats
        Number of random permutations per group (>= 1).
    generator
        Optional ``torch.Generator`` for reproducible permutations.

    Returns
    -------
    Tensor
        ``(G,)``, the mean increase of the metric per group, dtype float64.

    Examples
    --------
    >>> x = torch.randn(64, 5, 2, generator=torch.Generator().manual_seed(0))
    >>> y = x[:, :, 0].sum(dim=1)  # the target depends on feature 0 only
    >>> mse = lambda x: ((x[:, :, 0].sum(dim=1) - y) ** 2).mean()  # a perfect model
    >>> imp = permutation_importance(mse, x, torch.tensor([0, 1]),
    ...                              generator=torch.Generator().manual_seed(0))
    >>> bool(imp[0] > 1.0), imp[1].item()
    (True, 0.0)
    """
    x = _check_x(x)
    valid = _valid_steps(mask, x)
    ids, n_groups = _check_groups(groups, x, shared=True)
    if not isinstance(n_repeats, int) or isinstance(n_repeats, bool) or n_repeats < 1:
        raise InputError(f"n_repeats: expected an int >= 1, got {n_repeats!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise InputError(
            f"generator: expected a torch.Generator or None, got {type(generator).__name__}"
        )

    def metric(values: Tensor) -> float:
        out = _call(metric_fn, values, valid)
        if isinstance(out, Tensor):
            if out.numel() != 1:
                raise InputError(
                    f"metric_fn: expected a scalar (one loss for the batch), "
                    f"got shape {shape_str(out.shape)}"
                )
            return float(out.item())
        return float(out)

    batch = x.shape[0]
    steps_valid = (
        valid if valid is not None else torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    )
    reference = metric(x)
    totals = torch.zeros(n_groups, dtype=torch.float64)
    for _ in range(n_repeats):
        for g in range(n_groups):
            order = torch.randperm(batch, generator=generator).to(x.device)
            donors = _donors(steps_valid, order)
            shuffled = x.gather(0, donors.unsqueeze(2).expand_as(x))
            move = (ids == g) & steps_valid.unsqueeze(2)
            totals[g] += metric(torch.where(move, shuffled, x)) - reference
    return (totals / n_repeats).to(x.device)
