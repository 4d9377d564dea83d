"""The one training loop: seeded, cancellable, with a step floor and a report per epoch."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_weaksam.method_settings import floored_epochs
from napari_weaksam.progress import Cancelled
from napari_weaksam.training_loop import LoopSettings, oversample, train_loop, training_length


def _regression(samples: int = 23, seed: int = 0):
    """A noisy linear regression problem, a fresh linear model and its batch loss."""
    data = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, 4, generator=data)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(samples, generator=data)
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 1)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(x[index])[:, 0], y[index])

    return model, batch_loss


def _run(seed: int, schedule: str = "one-cycle", **kwargs) -> tuple[list[float], torch.Tensor]:
    model, batch_loss = _regression()
    settings = LoopSettings(epochs=5, batch_size=4, learning_rate=0.05, seed=seed,
                            schedule=schedule)
    losses = train_loop(model.parameters(), 23, batch_loss, settings, **kwargs)
    return losses, model.weight.detach().clone()


@pytest.mark.parametrize("schedule", ["one-cycle", "cosine", "constant"])
def test_same_seed_same_losses_and_weights(schedule):
    losses, weight = _run(3, schedule)
    again, weight_again = _run(3, schedule)
    other, _weight = _run(4, schedule)
    assert losses == again
    assert torch.equal(weight, weight_again)
    assert losses != other            # the seed decides the order of the samples
    assert losses[-1] < losses[0]     # and the loop does train


def test_a_numpy_generator_decides_the_order_too():
    first, _ = _run(0, generator=np.random.default_rng(7))
    second, _ = _run(0, generator=np.random.default_rng(7))
    other, _ = _run(0, generator=np.random.default_rng(8))
    assert first == second and first != other


def test_every_sample_once_per_epoch_and_the_mean_weighs_batch_sizes():
    seen: list[list[int]] = []
    weight = torch.nn.Parameter(torch.zeros(1))

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        seen.append(index.tolist())
        # the loss of a batch is the mean of its indices: the epoch mean is (n − 1) / 2 only
        # when each batch counts by its size (10 samples in batches of 4, 4, 2)
        return (weight * 0).sum() + index.double().mean()

    settings = LoopSettings(epochs=3, batch_size=4, learning_rate=0.1)
    losses = train_loop([weight], 10, batch_loss, settings)
    assert losses == pytest.approx([4.5, 4.5, 4.5], abs=1e-12)
    assert [len(b) for b in seen] == [4, 4, 2] * 3
    for epoch in range(3):
        visited = sum(seen[3 * epoch:3 * epoch + 3], [])
        assert sorted(visited) == list(range(10))


def test_the_callback_sees_every_epoch():
    calls: list[tuple[int, int, float]] = []
    losses, _ = _run(0, on_epoch=lambda epoch, epochs, loss: calls.append((epoch, epochs, loss)))
    assert [(e, n) for e, n, _loss in calls] == [(e, 5) for e in range(1, 6)]
    assert [loss for _e, _n, loss in calls] == losses


@pytest.mark.parametrize("samples, epochs, batch_size, min_steps",
                         [(23, 2, 4, 100), (23, 30, 4, 100), (3, 1, 8, 10), (40, 2, 40, 0)])
def test_the_step_floor_is_respected(samples, epochs, batch_size, min_steps):
    steps, reported = [0], []
    weight = torch.nn.Parameter(torch.zeros(1))

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        steps[0] += 1
        return ((weight - 1) ** 2).sum()

    settings = LoopSettings(epochs=epochs, batch_size=batch_size, learning_rate=0.01,
                            min_steps=min_steps)
    train_loop([weight], samples, batch_loss, settings,
               on_epoch=lambda _e, total, _l: reported.append(total))
    expected = floored_epochs(epochs, min_steps, batch_size, samples)
    assert training_length(samples, settings) == (expected, -(-samples // batch_size))
    assert len(reported) == expected and set(reported) == {expected}
    assert steps[0] == expected * -(-samples // batch_size)
    assert steps[0] >= min_steps and expected >= epochs


def test_cancellation_stops_before_the_next_batch():
    cancel = threading.Event()
    calls, epochs_done = [0], []
    weight = torch.nn.Parameter(torch.zeros(1))

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] == 8:          # the second batch of the second epoch (6 batches an epoch)
            cancel.set()
        return ((weight - 1) ** 2).sum()

    settings = LoopSettings(epochs=4, batch_size=2, learning_rate=0.1)
    with pytest.raises(Cancelled):
        train_loop([weight], 12, batch_loss, settings, cancel=cancel,
                   on_epoch=lambda epoch, _n, _l: epochs_done.append(epoch))
    assert calls[0] == 8 and epochs_done == [1]
    assert weight.item() != 0.0    # the finished steps are kept


def test_one_cycle_warms_up_and_cosine_starts_at_the_peak():
    first_step = {}
    for schedule in ("one-cycle", "cosine"):
        weight = torch.nn.Parameter(torch.zeros(1))
        values: list[float] = []

        def batch_loss(_index: torch.Tensor, weight=weight, values=values) -> torch.Tensor:
            values.append(weight.item())
            return ((weight - 1) ** 2).sum()

        settings = LoopSettings(epochs=10, batch_size=1, learning_rate=0.1, schedule=schedule)
        train_loop([weight], 1, batch_loss, settings)
        # Adam's first step moves a weight by the learning rate (the gradient is normalised)
        first_step[schedule] = values[1]
    assert first_step["cosine"] == pytest.approx(0.1, rel=1e-4)
    assert first_step["one-cycle"] == pytest.approx(0.1 / 25, rel=1e-3)   # OneCycleLR's start


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValueError, match="schedule"):
        LoopSettings(epochs=1, batch_size=1, learning_rate=0.1, schedule="linear")
    with pytest.raises(ValueError, match="at least 1"):
        LoopSettings(epochs=0, batch_size=1, learning_rate=0.1)
    settings = LoopSettings(epochs=1, batch_size=1, learning_rate=0.1)
    with pytest.raises(ValueError, match="no samples"):
        train_loop([torch.nn.Parameter(torch.zeros(1))], 0, lambda i: torch.zeros(()), settings)
    with pytest.raises(ValueError, match="no parameters"):
        train_loop([], 3, lambda i: torch.zeros(()), settings)


def test_oversampling_gives_the_reviewed_samples_their_share():
    teaching = torch.arange(100)
    reviewed = torch.tensor([3, 7])
    drawn = oversample(teaching, reviewed, 0.25).tolist()
    share = (drawn.count(3) + drawn.count(7)) / len(drawn)
    assert abs(share - 0.25) < 0.02 and drawn[:100] == list(range(100))
    assert oversample(teaching, reviewed, 0.0).tolist() == list(range(100))
    assert oversample(teaching, torch.tensor([], dtype=torch.long), 0.5).tolist() == \
        list(range(100))
