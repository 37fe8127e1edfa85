"""Side-by-side timing of exact masking against plain ``nn.LSTM`` (used by ``make bench``).

The same for ``nn.GRU`` and ``nn.RNN`` (:attr:`BenchConfig.cell`): there the methods are
:class:`~lstm_zero_lib.MaskedGRU` / :class:`~lstm_zero_lib.MaskedRNN` and
``pack_padded_sequence``, and the ratios are to plain ``nn.GRU`` / ``nn.RNN``.

Every method runs on the same padded batch with the same weights, and is checked against
the oracle before it is timed. Timings are interleaved (all methods once per repeat, in a
shuffled order) so drift in the machine's speed hits all of them alike, and each repeat
gives a ratio to plain ``nn.LSTM`` from the same moment; we report the median and the
range of those ratios.
"""

from __future__ import annotations

import os
import platform
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from tqdm import tqdm  # plain bar: tqdm.auto warns without ipywidgets

from ..diagnostics import reference_forward
from ..gru_rnn import masked_gru, masked_rnn
from ..masks import lengths_to_mask
from ..rnn import masked_lstm

__all__ = [
    "BenchConfig",
    "make_batch",
    "step_loop_lstm",
    "packed_lstm",
    "METHODS",
    "CELL_METHODS",
    "check_methods",
    "time_config",
    "run_suite",
    "TARGET_CONFIGS",
    "LENGTH_SWEEP",
    "SUITE",
    "goal",
    "markdown_table",
]

