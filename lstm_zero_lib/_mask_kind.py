"""What kind of mask a call has, and its lengths checked (private module).

MaskedLSTM and MaskedRNN pick their path (plain kernel, one block of valid steps,
compaction) from a mask's kind: a few values read on the host (on a GPU read together, one
synchronisation for the classification; on the CPU, one read each). ``lengths=`` is right padding by
construction and needs only its range checked; MaskedGRU needs no classification.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import as_lengths, exporting, shape_str
from .errors import InputError

__all__ = [
    "MaskKind",
    "cached_arange",
    "classify_mask",
    "host_ints",
    "lengths_range",
    "lengths_tensor",
    "left_padding",
    "right_padding",
]


def host_ints(values: Sequence[Tensor]) -> list[int]:
    """The values of 0-d integer tensors, read on the host.

    On the CPU each is read where it lies (a ``stack`` first costs more than the reads);
    elsewhere they are stacked first, so that the host waits for the device once, and so
    is a call that ``torch.compile`` traces (one graph break, not one per value).
    """
    if values[0].device.type == "cpu" and not torch.compiler.is_compiling():
        return [int(v) for v in values]
    read: list[int] = torch.stack(list(values)).tolist()
    return read


def cached_arange(size: int, device: torch.device) -> Tensor:
    """``arange(size)`` (long), cached for eager CPU calls up to :data:`_ARANGE_CACHED_UP_TO`:
    a batch's shape repeats from call to call, and on the CPU each op costs. Built afresh
    elsewhere: on a GPU (one asynchronous launch; a cached block could be freed on a
    stream another kernel still reads from), while ``torch.compile`` traces (Dynamo would
    trace past the cache, with a warning), while a call is exported or traced (there a
    size can be a traced value rather than an int, and the cache would fill with traced
    tensors), and for larger sizes (the cache holds at most 64 of them; past a few thousand
    steps one ``arange`` is a small share of a call)."""
    # (The size is compared last: while a call is traced it can be a traced tensor, and
    # the comparison would read it.)
    if (
        device.type != "cpu"
        or torch.compiler.is_compiling()
        or exporting()
        or size > _ARANGE_CACHED_UP_TO
    ):
        return torch.arange(size, device=device)
    return _cached_arange(size, device)


#: The largest ``arange`` kept by :func:`cached_arange` (64 of them: at most 2 MiB).
_ARANGE_CACHED_UP_TO = 4096


@functools.lru_cache(maxsize=64)
def _cached_arange(size: int, device: torch.device) -> Tensor:
    with torch.inference_mode(False), torch.no_grad():  # cached: must be a normal tensor
        return torch.arange(size, device=device)


def right_padding(lengths: Tensor, steps: int) -> Tensor:
    """``(B, steps)`` bool, True at the first ``lengths[b]`` steps of row ``b``: the right
    padding of ``(B,)`` lengths, unchecked (:func:`lstm_zero_lib.lengths_to_mask` checks).

    Examples
    --------
    >>> right_padding(torch.tensor([2, 0]), 3)
    tensor([[ True,  True, False],
            [False, False, False]])
    """
    return cached_arange(steps, lengths.device) < lengths.unsqueeze(1)


def left_padding(lengths: Tensor, steps: int) -> Tensor:
    """``(B, steps)`` bool, True at the last ``lengths[b]`` steps of row ``b``: the left
    padding of ``(B,)`` lengths, unchecked.

    Examples
    --------
    >>> left_padding(torch.tensor([2, 0]), 3)
    tensor([[False,  True,  True],
            [False, False, False]])
    """
    return cached_arange(steps, lengths.device) >= (steps - lengths).unsqueeze(1)


class MaskKind(NamedTuple):
    """What picks the path for a ``(B, T)`` mask, read on the host (except ``lengths``)."""

    lengths: Tensor  # valid steps per row, on the mask's device
    shortest: int
    longest: int
    right: bool  # each row's valid steps are one block at its start (right padding)
    left: bool  # not right, and each row's valid steps are one block at its end


def classify_mask(mask: Tensor) -> MaskKind:
    """Classify a non-empty ``(B, T)`` bool mask from a few values read on the host.

    On the CPU: the shortest and longest lengths, then whether the mask equals the right
    padding its lengths make (and, where it does not, the left padding), each read as one
    ``torch.equal``. Elsewhere, and while ``torch.compile`` traces the call, four scalars
    read together (:func:`host_ints`: one synchronisation): the lengths' extremes and the
    steepest fall and rise along time.

    Examples
    --------
    >>> classify_mask(torch.tensor([[True, True, False], [True, False, False]]))[1:]
    (1, 2, True, False)
    >>> classify_mask(torch.tensor([[False, True, True], [True, False, True]]))[1:]
    (2, 2, False, False)
    """
    lengths = mask.sum(dim=1)
    if mask.device.type == "cpu" and not torch.compiler.is_compiling():
        return _kind_by_comparison(mask, lengths)
    return _kind_by_transitions(mask, lengths)


def _kind_by_comparison(mask: Tensor, lengths: Tensor) -> MaskKind:
    """:func:`classify_mask` by comparing the mask with the paddings of its lengths.

    On the CPU this dispatches fewer ops than the scan along time (each host read is cheap
    there, each op is not). Whole calls, paired against the scan (one thread, B = 32):
    right padding about 3 % faster at T = 10 and 1 % at T = 30, no difference at T = 200;
    left padding and gaps, which pay for a failed comparison, 1-2 % slower at T = 10-30
    (measured once, not committed). Right padding is the common case.
    """
    shortest, longest = host_ints(torch.aminmax(lengths))
    steps = mask.shape[1]
    right = torch.equal(mask, right_padding(lengths, steps))
    left = not right and torch.equal(mask, left_padding(lengths, steps))
    return MaskKind(lengths, shortest, longest, right, left)


def _kind_by_transitions(mask: Tensor, lengths: Tensor) -> MaskKind:
    """:func:`classify_mask` from four scalars read together (one synchronisation on a GPU)."""
    # The shortest and longest valid lengths, and the steepest fall and rise along time
    # (+1 where a masked step is followed by a valid one).
    stats = list(torch.aminmax(lengths))
    if mask.shape[1] > 1:
        stats += torch.aminmax(torch.diff(mask.view(torch.int8), dim=1))
    values = host_ints(stats)
    falls, rises = (values[2] < 0, values[3] > 0) if len(values) > 2 else (False, False)
    return MaskKind(lengths, values[0], values[1], not rises, rises and not falls)


def lengths_tensor(lengths: object, batch: int, device: torch.device) -> Tensor:
    """Lengths checked for shape and dtype (no host read for an integer tensor): long, on
    ``device``."""
    if not isinstance(lengths, Tensor):
        lengths = as_lengths(lengths)
    if lengths.ndim != 1 or lengths.shape[0] != batch:
        raise InputError(
            f"lengths: expected shape ({batch},) (one length per sequence), "
            f"got {shape_str(lengths.shape)}"
        )
    if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        lengths = as_lengths(lengths)  # exact-integer floats pass, anything else raises
    return lengths.to(device=device, dtype=torch.long)


def lengths_range(lengths: Tensor, steps: int) -> tuple[int, int]:
    """The shortest and longest of non-empty ``lengths``, checked to lie in ``[0, steps]``.

    Examples
    --------
    >>> lengths_range(torch.tensor([3, 1]), steps=3)
    (1, 3)
    >>> lengths_range(torch.tensor([4, 1]), steps=3)
    Traceback (most recent call last):
    ...
    lstm_zero_lib.errors.InputError: lengths: expected every length <= T = 3, got 4
    """
    shortest, longest = host_ints(torch.aminmax(lengths))
    if shortest < 0:
        raise InputError(f"lengths: expected every length >= 0, got {shortest}")
    if longest > steps:
        raise InputError(f"lengths: expected every length <= T = {steps}, got {longest}")
    return shortest, longest
