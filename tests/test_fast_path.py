"""The fast path's own guarantees: hold steps are bit-exact, guards, dtypes, torch.compile."""

from __future__ import annotations

import pytest
import torch

from lstm_zero_lib import MaskedLSTM, MaskError, masked_lstm, reference_forward
from lstm_zero_lib.book.benchmark import BenchConfig, make_batch


def test_cell_state_is_held_bit_for_bit_through_padding():
    # A row with 3 valid steps followed by 5 padding steps ends with exactly the c of a
    # 3-step run: equality, not closeness.
    lstm, x, _ = make_batch(BenchConfig(batch=2, steps=8, features=3, hidden=4))
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, :3] = True
    _, (_, c_n) = masked_lstm(lstm, x, mask)
    _, (_, c_three) = masked_lstm(lstm, x[:, :3], mask[:, :3])  # no padding at all
    assert torch.equal(c_n, c_three)


def test_fully_valid_mask_is_the_plain_kernel():
    lstm, x, _ = make_batch(BenchConfig(batch=3, steps=5, features=2, hidden=4, layers=2))
    out, (h_n, c_n) = masked_lstm(lstm, x, torch.ones(3, 5, dtype=torch.bool))
    ref_out, (ref_h, ref_c) = lstm(x)
    assert torch.equal(out, ref_out) and torch.equal(h_n, ref_h) and torch.equal(c_n, ref_c)


def test_huge_recurrent_weights_are_refused_not_silently_inexact():
    model = MaskedLSTM(2, 3)
    with torch.no_grad():
        model.lstm.weight_hh_l0[0, 0] = 2e6
    with pytest.raises(MaskError, match=r"lstm: expected recurrent weights .* got 2e\+06"):
        model(torch.randn(2, 4, 2), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_float64_is_exact(bidirectional: bool):
    lstm, x, mask = make_batch(
        BenchConfig(
            batch=4, steps=9, features=3, hidden=4, bidirectional=bidirectional, mask="gaps"
        )
    )
    lstm, x = lstm.double(), x.double()
    out, (h_n, c_n) = masked_lstm(lstm, x, mask)
    ref, (h_ref, c_ref) = reference_forward(lstm, x, mask)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(c_n, c_ref, atol=1e-12, rtol=0)


def test_cost_follows_longest_valid_length_not_padded_length():
    # Trailing all-padding steps are cut before the kernel runs: same result, shorter run.
    lstm, x, mask = make_batch(BenchConfig(batch=3, steps=6, features=2, hidden=3, mask="gaps"))
    padded_x = torch.cat([x, torch.full((3, 50, 2), torch.nan)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(3, 50, dtype=torch.bool)], dim=1)
    out, (h_n, c_n) = masked_lstm(lstm, padded_x, padded_mask)
    ref, (h_ref, c_ref) = masked_lstm(lstm, x, mask)
    assert torch.equal(out[:, :6], ref) and (out[:, 6:] == 0).all()
    assert torch.equal(h_n, h_ref) and torch.equal(c_n, c_ref)


@pytest.mark.slow
def test_torch_compile_gives_the_same_result():
    torch._dynamo.reset()
    model = MaskedLSTM(3, 4, 2, bidirectional=True).eval()
    _, x, mask = make_batch(BenchConfig(batch=3, steps=7, features=3, hidden=4, mask="gaps"))
    compiled = torch.compile(model)
    out, (h_n, c_n) = compiled(x, mask)
    ref, (h_ref, c_ref) = reference_forward(model.lstm, x, mask)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_n, c_ref, atol=1e-5, rtol=0)


def test_inference_mode_then_training_step():
    # The hold weight is cached across calls; one made under inference_mode must not
    # break a later call that needs gradients.
    model = MaskedLSTM(3, 5)
    x = torch.randn(2, 6, 3)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 0, 1, 0, 1, 0]], dtype=torch.bool)
    with torch.inference_mode():
        model(x, mask)
    out, (h_n, c_n) = model(x.requires_grad_(), mask)
    (out.sum() + c_n.sum()).backward()
    assert model.lstm.weight_hh_l0.grad is not None


def test_all_padding_batch_can_still_backpropagate():
    model = MaskedLSTM(3, 5, 2)
    x = torch.full((4, 6, 3), torch.nan, requires_grad=True)
    out, (h_n, c_n) = model(x, torch.zeros(4, 6, dtype=torch.bool))
    assert (out == 0).all() and (h_n == 0).all() and (c_n == 0).all()
    (out.sum() + h_n.sum() + c_n.sum()).backward()
    assert (x.grad == 0).all()
    assert all((p.grad == 0).all() for p in model.parameters())
