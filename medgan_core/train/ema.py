"""Exponential moving average (EMA) of a generator's weights.

Samples from the averaged generator are usually smoother and better than from the raw one
(BigGAN, Brock et al. 2019; Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN
Training"). After each generator step, every floating-point parameter is updated as

    theta_ema <- decay * theta_ema + (1 - decay) * theta

with a warm-up: the decay used at update ``n`` (counted from 0) is
``min(decay, (1 + n) / (10 + n))``, so early averages are not dominated by the random initial
weights (the ``num_updates`` rule of TensorFlow's ``ExponentialMovingAverage``; with ``decay``
0.999 the full decay is reached after about 9,000 updates). Buffers (batch-norm running
statistics, counters) are copied as they are.
``ema.module`` is a frozen copy of the generator holding the averaged weights, ready to sample
from; ``copy_to(net_G)`` writes them into another model.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps an averaged copy of a model's weights.

    Args:
        model: the model to average (usually ``net_G``); it is deep-copied once.
        decay: weight of the past, in ``[0, 1)``; 0.999 averages over about the last 1,000 steps.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not isinstance(model, nn.Module):
            raise TypeError(f"EMA needs an nn.Module, got {type(model).__name__}.")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}.")
        self.decay = float(decay)
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights.

        Args:
            model: the model being trained, with the same architecture as the averaged one.
        """
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        ema_params = dict(self.module.named_parameters())
        for name, param in model.named_parameters():
            if name not in ema_params:
                raise KeyError(f"EMA.update: parameter '{name}' is not in the averaged model; "
                               "pass the same architecture the EMA was built from.")
            if param.dtype.is_floating_point:
                ema_params[name].lerp_(param.detach(), 1.0 - decay)
            else:
                ema_params[name].copy_(param)
        ema_buffers = dict(self.module.named_buffers())
        for name, buf in model.named_buffers():
            ema_buffers[name].copy_(buf)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Write the averaged weights and buffers into ``model``.

        Args:
            model: a model of the same architecture (e.g. a generator used for sampling).
        """
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> dict:
        """Return ``{"decay", "num_updates", "weights"}``, loadable with ``weights_only=True``."""
        return {"decay": self.decay, "num_updates": self.num_updates, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the average from :meth:`state_dict`'s output.

        Args:
            state: a dict with keys ``decay``, ``num_updates`` and ``weights``.
        """
        missing = {"decay", "num_updates", "weights"} - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)}; it has {sorted(state)}.")
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        self.module.load_state_dict(state["weights"])
