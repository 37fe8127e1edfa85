"""Property tests (hypothesis, derandomized "ci" profile from conftest.py) for MaskedLSTM,
MaskedGRU and MaskedRNN.

Random B 1-5, T 1-8, F 1-4, H 1-5, layers 1-3, uni/bidirectional, batch-first/time-major,
masks per row: any boolean pattern, right-padded or left-padded (so all-masked and fully valid
rows occur), with/without hx, masked_output "zero"/"carry", the held input built either
way (a masked_fill pass, what these small sizes get, or the row fill of large CPU inputs)
and the mask classified either way (by comparison, as on the CPU, or by the scan a GPU
and torch.compile use).

Examples per property (the max_examples passed to @settings):
  (a) test_matches_oracle ............................ 600
  (b) test_masked_values_and_extra_padding_are_inert ... 500
  (c) test_gradient_isolation .......................... 400
  (d) test_gradients_match_oracle ...................... 300
  (e) test_gru_rnn_match_oracle ........................ 400 (GRU, tanh and relu RNN)
  (f) test_gru_rnn_masked_values_are_inert ............. 300
  (g) test_gru_rnn_gradients_match_oracle_and_isolate .. 300
  (h) test_both_mask_classifications_agree_with_the_rows 400
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

from lstm_zero_lib import MaskedGRU, MaskedLSTM, MaskedRNN
from lstm_zero_lib import _mask_kind as mask_kind

N_ORACLE = 600
N_INERT = 500
N_GRAD = 400
N_ORACLE_GRAD = 300
N_OTHER = 400
N_OTHER_INERT = 300
N_OTHER_GRAD = 300

NAN, INF = float("nan"), float("inf")


@dataclass(frozen=True)
class Config:
    batch: int
    steps: int
    features: int
    hidden: int
    num_layers: int
    bidirectional: bool
    batch_first: bool
    with_hx: bool
    masked_output: str
    rows: tuple[tuple[bool, ...], ...]  # (B, T), batch-first
    seed: int
    row_fill: bool  # build the held input by the row fill (else by masked_fill)
    scan: bool  # classify the mask by its scan along time (else by comparison)


def _row(steps: int) -> st.SearchStrategy[tuple[bool, ...]]:
    return st.one_of(
        st.lists(st.booleans(), min_size=steps, max_size=steps).map(tuple),
        st.integers(0, steps).map(lambda n: (True,) * n + (False,) * (steps - n)),
        st.integers(0, steps).map(lambda n: (False,) * (steps - n) + (True,) * n),
    )


@st.composite
def configs(draw: st.DrawFn) -> Config:
    batch = draw(st.integers(1, 5))
    steps = draw(st.integers(1, 8))
    return Config(
        batch=batch,
        steps=steps,
        features=draw(st.integers(1, 4)),
        hidden=draw(st.integers(1, 5)),
        num_layers=draw(st.integers(1, 3)),
        bidirectional=draw(st.booleans()),
        batch_first=draw(st.booleans()),
        with_hx=draw(st.booleans()),
        masked_output=draw(st.sampled_from(["zero", "carry"])),
        rows=tuple(draw(st.lists(_row(steps), min_size=batch, max_size=batch))),
        seed=draw(st.integers(0, 2**16)),
        row_fill=draw(st.booleans()),
        scan=draw(st.booleans()),
    )


@contextmanager
def held_fill(cfg: Config, forced_held_input) -> Iterator[None]:
    """Calls inside build the held input (``rnn._held_input``, through the fixture
    ``forced_held_input``) and classify the mask (``_mask_kind.classify_mask``) the ways
    ``cfg`` says."""
    classify = mask_kind._kind_by_transitions if cfg.scan else mask_kind._kind_by_comparison
    with (
        forced_held_input(cfg.row_fill),
        mock.patch.object(mask_kind, "_kind_by_comparison", classify),
    ):
        yield


@dataclass
class Built:
    lstm: nn.LSTM
    module: MaskedLSTM
    x: Tensor  # x's layout
    mask: Tensor  # x's layout
    hx: tuple[Tensor, Tensor] | None


def build(cfg: Config) -> Built:
    torch.manual_seed(cfg.seed)
    lstm = nn.LSTM(
        cfg.features,
        cfg.hidden,
        cfg.num_layers,
        batch_first=cfg.batch_first,
        bidirectional=cfg.bidirectional,
    )
    mask = torch.tensor(cfg.rows, dtype=torch.bool).reshape(cfg.batch, cfg.steps)
    x = torch.randn(cfg.batch, cfg.steps, cfg.features)
    if not cfg.batch_first:
        mask, x = mask.t().contiguous(), x.transpose(0, 1).contiguous()
    hx = None
    if cfg.with_hx:
        shape = (cfg.num_layers * (2 if cfg.bidirectional else 1), cfg.batch, cfg.hidden)
        hx = (torch.randn(shape), torch.randn(shape))
    module = MaskedLSTM.from_lstm(lstm, masked_output=cfg.masked_output)
    return Built(lstm, module, x, mask, hx)


def _fill(shape: tuple[int, ...], kind: str, seed: int) -> Tensor:
    if kind == "random":
        return 100 * torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    if kind == "nan":
        return torch.full(shape, NAN)
    if kind == "inf":
        return torch.full(shape, INF)
    pattern = torch.tensor([NAN, INF, -INF, 1e30, -3.0])
    n = int(torch.tensor(shape).prod())
    return pattern.repeat(n // 5 + 1)[:n].reshape(shape)


def _grads(
    forward: Callable[..., tuple[Tensor, tuple[Tensor, Tensor]]],
    b: Built,
    x: Tensor,
    hx: tuple[Tensor, Tensor] | None,
) -> list[Tensor]:
    """Gradients of a fixed random weighting of (output, h_n, c_n) w.r.t. x, hx, weights."""
    out, (h_n, c_n) = forward(x, hx)
    gen = torch.Generator().manual_seed(7)
    loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in (out, h_n, c_n))
    inputs = [x, *(hx or ()), *b.lstm.parameters()]
    if not loss.requires_grad:  # every row masked and no hx: the result is a constant
        return [torch.zeros_like(i) for i in inputs]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs, strict=True)]


def _leaves(b: Built) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    hx = (
        None
        if b.hx is None
        else (b.hx[0].clone().requires_grad_(), b.hx[1].clone().requires_grad_())
    )
    return b.x.clone().requires_grad_(), hx


def _same(actual: Tensor, expected: Tensor, atol: float = 1e-6) -> None:
    assert torch.isfinite(actual).all()
    torch.testing.assert_close(actual, expected, atol=atol, rtol=1e-5)


@settings(max_examples=N_ORACLE)
@given(cfg=configs())
def test_matches_oracle(cfg: Config, oracle, close, forced_held_input):
    b = build(cfg)
    with held_fill(cfg, forced_held_input):
        out, (h_n, c_n) = b.module(b.x, b.mask, hx=b.hx)
    ref_out, (ref_h, ref_c) = oracle(b.lstm, b.x, b.mask, b.hx, cfg.masked_output)
    close(out, ref_out)
    close(h_n, ref_h)
    close(c_n, ref_c)
    if cfg.masked_output == "zero":
        assert torch.all(out[~b.mask] == 0)


@settings(max_examples=N_INERT)
@given(
    cfg=configs(),
    kind=st.sampled_from(["random", "nan", "inf", "mixed"]),
    extra=st.integers(0, 3),
)
def test_masked_values_and_extra_padding_are_inert(
    cfg: Config, kind: str, extra: int, forced_held_input
):
    b = build(cfg)
    time_dim = 1 if cfg.batch_first else 0
    dirty = torch.where(b.mask.unsqueeze(-1), b.x, _fill(tuple(b.x.shape), kind, cfg.seed))
    pad_shape = list(dirty.shape)
    pad_shape[time_dim] = extra
    dirty = torch.cat([dirty, _fill(tuple(pad_shape), kind, cfg.seed + 1)], dim=time_dim)
    pad_mask_shape = list(b.mask.shape)
    pad_mask_shape[time_dim] = extra
    mask = torch.cat([b.mask, torch.zeros(pad_mask_shape, dtype=torch.bool)], dim=time_dim)

    with held_fill(cfg, forced_held_input):
        out, (h_n, c_n) = b.module(b.x, b.mask, hx=b.hx)
        d_out, (d_h, d_c) = b.module(dirty, mask, hx=b.hx)
    atol = 1e-6 if extra == 0 else 1e-5  # a longer T may change float summation order
    _same(d_out.narrow(time_dim, 0, cfg.steps), out, atol)
    _same(d_h, h_n, atol)
    _same(d_c, c_n, atol)
    appended = d_out.narrow(time_dim, cfg.steps, extra)
    if cfg.masked_output == "zero":
        assert torch.all(appended == 0)
    else:  # forward half carries the output at the last original step; backward half is 0
        last = out.narrow(time_dim, cfg.steps - 1, 1)[..., : cfg.hidden]
        _same(appended[..., : cfg.hidden], last.expand_as(appended[..., : cfg.hidden]), atol)
        assert torch.all(appended[..., cfg.hidden :] == 0)


@settings(max_examples=N_GRAD)
@given(cfg=configs(), kind=st.sampled_from(["random", "nan", "mixed"]))
def test_gradient_isolation(cfg: Config, kind: str, forced_held_input):
    b = build(cfg)
    clean, hx = _leaves(b)
    filler = _fill(tuple(b.x.shape), kind, cfg.seed)
    dirty = torch.where(b.mask.unsqueeze(-1), b.x, filler).requires_grad_()

    def forward(x, hx):
        return b.module(x, b.mask, hx=hx)

    with held_fill(cfg, forced_held_input):
        clean_grads = _grads(forward, b, clean, hx)
        dirty_grads = _grads(forward, b, dirty, hx)
    assert torch.all(clean_grads[0][~b.mask] == 0), "masked slots get exactly zero gradient"
    assert torch.all(dirty_grads[0][~b.mask] == 0)
    for got, want in zip(dirty_grads, clean_grads, strict=True):
        _same(got, want)


@settings(max_examples=N_ORACLE_GRAD)
@given(cfg=configs())
def test_gradients_match_oracle(cfg: Config, oracle, close, forced_held_input):
    b = build(cfg)
    x, hx = _leaves(b)
    with held_fill(cfg, forced_held_input):
        got = _grads(lambda x, hx: b.module(x, b.mask, hx=hx), b, x, hx)
    want = _grads(lambda x, hx: oracle(b.lstm, x, b.mask, hx, cfg.masked_output), b, x, hx)
    for g, w in zip(got, want, strict=True):
        close(g, w, atol=1e-4)


# --------------------------------------------------------------------------- GRU and RNN

CELLS = st.sampled_from(["gru", "tanh", "relu"])


@dataclass
class BuiltOther:
    inner: nn.GRU | nn.RNN
    module: MaskedGRU | MaskedRNN
    x: Tensor
    mask: Tensor
    hx: Tensor | None


def build_other(cfg: Config, cell: str) -> BuiltOther:
    """The LSTM config's shapes, mask and input, for a GRU or an RNN with ``h_0`` alone."""
    b = build(cfg)
    torch.manual_seed(cfg.seed)
    sizes = (cfg.features, cfg.hidden, cfg.num_layers)
    layout = {"batch_first": cfg.batch_first, "bidirectional": cfg.bidirectional}
    module: MaskedGRU | MaskedRNN
    if cell == "gru":
        inner: nn.GRU | nn.RNN = nn.GRU(*sizes, **layout)
        module = MaskedGRU.from_gru(inner, masked_output=cfg.masked_output)
    else:
        inner = nn.RNN(*sizes, nonlinearity=cell, **layout)
        module = MaskedRNN.from_rnn(inner, masked_output=cfg.masked_output)
    return BuiltOther(inner, module, b.x, b.mask, None if b.hx is None else b.hx[0])


