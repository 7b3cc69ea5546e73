"""The non-finite guard: a NaN or infinite loss stops training at once, with advice.

GAN training can diverge: a discriminator that becomes too sharp sends the generator's
gradients to infinity, and one NaN spreads to every weight in the next optimiser step. Checking
each loss *before* ``backward()`` stops the run while the weights are still good, and since
checkpoints are written only after successful steps, the last checkpoint on disk stays good too.
"""

from __future__ import annotations

import math
from pathlib import Path

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

    def __init__(self, name: str, step: int | None, value: float, checkpoint: Path | None = None):
        self.name, self.step, self.value, self.checkpoint = name, step, value, checkpoint
        where = f"at step {step}" if step is not None else "(step unknown)"
        kept = (f"The last good checkpoint is kept: {checkpoint}." if checkpoint is not None
                else "No checkpoint was written before this step.")
        super().__init__(f"Loss '{name}' is {value} {where}; training stopped. {kept} {ADVICE}")


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
