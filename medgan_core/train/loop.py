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

Gradient accumulation (``accumulate=k``) reaches an effective batch ``B`` while the discriminator
sees only ``B / k`` images at a time; with several processes (:mod:`~medgan_core.train.distributed`)
:func:`train_loop` writes checkpoints on rank 0 only, and every rank resumes from them.
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


def check_accumulate(accumulate: Any) -> int:
    """``accumulate`` itself if it is an int >= 1 (micro-batches per update), else a ``ValueError`` saying so.

    Args:
        accumulate: the number of micro-batches per update (1: no gradient accumulation).
    """
    if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
        raise ValueError(f"accumulate must be an int >= 1 (micro-batches per update; 1: none), got {accumulate!r}.")
    return accumulate


def _micro_batches(tensors: tuple[Tensor, ...], accumulate: int) -> list[tuple[Tensor, ...]]:
    """Split every tensor along the batch into ``accumulate`` equal parts (1: the tensors themselves, unsplit)."""
    if accumulate == 1:
        return [tensors]
    return list(zip(*(t.chunk(accumulate) for t in tensors)))


def _critic_loss(net_D: nn.Module, x_d: Tensor, x_fake_d: Tensor, cond: tuple, d_loss_fn: Callable,
                 gp_weight: float, r1_weight: float, amp: bool) -> tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]:
    """The discriminator loss on one (micro-)batch: ``d_loss_fn`` plus the gradient penalty and R1 if weighted.

    Returns:
        ``(loss_D, d_real, d_fake, terms)``: the loss, the outputs `(b,)` on real and fake, and the
        unweighted penalties ``{"gp", "r1"}`` that are on.
    """
    if r1_weight > 0:
        x_d = x_d.detach().requires_grad_(True)
    with amp_context(x_d.device, amp):
        d_real, d_fake = net_D(x_d, *cond).float(), net_D(x_fake_d, *cond).float()
    loss_D = d_loss_fn(d_real, d_fake)
    terms = {}
    if gp_weight > 0:
        terms["gp"] = gradient_penalty(net_D, x_d, x_fake_d, *cond)
        loss_D = loss_D + gp_weight * terms["gp"]
    if r1_weight > 0:
        terms["r1"] = r1_penalty(d_real, x_d)
        loss_D = loss_D + 0.5 * r1_weight * terms["r1"]
    return loss_D, d_real, d_fake, terms


def _generator_backward(net_D: nn.Module, x_g: Tensor, cond: tuple, g_loss_fn: Callable[[Tensor], Tensor],
                        accumulate: int, amp: bool, step: int | None) -> Tensor:
    """Back-propagate the generator loss on the discriminator's inputs ``x_g`` `(B, ...)` (``net_D`` frozen).

    With ``accumulate == k > 1`` each micro-batch's loss, divided by ``k``, is back-propagated
    through ``net_D`` alone into its rows of ``x_g``; the gathered gradient `(B, ...)` then goes
    through the generator once (its forward, over the whole batch, built ``x_g``).

    Returns:
        The loss on the whole batch (the mean of the micro-batch losses), detached.
    """
    if accumulate == 1:
        with amp_context(x_g.device, amp):
            loss_G = g_loss_fn(net_D(x_g, *cond).float())
        check_finite("loss_G", loss_G, step)
        loss_G.backward()
        return loss_G.detach()
    losses, grads = [], []
    for x_i, *cond_i in _micro_batches((x_g.detach(), *cond), accumulate):
        x_i = x_i.requires_grad_(True)  # `(B / k, ...)`, a leaf: gradients stop here
        with amp_context(x_g.device, amp):
            loss_i = g_loss_fn(net_D(x_i, *cond_i).float())
        check_finite("loss_G", loss_i, step)
        (loss_i / accumulate).backward()
        losses.append(loss_i.detach())
        grads.append(x_i.grad)
    x_g.backward(torch.cat(grads))  # `(B, ...)`: once through the generator
    return torch.stack(losses).mean()


