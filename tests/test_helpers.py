"""The chapters' helpers: seeded data, seeding, device choice, training loop, plotting."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch

from lstm_zero_lib import lengths_to_mask
from lstm_zero_lib.book.plotting import finish, new_figure, plot_speed_ratios, set_theme
from lstm_zero_lib.book.synthetic import (
    AttributionTask,
    SensorData,
    SequenceBatch,
    make_attribution_task,
    make_sensor_data,
    make_variable_length_task,
)
from lstm_zero_lib.book.train import evaluate, fit, get_device, seed_everything


def test_variable_length_task_is_seeded_padded_and_labelled_by_feature_zero():
    a = make_variable_length_task(50, min_len=3, max_len=9, n_features=2, seed=7)
    b = make_variable_length_task(50, min_len=3, max_len=9, n_features=2, seed=7)
    c = make_variable_length_task(50, min_len=3, max_len=9, n_features=2, seed=8)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    assert a.x.shape == (50, 9, 2) and int(a.lengths.min()) >= 3 and int(a.lengths.max()) <= 9
    assert (a.x[~a.mask] == 0).all()
    assert torch.equal(a.y, (a.x[:, :, 0].sum(dim=1) > 0).long())
    assert len(a[:10]) == 10 and torch.equal(a[:10].x, a.x[:10])


@pytest.mark.parametrize(
    "kwargs", [{"min_len": 0}, {"min_len": 5, "max_len": 4}, {"n_features": 0}]
)
def test_variable_length_task_rejects_bad_sizes(kwargs: dict[str, int]):
    with pytest.raises(ValueError, match="expected"):
        make_variable_length_task(4, **kwargs)


def test_seed_everything_makes_global_and_returned_generators_repeat():
    g1 = seed_everything(3)
    first = (torch.rand(2), torch.rand(2, generator=g1))
    g2 = seed_everything(3)
    assert torch.equal(first[0], torch.rand(2))
    assert torch.equal(first[1], torch.rand(2, generator=g2))


def test_get_device_honours_argument_and_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LSTM_ZERO_DEVICE", "meta")
    assert get_device() == torch.device("meta")
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.delenv("LSTM_ZERO_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected


def test_fit_lowers_the_loss_and_evaluate_weights_by_batch_size():
    seed_everything(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = torch.nn.Linear(3, 1)
    batches = [(x[:40], y[:40, None]), (x[40:], y[40:, None])]
    losses = fit(model, batches, loss_fn=torch.nn.functional.mse_loss, epochs=60, lr=0.05)
    assert len(losses) == 60 and losses[-1] < 0.05 * losses[0]
    counts = evaluate(
        torch.nn.Identity(),
        [(torch.ones(3), torch.ones(3)), (torch.ones(1), torch.zeros(1))],
        metric=lambda p, t: (p - t).abs().mean(),
    )
    assert counts == pytest.approx(0.25)  # (3 * 0 + 1 * 1) / 4
    with pytest.raises(ValueError, match="epochs"):
        fit(model, batches, loss_fn=torch.nn.functional.mse_loss, epochs=0)


def test_finish_refuses_a_figure_without_axis_labels():
    set_theme()
    fig, (ax,) = new_figure()
    with pytest.raises(ValueError, match="axis labels"):
        finish(ax, xlabel="steps", ylabel="")
    finish(ax, xlabel="steps", ylabel="error", title="t")
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("steps", "error", "t")
    plt.close(fig)


def test_plot_speed_ratios_draws_one_point_per_measured_method_and_shape():
    rows = [
        {
            "mask": "right",
            "label": f"shape {s}",
            "mode": m,
            "method": k,
            "ratio_median": r,
            "ratio_min": r * 0.9,
            "ratio_max": r * 1.1,
            "goal": 1.1,
        }
        for s in (1, 2)
        for m in ("forward", "forward+backward")
        for k, r in (("nn.LSTM", 1.0), ("MaskedLSTM", 1.2), ("step loop", 3.0))
    ]
    fig = plot_speed_ratios(rows, ["MaskedLSTM", "step loop"], goals=True)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        medians = [list(bars.lines[0].get_xdata()) for bars in ax.containers]
        assert medians == [[1.2, 1.2], [3.0, 3.0]]  # nn.LSTM itself is the reference line
        assert ax.get_xscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    plt.close(fig)


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_variable_length_task(6, seed=0),
        lambda: make_attribution_task(6, seed=0),
        lambda: make_sensor_data(6, n_steps=5, seed=0),
    ],
    ids=["variable_length", "attribution", "sensors"],
)
def test_synthetic_data_sets_select_rows_of_every_tensor(make):
    data = make()
    assert isinstance(data, (SequenceBatch, AttributionTask, SensorData))
    picks = [slice(1, 4), torch.tensor([5, 0]), torch.arange(6) % 2 == 0]
    for index in picks:
        part = data[index]
        assert type(part) is type(data) and len(part) == len(data.x[index])
        for name, value in vars(data).items():
            if isinstance(value, torch.Tensor):
                torch.testing.assert_close(
                    getattr(part, name), value[index], rtol=0, atol=0, equal_nan=True
                )
            else:
                assert getattr(part, name) == value, name
        if hasattr(data, "lengths"):
            assert torch.equal(part.mask, lengths_to_mask(part.lengths, max_len=data.x.shape[1]))
