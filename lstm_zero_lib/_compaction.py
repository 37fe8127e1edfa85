"""Compaction: each sequence's valid steps gathered, in order, to the front of the batch.

Index maps between a batch's time positions and its compacted valid steps, used by the
masked recurrent layers where a mask has gaps. Nothing here knows a cell's gates: the maps
are flat row indices for ``index_select``, the same for every recurrent layer.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

from ._mask_kind import cached_arange

__all__ = ["Compaction", "valid_steps_first", "with_padding_row"]


def with_padding_row(values: Tensor) -> Tensor:
    """``(N, C)`` rows plus a padding channel (0), then one extra row: zeros with channel 1.

    Gathering rows of this buffer with ``index_select`` builds a layer's input in one pass:
    valid steps pick their row, skipped steps pick the last row. No arithmetic touches
    skipped values, so NaN/inf there cannot leak and get exactly zero gradient.
    """
    buffer = F.pad(values, (0, 1, 0, 1))  # one allocation, one copy
    buffer[-1, -1] = 1  # (negative: an exporter keeps the size symbolic)
    return buffer


def _slots(mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(upto, slot, times)``, each ``(B, T)``, for a ``(B, T)`` mask (True = valid).

    ``upto``: valid steps up to and including ``t``. ``slot``: the place of step ``t`` in
    its row's valid-first order: a valid step's slot is the valid steps before it; a masked
    step's is the row's length plus the masked steps before it (``t - upto`` of them).
    """
    batch, steps = mask.shape
    upto = mask.cumsum(dim=1, dtype=torch.long)  # (ONNX has no cumulative sum of bools)
    times = cached_arange(steps, mask.device).expand(batch, steps)
    slot = torch.where(mask, upto - 1, upto[:, -1:] + times - upto)
    return upto, slot, times


def valid_steps_first(mask: Tensor) -> Tensor:
    """``(B, T)``: slot ``k`` of row ``b`` holds the time of that row's ``k``-th valid step.

    The valid steps in order, then the masked ones in order: what a stable sort of
    ``~mask`` along time gives, built instead from one running count of the valid steps
    (the masked steps before ``t`` are ``t`` minus it), which :class:`Compaction` needs
    anyway, and one scatter (ONNX has no stable sort). Each row's slots are a
    permutation of ``0 .. T-1``, so the scatter never writes one place twice.

    Examples
    --------
    >>> valid_steps_first(torch.tensor([[True, False, True, False, True]]))
    tensor([[0, 2, 4, 1, 3]])
    """
    _, slot, times = _slots(mask)
    return torch.zeros_like(times).scatter(1, slot, times)


