"""What every masked recurrent module shares (private): the wrapped ``nn.LSTM`` /
``nn.GRU`` / ``nn.RNN``, its configuration check, and ``forward``'s mask handling.

:class:`~lstm_zero_lib.MaskedLSTM`, :class:`~lstm_zero_lib.MaskedGRU` and
:class:`~lstm_zero_lib.MaskedRNN` differ only in the module they wrap and the functional
form that does the work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Literal

from torch import Tensor, nn

from ._checks import require_ndim, require_tensor
from .errors import InputError

MaskedOutput = Literal["zero", "carry"]
_MASKED_OUTPUTS = ("zero", "carry")
_CONFIG = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout")


def check_masked_output(masked_output: object) -> None:
    """Raise unless ``masked_output`` is ``"zero"`` or ``"carry"``."""
    if masked_output not in _MASKED_OUTPUTS:
        raise InputError(f"masked_output: expected 'zero' or 'carry', got {masked_output!r}")


def module_config(
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bias: bool,
    batch_first: bool,
    dropout: float,
    bidirectional: bool,
) -> dict[str, Any]:
    """The constructor arguments shared by ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN``."""
    values = (input_size, hidden_size, num_layers, bias, batch_first, float(dropout))
    return {**dict(zip(_CONFIG, values, strict=True)), "bidirectional": bidirectional}


def existing_config(module: nn.RNNBase) -> dict[str, Any]:
    """:func:`module_config` of an existing module: what ``from_lstm`` & co. pass on."""
    return {name: getattr(module, name) for name in (*_CONFIG, "bidirectional")}


class MaskedRecurrent(nn.Module):
    """Base of the masked modules: holds the wrapped module under ``_name``.

    Subclasses set ``_name`` (``"lstm"``, ``"gru"``, ``"rnn"``: the attribute and the
    constructor argument) and ``_functional`` (``masked_lstm`` & co.).
    """

    _name: ClassVar[str]
    _functional: ClassVar[Callable[..., tuple[Tensor, Any]]]

    def __init__(
        self,
        module: nn.RNNBase | None,
        build: Callable[[], nn.RNNBase],
        check: Callable[[object], nn.RNNBase],
        config: dict[str, Any],
        masked_output: MaskedOutput,
    ) -> None:
        super().__init__()
        check_masked_output(masked_output)
        if module is None:
            module = build()
        else:
            module = check(module)
            differ = {k: v for k, v in config.items() if getattr(module, k) != v}
            if differ:
                got = {k: getattr(module, k) for k in differ}
                raise InputError(f"{self._name}: expected a module with {differ}, got {got}")
        self.add_module(self._name, module)
        self.masked_output: MaskedOutput = masked_output

    @property
    def _module(self) -> nn.RNNBase:
        module: nn.RNNBase = getattr(self, self._name)
        return module

    @property
    def batch_first(self) -> bool:
        """Layout of inputs and outputs, as for the wrapped module."""
        return self._module.batch_first

    def extra_repr(self) -> str:
        return f"masked_output={self.masked_output!r}"

    # lengths and hx are not keyword-only: the TorchScript-based ONNX exporter passes every
    # argument of forward by position (with its default).
    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        lengths: Tensor | None = None,
        hx: Any = None,
    ) -> tuple[Tensor, Any]:
        """Run the wrapped module over the valid steps of ``x``.

        Parameters
        ----------
        x
            ``(B, T, F)`` (``(T, B, F)`` if ``batch_first=False``).
        mask
            ``(B, T)`` (``(T, B)``) bool or 0/1, True = valid step; any pattern.
        lengths
            Alternative to ``mask``: ``(B,)`` valid lengths, i.e. right padding. Give at
            most one of ``mask`` and ``lengths``; with neither, every step is valid.
        hx
            Optional initial state, as for the wrapped module: ``(h_0, c_0)`` for an LSTM,
            ``h_0`` for a GRU or an RNN, each ``(num_layers * num_directions, B, H)``.

        Returns
        -------
        tuple
            ``(output, (h_n, c_n))`` for an LSTM, ``(output, h_n)`` for a GRU or an RNN,
            with the wrapped module's shapes.
        """
        given: object = lengths  # typed Tensor, but forward(x, mask, hx) passes a state
        state_like = isinstance(given, (tuple, list)) and any(
            isinstance(t, Tensor) and t.ndim > 0 for t in given
        )
        if state_like or (isinstance(given, Tensor) and given.ndim != 1):
            got = f"shape {tuple(given.shape)}" if isinstance(given, Tensor) else "a tuple"
            raise InputError(
                f"lengths: expected a (B,) tensor of valid lengths, got {got}; the initial "
                "state goes by keyword: forward(x, mask, hx=hx)"
            )
        if mask is not None and lengths is not None:
            raise InputError("mask, lengths: expected at most one of them, got both")
        if mask is None and lengths is None:
            x = require_tensor(x, "x")
            require_ndim(x, "x", (3,), "(B, T, F)" if self.batch_first else "(T, B, F)")
            mask = x.new_ones(()).bool().expand(x.shape[:2])
        functional = type(self)._functional
        return functional(self._module, x, mask, hx, self.masked_output, lengths=lengths)
