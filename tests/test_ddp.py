"""MaskedLSTM under DistributedDataParallel: two CPU processes (gloo), half a batch each.

DDP averages the gradients of its processes. With halves of equal size and a loss that is
a mean over the batch, that average is the gradient of one process on the whole batch, so
each process must end with exactly those gradients (to float rounding) and, after one
optimiser step, the same weights. A process whose half holds a sequence with no valid step
(or no valid step at all) must still join every gradient all-reduce: DDP hangs or fails if
a parameter gets no gradient on one process.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from lstm_zero_lib import MaskedLSTM

WORLD = 2
BATCH, STEPS, FEATURES, HIDDEN = 6, 7, 3, 5


class Tagger(nn.Module):
    """A masked bidirectional LSTM and a per-sequence head: a small training model."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn = MaskedLSTM(FEATURES, HIDDEN, 2, bidirectional=True)
        self.head = nn.Linear(2 * HIDDEN, 1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        out, (h_n, _) = self.rnn(x, mask)
        return self.head(torch.cat([h_n[-2], h_n[-1]], dim=1)).squeeze(1), out


def loss_fn(model: nn.Module, x: Tensor, mask: Tensor, y: Tensor) -> Tensor:
    """A mean over the batch (a mean of equal halves' means is the whole batch's mean)."""
    pred, out = model(x, mask)
    return ((pred - y) ** 2).mean() + out.pow(2).mean()


def make_data(empty_half: bool) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, STEPS, FEATURES, generator=gen)
    mask = torch.rand(BATCH, STEPS, generator=gen) < 0.6  # gaps
    mask[0, 4:] = False  # right padding
    mask[1, :3] = False  # left padding
    mask[BATCH - 1] = False  # a sequence with no valid step, on the second process
    if empty_half:
        mask[BATCH // 2 :] = False  # the second process sees no valid step at all
    x = torch.where(mask.unsqueeze(2), x, torch.nan)  # padding must not matter
    return x, mask, torch.randn(BATCH, generator=gen)


def make_model() -> nn.Module:
    torch.manual_seed(1)
    return Tagger()


def one_step(model: nn.Module, x: Tensor, mask: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Gradients of one SGD step, then the updated weights, by parameter name."""
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn(model, x, mask, y).backward()
    grads = {f"grad {n}": p.grad.detach().clone() for n, p in model.named_parameters()}
    optimiser.step()
    return grads | {f"weight {n}": p.detach().clone() for n, p in model.named_parameters()}


def worker(rank: int, out_dir: str, empty_half: bool) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        # The processes meet through a file: no port to pick, none to collide with.
        init_method=f"file://{out_dir}/rendezvous",
        rank=rank,
        world_size=WORLD,
        timeout=timedelta(seconds=60),
    )
    try:
        x, mask, y = make_data(empty_half)
        half = slice(rank * BATCH // WORLD, (rank + 1) * BATCH // WORLD)
        model = DistributedDataParallel(make_model())  # nothing MaskedLSTM-specific
        result = one_step(model, x[half], mask[half], y[half])
        # DDP prefixes names with "module."; strip it to compare with a plain model.
        result = {k.replace("module.", ""): v for k, v in result.items()}
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
        # Nothing may be in flight when the group goes: gloo's destructor joins its worker
        # threads while holding the GIL, and one still waiting for the GIL deadlocks it.
        del model
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_workers(out_dir: Path, empty_half: bool, limit_s: float = 120.0) -> None:
    """Spawn the processes; fail (and stop them) rather than hang past ``limit_s``."""
    context = mp.spawn(worker, args=(str(out_dir), empty_half), nprocs=WORLD, join=False)
    deadline = time.monotonic() + limit_s
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the DDP processes did not finish within {limit_s:.0f} s")


@pytest.mark.slow
@pytest.mark.parametrize("empty_half", [False, True], ids=["one-empty-row", "empty-half"])
def test_ddp_step_equals_one_process_on_the_whole_batch(tmp_path: Path, empty_half: bool):
    run_workers(tmp_path, empty_half)
    x, mask, y = make_data(empty_half)
    expected = one_step(make_model(), x, mask, y)
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            assert torch.isfinite(got[name]).all(), name
            torch.testing.assert_close(got[name], value, atol=1e-6, rtol=1e-5, msg=name)
    # The step changed the weights: the comparison above is not of two untouched models.
    before = dict(make_model().named_parameters())
    assert any(not torch.equal(expected[f"weight {n}"], p.detach()) for n, p in before.items())