class Compaction:
    """Index maps between a batch's time positions and its compacted valid steps.

    Slot ``k`` of sequence ``b`` in the compacted layout holds that sequence's ``k``-th
    valid step; the ``slots`` run are at least the longest length, and those past a row's
    length are padding. The compacted layout is time-major (row ``k * B + b``), the
    kernel's native layout, so it runs without transposes. All maps are flat row indices
    for ``index_select``; nothing here depends on the cell type.
    """

    def __init__(self, mask: Tensor, lengths: Tensor, slots: int, x_batch_first: bool) -> None:
        batch, steps = mask.shape  # mask is (B, T) whatever x's layout
        device = mask.device
        self.batch, self.slots = batch, slots
        self.mask, self.lengths = mask, lengths
        self.upto, self.slot, times = _slots(mask)
        order = torch.zeros_like(times).scatter(1, self.slot, times)[:, :slots]
        pos = cached_arange(slots, device).unsqueeze(0)
        valid = pos < self.lengths.unsqueeze(1)
        row = cached_arange(batch, device).unsqueeze(1)
        # Layer 0 reads x's rows (padding row B * T); later layers read the compacted
        # output of the layer below (padding row B * slots). Both (slots, B).
        x_row = row * steps + order if x_batch_first else order * batch + row
        self.from_x = torch.where(valid, x_row, batch * steps).t()
        self.last = (self.lengths - 1).clamp(min=0) * batch + row.squeeze(1)
        self._pos, self._valid, self._row = pos, valid, row

    # The maps below are built on first use only: short sequences pay for every small op.

    @functools.cached_property
    def from_compact(self) -> Tensor:
        """Rows of a compacted layer output, padding slots -> the extra padding row."""
        pos, row = self._pos, self._row
        padding = self.batch * self.slots
        return torch.where(self._valid, pos * self.batch + row, padding).t()

    @functools.cached_property
    def reverse(self) -> Tensor:
        """Each row's valid slots reversed (for the backward direction); padding stays put."""
        pos = self._pos
        return torch.where(self._valid, self.lengths.unsqueeze(1) - 1 - pos, pos).t()

    @functools.cached_property
    def reverse_flat(self) -> Tensor:
        """:attr:`reverse` as flat row indices of the compacted layout."""
        return (self.reverse * self.batch + self._row.t()).reshape(-1)

    def gather(self, buffer: Tensor, index: Tensor, reverse: bool) -> Tensor:
        """Rows of ``buffer`` in compacted (optionally reversed) order, ``(slots, B, C)``."""
        if reverse:
            index = index.gather(0, self.reverse)
        return buffer.index_select(0, index.reshape(-1)).view(self.slots, self.batch, -1)

    def unreverse(self, out: Tensor) -> Tensor:
        """Undo :meth:`gather`'s reversal of a ``(slots, B, C)`` output, as rows."""
        return out.reshape(self.slots * self.batch, -1).index_select(0, self.reverse_flat)

    def final_h(self, out: Tensor, h0: Tensor | None) -> Tensor:
        """Output at each row's last valid step, or ``h0`` for rows with none.

        ``h0=None``: the output at slot 0 for rows with none (a zero start whose padding
        slots emit exactly 0 needs no select).
        """
        picked = out.reshape(self.slots * self.batch, -1).index_select(0, self.last)
        if h0 is None:
            return picked
        return torch.where((self.lengths > 0).unsqueeze(1), picked, h0)

    def scatter_back(
        self, rows: Tensor, carry: bool, half: int | None, batch_first: bool, held_zero: bool
    ) -> Tensor:
        """Map compacted output rows (``k * B + b``) back to the mask's time positions.

        The result is laid out like the caller's ``x`` (batch-first: a transposed view of a
        time-major tensor, as ``nn.LSTM`` returns it). Positions with no output read a
        zero: with ``held_zero`` (the kernel's padding slots emit exactly 0, and every row
        with a masked step has one among the ``slots``), a padding slot of the same row;
        otherwise a row of zeros appended to ``rows`` (one more copy of the output). A
        padding slot is 0 only while its row is finite, so a NaN valid input of a row can
        reach that row's masked outputs, never another row's.
        """
        batch, steps = self.mask.shape
        channels = rows.shape[1]
        seq = self._row
        zero: Tensor | int = rows.shape[0]
        if held_zero:
            # A valid step's slot is below its row's length, a masked step's at or past it:
            # clamped into the slots run, the index of every step of the zero mode.
            slot = self.slot if self.slots == steps else self.slot.clamp(max=self.slots - 1)
            zero = slot * batch + seq
        else:
            rows = F.pad(rows, (0, 0, 0, 1))  # one more row (index ``zero``): zeros

        def pick(values: Tensor, found: Tensor, slot: Tensor) -> Tensor:
            index = torch.where(found, slot * batch + seq, zero)
            return take(values, index)

        def take(values: Tensor, index: Tensor) -> Tensor:
            # Time-major order: neighbouring output rows read neighbouring compacted rows.
            return values.index_select(0, index.t().reshape(-1))

        upto = self.upto
        if not carry:
            # (zero is a tensor exactly where held_zero is set)
            out = take(rows, zero) if isinstance(zero, Tensor) else pick(rows, self.mask, self.slot)
        elif not half:
            out = pick(rows, upto > 0, upto - 1)
        else:
            # Forward direction: the last valid step at or before t. Backward: the first at
            # or after t.
            before = upto - self.mask.long()
            forward = pick(rows[:, :half], upto > 0, upto - 1)
            backward = pick(rows[:, half:], before < upto[:, -1:], before)
            out = torch.cat([forward, backward], dim=1)
        out = out.view(steps, batch, channels)
        return out.transpose(0, 1) if batch_first else out