@settings(max_examples=N_OTHER)
@given(cfg=configs(), cell=CELLS)
def test_gru_rnn_match_oracle(cfg: Config, cell: str, oracle, close, forced_held_input):
    b = build_other(cfg, cell)
    with held_fill(cfg, forced_held_input):
        out, h_n = b.module(b.x, b.mask, hx=b.hx)
    ref_out, ref_h = oracle(b.inner, b.x, b.mask, b.hx, cfg.masked_output)
    close(out, ref_out)
    close(h_n, ref_h)
    if cfg.masked_output == "zero":
        assert torch.all(out[~b.mask] == 0)


@settings(max_examples=N_OTHER_INERT)
@given(cfg=configs(), cell=CELLS, kind=st.sampled_from(["random", "nan", "inf", "mixed"]))
def test_gru_rnn_masked_values_are_inert(cfg: Config, cell: str, kind: str, forced_held_input):
    b = build_other(cfg, cell)
    dirty = torch.where(b.mask.unsqueeze(-1), b.x, _fill(tuple(b.x.shape), kind, cfg.seed))
    with held_fill(cfg, forced_held_input):
        out, h_n = b.module(b.x, b.mask, hx=b.hx)
        d_out, d_h = b.module(dirty, b.mask, hx=b.hx)
    _same(d_out, out)
    _same(d_h, h_n)


