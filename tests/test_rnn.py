"""MaskedLSTM / masked_lstm against the per-sequence oracle in conftest.py.

Masks follow x's layout ((B, T) batch-first, (T, B) time-major). B=4, T=6, F=3, H=5.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lstm_zero_lib import (
    MaskedGRU,
    MaskedLSTM,
    MaskedRNN,
    lengths_to_mask,
    masked_lstm,
    reference_forward,
)

F, H = 3, 5

layers = pytest.mark.parametrize("num_layers", [1, 2, 3], ids=lambda n: f"L{n}")
directions = pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
layouts = pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tm"])
initial = pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
modes = pytest.mark.parametrize("masked_output", ["zero", "carry"])


def _params(lstm: nn.LSTM) -> list[Tensor]:
    return list(lstm.parameters())


def _weighted_loss(out: Tensor, h_n: Tensor, c_n: Tensor, seed: int = 123) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return sum((t * torch.randn(t.shape, generator=gen)).sum() for t in (out, h_n, c_n))


def _build(num_layers: int, bidirectional: bool, batch_first: bool, **kwargs) -> MaskedLSTM:
    torch.manual_seed(0)
    return MaskedLSTM(
        F, H, num_layers, batch_first=batch_first, bidirectional=bidirectional, **kwargs
    )


# --------------------------------------------------------------------------- the oracle itself


def test_oracle_equals_plain_lstm_on_full_mask(oracle, pattern_mask, make_x, make_hx, close):
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, 2, batch_first=True, bidirectional=True)
    mask = pattern_mask("full")
    x = make_x(mask)
    hx = make_hx(lstm, mask.shape[0])
    out, (h_n, c_n) = oracle(lstm, x, mask, hx)
    ref_out, (ref_h, ref_c) = lstm(x, hx)
    close(out, ref_out)
    close(h_n, ref_h)
    close(c_n, ref_c)


def test_oracle_equals_packed_sequence_on_right_padding(oracle, pattern_mask, make_x, close):
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, 2, batch_first=True, bidirectional=True)
    mask = pattern_mask("right")
    x = make_x(mask)
    lengths = mask.sum(1)
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    packed_out, (ref_h, ref_c) = lstm(packed)
    ref_out, _ = nn.utils.rnn.pad_packed_sequence(
        packed_out, batch_first=True, total_length=mask.shape[1]
    )
    out, (h_n, c_n) = oracle(lstm, x, mask)
    close(out, ref_out)
    close(h_n, ref_h)
    close(c_n, ref_c)


# --------------------------------------------------------------------------- forward vs oracle


@layers
@directions
@layouts
@initial
@modes
def test_forward_matches_oracle(
    mask_pattern: str,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    with_hx: bool,
    masked_output: str,
    oracle,
    pattern_mask,
    make_x,
    make_hx,
    close,
):
    m = _build(num_layers, bidirectional, batch_first, masked_output=masked_output)
    mask = pattern_mask(mask_pattern, batch_first)
    x = make_x(mask)
    batch = x.shape[0] if batch_first else x.shape[1]
    hx = make_hx(m.lstm, batch) if with_hx else None

    out, (h_n, c_n) = m(x, mask, hx=hx)
    ref_out, (ref_h, ref_c) = oracle(m.lstm, x, mask, hx, masked_output)

    directions_ = 2 if bidirectional else 1
    assert out.shape == (*mask.shape, directions_ * H)
    assert h_n.shape == c_n.shape == (num_layers * directions_, batch, H)
    close(out, ref_out)
    close(h_n, ref_h)
    close(c_n, ref_c)
    if masked_output == "zero":
        assert torch.all(out[~mask] == 0), "outputs at masked steps must be exactly 0"


@layers
@directions
@layouts
@initial
def test_reference_forward_matches_oracle(
    mask_pattern, num_layers, bidirectional, batch_first, with_hx, oracle, pattern_mask, make_x,
    make_hx, close,
):  # fmt: skip
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, num_layers, batch_first=batch_first, bidirectional=bidirectional)
    mask = pattern_mask(mask_pattern, batch_first)
    x = make_x(mask)
    hx = make_hx(lstm, mask.shape[0 if batch_first else 1]) if with_hx else None

    out, (h_n, c_n) = reference_forward(lstm, x, mask, hx=hx)
    ref_out, (ref_h, ref_c) = oracle(lstm, x, mask, hx)
    close(out, ref_out)
    close(h_n, ref_h)
    close(c_n, ref_c)


def test_mask_none_is_plain_lstm(make_x, make_hx, close):
    m = _build(2, True, True)
    x = make_x(torch.ones(4, 6, dtype=torch.bool))
    hx = make_hx(m.lstm, 4)
    out, (h_n, c_n) = m(x, hx=hx)
    ref_out, (ref_h, ref_c) = m.lstm(x, hx)
    close(out, ref_out)
    close(h_n, ref_h)
    close(c_n, ref_c)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.float32], ids=str)
def test_numeric_01_masks_equal_bool_mask(dtype, pattern_mask, make_x, close):
    m = _build(2, True, True)
    mask = pattern_mask("gaps")
    x = make_x(mask)
    expected = m(x, mask)
    got = m(x, mask.to(dtype))
    close(got[0], expected[0], atol=0)
    close(got[1][0], expected[1][0], atol=0)
    close(got[1][1], expected[1][1], atol=0)


@modes
def test_float64_module_matches_oracle(masked_output, pattern_mask, make_x, make_hx, oracle, close):
    m = _build(2, True, False, masked_output=masked_output).double()
    mask = pattern_mask("gaps", batch_first=False)
    x = make_x(mask).double()
    hx = tuple(t.double() for t in make_hx(m.lstm, 4))
    out, (h_n, c_n) = m(x, mask, hx=hx)
    ref_out, (ref_h, ref_c) = oracle(m.lstm, x, mask, hx, masked_output)
    assert out.dtype == h_n.dtype == c_n.dtype == torch.float64
    close(out, ref_out, atol=1e-10)
    close(h_n, ref_h, atol=1e-10)
    close(c_n, ref_c, atol=1e-10)


# --------------------------------------------------------------------------- carry semantics


def test_carry_semantics_unidirectional_self_consistent():
    m = _build(1, False, True, masked_output="carry")
    mask = torch.tensor([[0, 1, 0, 0, 1, 0]], dtype=torch.bool)
    x = torch.randn(1, 6, F)
    out, _ = m(x, mask)
    assert torch.all(out[0, 0] == 0), "before the first valid step: zeros"
    assert torch.equal(out[0, 2], out[0, 1])
    assert torch.equal(out[0, 3], out[0, 1])
    assert torch.equal(out[0, 5], out[0, 4])
    assert not torch.equal(out[0, 1], out[0, 4])


def test_carry_semantics_bidirectional_self_consistent():
    m = _build(1, True, True, masked_output="carry")
    mask = torch.tensor([[0, 1, 0, 0, 1, 0]], dtype=torch.bool)
    x = torch.randn(1, 6, F)
    out, _ = m(x, mask)
    fwd, bwd = out[0, :, :H], out[0, :, H:]
    # forward half: previous valid step (zeros before the first)
    assert torch.all(fwd[0] == 0)
    assert torch.equal(fwd[2], fwd[1]) and torch.equal(fwd[3], fwd[1])
    assert torch.equal(fwd[5], fwd[4])
    # backward half: next valid step (zeros after the last)
    assert torch.equal(bwd[0], bwd[1])
    assert torch.equal(bwd[2], bwd[4]) and torch.equal(bwd[3], bwd[4])
    assert torch.all(bwd[5] == 0)


# --------------------------------------------------------------------------- lengths=


@layouts
@directions
def test_lengths_equal_right_padded_mask(batch_first, bidirectional, oracle, make_x, close):
    m = _build(2, bidirectional, batch_first)
    lengths = torch.tensor([6, 0, 3, 1])
    mask = lengths_to_mask(lengths, 6, batch_first=batch_first)
    x = make_x(mask)
    out, (h_n, c_n) = m(x, lengths=lengths)
    m_out, (m_h, m_c) = m(x, mask)
    ref_out, (ref_h, ref_c) = oracle(m.lstm, x, mask)
    for got, want in ((out, m_out), (h_n, m_h), (c_n, m_c)):
        close(got, want, atol=1e-6)
    close(out, ref_out)
    close(h_n, ref_h)
    close(c_n, ref_c)


# --------------------------------------------------------------------------- construction


def test_constructor_builds_matching_lstm():
    m = MaskedLSTM(3, 7, 2, bias=False, batch_first=False, dropout=0.25, bidirectional=True)
    assert isinstance(m, nn.Module)
    assert isinstance(m.lstm, nn.LSTM)
    lstm = m.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (3, 7, 2)
    assert lstm.bias is False and lstm.batch_first is False and lstm.bidirectional is True
    assert lstm.dropout == 0.25
    assert {id(p) for p in lstm.parameters()} <= {id(p) for p in m.parameters()}


def test_from_lstm_wraps_and_shares_weights(make_x, close):
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, 2, batch_first=True, bidirectional=True)
    m = MaskedLSTM.from_lstm(lstm)
    assert m.lstm is lstm
    mask = torch.ones(2, 4, dtype=torch.bool)
    x = make_x(mask)
    before, _ = m(x, mask)
    with torch.no_grad():
        lstm.weight_ih_l0.add_(0.5)
    after, _ = m(x, mask)
    assert not torch.allclose(before, after), "from_lstm must share, not copy, the weights"
    close(after, lstm(x)[0])


def test_from_lstm_masked_output(pattern_mask, make_x, oracle, close):
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, 1, batch_first=True, bidirectional=True)
    m = MaskedLSTM.from_lstm(lstm, masked_output="carry")
    mask = pattern_mask("gaps")
    x = make_x(mask)
    close(m(x, mask)[0], oracle(lstm, x, mask, None, "carry")[0])


@layouts
@directions
@modes
@initial
def test_functional_equals_module(
    batch_first, bidirectional, masked_output, with_hx, pattern_mask, make_x, make_hx
):
    torch.manual_seed(0)
    lstm = nn.LSTM(F, H, 2, batch_first=batch_first, bidirectional=bidirectional)
    mask = pattern_mask("gaps", batch_first)
    x = make_x(mask)
    hx = make_hx(lstm, 4) if with_hx else None
    got = masked_lstm(lstm, x, mask, hx=hx, masked_output=masked_output)
    want = MaskedLSTM.from_lstm(lstm, masked_output=masked_output)(x, mask, hx=hx)
    torch.testing.assert_close(got, want, atol=0, rtol=0)


# --------------------------------------------------------------------------- dropout


def test_dropout_eval_matches_oracle_train_differs(pattern_mask, make_x, oracle, close):
    m = _build(2, True, True, dropout=0.5)
    mask = pattern_mask("gaps")
    x = make_x(mask)

    m.eval()
    out_eval, (h_eval, c_eval) = m(x, mask)
    ref_out, (ref_h, ref_c) = oracle(m.lstm, x, mask)
    close(out_eval, ref_out)
    close(h_eval, ref_h)
    close(c_eval, ref_c)

    m.train()
    torch.manual_seed(1)
    out_a, _ = m(x, mask)
    torch.manual_seed(2)
    out_b, _ = m(x, mask)
    assert not torch.allclose(out_a[mask], out_eval[mask], atol=1e-4)
    assert not torch.allclose(out_a[mask], out_b[mask], atol=1e-4)
    assert torch.all(out_a[~mask] == 0) and torch.all(out_b[~mask] == 0)


# --------------------------------------------------------------------------- final state


def _assert_final_state_detaches(model, x: Tensor, hx, **inputs) -> None:
    """h_n (and c_n) are no views: detach_() works, and so does an in-place update of a
    state returned under no_grad (autograd refuses both on a view)."""
    _, state = model(x, hx=hx, **inputs)
    finals = state if isinstance(state, tuple) else (state,)
    for final in finals:
        assert not final._is_view()
        final.detach_()
    with torch.no_grad():
        _, state = model(x, hx=hx, **inputs)
    for final in state if isinstance(state, tuple) else (state,):
        final.mul_(2.0)


def _recurrent(cell: str, num_layers: int, bidirectional: bool, batch_first: bool = True):
    make = {"lstm": MaskedLSTM, "gru": MaskedGRU, "rnn": MaskedRNN}[cell]
    torch.manual_seed(0)
    return make(F, H, num_layers, bidirectional=bidirectional, batch_first=batch_first)


def _initial_state(cell: str, num_layers: int, bidirectional: bool, batch: int, given: bool):
    if not given:
        return None
    shape = (num_layers * (2 if bidirectional else 1), batch, H)
    return (torch.randn(shape), torch.randn(shape)) if cell == "lstm" else torch.randn(shape)


cells = pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
few_layers = pytest.mark.parametrize("num_layers", [1, 2], ids=lambda n: f"L{n}")


@cells
@few_layers
@directions
@initial
def test_final_state_is_no_view_so_it_detaches_in_place(
    cell, num_layers, bidirectional, with_hx, mask_pattern, pattern_mask, make_x
):
    # As with nn.LSTM's: truncated backprop through time detaches h_n/c_n in place.
    # The plain path, right and left padding, and compaction.
    model = _recurrent(cell, num_layers, bidirectional)
    mask = pattern_mask(mask_pattern)
    hx = _initial_state(cell, num_layers, bidirectional, mask.shape[0], with_hx)
    _assert_final_state_detaches(model, make_x(mask).requires_grad_(), hx, mask=mask)


@cells
@few_layers
@directions
@initial
def test_final_state_is_no_view_for_lengths_empty_masks_and_time_major(
    cell, num_layers, bidirectional, with_hx, pattern_mask, make_x
):
    model = _recurrent(cell, num_layers, bidirectional)
    mask = pattern_mask("gaps")
    x = make_x(mask).requires_grad_()
    hx = _initial_state(cell, num_layers, bidirectional, mask.shape[0], with_hx)
    # lengths= (right padding), also with steps no row uses (the run is cut short).
    for lengths in ([6, 3, 0, 2], [4, 3, 0, 2]):
        _assert_final_state_detaches(model, x, hx, lengths=torch.tensor(lengths))
    # No valid step in the batch.
    _assert_final_state_detaches(model, x, hx, mask=torch.zeros_like(mask))
    # Time-major input.
    time_major = _recurrent(cell, num_layers, bidirectional, batch_first=False)
    mask_t = pattern_mask("gaps", batch_first=False)
    _assert_final_state_detaches(time_major, x.transpose(0, 1), hx, mask=mask_t)


# --------------------------------------------------------------------------- gradients


@layouts
@directions
def test_masked_inputs_get_exactly_zero_grad(batch_first, bidirectional, pattern_mask, make_x):
    m = _build(2, bidirectional, batch_first)
    mask = pattern_mask("gaps", batch_first)
    x = make_x(mask).requires_grad_()
    out, (h_n, c_n) = m(x, mask)
    (out.sum() + h_n.sum() + c_n.sum()).backward()
    assert torch.all(x.grad[~mask] == 0)
    assert torch.any(x.grad[mask] != 0)


@pytest.mark.parametrize("num_layers", [1, 2], ids=lambda n: f"L{n}")
@directions
@layouts
@initial
@modes
@pytest.mark.parametrize("pattern", ["gaps", "left", "all_masked"])
def test_grads_match_oracle(
    num_layers, bidirectional, batch_first, with_hx, masked_output, pattern, oracle,
    pattern_mask, make_x, make_hx, close,
):  # fmt: skip
    m = _build(num_layers, bidirectional, batch_first, masked_output=masked_output)
    mask = pattern_mask(pattern, batch_first)
    x = make_x(mask).requires_grad_()
    hx = None
    if with_hx:
        hx = tuple(t.requires_grad_() for t in make_hx(m.lstm, 4))
    inputs = [x, *(hx or ()), *_params(m.lstm)]

    got = torch.autograd.grad(_weighted_loss(*_flat(m(x, mask, hx=hx))), inputs)
    want = torch.autograd.grad(
        _weighted_loss(*_flat(oracle(m.lstm, x, mask, hx, masked_output))), inputs
    )
    for g, w in zip(got, want, strict=True):
        close(g, w, atol=1e-4)


def _flat(result: tuple[Tensor, tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    out, (h_n, c_n) = result
    return out, h_n, c_n


@layouts
@directions
@modes
@pytest.mark.parametrize("pattern", ["gaps", "left", "all_masked"])
def test_nan_inf_in_masked_slots_never_leak(
    batch_first, bidirectional, masked_output, pattern, pattern_mask, make_x, make_hx, poison
):
    m = _build(2, bidirectional, batch_first, masked_output=masked_output)
    mask = pattern_mask(pattern, batch_first)
    clean = make_x(mask).requires_grad_()
    dirty = poison(clean.detach(), mask).requires_grad_()
    assert not torch.isfinite(dirty[~mask]).all()
    hx = make_hx(m.lstm, 4)
    params = _params(m.lstm)

    results = []
    for x in (clean, dirty):
        out, h_n, c_n = _flat(m(x, mask, hx=hx))
        grads = torch.autograd.grad(out.sum() + h_n.sum() + c_n.sum(), [x, *params])
        results.append((out, h_n, c_n, *grads))

    for got, want in zip(results[1], results[0], strict=True):
        assert torch.isfinite(got).all()
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert torch.all(results[1][3][~mask] == 0), "masked slots must get exactly zero gradient"


# --------------------------------------------------------------------------- benchmark helpers


def test_time_config_refuses_to_time_an_inexact_method(monkeypatch: pytest.MonkeyPatch):
    from lstm_zero_lib.book import benchmark

    monkeypatch.setitem(benchmark.METHODS, "MaskedLSTM", benchmark.METHODS["nn.LSTM"])
    config = benchmark.BenchConfig(batch=3, steps=6, features=2, hidden=3)
    with pytest.raises(AssertionError, match="MaskedLSTM differs from the oracle"):
        benchmark.time_config(config, backward=False, repeats=1, warmup=0)


def test_left_padded_bench_batch_has_the_right_padded_lengths_flipped():
    from lstm_zero_lib.book.benchmark import BenchConfig, make_batch

    _, _, right = make_batch(BenchConfig(batch=4, steps=8, features=2, hidden=3))
    _, _, left = make_batch(BenchConfig(batch=4, steps=8, features=2, hidden=3, mask="left"))
    assert torch.equal(left, right.flip(1)) and bool(left[0].all())
