"""The training loop shared by every experiment, and the usual GAN update.

:func:`train_loop` runs ``step_fn(step)`` for ``num_steps`` steps with a tqdm bar, checks every
returned loss (a NaN stops the run, see :mod:`~medgan_core.train.guard`), keeps the loss history,
writes an atomic checkpoint every ``checkpoint_every`` steps and, when started again on the same
run folder, resumes from the newest checkpoint: the resumed run ends with the same weights as an
uninterrupted one, provided every random draw of ``step_fn`` comes from the checkpointed
states (torch/NumPy/Python global RNGs, an :class:`ImagePool`, or :func:`step_batch_indices`).
A ``DataLoader`` iterator's position is *not* checkpointed: draw batches by step instead.

:func:`adversarial_step` is one step of the common recipe: ``n_critic`` discriminator updates,
then one generator update, then the EMA:

    d_loss_fn, g_loss_fn = get_losses("hinge")
    def step_fn(step):
        x_real = x_train[step_batch_indices(step, len(x_train), 64, seed)]
        return adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss_fn, g_loss_fn,
                                sample_z=lambda n: torch.randn(n, nz), ema=ema, step=step)
    history = train_loop(step_fn, num_steps, run_dir=run_dir, checkpoint_every=500,
                         models={"G": net_G, "D": net_D}, optimizers={"G": opt_G, "D": opt_D},
                         ema={"G": ema})
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from medgan_core.losses import gradient_penalty, r1_penalty
from medgan_core.train.checkpoint import (checkpoint_path, checksum_path, latest_checkpoint, load_checkpoint,
                                          save_checkpoint)
from medgan_core.train.device import amp_context
from medgan_core.train.ema import EMA
from medgan_core.train.guard import NonFiniteLossError, NonFiniteWeightsError, check_finite, first_nonfinite_model


def step_batch_indices(step: int, num_items: int, batch_size: int, seed: int) -> Tensor:
    """Return the dataset indices of the batch used at ``step`` (shuffled epochs, last partial batch dropped).

    Epoch ``e`` is a permutation drawn from ``(seed, e)`` alone, so any step's batch can be
    recomputed after a resume without replaying the earlier ones.

    Args:
        step: the training step (0-based).
        num_items: the dataset's size.
        batch_size: the batch size, at most ``num_items``.
        seed: the run's seed.

    Returns:
        A `(batch_size,)` long tensor of indices.
    """
    if not 0 < batch_size <= num_items:
        raise ValueError(f"batch_size must be in [1, num_items={num_items}], got {batch_size}.")
    per_epoch = num_items // batch_size
    epoch, pos = divmod(int(step), per_epoch)
    perm = np.random.default_rng([int(seed), epoch]).permutation(num_items)
    return torch.from_numpy(perm[pos * batch_size:(pos + 1) * batch_size].copy())


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` of ``net``'s parameters for the block, then restore each flag."""
    flags = [p.requires_grad for p in net.parameters()]
    net.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def adversarial_step(net_G: nn.Module, net_D: nn.Module, opt_G: torch.optim.Optimizer,
                     opt_D: torch.optim.Optimizer, x_real: Tensor | Callable[[], Tensor],
                     d_loss_fn: Callable[[Tensor, Tensor], Tensor], g_loss_fn: Callable[[Tensor], Tensor], *,
                     sample_z: Callable[[int], Tensor] | None = None,
                     make_fake: Callable[[int], Tensor] | None = None, cond: tuple = (),
                     n_critic: int = 1, gp_weight: float = 0.0, r1_weight: float = 0.0, ema: EMA | None = None,
                     augment: Callable[[Tensor], Tensor] | None = None, reuse_fake: bool = False,
                     step: int | None = None, amp: bool = False) -> dict[str, float]:
    """One GAN update: ``n_critic`` discriminator steps, one generator step, then the EMA.

    Each loss is checked before ``backward()``, so a NaN raises
    :class:`~medgan_core.train.guard.NonFiniteLossError` before it can reach the weights.

    Args:
        net_G: the generator (used for ``sample_z`` fakes and the EMA).
        net_D: the discriminator, called as ``net_D(x, *cond)``.
        opt_G: the generator's optimiser.
        opt_D: the discriminator's optimiser.
        x_real: a real batch `(B, ...)`, or a callable returning a fresh one for each critic step.
        d_loss_fn: ``d_loss_fn(d_real, d_fake)`` from :data:`medgan_core.losses.D_LOSSES`.
        g_loss_fn: ``g_loss_fn(d_fake)`` from :data:`medgan_core.losses.G_LOSSES`.
        sample_z: ``sample_z(n)`` returns latents; fakes are ``net_G(sample_z(n))``.
        make_fake: instead of ``sample_z``: ``make_fake(n)`` returns fakes itself (conditional or
            image-to-image models, e.g. ``lambda n: net_G(z(n), y)``).
        cond: extra inputs of a conditional discriminator (labels `(B,)`), for real and fake alike.
        n_critic: discriminator steps per generator step (5 for WGAN-GP).
        gp_weight: weight of :func:`~medgan_core.losses.gradient_penalty` (0: none; 10 in WGAN-GP).
        r1_weight: ``gamma`` of :func:`~medgan_core.losses.r1_penalty` on the real batch; the
            discriminator loss gains ``gamma / 2 * R1`` (0: none).
        ema: an EMA of ``net_G`` to update after the generator step.
        augment: a differentiable augmentation (e.g. :class:`~medgan_core.data.augment.DiffAugment`)
            applied to every image ``net_D`` sees, real and generated, in both updates.
        reuse_fake: with ``n_critic == 1``, generate the fake batch once: the discriminator sees it
            detached, the generator update back-propagates through the same batch (as the DCGAN
            paper's reference loop does); saves one generator forward pass per step.
        step: the training step, quoted if a loss is not finite.
        amp: bf16 autocast for the forward passes (CUDA only; a no-op on CPU).

    Returns:
        ``{"loss_D", "loss_G", "d_real", "d_fake"}`` (and ``"gp"`` if ``gp_weight > 0``, ``"r1"`` if
        ``r1_weight > 0``) as floats,
        from the last critic step; ``d_real``/``d_fake`` are the mean discriminator outputs.
    """
    if (sample_z is None) == (make_fake is None):
        raise ValueError("Pass exactly one of sample_z (latents for net_G) or make_fake (fakes directly).")
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}.")
    if reuse_fake and n_critic != 1:
        raise ValueError("reuse_fake needs n_critic == 1: with several critic steps each sees its own fakes.")
    fake = make_fake if make_fake is not None else (lambda n: net_G(sample_z(n)))
    get_real = x_real if callable(x_real) else (lambda: x_real)
    aug = augment if augment is not None else (lambda t: t)
    out: dict[str, float] = {}
    x_fake_kept = None
    for _ in range(n_critic):
        x = get_real()
        if reuse_fake:
            with amp_context(x.device, amp):
                x_fake_kept = fake(x.shape[0])  # `(B, ...)`, with the generator's graph
            x_fake = x_fake_kept.detach()
        else:
            with torch.no_grad(), amp_context(x.device, amp):
                x_fake = fake(x.shape[0])  # `(B, ...)`
        x_d, x_fake_d = aug(x), aug(x_fake.to(x.dtype))
        if r1_weight > 0:
            x_d = x_d.detach().requires_grad_(True)
        with amp_context(x.device, amp):
            d_real, d_fake = net_D(x_d, *cond).float(), net_D(x_fake_d, *cond).float()
        loss_D = d_loss_fn(d_real, d_fake)
        if gp_weight > 0:
            gp = gradient_penalty(net_D, x_d, x_fake_d, *cond)
            loss_D = loss_D + gp_weight * gp
            out["gp"] = gp.item()
        if r1_weight > 0:
            r1 = r1_penalty(d_real, x_d)
            loss_D = loss_D + 0.5 * r1_weight * r1
            out["r1"] = r1.item()
        check_finite("loss_D", loss_D, step)
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
    out.update(loss_D=loss_D.item(), d_real=d_real.mean().item(), d_fake=d_fake.mean().item())

    with frozen(net_D), amp_context(x.device, amp):
        x_fake_g = x_fake_kept if x_fake_kept is not None else fake(x.shape[0])
        loss_G = g_loss_fn(net_D(aug(x_fake_g), *cond).float())
    check_finite("loss_G", loss_G, step)
    opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    opt_G.step()
    if ema is not None:
        ema.update(net_G)
    out["loss_G"] = loss_G.item()
    return out


