"""CUDA path: MaskedLSTM (and MaskedGRU, MaskedRNN) on the GPU (cuDNN and the native kernel)
against the CPU oracle.

Run with ``make test-gpu``; without a CUDA device every test here is skipped.
"""

from __future__ import annotations

import copy

import pytest
import torch

from lstm_zero_lib import MaskedLSTM, reference_forward
from lstm_zero_lib.book.benchmark import BenchConfig, check_methods, make_batch

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _vs_cpu_oracle(
    config: BenchConfig, kind: str, carry: bool = False, device: str = "cuda"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MaskedLSTM on ``device`` against the CPU oracle, with an all-masked row and NaN at
    masked steps: ``h_n``, ``c_n``, the valid outputs and the input gradient checked;
    returns the output (on the CPU), the oracle's and the mask. ``kind``: ``"short"``
    cuts every row before the last 10 steps, ``"lengths"`` passes ``lengths=``."""
    lstm, x, mask = make_batch(config)
    if kind == "short":
        mask[:, 30:] = False  # no row reaches the last 10 steps: the run is cut to 30
    mask[1] = False  # an all-masked row
    ref, (h_ref, c_ref) = reference_forward(lstm, x, mask)
    model = MaskedLSTM.from_lstm(
        copy.deepcopy(lstm).to(device), masked_output="carry" if carry else "zero"
    )
    xg = torch.where(mask.unsqueeze(2), x, torch.nan).to(device).requires_grad_()
    if kind == "lengths":
        out, (h_n, c_n) = model(xg, lengths=mask.sum(dim=1).to(device))
    else:
        out, (h_n, c_n) = model(xg, mask.to(device))
    (out.sum() + h_n.sum() + c_n.sum()).backward()
    torch.testing.assert_close(h_n.cpu(), h_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(c_n.cpu(), c_ref, atol=1e-5, rtol=0)
    keep = mask.unsqueeze(2).expand_as(ref)
    torch.testing.assert_close(out.cpu()[keep], ref[keep], atol=1e-5, rtol=0)
    assert torch.isfinite(xg.grad).all()
    assert (xg.grad.cpu()[~mask] == 0).all()
    return out.detach().cpu(), ref, mask


@pytest.mark.parametrize("cudnn", [True, False], ids=["cudnn", "native"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("carry", [False, True])
def test_masked_lstm_on_cuda_matches_cpu_oracle(
    cudnn: bool, layers: int, bidirectional: bool, carry: bool
):
    config = BenchConfig(
        batch=6, steps=40, features=8, hidden=16, layers=layers, bidirectional=bidirectional,
        mask="gaps",
    )  # fmt: skip
    with torch.backends.cudnn.flags(enabled=cudnn):
        _vs_cpu_oracle(config, "gaps", carry)


def test_benchmark_methods_exact_on_cuda():
    for config in (BenchConfig(steps=50), BenchConfig(steps=50, mask="gaps", bidirectional=True)):
        assert max(check_methods(config, device="cuda").values()) < 1e-5


def test_half_precision_hold_is_exact_on_cuda():
    lstm, x, mask = make_batch(BenchConfig(batch=4, steps=20, features=8, hidden=16, mask="gaps"))
    half = MaskedLSTM.from_lstm(copy.deepcopy(lstm).cuda().half())
    out, (h_n, c_n) = half(x.cuda().half(), mask.cuda())
    ref, (h_ref, c_ref) = reference_forward(lstm, x, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(c_n.float().cpu(), c_ref, atol=1e-2, rtol=0)


@pytest.mark.parametrize("cudnn", [True, False], ids=["cudnn", "native"])
@pytest.mark.parametrize("cell", ["gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_masked_gru_and_rnn_on_cuda_match_cpu_oracle(cudnn: bool, cell: str, bidirectional: bool):
    from lstm_zero_lib import MaskedGRU, MaskedRNN

    config = BenchConfig(
        batch=6, steps=40, features=8, hidden=16, layers=2, bidirectional=bidirectional,
        mask="gaps", cell=cell,
    )  # fmt: skip
    module, x, mask = make_batch(config)
    mask[1] = False  # an all-masked row
    hx = torch.randn(2 * (2 if bidirectional else 1), 6, 16)
    ref, h_ref = reference_forward(module, x, mask, hx)
    gpu = copy.deepcopy(module).cuda()
    model = MaskedGRU.from_gru(gpu) if cell == "gru" else MaskedRNN.from_rnn(gpu)
    xg = torch.where(mask.unsqueeze(2), x, torch.nan).cuda().requires_grad_()
    with torch.backends.cudnn.flags(enabled=cudnn):
        out, h_n = model(xg, mask.cuda(), hx=hx.cuda())
        (out.sum() + h_n.sum()).backward()
    torch.testing.assert_close(h_n.cpu(), h_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.cpu(), ref, atol=1e-5, rtol=0)
    assert torch.isfinite(xg.grad).all() and (xg.grad.cpu()[~mask] == 0).all()


@pytest.mark.parametrize("kind", ["right", "left", "short", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_block_path_on_cuda_matches_cpu_oracle(kind: str, bidirectional: bool):
    # Right or left padding (no compaction), cut short or given as lengths=. On a GPU the
    # mask is classified by its scan and the held steps zeroed by masked_fill whatever
    # the size: the paths the CPU tests reach only when forced.
    config = BenchConfig(
        batch=6, steps=40, features=8, hidden=16, layers=2, bidirectional=bidirectional,
        mask="left" if kind == "left" else "right",
    )  # fmt: skip
    out, ref, mask = _vs_cpu_oracle(config, kind)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    assert (out[~mask] == 0).all()
