"""Input validation shared by every public function (private module).

Every check raises :class:`~lstm_zero_lib.errors.InputError` with a message that names the
argument, the expectation and what was received, so a caller never gets a silently
broadcast or silently wrong answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .errors import InputError

BATCH_TIME = {True: "(B, T)", False: "(T, B)"}

#: An LSTM state ``(h, c)``.
State = tuple[Tensor, Tensor]


def exporting() -> bool:
    """True while ``torch.export``, an ONNX exporter or ``torch.jit.trace`` records a call.

    Such a recording must not read tensor values on the host (there are none, or the value
    would be frozen into the graph): callers then skip value checks and take a path whose
    shapes do not depend on the data.
    """
    # The TorchScript-based ONNX exporter traces, so is_tracing covers it (and costs a
    # tenth of torch.onnx.is_in_onnx_export, on every eager call). torch.jit.is_tracing,
    # not torch._C._is_tracing: torch.compile knows it is False. (It has no type hints.)
    tracing: bool = torch.jit.is_tracing()  # type: ignore[attr-defined,no-untyped-call]
    return torch.compiler.is_exporting() or tracing


def shape_str(shape: Sequence[int]) -> str:
    """Format a shape as ``(2, 3)``; a 1-tuple keeps its trailing comma."""
    return str(tuple(int(s) for s in shape))


def require_tensor(value: object, name: str) -> Tensor:
    """Return ``value`` if it is a tensor, else raise a ``InputError`` naming ``name``."""
    if not isinstance(value, Tensor):
        raise InputError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def require_ndim(x: Tensor, name: str, ndims: Sequence[int], layout: str) -> None:
    """Raise unless ``x.ndim`` is one of ``ndims``; ``layout`` describes the expected shape."""
    if x.ndim not in ndims:
        raise InputError(
            f"{name}: expected a {'/'.join(map(str, ndims))}-D tensor of shape {layout}, "
            f"got shape {shape_str(x.shape)}"
        )


def require_same_device(t: Tensor, name: str, x: Tensor, x_name: str = "x") -> None:
    """Raise if ``t`` lives on another device than ``x`` (no silent transfer)."""
    if t.device != x.device:
        raise InputError(
            f"{name}: expected a tensor on {x_name}'s device {x.device}, got device {t.device}"
        )


def as_bool_mask(
    mask: object,
    name: str,
    expected_shape: Sequence[int] | None,
    like: Tensor | None = None,
    layout: str = "",
) -> Tensor:
    """Validate a mask and return it as a bool tensor.

    Parameters
    ----------
    mask
        Bool tensor, or an integer/float tensor whose values are all 0 or 1.
    name
        The argument name used in error messages.
    expected_shape
        The exact shape required, or ``None`` to accept any shape.
    like
        If given, the mask must be on this tensor's device.
    layout
        A human description of the expected layout, e.g. ``"(B, T) like x"``.
    """
    mask = require_tensor(mask, name)
    if like is not None:
        require_same_device(mask, name, like)
    if expected_shape is not None and mask.shape != tuple(expected_shape):
        where = f" {layout}" if layout else ""
        raise InputError(
            f"{name}: expected shape {shape_str(expected_shape)}{where}, "
            f"got {shape_str(mask.shape)}"
        )
    if mask.dtype == torch.bool:
        return mask
    if mask.is_complex():
        raise InputError(f"{name}: expected a bool or 0/1 tensor, got dtype {mask.dtype}")
    # Refuse anything but exact 0/1: a soft mask (0.5) or a stray 2 would otherwise be
    # thresholded into something the caller did not ask for.
    # (Not while exporting: a graph cannot raise on values; it treats nonzero as valid.)
    binary = (mask == 0) | (mask == 1)
    if mask.device.type != "meta" and not exporting() and not bool(binary.all()):
        bad = mask[~binary].flatten()[0].item()
        raise InputError(f"{name}: expected only 0 and 1 (or a bool tensor), got a value {bad}")
    return mask != 0


def as_lengths(lengths: object, name: str = "lengths") -> Tensor:
    """Validate lengths (1-D integers >= 0, tensor or sequence) and return a long tensor."""
    if not isinstance(lengths, Tensor):
        if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence):
            raise InputError(
                f"{name}: expected a 1-D integer tensor or a sequence of ints, "
                f"got {type(lengths).__name__}"
            )
        lengths = torch.as_tensor(list(lengths))
    if lengths.ndim != 1:
        raise InputError(
            f"{name}: expected a 1-D tensor of shape (B,), got {shape_str(lengths.shape)}"
        )
    if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        if lengths.is_floating_point() and bool((lengths == lengths.round()).all()):
            lengths = lengths.long()
        else:
            raise InputError(f"{name}: expected integer lengths, got dtype {lengths.dtype}")
    lengths = lengths.long()
    if lengths.numel() and int(lengths.min()) < 0:
        raise InputError(f"{name}: expected every length >= 0, got {int(lengths.min())}")
    return lengths


def as_feature_mask(mask: object, name: str, x: Tensor, *, batch_first: bool = True) -> Tensor:
    """Validate a feature mask for a 3-D ``x``; return it as bool, broadcastable to ``x``.

    Accepted shapes: ``(F,)`` (every step and sequence), ``(T, F)`` (per step, shared by
    the batch) or ``x``'s own shape.
    """
    mask = require_tensor(mask, name)
    t_dim = 1 if batch_first else 0
    allowed = {1: (x.shape[2],), 2: (x.shape[t_dim], x.shape[2]), 3: tuple(x.shape)}
    expected = allowed.get(mask.ndim)
    if expected is None or tuple(mask.shape) != expected:
        options = ", ".join(shape_str(s) for s in allowed.values())
        raise InputError(
            f"{name}: expected shape (F,), (T, F) or x's shape, i.e. one of {options}, "
            f"got {shape_str(mask.shape)}"
        )
    keep = as_bool_mask(mask, name, expected, like=x)
    if keep.ndim == 1:
        return keep.reshape(1, 1, -1)
    if keep.ndim == 2:
        return keep.unsqueeze(0) if batch_first else keep.unsqueeze(1)
    return keep


def check_lstm(lstm: object) -> nn.LSTM:
    """Return ``lstm`` if it is an ``nn.LSTM`` without projections, else raise."""
    if not isinstance(lstm, nn.LSTM):
        raise InputError(f"lstm: expected a torch.nn.LSTM, got {type(lstm).__name__}")
    if lstm.proj_size:
        raise InputError(
            f"lstm: expected proj_size=0 (projections are not supported), got {lstm.proj_size}"
        )
    return lstm


def check_lstm_inputs(
    lstm: nn.LSTM, x: object, mask: object, hx: object
) -> tuple[Tensor, Tensor, State | None]:
    """Validate ``x``, ``mask`` and ``hx`` against ``lstm``; return them typed.

    ``mask`` comes back as a bool tensor laid out like ``x`` without its feature axis.
    """
    x, state = check_lstm_x_hx(lstm, x, hx)
    bool_mask = as_bool_mask(
        mask, "mask", x.shape[:2], like=x, layout=f"{BATCH_TIME[lstm.batch_first]} like x"
    )
    return x, bool_mask, state


def check_x(module: nn.RNNBase, x: object) -> Tensor:
    """Validate ``x`` (layout, size, device, dtype) against a recurrent ``module``."""
    # (Runs on every call: the messages are only built for an error.)
    x = require_tensor(x, "x")
    if x.ndim != 3 or x.shape[2] != module.input_size:
        layout = "(B, T, F)" if module.batch_first else "(T, B, F)"
        require_ndim(x, "x", (3,), layout)
        raise InputError(
            f"x: expected shape {layout} with F = input_size = {module.input_size}, "
            f"got {shape_str(x.shape)}"
        )
    weight: Tensor = module._flat_weights[0]  # type: ignore[assignment]  # weight_ih_l0
    if x.device != weight.device:
        raise InputError(
            f"x: expected a tensor on the {_kind(module)}'s device {weight.device}, got {x.device}"
        )
    if x.dtype != weight.dtype:
        raise InputError(
            f"x: expected dtype {weight.dtype} (the {_kind(module)}'s weights), got {x.dtype}"
        )
    return x


def _kind(module: nn.RNNBase) -> str:
    """The kind of recurrent module: LSTM, GRU or RNN (``mode`` RNN_TANH / RNN_RELU)."""
    return module.mode.split("_")[0]


def state_shape(module: nn.RNNBase, x: Tensor) -> tuple[int, int, int]:
    """``(num_layers * num_directions, B, hidden_size)``: one part of an initial state."""
    batch = x.shape[0] if module.batch_first else x.shape[1]
    return (module.num_layers * (2 if module.bidirectional else 1), batch, module.hidden_size)


def check_h0(module: nn.RNNBase, x: Tensor, hx: object) -> Tensor | None:
    """Validate the one-tensor initial state of an ``nn.GRU`` / ``nn.RNN`` against ``x``."""
    if hx is None:
        return None
    expected = state_shape(module, x)
    if not isinstance(hx, Tensor):
        raise InputError(
            f"hx: expected a tensor h_0 of shape {shape_str(expected)}, got {type(hx).__name__}"
        )
    _check_state_part(hx, "h_0", expected, x)
    return hx


def _check_state_part(t: Tensor, part: str, expected: tuple[int, int, int], x: Tensor) -> None:
    if tuple(t.shape) != expected:
        raise InputError(
            f"hx: expected {part} of shape {shape_str(expected)} "
            f"(num_layers * num_directions, B, hidden_size), got {shape_str(t.shape)}"
        )
    require_same_device(t, f"hx ({part})", x)
    if t.dtype != x.dtype:
        raise InputError(f"hx: expected {part} of dtype {x.dtype}, got {t.dtype}")


def check_lstm_x_hx(lstm: nn.LSTM, x: object, hx: object) -> tuple[Tensor, State | None]:
    """Validate ``x`` and the optional initial state ``hx`` against ``lstm``."""
    x = check_x(lstm, x)
    if hx is None:
        return x, None
    expected = state_shape(lstm, x)
    if not (
        isinstance(hx, (tuple, list)) and len(hx) == 2 and all(isinstance(t, Tensor) for t in hx)
    ):
        raise InputError(
            f"hx: expected a tuple (h_0, c_0) of two tensors of shape {shape_str(expected)}, "
            f"got {type(hx).__name__}"
        )
    h0, c0 = hx
    for part, t in (("h_0", h0), ("c_0", c0)):
        _check_state_part(t, part, expected, x)
    return x, (h0, c0)


def check_gru(gru: object) -> nn.GRU:
    """Return ``gru`` if it is an ``nn.GRU``, else raise."""
    if not isinstance(gru, nn.GRU):
        raise InputError(f"gru: expected a torch.nn.GRU, got {type(gru).__name__}")
    return gru


def check_rnn(rnn: object) -> nn.RNN:
    """Return ``rnn`` if it is an ``nn.RNN`` (tanh or relu), else raise."""
    if not isinstance(rnn, nn.RNN):
        raise InputError(f"rnn: expected a torch.nn.RNN, got {type(rnn).__name__}")
    return rnn
