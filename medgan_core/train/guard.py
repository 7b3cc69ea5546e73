"""The non-finite guard: a NaN or infinite loss, or weights, stop training at once, with advice.

GAN training can diverge: a discriminator that becomes too sharp sends the generator's
gradients to infinity, and one NaN spreads to every weight in the next optimiser step. Checking
each loss *before* ``backward()`` stops most runs while the weights are still good. But an
update with finite losses can still blow the weights up (a huge learning rate, an overflowing
gradient), so the training loop also checks every model's weights after each step
(:func:`first_nonfinite_model`), before any checkpoint is written: the checkpoints on disk are
always finite. Both errors name the run, the model or loss, and the step.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import torch

ADVICE = ("Try: a lower learning rate (halve lr), a gradient penalty (gp_weight=10 with the 'wgan' "
          "loss), spectral normalisation in the discriminator, gradient clipping, or turning off "
          "mixed precision (amp=False).")


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; names the loss, the step and the last good checkpoint.

    Attributes:
        name: the loss's name (``"loss_D"``, ``"loss_G"``, ...).
        step: the training step at which it happened (``None`` if unknown).
        value: the offending value.
        checkpoint: the last good checkpoint, if the training loop wrote one.
    """

    def __init__(self, name: str, step: int | None, value: float, checkpoint: Path | None = None,
                 run: str | None = None):
        self.name, self.step, self.value, self.checkpoint, self.run = name, step, value, checkpoint, run
        super().__init__(f"{_prefix(run)}Loss '{name}' is {value} {_where(step)}; training stopped. "
                         f"{_kept(checkpoint)} {ADVICE}")


class NonFiniteWeightsError(NonFiniteLossError):
    """A model's weights became NaN or infinite in an update whose losses were finite.

    Attributes as :class:`NonFiniteLossError`; ``name`` is the model's name (``"G"``, ``"D"``).
    """

    def __init__(self, name: str, step: int | None, checkpoint: Path | None = None, run: str | None = None):
        self.name, self.step, self.value, self.checkpoint, self.run = name, step, float("nan"), checkpoint, run
        FloatingPointError.__init__(self, f"{_prefix(run)}the weights of model '{name}' are not finite after the update "
                                          f"{_where(step)} (its losses were finite); training stopped before they "
                                          f"reached a checkpoint. {_kept(checkpoint)} {ADVICE}")


def _prefix(run: str | None) -> str:
    return f"{run}: " if run else ""


def _where(step: int | None) -> str:
    return f"at step {step}" if step is not None else "(step unknown)"


def _kept(checkpoint: Path | None) -> str:
    return (f"The last good checkpoint is kept: {checkpoint}." if checkpoint is not None
            else "No checkpoint was written before this step.")


def first_nonfinite_model(models: Mapping[str, Any]) -> str | None:
    """The name of the first model with a NaN or infinite weight (``None``: all finite).

    One max-abs reduction per model (NaN propagates through it, and it cannot overflow the way a
    sum of squares can), read back once per model.
    """
    for name, model in models.items():
        params = [p.detach() for p in model.parameters()] if isinstance(model, torch.nn.Module) else []
        if params and not bool(torch.isfinite(torch.nn.utils.get_total_norm(params, norm_type=float("inf")))):
            return name
    return None


def check_finite(name: str, loss: torch.Tensor | float, step: int | None = None) -> None:
    """Raise :class:`NonFiniteLossError` if ``loss`` is NaN or infinite.

    Args:
        name: the loss's name, quoted in the error.
        loss: a scalar tensor or a float. A tensor is read back to the host (one synchronisation).
        step: the current training step, quoted in the error.
    """
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise ValueError(f"check_finite expects a scalar loss for '{name}', got shape {tuple(loss.shape)}.")
        value = float(loss.detach().float().item())
    else:
        value = float(loss)
    if not math.isfinite(value):
        raise NonFiniteLossError(name, step, value)