# (module, x, mask) -> (output, state): the state is (h, c) for an LSTM, h otherwise.
Runner = Callable[[Any, Tensor, Tensor], tuple[Tensor, Any]]


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark shape. ``mask`` is ``"right"`` (random lengths), ``"left"`` (the same
    lengths, padded at the start) or ``"gaps"``; ``cell`` is ``"lstm"``, ``"gru"`` or
    ``"rnn"`` (tanh)."""

    batch: int = 32
    steps: int = 100
    features: int = 32
    hidden: int = 64
    layers: int = 1
    bidirectional: bool = False
    mask: str = "right"
    cell: str = "lstm"

    @property
    def label(self) -> str:
        """Short text for tables and figure ticks, e.g. ``"B64 T100 H128 2-layer"``."""
        parts = [f"B{self.batch} T{self.steps} H{self.hidden}"]
        if self.features != 32:
            parts.append(f"F{self.features}")
        if self.layers > 1:
            parts.append(f"{self.layers}-layer")
        if self.bidirectional:
            parts.append("bidir")
        if self.mask != "right":
            parts.append(self.mask)
        if self.cell != "lstm":
            parts.append(self.cell.upper())
        return " ".join(parts)


def make_batch(
    config: BenchConfig, *, seed: int = 0, device: torch.device | str = "cpu"
) -> tuple[Any, Tensor, Tensor]:
    """A seeded LSTM (GRU, RNN: ``config.cell``), input and mask for ``config``.

    Right-padded masks have lengths uniform in ``T/2..T`` with one full-length row (so the
    padded batch is as long as plain ``nn.LSTM`` needs); ``"gaps"`` masks drop each step
    with probability 0.25 instead, which only exact masking can handle.

    Examples
    --------
    >>> lstm, x, mask = make_batch(BenchConfig(batch=3, steps=8, features=2, hidden=4))
    >>> x.shape, mask.shape, bool(mask[0].all())
    (torch.Size([3, 8, 2]), torch.Size([3, 8]), True)
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if config.cell not in _CELLS:
        raise ValueError(f"config.cell: expected 'lstm', 'gru' or 'rnn', got {config.cell!r}")
    lstm = _CELLS[config.cell](
        config.features,
        config.hidden,
        config.layers,
        batch_first=True,
        bidirectional=config.bidirectional,
    )
    x = torch.randn(config.batch, config.steps, config.features, generator=gen)
    if config.mask == "right":
        lengths = torch.randint(config.steps // 2, config.steps + 1, (config.batch,), generator=gen)
        lengths[0] = config.steps
        mask = lengths_to_mask(lengths, max_len=config.steps)
    elif config.mask == "left":
        lengths = torch.randint(config.steps // 2, config.steps + 1, (config.batch,), generator=gen)
        lengths[0] = config.steps
        mask = lengths_to_mask(lengths, max_len=config.steps).flip(1)
    elif config.mask == "gaps":
        mask = torch.rand(config.batch, config.steps, generator=gen) >= 0.25
        mask[0] = True
    else:
        raise ValueError(f"config.mask: expected 'right', 'left' or 'gaps', got {config.mask!r}")
    return lstm.to(device), x.to(device), mask.to(device)


_CELLS: dict[str, Callable[..., nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def step_loop_lstm(lstm: nn.LSTM, x: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Masked LSTM as a per-step Python loop that keeps the state on masked steps.

    The textbook way to honour any mask: one cell call per step, the state kept where the
    step is masked. It stands for the generic step-by-step masked loop that frameworks use
    where a fused kernel cannot take the mask (Keras' own loop is such a path); it is
    written here in PyTorch and is not Keras' code. Exact, and slow because every step is a
    separate set of small kernel calls. Batch-first, zero initial state.

    Examples
    --------
    >>> lstm, x, mask = make_batch(BenchConfig(batch=2, steps=5, features=2, hidden=3, mask="gaps"))
    >>> out, (h_n, c_n) = step_loop_lstm(lstm, x, mask)
    >>> ref, (h_ref, _) = reference_forward(lstm, x, mask)
    >>> bool(torch.allclose(out, ref, atol=1e-6) and torch.allclose(h_n, h_ref, atol=1e-6))
    True
    """
    batch, steps, _ = x.shape
    dirs = 2 if lstm.bidirectional else 1
    keep = mask.unsqueeze(2)
    inp = x
    h_n, c_n = [], []
    groups = lstm.all_weights  # per layer and direction: w_ih, w_hh[, b_ih, b_hh]
    for layer in range(lstm.num_layers):
        outs = []
        for d in range(dirs):
            w_ih, w_hh, *biases = groups[layer * dirs + d]
            h = c = x.new_zeros(batch, lstm.hidden_size)
            out = [h] * steps
            for t in reversed(range(steps)) if d else range(steps):
                h_new, c_new = torch._VF.lstm_cell(inp[:, t], (h, c), w_ih, w_hh, *biases)
                h = torch.where(keep[:, t], h_new, h)
                c = torch.where(keep[:, t], c_new, c)
                out[t] = torch.where(keep[:, t], h_new, torch.zeros_like(h_new))
            outs.append(torch.stack(out, dim=1))
            h_n.append(h)
            c_n.append(c)
        inp = torch.cat(outs, dim=2)
    return inp, (torch.stack(h_n), torch.stack(c_n))


def packed_lstm(lstm: nn.LSTM, x: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """``pack_padded_sequence`` -> ``nn.LSTM`` -> ``pad_packed_sequence``.

    Exact only for right-padded masks with no zero length; lengths must be on the CPU.

    Examples
    --------
    >>> lstm, x, mask = make_batch(BenchConfig(batch=3, steps=6, features=2, hidden=3))
    >>> out, (h_n, _) = packed_lstm(lstm, x, mask)
    >>> bool(torch.allclose(h_n, reference_forward(lstm, x, mask)[1][0], atol=1e-6))
    True
    """
    lengths = mask.sum(dim=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, state = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, state


def _plain(lstm: nn.LSTM, x: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    return lstm(x)


def _masked(lstm: nn.LSTM, x: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    return masked_lstm(lstm, x, mask)


def _masked_lengths(lstm: nn.LSTM, x: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    # Right padding given as lengths (counted inside the timing, as packed_lstm does).
    return masked_lstm(lstm, x, None, lengths=mask.sum(dim=1))


#: The methods compared, by display name. ``nn.LSTM`` is the (inexact) reference speed.
METHODS: dict[str, Runner] = {
    "nn.LSTM": _plain,
    "pack_padded_sequence": packed_lstm,
    "step loop": step_loop_lstm,
    "MaskedLSTM": _masked,
    "MaskedLSTM lengths=": _masked_lengths,
}


def _exact(masked: Callable[..., tuple[Tensor, Any]]) -> tuple[Runner, Runner]:
    """The mask and the ``lengths=`` runner of a functional masked layer."""

    def with_mask(module: Any, x: Tensor, mask: Tensor) -> tuple[Tensor, Any]:
        return masked(module, x, mask)

    def with_lengths(module: Any, x: Tensor, mask: Tensor) -> tuple[Tensor, Any]:
        return masked(module, x, None, lengths=mask.sum(dim=1))

    return with_mask, with_lengths


def _methods(kind: str, masked: Callable[..., tuple[Tensor, Any]]) -> dict[str, Runner]:
    with_mask, with_lengths = _exact(masked)
    return {
        f"nn.{kind}": _plain,
        "pack_padded_sequence": packed_lstm,  # nothing in it is LSTM-specific
        f"Masked{kind}": with_mask,
        f"Masked{kind} lengths=": with_lengths,
    }


#: Per ``BenchConfig.cell``: the methods, the plain module (the reference speed) first.
CELL_METHODS: dict[str, dict[str, Runner]] = {
    "lstm": METHODS,
    "gru": _methods("GRU", masked_gru),
    "rnn": _methods("RNN", masked_rnn),
}


def _state_parts(state: Any) -> tuple[Tensor, ...]:
    return tuple(state) if isinstance(state, tuple) else (state,)


#: The step loop is skipped above this many steps (minutes per shape otherwise).
STEP_LOOP_MAX_STEPS = 200


def _applicable(name: str, config: BenchConfig) -> bool:
    if name == "pack_padded_sequence" or name.endswith(" lengths="):
        return config.mask == "right"
    if name == "step loop":
        return config.steps <= STEP_LOOP_MAX_STEPS
    return True


def check_methods(
    config: BenchConfig, *, device: torch.device | str = "cpu", atol: float = 1e-5
) -> dict[str, float]:
    """Assert every exact method matches the oracle on ``config``'s batch; return max errors.

    Examples
    --------
    >>> errors = check_methods(BenchConfig(batch=3, steps=6, features=2, hidden=3, layers=2))
    >>> sorted(errors), max(errors.values()) < 1e-5
    (['MaskedLSTM', 'MaskedLSTM lengths=', 'pack_padded_sequence', 'step loop'], True)
    >>> sorted(check_methods(BenchConfig(batch=3, steps=6, features=2, hidden=3, cell="gru")))
    ['MaskedGRU', 'MaskedGRU lengths=', 'pack_padded_sequence']
    """
    lstm, x, mask = make_batch(config, device=device)
    lstm.eval()
    with torch.no_grad():
        ref, ref_state = reference_forward(lstm, x, mask)
        errors = {}
        _, *methods = CELL_METHODS[config.cell].items()  # all but the plain module
        for name, run in methods:
            if not _applicable(name, config):
                continue
            out, state = run(lstm, x, mask)
            pairs = zip(_state_parts(state), _state_parts(ref_state), strict=True)
            err = max(
                float((out - ref).abs().max()),
                *(float((got - want).abs().max()) for got, want in pairs),
            )
            if not err <= atol:
                raise AssertionError(f"{name} differs from the oracle by {err:.2e} on {config}")
            errors[name] = err
    return errors


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``.

    Examples
    --------
    >>> isinstance(cpu_model(), str) and len(cpu_model()) > 0
    True
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _load_average() -> float | None:
    """1-minute load average, where the platform reports one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_config(
    config: BenchConfig,
    *,
    backward: bool,
    repeats: int = 21,
    warmup: int = 5,
    device: torch.device | str = "cpu",
    methods: Iterable[str] | None = None,
    seed: int = 0,
) -> list[dict[str, object]]:
    """Time each method on ``config``, interleaved; one result row per method.

    Each row holds the config, ``mode`` ("forward" or "forward+backward"), the method,
    the median time in ms, and the median, min, max and quartiles over repeats of the
    per-repeat ratio to the plain module (``nn.LSTM``, ``nn.GRU`` or ``nn.RNN``), and
    those ratios themselves in repeat order (``ratios``).
    Forward+backward stands for a training step: every weight's version counter moves
    before each timed call, as an optimizer step would move it; forward alone stands for
    inference with fixed weights.
    Single-threaded CPU runs are timed with the thread's CPU time (``time.thread_time``), so
    that other jobs on the machine do not add their time slices to a measurement; anything
    else with the wall clock. Every exact method is first checked against the oracle
    (:func:`check_methods`): an inexact one is never timed.
    """
    device = torch.device(device)
    check_methods(config, device=device)
    lstm, x, mask = make_batch(config, device=device)
    runners = CELL_METHODS[config.cell]
    baseline = next(iter(runners))  # the plain module: nn.LSTM, nn.GRU or nn.RNN
    names = [n for n in (methods or runners) if _applicable(n, config)]
    if baseline not in names:
        names.insert(0, baseline)
    order_rng = random.Random(seed)
    times: dict[str, list[float]] = {n: [] for n in names}

    # Single-threaded on the CPU every op runs in this thread, so its CPU time measures the
    # work without the time other jobs hold the core (on a busy machine that preemption,
    # not the method, dominates wall-clock spread). Otherwise: wall clock.
    single = device.type == "cpu" and torch.get_num_threads() == 1
    clock = time.thread_time if single else time.perf_counter

    def once(name: str) -> float:
        lstm.zero_grad(set_to_none=True)
        if backward:
            # A training step changes the weights before the next forward; so that the
            # timed calls pay what depends on the weights' state (MaskedLSTM's margin
            # check is cached per weight version), bump every weight's version.
            with torch.no_grad():
                for weight in lstm.parameters():
                    weight.add_(0.0)
        _sync(device)
        start = clock()
        if backward:
            out, state = runners[name](lstm, x, mask)
            sum((t.sum() for t in _state_parts(state)), out.sum()).backward()
        else:
            with torch.no_grad():
                runners[name](lstm, x, mask)
        _sync(device)
        return clock() - start

    for rep in range(warmup + repeats):
        shuffled = names[:]
        order_rng.shuffle(shuffled)
        for name in shuffled:
            elapsed = once(name)
            if rep >= warmup:
                times[name].append(elapsed)

    rows = []
    base = times[baseline]
    # The conditions of the run, for the reader of a saved result: what else held the CPU.
    conditions = {"cpu_model": cpu_model(), "load_average_1min": _load_average()}
    for name in names:
        # In repeat order: the same index of two methods shares one baseline timing, so
        # their ratios pair up (bench_summary's paired comparisons).
        per_repeat = [t / b for t, b in zip(times[name], base, strict=True)]
        ratios = sorted(per_repeat)
        ms = sorted(times[name])
        rows.append(
            {
                **asdict(config),
                "label": config.label,
                "mode": "forward+backward" if backward else "forward",
                "method": name,
                "ms_median": 1e3 * ms[len(ms) // 2],
                "ratio_median": ratios[len(ratios) // 2],
                "ratio_min": ratios[0],
                "ratio_q1": ratios[len(ratios) // 4],
                "ratio_q3": ratios[(3 * len(ratios)) // 4],
                "ratio_max": ratios[-1],
                "ratios": per_repeat,
                "repeats": repeats,
                "clock": "thread CPU time" if single else "wall clock",
                **conditions,
            }
        )
    return rows


#: The shapes of issue 13's first table (B32 F32 H64 unless stated).
TARGET_CONFIGS = (
    BenchConfig(batch=32, steps=200, features=32, hidden=64, layers=1),
    BenchConfig(batch=64, steps=100, features=32, hidden=128, layers=2),
    BenchConfig(batch=32, steps=100, features=32, hidden=64, layers=1, bidirectional=True),
)
#: How the ratio moves with sequence length.
LENGTH_SWEEP = tuple(BenchConfig(steps=t) for t in (10, 30, 100, 200, 1000))


def _suite() -> tuple[BenchConfig, ...]:
    configs: list[BenchConfig] = []
    for mask in ("right", "gaps"):
        configs += [replace(c, mask=mask) for c in LENGTH_SWEEP]
        configs += [
            BenchConfig(batch=64, steps=100, hidden=128, layers=2, mask=mask),
            BenchConfig(steps=100, bidirectional=True, mask=mask),
            BenchConfig(steps=30, bidirectional=True, mask=mask),
            BenchConfig(steps=100, layers=2, bidirectional=True, mask=mask),
        ]
    # GRU and RNN: the length sweep and a bidirectional shape, both masks.
    for cell in ("gru", "rnn"):
        for mask in ("right", "gaps"):
            configs += [replace(c, mask=mask, cell=cell) for c in LENGTH_SWEEP]
            configs.append(BenchConfig(steps=100, bidirectional=True, mask=mask, cell=cell))
    return tuple(configs)


#: What ``make bench`` runs: both masks (each batch with a full-length row), T = 10 to
#: 1000, one and two layers, one and two directions; for the GRU and the tanh RNN, the
#: length sweep and one bidirectional shape.
SUITE = _suite()


def goal(config: BenchConfig) -> float:
    """Issue 13's target for MaskedLSTM's median time ratio to plain ``nn.LSTM`` (issue 15:
    the same for MaskedGRU / MaskedRNN against plain ``nn.GRU`` / ``nn.RNN``).

    Examples
    --------
    >>> goal(BenchConfig(steps=30)), goal(BenchConfig(steps=1000, mask="gaps"))
    (1.25, 1.2)
    """
    right = config.mask == "right"
    if config.steps >= 100:
        return 1.10 if right else 1.20
    if config.steps >= 30:
        return 1.25 if right else 1.40
    return 1.50 if right else 1.70


def run_suite(
    configs: Iterable[BenchConfig],
    *,
    repeats: int = 21,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> list[dict[str, object]]:
    """Check, then time, every config forward-only and forward+backward."""
    configs = list(configs)
    rows: list[dict[str, object]] = []
    jobs = [(c, b) for c in configs for b in (False, True)]
    for config in configs:  # fail before any timing, not half-way through
        check_methods(config, device=device)
    for config, backward in tqdm(jobs, desc="benchmark", disable=not progress):
        rows += time_config(config, backward=backward, repeats=repeats, device=device)
    for row in rows:
        row["goal"] = goal(BenchConfig(**{f: row[f] for f in _FIELDS}))  # type: ignore[arg-type]
    return rows


_FIELDS = ("batch", "steps", "features", "hidden", "layers", "bidirectional", "mask", "cell")


def markdown_table(rows: Iterable[Mapping[str, object]], ours: str = "MaskedLSTM") -> str:
    """The README's table: median ratio to ``nn.LSTM`` (min-max over repeats) per shape.

    ``ours`` names the exact method of the table (``"MaskedGRU"``: the rows of a GRU run,
    ratios to ``nn.GRU``); rows of other cells are left out.

    Examples
    --------
    >>> rows = [
    ...     {"label": "T10", "mask": "right", "mode": m, "method": k,
    ...      "ratio_median": r, "ratio_min": r, "ratio_max": r, "goal": 1.5}
    ...     for m in ("forward", "forward+backward")
    ...     for k, r in (("nn.LSTM", 1.0), ("MaskedLSTM", 1.2))
    ... ]
    >>> print(markdown_table(rows).splitlines()[2])
    | right | T10 | 1.20 (1.20-1.20) | 1.20 (1.20-1.20) | 1.50 | yes | - | - | - | - | - | - |
    """
    cells: dict[tuple[str, str], dict[tuple[str, str], Mapping[str, object]]] = {}
    cell = ours.removeprefix("Masked").lower()
    for row in rows:
        if row.get("cell", "lstm") != cell:
            continue
        key = (str(row["mask"]), str(row["label"]))
        cells.setdefault(key, {})[(str(row["method"]), str(row["mode"]))] = row
    modes = ("forward", "forward+backward")

    def ratio(row: Mapping[str, object] | None, spread: bool) -> str:
        if row is None:
            return "-"
        text = f"{float(row['ratio_median']):.2f}"  # type: ignore[arg-type]
        if spread:
            low, high = float(row["ratio_min"]), float(row["ratio_max"])  # type: ignore[arg-type]
            text += f" ({low:.2f}-{high:.2f})"
        return text

    lines = [
        f"| mask | shape | {ours} fwd | {ours} fwd+bwd | goal | met "
        "| lengths= fwd | lengths= fwd+bwd | pack_padded fwd | pack_padded fwd+bwd "
        "| step loop fwd | step loop fwd+bwd |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (mask, label), by in cells.items():
        exact = [by.get((ours, m)) for m in modes]
        target = float(next(r for r in by.values())["goal"])  # type: ignore[arg-type]
        met = all(r is not None and float(r["ratio_median"]) <= target for r in exact)  # type: ignore[arg-type]
        lines.append(
            f"| {mask} | {label} | {ratio(exact[0], True)} | {ratio(exact[1], True)} "
            f"| {target:.2f} | {'yes' if met else 'no'} "
            + " ".join(
                f"| {ratio(by.get((name, m)), False)}"
                for name in (f"{ours} lengths=", "pack_padded_sequence", "step loop")
                for m in modes
            )
            + " |"
        )
    return "\n".join(lines)
