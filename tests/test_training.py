"""`models_zoo.training.fit`, the loop every recipe trains through: whole and fractional epochs."""
import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from models_zoo.training import fit, fit_steps, flipped_batch, shuffled_batches

IMAGES = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
BATCH = 4  # 10 steps per epoch


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(2, 1))


def _loss_of(m, x, idx):
    return (m(x) - 1).pow(2).mean()


def _fit(epochs, lr=3e-2):
    """Train a fresh few-parameter model for `epochs`; returns (model, history, the lr of each optimizer step)."""
    model, lrs = _model(), []
    rng = np.random.default_rng(0)
    batches, steps = shuffled_batches(len(IMAGES), BATCH, rng)
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    try:
        history = fit(model, IMAGES, batches, _loss_of, epochs=epochs, steps_per_epoch=steps, lr=lr,
                      device=torch.device("cpu"), rng=rng, progress=False)
    finally:
        handle.remove()
    return model, history, lrs


def _old_fit(model, images, batches, loss_of, *, epochs, steps_per_epoch, lr, device, rng):
    """`fit` as it was before fractional epochs (whole epochs only, no progress bar): a frozen copy for comparison."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, epochs * steps_per_epoch))
    history = []
    for epoch in range(epochs):
        model.train()
        losses = []
        for idx in batches(epoch):
            x, _ = flipped_batch(images, idx, (), device, rng)
            loss = loss_of(model, x, idx).float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
    model.eval()
    return history


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_fit_steps():
    assert fit_steps(3, 10) == 30 and fit_steps(0.5, 10) == 5 and fit_steps(0.25, 10) == 2  # round half to even
    assert fit_steps(0.01, 10) == 1 and fit_steps(0, 10) == 0


def test_half_an_epoch_takes_half_the_steps_with_the_one_cycle_over_them():
    _, history, lrs = _fit(0.5, lr=3e-2)
    assert len(lrs) == 5 and len(history) == 1  # 5 of the epoch's 10 optimizer steps, one epoch started
    assert max(lrs) > 0.9 * 3e-2 and lrs[-1] < 1e-5  # the schedule rose and ran to its end over the 5 steps
    _, history, lrs = _fit(1.5)
    assert len(lrs) == 15 and len(history) == 2 and lrs[-1] < 1e-5  # a whole epoch and half of the next


def test_whole_epochs_train_as_before():
    one, history_one, lrs_one = _fit(1)
    one_float, history_float, lrs_float = _fit(1.0)
    assert len(lrs_one) == 10 and lrs_one == lrs_float and history_one == history_float and _same_weights(one, one_float)
    two, history_two, _ = _fit(2)
    old = _model()
    rng = np.random.default_rng(0)
    batches, steps = shuffled_batches(len(IMAGES), BATCH, rng)
    history_old = _old_fit(old, IMAGES, batches, _loss_of, epochs=2, steps_per_epoch=steps, lr=3e-2,
                           device=torch.device("cpu"), rng=rng)
    assert history_two == history_old and _same_weights(two, old)
