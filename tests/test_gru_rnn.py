"""MaskedGRU / MaskedRNN / masked_gru / masked_rnn against the per-sequence oracle.

The oracle is conftest.py's (run the same module on each sequence's valid steps alone).
Masks follow x's layout. B=4, T=6, F=3, H=5. "rnn" is a tanh RNN, "relu" a relu one.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lstm_zero_lib import (
    InputError,
    MaskedGRU,
    MaskedRNN,
    lengths_to_mask,
    masked_gru,
    masked_rnn,
    padding_error,
    reference_forward,
)

F, H = 3, 5

cells = pytest.mark.parametrize("cell", ["gru", "rnn", "relu"])
layers = pytest.mark.parametrize("num_layers", [1, 2], ids=lambda n: f"L{n}")
directions = pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
layouts = pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tm"])
initial = pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
modes = pytest.mark.parametrize("masked_output", ["zero", "carry"])


def _build(cell: str, num_layers: int = 2, bidirectional: bool = True, batch_first: bool = True,
           **kwargs) -> MaskedGRU | MaskedRNN:  # fmt: skip
    torch.manual_seed(0)
    sizes = (F, H, num_layers)
    if cell == "gru":
        return MaskedGRU(*sizes, batch_first=batch_first, bidirectional=bidirectional, **kwargs)
    nonlinearity = "tanh" if cell == "rnn" else "relu"
    return MaskedRNN(*sizes, nonlinearity=nonlinearity, batch_first=batch_first,
                     bidirectional=bidirectional, **kwargs)  # fmt: skip


def _inner(m: MaskedGRU | MaskedRNN) -> nn.GRU | nn.RNN:
    return m.gru if isinstance(m, MaskedGRU) else m.rnn


def _hx(m: MaskedGRU | MaskedRNN, batch: int, seed: int = 2) -> Tensor:
    inner = _inner(m)
    gen = torch.Generator().manual_seed(seed)
    dirs = 2 if inner.bidirectional else 1
    return torch.randn(inner.num_layers * dirs, batch, H, generator=gen)


def _loss(out: Tensor, h_n: Tensor, seed: int = 123) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=gen)).sum() for t in (out, h_n))


# --------------------------------------------------------------------------- forward vs oracle


@cells
@layers
@directions
@layouts
@initial
@modes
def test_forward_matches_oracle(
    cell, mask_pattern, num_layers, bidirectional, batch_first, with_hx, masked_output, oracle,
    pattern_mask, make_x, close,
):  # fmt: skip
    m = _build(cell, num_layers, bidirectional, batch_first, masked_output=masked_output)
    mask = pattern_mask(mask_pattern, batch_first)
    x = make_x(mask)
    batch = mask.shape[0 if batch_first else 1]
    hx = _hx(m, batch) if with_hx else None

    out, h_n = m(x, mask, hx=hx)
    ref_out, ref_h = oracle(_inner(m), x, mask, hx, masked_output)

    dirs = 2 if bidirectional else 1
    assert out.shape == (*mask.shape, dirs * H)
    assert h_n.shape == (num_layers * dirs, batch, H)
    close(out, ref_out)
    close(h_n, ref_h)
    if masked_output == "zero":
        assert torch.all(out[~mask] == 0), "outputs at masked steps must be exactly 0"


@cells
@directions
@layouts
@initial
def test_reference_forward_and_padding_error(
    cell, mask_pattern, bidirectional, batch_first, with_hx, oracle, pattern_mask, make_x, close
):
    inner = _inner(_build(cell, 2, bidirectional, batch_first))
    mask = pattern_mask(mask_pattern, batch_first)
    x = make_x(mask)
    hx = _hx(_build(cell, 2, bidirectional, batch_first), 4) if with_hx else None
    out, h_n = reference_forward(inner, x, mask, hx)
    ref_out, ref_h = oracle(inner, x, mask, hx)
    close(out, ref_out, atol=0)
    close(h_n, ref_h, atol=0)

    err = padding_error(inner, x, mask)
    plain, h_plain = inner(x)
    ref_out, ref_h = oracle(inner, x, mask)
    row_h = (h_plain - ref_h).abs().amax(dim=(0, 2))
    close(err.h_n, row_h, atol=0)
    assert torch.all(err.c_n == 0), "a GRU or an RNN has no cell state to get wrong"
    valid = mask if batch_first else mask.t()
    if bool(valid.all()):
        assert float(err.h_n.max()) < 1e-6 and float(err.output_valid.max()) < 1e-6
    else:
        assert float(err.h_n.max()) > 1e-3, "padding moves a plain GRU/RNN's final state"


@cells
@modes
def test_float64_matches_oracle(cell, masked_output, pattern_mask, make_x, oracle, close):
    m = _build(cell, 2, True, False, masked_output=masked_output).double()
    mask = pattern_mask("gaps", batch_first=False)
    x = make_x(mask).double()
    hx = _hx(m, 4).double()
    out, h_n = m(x, mask, hx=hx)
    ref_out, ref_h = oracle(_inner(m), x, mask, hx, masked_output)
    assert out.dtype == h_n.dtype == torch.float64
    close(out, ref_out, atol=1e-12)
    close(h_n, ref_h, atol=1e-12)


@cells
def test_mask_none_is_the_plain_module(cell, make_x, close):
    m = _build(cell)
    x = make_x(torch.ones(4, 6, dtype=torch.bool))
    hx = _hx(m, 4)
    out, h_n = m(x, hx=hx)
    ref_out, ref_h = _inner(m)(x, hx)
    close(out, ref_out, atol=0)
    close(h_n, ref_h, atol=0)


@cells
@layouts
@directions
@pytest.mark.parametrize("longest", [6, 4], ids=["full_row", "no_full_row"])
def test_lengths_equal_right_padded_mask(
    cell, batch_first, bidirectional, longest, oracle, make_x, close
):
    m = _build(cell, 2, bidirectional, batch_first)
    lengths = torch.tensor([longest, 0, 3, 1])
    mask = lengths_to_mask(lengths, 6, batch_first=batch_first)
    x = make_x(mask)
    out, h_n = m(x, lengths=lengths)
    m_out, m_h = m(x, mask)
    close(out, m_out, atol=0)
    close(h_n, m_h, atol=0)
    ref_out, ref_h = oracle(_inner(m), x, mask)
    close(out, ref_out)
    close(h_n, ref_h)
    assert torch.equal(m(x, lengths=lengths.tolist())[0], out)


@cells
@directions
def test_empty_time_axis_and_all_empty_rows_keep_the_initial_state(cell, bidirectional):
    m = _build(cell, 2, bidirectional)
    hx = _hx(m, 3)
    for steps in (0, 4):
        x = torch.randn(3, steps, F)
        out, h_n = m(x, torch.zeros(3, steps, dtype=torch.bool), hx=hx)
        assert out.shape == (3, steps, (2 if bidirectional else 1) * H)
        assert torch.all(out == 0) and torch.equal(h_n, hx)
        assert torch.equal(m(x, lengths=torch.zeros(3, dtype=torch.long), hx=hx)[1], hx)


def test_gru_holds_the_state_bit_for_bit_through_masked_steps():
    """Reset gate 0, update gate 1, candidate 0, all exact: a held step returns h to the
    last bit, however many there are, and "carry" repeats the held output exactly."""
    m = _build("gru", 2, True, masked_output="carry")
    steps = 300
    x = torch.randn(2, steps, F)
    mask = torch.zeros(2, steps, dtype=torch.bool)
    mask[:, :2] = mask[:, -1] = True
    hx = _hx(m, 2)
    with torch.no_grad():
        out, h_n = m(x, mask, hx=hx)
    held = out[:, 2:-1, :H]  # forward direction: the output at step 1, held
    assert torch.equal(held, out[:, 1:2, :H].expand_as(held))
    before = out[:, 2:-1, H:]  # backward direction: the output at the last step, held
    assert torch.equal(before, out[:, -1:, H:].expand_as(before))
    assert torch.equal(h_n[-1], out[:, 0, H:])  # backward ends at its last valid step


def test_gru_refuses_weights_or_h0_beyond_the_hold_margin():
    m = _build("gru", 1, False)
    x = torch.randn(2, 4, F)
    mask = torch.tensor([[1, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.bool)
    hx = torch.full((1, 2, H), 1e30)
    with pytest.raises(InputError, match=r"gru: expected reset/update-gate weights and h_0 .* got"):
        m(x, mask, hx=hx)
    with torch.no_grad():
        m.gru.weight_hh_l0[H : 2 * H] = 1e30
    with pytest.raises(InputError, match="gru: expected reset/update-gate weights"):
        m(x, mask)
    m(x, torch.ones_like(mask))  # nothing masked: the plain kernel, no hold to saturate
    m.gru.weight_hh_l0.data[H : 2 * H] = 0.1
    m(x, mask)  # back inside the margin


# --------------------------------------------------------------------------- construction


@cells
def test_constructor_from_and_functional(cell, pattern_mask, make_x):
    m = _build(cell, 2, True, False, dropout=0.25, bias=False, masked_output="carry")
    inner = _inner(m)
    assert (inner.input_size, inner.hidden_size, inner.num_layers) == (F, H, 2)
    assert inner.bias is False and inner.batch_first is False and inner.dropout == 0.25
    assert m.batch_first is False and "carry" in repr(m)
    assert {id(p) for p in m.parameters()} == {id(p) for p in inner.parameters()}
    if cell != "gru":
        assert m.rnn.nonlinearity == ("tanh" if cell == "rnn" else "relu")

    wrapped = MaskedGRU.from_gru(inner) if cell == "gru" else MaskedRNN.from_rnn(inner)
    assert _inner(wrapped) is inner and wrapped.masked_output == "zero"
    functional = masked_gru if cell == "gru" else masked_rnn
    mask = pattern_mask("gaps", batch_first=False)
    x = make_x(mask)
    hx = _hx(m, 4)
    m.eval()
    torch.testing.assert_close(
        functional(inner, x, mask, hx, "carry"), m(x, mask, hx=hx), atol=0, rtol=0
    )


@cells
def test_dropout_eval_matches_oracle_train_differs(cell, pattern_mask, make_x, oracle, close):
    m = _build(cell, 2, True, dropout=0.5)
    mask = pattern_mask("gaps")
    x = make_x(mask)
    m.eval()
    out_eval, h_eval = m(x, mask)
    ref_out, ref_h = oracle(_inner(m), x, mask)
    close(out_eval, ref_out)
    close(h_eval, ref_h)
    m.train()
    torch.manual_seed(1)
    out_a, _ = m(x, mask)
    torch.manual_seed(2)
    out_b, _ = m(x, mask)
    assert not torch.allclose(out_a[mask], out_eval[mask], atol=1e-4)
    assert not torch.allclose(out_a[mask], out_b[mask], atol=1e-4)
    assert torch.all(out_a[~mask] == 0)


# --------------------------------------------------------------------------- gradients


@cells
@directions
@layouts
@initial
@modes
@pytest.mark.parametrize("pattern", ["right", "gaps", "left", "all_masked"])
def test_grads_match_oracle(
    cell, bidirectional, batch_first, with_hx, masked_output, pattern, oracle, pattern_mask,
    make_x, close,
):  # fmt: skip
    m = _build(cell, 2, bidirectional, batch_first, masked_output=masked_output)
    mask = pattern_mask(pattern, batch_first)
    x = make_x(mask).requires_grad_()
    hx = _hx(m, 4).requires_grad_() if with_hx else None
    inputs = [x, *([hx] if with_hx else []), *_inner(m).parameters()]
    got = torch.autograd.grad(_loss(*m(x, mask, hx=hx)), inputs)
    want = torch.autograd.grad(_loss(*oracle(_inner(m), x, mask, hx, masked_output)), inputs)
    for g, w in zip(got, want, strict=True):
        close(g, w, atol=1e-4)


@cells
@layouts
@directions
@modes
@pytest.mark.parametrize("pattern", ["right", "gaps", "left", "all_masked"])
def test_nan_inf_in_masked_slots_never_leak(
    cell, batch_first, bidirectional, masked_output, pattern, pattern_mask, make_x, poison
):
    m = _build(cell, 2, bidirectional, batch_first, masked_output=masked_output)
    mask = pattern_mask(pattern, batch_first)
    clean = make_x(mask).requires_grad_()
    dirty = poison(clean.detach(), mask).requires_grad_()
    hx = _hx(m, 4)
    params = list(_inner(m).parameters())
    results = []
    for x in (clean, dirty):
        out, h_n = m(x, mask, hx=hx)
        grads = torch.autograd.grad(out.sum() + h_n.sum(), [x, *params])
        results.append((out, h_n, *grads))
    for got, want in zip(results[1], results[0], strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert torch.all(results[1][2][~mask] == 0), "masked slots must get exactly zero gradient"
    if bool(mask.any()):
        assert torch.any(results[1][2][mask] != 0)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_bad_input_raises_input_error_naming_the_argument(cell, says):
    m = _build(cell, 1, False)
    inner = _inner(m)
    functional = masked_gru if cell == "gru" else masked_rnn
    x = torch.randn(4, 6, F)
    mask = torch.ones(4, 6, dtype=torch.bool)
    kind = "GRU" if cell == "gru" else "RNN"
    cases = [
        (lambda: m(x, torch.ones(4, 5)), says("mask", "(4, 6)", "(4, 5)")),
        (lambda: m(x, mask, lengths=torch.tensor([1, 2, 3, 4])), says("lengths", "both")),
        (lambda: functional(inner, x, None), says("mask", "neither")),
        (lambda: m(x, torch.full((4, 6), 0.5)), says("mask", "0 and 1", "0.5")),
        (lambda: m(torch.randn(4, 6), mask), says("x", "(B, T, F)", "(4, 6)")),
        (lambda: m(torch.randn(4, 6, F + 1), mask), says("x", f"input_size = {F}", "(4, 6, 4)")),
        (lambda: m(x.double(), mask), says("x", "float32", f"the {kind}'s weights", "float64")),
        (lambda: m(x, lengths=torch.tensor([7, 1, 1, 1])), says("lengths", "<= T = 6", "7")),
        (lambda: m(x, lengths=torch.tensor([-1, 1, 1, 1])), says("lengths", ">= 0", "-1")),
        (lambda: m(x, lengths=torch.tensor([1, 1])), says("lengths", "(4,)", "(2,)")),
        (lambda: m(x, mask, hx=torch.zeros(2, 4, H)), says("hx", "(1, 4, 5)", "(2, 4, 5)")),
        (lambda: m(x, mask, hx=(torch.zeros(1, 4, H),)), says("hx", "h_0", "tuple")),
        (lambda: m(x, mask, hx=torch.zeros(1, 4, H).double()), says("hx", "float32", "float64")),
        (lambda: functional(nn.LSTM(F, H), x, mask), says(cell, f"torch.nn.{kind}", "LSTM")),
        (lambda: functional(inner, x, mask, masked_output="last"), says("masked_output", "last")),
        (lambda: type(m)(F, H, masked_output="last"), says("masked_output", "'zero'", "last")),
    ]
    for call, pattern in cases:
        with pytest.raises(InputError, match=pattern):
            call()
    with pytest.raises(InputError, match=says(cell, "expected a module with", "'hidden_size': 7")):
        if cell == "gru":
            MaskedGRU(F, 7, gru=inner)
        else:
            MaskedRNN(F, 7, rnn=inner)
    with pytest.raises(InputError, match=says("lstm", "nn.GRU or nn.RNN", "Linear")):
        reference_forward(nn.Linear(2, 2), x, mask)  # type: ignore[arg-type]


#: (channel, row_fill): without the channel there is one way; with it, two.
HELD_WAYS = [(False, False), (True, False), (True, True)]
HELD_IDS = ["no channel", "channel, masked_fill", "channel, row fill"]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize(("channel", "row_fill"), HELD_WAYS, ids=HELD_IDS)
def test_held_input_is_exact_nan_safe_and_passes_gradient(dtype, channel, row_fill, held_input_way):
    from lstm_zero_lib.rnn import _held_input

    # Both ways of building it: the row fill is what large CPU inputs get.
    held_input_way(row_fill)

    x = torch.randn(3, 4, 2).to(dtype)
    x[0, 1] = float("nan")
    x[2, 3] = float("-inf")
    skip = torch.zeros(3, 4, 1, dtype=torch.bool)
    skip[0, 1] = skip[2, 3] = skip[1, 0] = True
    x.requires_grad_()
    out = _held_input(x, skip, channel)
    assert out.dtype == dtype and out.shape == (3, 4, 2 + channel)
    assert torch.equal(out[..., :2], torch.where(skip, torch.zeros((), dtype=dtype), x))
    assert not torch.signbit(out[..., :2][skip.expand(3, 4, 2)]).any(), "masked slots are +0"
    if channel:
        assert torch.equal(out[..., 2:], skip.to(dtype))
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, (~skip).to(dtype).expand_as(x))


# --------------------------------------------------------------------------- relu, autocast


@directions
def test_relu_state_growing_over_padding_stays_exact_and_finite(bidirectional: bool):
    # An expanding relu RNN (W_hh = 1.5 I) run over 255 padded steps would reach inf there;
    # the reset channel emits exactly 0 at padded steps instead, so no inf * 0 = NaN reaches
    # a masked output or the gradient of W_hh, and everything equals the oracle.
    rnn = nn.RNN(2, 3, batch_first=True, nonlinearity="relu", bidirectional=bidirectional)
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            p.copy_(torch.eye(3) * 1.5 if name.startswith("weight_hh") else torch.full_like(p, 0.1))
    steps = 260
    x = torch.rand(2, steps, 2, generator=torch.Generator().manual_seed(0)) * 0.1
    x[1] = -10.0  # the full-length row stays at 0: relu of a negative input
    mask = torch.zeros(2, steps, dtype=torch.bool)
    mask[0, :5] = True
    mask[1] = True
    xs = x.clone().requires_grad_()
    out, h_n = masked_rnn(rnn, xs, mask)
    (out[mask].sum() + h_n.sum()).backward()
    grads = [p.grad.clone() for p in rnn.parameters()]
    rnn.zero_grad()
    ref, h_ref = reference_forward(rnn, x, mask)
    (ref[mask].sum() + h_ref.sum()).backward()
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_n, h_ref, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, [p.grad for p in rnn.parameters()], strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_relu_refuses_a_state_beyond_the_reset_margin():
    torch.manual_seed(0)
    rnn = nn.RNN(2, 3, batch_first=True, nonlinearity="relu")
    x = torch.randn(2, 4, 2)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        rnn.weight_hh_l0.fill_(1.0)  # the state grows (stays finite): 3e29, 9e29
    h0 = torch.full((1, 2, 3), 1e29)
    with pytest.raises(InputError, match=r"rnn: expected relu weights and states"):
        masked_rnn(rnn, x, mask, h0)
    masked_rnn(rnn, x, mask, h0 * 1e-29)  # an ordinary state is fine


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_gru_under_autocast_uses_the_autocast_dtype_for_the_hold(dtype: torch.dtype):
    # Under float16 autocast the kernel computes in float16, where a 1e30 hold weight is inf
    # and 0 * inf = NaN on valid steps: the weight must follow autocast's dtype.
    torch.manual_seed(0)
    gru = nn.GRU(4, 8, batch_first=True, bidirectional=True)
    x = torch.randn(3, 6, 4)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1], [1] * 6], dtype=torch.bool)
    with torch.autocast("cpu", dtype=dtype):
        out, h_n = masked_gru(gru, x, mask)
        ref, h_ref = reference_forward(gru, x, mask)
    assert torch.isfinite(out).all() and torch.isfinite(h_n).all()
    torch.testing.assert_close(out.float(), ref.float(), rtol=0, atol=2e-2)
    torch.testing.assert_close(h_n.float(), h_ref.float(), rtol=0, atol=2e-2)


@cells
@directions
def test_masked_outputs_are_zero_even_after_a_nan_valid_input(cell: str, bidirectional: bool):
    # A NaN at a valid step makes that row's valid outputs NaN (as in nn.GRU / nn.RNN), but
    # masked outputs are selected as zeros, never multiplied by 0 (0 * NaN = NaN).
    m = _build(cell, 1, bidirectional)
    x = torch.randn(2, 6, F)
    x[0, 1] = float("nan")
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        out, _ = m(x, mask)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    x.requires_grad_()
    out, _ = m(x, mask)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))


@pytest.mark.parametrize(("channel", "row_fill"), HELD_WAYS, ids=HELD_IDS)
def test_held_input_selects_its_gradient_never_multiplies(channel, row_fill, held_input_way):
    # A non-finite gradient arriving at a masked slot must not reach x (nan * 0 is NaN).
    from lstm_zero_lib.rnn import _held_input

    held_input_way(row_fill)

    x = torch.randn(2, 3, 4, requires_grad=True)
    skip = torch.tensor([[False, True, False], [True, False, False]]).unsqueeze(2)
    out = _held_input(x, skip, channel)
    if channel:
        assert torch.equal(out[..., -1:], skip.to(x.dtype))
    grad = torch.ones_like(out)
    grad[0, 1] = float("nan")
    grad[1, 0] = float("inf")
    out.backward(grad)
    assert x.grad is not None
    assert torch.equal(x.grad[skip.expand_as(x)], torch.zeros(8))
    assert torch.equal(x.grad[~skip.expand_as(x)], torch.ones(16))