@settings(max_examples=N_OTHER_GRAD)
@given(cfg=configs(), cell=CELLS)
def test_gru_rnn_gradients_match_oracle_and_isolate(
    cfg: Config, cell: str, oracle, close, forced_held_input
):
    b = build_other(cfg, cell)
    dirty = torch.where(b.mask.unsqueeze(-1), b.x, _fill(tuple(b.x.shape), "mixed", cfg.seed))
    hx = None if b.hx is None else b.hx.clone().requires_grad_()
    inputs = [*([hx] if hx is not None else []), *b.inner.parameters()]

    def grads(forward: Callable[[Tensor], tuple[Tensor, Tensor]], x: Tensor) -> list[Tensor]:
        x = x.clone().requires_grad_()
        out, h_n = forward(x)
        gen = torch.Generator().manual_seed(7)
        loss = sum((t * torch.randn(t.shape, generator=gen)).sum() for t in (out, h_n))
        if not loss.requires_grad:  # every row masked and no hx: the result is a constant
            return [torch.zeros_like(i) for i in (x, *inputs)]
        leaves = [x, *inputs]
        found = torch.autograd.grad(loss, leaves, allow_unused=True)
        return [torch.zeros_like(i) if g is None else g for g, i in zip(found, leaves, strict=True)]

    with held_fill(cfg, forced_held_input):
        got = grads(lambda x: b.module(x, b.mask, hx=hx), dirty)
    want = grads(lambda x: oracle(b.inner, x, b.mask, hx, cfg.masked_output), b.x)
    assert torch.all(got[0][~b.mask] == 0), "masked slots get exactly zero gradient"
    for g, w in zip(got, want, strict=True):
        assert torch.isfinite(g).all()
        close(g, w, atol=1e-4)