def train_loop(step_fn: Callable[[int], Mapping[str, float]], num_steps: int, *,
               run_dir: str | Path | None = None, models: Mapping[str, Any] | None = None,
               optimizers: Mapping[str, Any] | None = None, schedulers: Mapping[str, Any] | None = None,
               ema: Mapping[str, Any] | None = None, pools: Mapping[str, Any] | None = None,
               checkpoint_every: int = 0, keep_last: int = 2, resume: bool = True,
               extra: dict | None = None, progress: bool = True, desc: str = "training",
               should_stop: Callable[[int], bool] | None = None) -> pd.DataFrame:
    """Run ``step_fn(step)`` for steps ``0 .. num_steps - 1`` with checkpoints, resume and a NaN guard.

    ``step_fn`` does the whole step (forward, backward, optimiser and scheduler steps) and returns
    its losses as ``{name: float}``; every value is checked to be finite, and so are the weights
    of every model in ``models`` after the step (so no checkpoint ever holds non-finite weights). The objects passed in
    ``models`` ... ``pools`` are only saved and restored here, never stepped.

    Args:
        step_fn: one training step; gets the 0-based step, returns a dict of float losses.
        num_steps: the total number of steps of the run (a resumed run counts the earlier ones).
        run_dir: the folder for checkpoints; ``None`` keeps nothing on disk.
        models: models to checkpoint, by name.
        optimizers: optimisers to checkpoint, by name.
        schedulers: learning-rate schedulers to checkpoint, by name.
        ema: EMA objects to checkpoint, by name.
        pools: image pools to checkpoint, by name.
        checkpoint_every: write a checkpoint every this many steps and at the end (0: never).
        keep_last: how many of the newest checkpoints to keep in ``run_dir`` (older are deleted).
        resume: continue from the newest checkpoint in ``run_dir`` if there is one.
        extra: a dict of plain data (tensors, numbers, lists) saved with every checkpoint and
            refilled in place on resume, e.g. fixed latents or sample grids over training.
        progress: show a tqdm progress bar.
        desc: the bar's label.
        should_stop: ``should_stop(done) -> bool``, asked after every step with the number of
            completed steps (and once after a resume, before any step): ``True`` writes a
            checkpoint there (if ``checkpoint_every > 0``) and ends the run early, e.g. when a
            time budget is spent. It may update ``extra`` first, so the checkpoint records why.

    Returns:
        The loss history: one row per step, a ``step`` column and one column per loss.
    """
    if num_steps < 0 or checkpoint_every < 0 or keep_last < 1:
        raise ValueError(f"Need num_steps >= 0, checkpoint_every >= 0, keep_last >= 1; got {num_steps}, "
                         f"{checkpoint_every}, {keep_last}.")
    if checkpoint_every and run_dir is None:
        raise ValueError("checkpoint_every > 0 needs a run_dir to write the checkpoints to.")
    state = dict(models=models or {}, optimizers=optimizers or {}, schedulers=schedulers or {},
                 ema=ema or {}, pools=pools or {})
    if checkpoint_every and not state["models"]:
        raise ValueError("checkpoint_every > 0 needs the models (and optimizers) to save.")
    user_extra = extra if extra is not None else {}
    history: list[dict[str, float]] = []
    start, last_ckpt = 0, None
    if run_dir is not None and resume and (last_ckpt := latest_checkpoint(run_dir)) is not None:
        start, saved = load_checkpoint(last_ckpt, **state)
        history = list(saved["history"])
        user_extra.update(saved["user"])

    stop_now = should_stop is not None and 0 < start < num_steps and bool(should_stop(start))
    end = start if stop_now else num_steps  # a run stopped early (and checkpointed so) stays stopped
    bar = tqdm(range(start, end), initial=start, total=num_steps, desc=desc, disable=not progress)
    for step in bar:
        try:
            losses = step_fn(step)
            for name, value in losses.items():
                check_finite(name, value, step)
        except NonFiniteLossError as err:
            raise NonFiniteLossError(err.name, step if err.step is None else err.step, err.value,
                                     last_ckpt, run=desc) from err
        if (blown := first_nonfinite_model(state["models"])) is not None:
            raise NonFiniteWeightsError(blown, step, last_ckpt, run=desc)
        history.append({"step": step, **{k: float(v) for k, v in losses.items()}})
        bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        done = step + 1
        stop = should_stop is not None and done < num_steps and bool(should_stop(done))
        if checkpoint_every and (done % checkpoint_every == 0 or done == num_steps or stop):
            last_ckpt = save_checkpoint(checkpoint_path(run_dir, done), **state, step=done,
                                        extra={"history": history, "user": user_extra})
            _prune(Path(run_dir), keep_last)
        if stop:
            break
    bar.close()
    return pd.DataFrame(history, columns=None if history else ["step"])


def _prune(run_dir: Path, keep_last: int) -> None:
    """Delete all but the ``keep_last`` newest checkpoints in ``run_dir``."""
    ckpts = sorted(p for p in run_dir.glob("ckpt_*.pt") if p.stem[5:].isdigit())
    for old in ckpts[:-keep_last]:
        old.unlink(missing_ok=True)
        checksum_path(old).unlink(missing_ok=True)