def adversarial_step(net_G: nn.Module, net_D: nn.Module, opt_G: torch.optim.Optimizer,
                     opt_D: torch.optim.Optimizer, x_real: Tensor | Callable[[], Tensor],
                     d_loss_fn: Callable[[Tensor, Tensor], Tensor], g_loss_fn: Callable[[Tensor], Tensor], *,
                     sample_z: Callable[[int], Tensor] | None = None,
                     make_fake: Callable[[int], Tensor] | None = None, cond: tuple = (),
                     n_critic: int = 1, gp_weight: float = 0.0, r1_weight: float = 0.0, ema: EMA | None = None,
                     augment: Callable[[Tensor], Tensor] | None = None, reuse_fake: bool = False,
                     step: int | None = None, amp: bool = False, accumulate: int = 1) -> dict[str, float]:
    """One GAN update: ``n_critic`` discriminator steps, one generator step, then the EMA.

    Each loss is checked before ``backward()``, so a NaN raises
    :class:`~medgan_core.train.guard.NonFiniteLossError` before it can reach the weights.

    Gradient accumulation (``accumulate = k > 1``): every update draws its whole batch of ``B``
    fakes (and augmentations) exactly as without accumulation, then splits the real batch, the
    fakes and ``cond`` into ``k`` micro-batches of ``B / k``; each micro-batch's loss (penalties
    included, each on its own micro-batch) divided by ``k`` is back-propagated, and the optimiser
    steps once. The losses are means over the batch, so for networks without batch norm the update
    equals the update on the whole batch, to float rounding. The generator still runs once on the
    whole batch (the fake makers draw all ``B`` latents), so the memory saved is the
    discriminator's: its forward and backward passes see ``B / k`` images. A discriminator with
    batch norm then normalises each micro-batch by its own statistics (and updates its running
    statistics ``k`` times), and one with spectral normalisation runs its power iteration at each of
    its ``k`` forward passes: neither is then the same update as on the whole batch.

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
        accumulate: micro-batches per update (1: none); must divide the batch size ``B``.

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
    check_accumulate(accumulate)
    fake = make_fake if make_fake is not None else (lambda n: net_G(sample_z(n)))
    get_real = x_real if callable(x_real) else (lambda: x_real)
    aug = augment if augment is not None else (lambda t: t)
    out: dict[str, float] = {}
    x_fake_kept = None
    for _ in range(n_critic):
        x = get_real()
        if x.shape[0] % accumulate:
            raise ValueError(f"accumulate={accumulate} must divide the batch size, got a batch of {x.shape[0]} "
                             "(per process when training on several); choose a batch_size that is a multiple of "
                             "accumulate (times the number of processes).")
        if reuse_fake:
            with amp_context(x.device, amp):
                x_fake_kept = fake(x.shape[0])  # `(B, ...)`, with the generator's graph
            x_fake = x_fake_kept.detach()
        else:
            with torch.no_grad(), amp_context(x.device, amp):
                x_fake = fake(x.shape[0])  # `(B, ...)`
        x_d, x_fake_d = aug(x), aug(x_fake.to(x.dtype))
        opt_D.zero_grad(set_to_none=True)
        parts: list[tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]] = []
        for x_i, x_fake_i, *cond_i in _micro_batches((x_d, x_fake_d, *cond), accumulate):  # `(B / k, ...)` each
            loss_D, d_real, d_fake, terms = _critic_loss(net_D, x_i, x_fake_i, tuple(cond_i), d_loss_fn,
                                                         gp_weight, r1_weight, amp)
            check_finite("loss_D", loss_D, step)
            (loss_D / accumulate).backward()
            parts.append((loss_D.detach(), d_real.detach(), d_fake.detach(), {k: v.detach() for k, v in terms.items()}))
        opt_D.step()
        out.update({name: torch.stack([p[3][name] for p in parts]).mean().item() for name in parts[0][3]})
    out.update(loss_D=torch.stack([p[0] for p in parts]).mean().item(),
               d_real=torch.cat([p[1] for p in parts]).mean().item(),
               d_fake=torch.cat([p[2] for p in parts]).mean().item())

    with frozen(net_D):
        with amp_context(x.device, amp):
            x_fake_g = x_fake_kept if x_fake_kept is not None else fake(x.shape[0])
            x_g = aug(x_fake_g)  # `(B, ...)`
        opt_G.zero_grad(set_to_none=True)
        loss_G = _generator_backward(net_D, x_g, cond, g_loss_fn, accumulate, amp, step)
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

    Under several processes (:mod:`~medgan_core.train.distributed`) every rank runs the loop:
    only rank 0 writes checkpoints (the others wait at a barrier until it is written), every rank
    resumes from the newest one (ranks other than 0 then re-derive their own random streams),
    rank 0 decides when ``should_stop`` ends the run, the history holds each loss averaged over
    the ranks, and only rank 0 shows a progress bar.

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
    # Imported here, not at the top: `python -m medgan_core.train.distributed` must find it not yet imported.
    from medgan_core.train import distributed

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
        distributed.reseed_after_resume(start)  # every rank restored rank 0's random states

    stop_now = (should_stop is not None and 0 < start < num_steps
                and distributed.decided_by_main(bool(should_stop(start))))
    end = start if stop_now else num_steps  # a run stopped early (and checkpointed so) stays stopped
    bar = tqdm(range(start, end), initial=start, total=num_steps, desc=desc,
               disable=not progress or not distributed.is_main())
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
        losses = distributed.mean_over_ranks(losses)
        history.append({"step": step, **{k: float(v) for k, v in losses.items()}})
        bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
        done = step + 1
        stop = (should_stop is not None and done < num_steps
                and distributed.decided_by_main(bool(should_stop(done))))
        if checkpoint_every and (done % checkpoint_every == 0 or done == num_steps or stop):
            last_ckpt = checkpoint_path(run_dir, done)
            if distributed.is_main():
                save_checkpoint(last_ckpt, **state, step=done, extra={"history": history, "user": user_extra})
                _prune(Path(run_dir), keep_last)
            distributed.barrier()  # no rank runs ahead of (or resumes from) an unfinished checkpoint
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