# --------------------------------------------------------------------------- mask kinds


@st.composite
def masks(draw: st.DrawFn) -> Tensor:
    batch, steps = draw(st.integers(1, 5)), draw(st.integers(1, 8))
    rows = draw(st.lists(_row(steps), min_size=batch, max_size=batch))
    return torch.tensor(rows, dtype=torch.bool).reshape(batch, steps)


@settings(max_examples=N_OTHER)
@given(mask=masks(), transposed=st.booleans())
def test_both_mask_classifications_agree_with_the_rows(mask: Tensor, transposed: bool):
    # The CPU compares the mask with its lengths' paddings; elsewhere (and under
    # torch.compile) four scalars are read together. Both against the rows themselves.
    from lstm_zero_lib._mask_kind import _kind_by_comparison, _kind_by_transitions

    rows = mask.tolist()
    lengths = [sum(r) for r in rows]
    right = all(r == sorted(r, reverse=True) for r in rows)  # valid steps first
    left = all(r == sorted(r) for r in rows)  # valid steps last
    want = (min(lengths), max(lengths), right, left and not right)
    if transposed:  # a time-major mask is classified through its transpose
        mask = mask.t().contiguous().t()
    for classify in (_kind_by_comparison, _kind_by_transitions):
        kind = classify(mask, mask.sum(dim=1))
        assert kind[1:] == want
        assert kind.lengths.tolist() == lengths
