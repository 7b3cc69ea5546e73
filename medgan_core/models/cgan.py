"""Conditional WGAN-GP (Gulrajani et al. 2017) with multiplicative label embeddings, as in the write-up.

The class label ``y`` enters both networks through a learned embedding that is *multiplied*
into a vector: into the latent in the generator, ``G(z ⊙ e_G(y))``, and into the flattened image
features in the critic, ``D(x, y) = w^T (f(x) ⊙ e_D(y)) + b``. Objective (critic scores, no
sigmoid; ``x_hat`` lies on a random line between a real and a generated image of the same class):

    loss_D = E[D(G(z, y), y)] - E[D(x, y)] + lambda_gp E[(||grad_x_hat D(x_hat, y)||_2 - 1)^2]
    loss_G = -E[D(G(z, y), y)]

(:func:`medgan_core.losses.get_losses` ``("wgan")`` and :func:`~medgan_core.losses.gradient_penalty`,
``lambda_gp = 10``). The critic has no batch norm (the penalty is per sample) and keeps PyTorch's
default initialisation.

Shapes: ``z`` `(B, nz)`, ``y`` `(B,)` int64 in ``0..K-1`` -> images `(B, C, S, S)` in [-1, 1];
critic: `(B, C, S, S)`, `(B,)` -> scores `(B,)`. Built by name through
:func:`medgan_core.models.registry.build_gan` (``"cwgan_gp"``), which calls :func:`build`;
:func:`train_step` is one update (``n_critic`` critic steps on one real batch, one generator step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from medgan_core.losses import get_losses
from medgan_core.models.dcgan import ConvTrunk, Generator
from medgan_core.train.loop import adversarial_step

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NAMES = ("cwgan_gp",)
BETAS = {"cwgan_gp": (0.5, 0.9)}  # Adam betas of WGAN-GP (Gulrajani et al. 2017, their DCGAN-body runs)
PAPER_LR = {"cwgan_gp": 1e-4}  # Adam learning rate of G and D (Gulrajani et al. 2017, Algorithm 1)


def _check_labels(y: Tensor, batch: int, num_classes: int) -> None:
    """Labels must be int64 `(B,)` in ``0..K-1``."""
    if y.ndim != 1 or y.shape[0] != batch or y.dtype != torch.long:
        raise ValueError(f"labels must be an int64 tensor of shape ({batch},), got {y.dtype} {tuple(y.shape)}.")
    if batch and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {int(y.min())}..{int(y.max())}.")


class CondGenerator(nn.Module):
    """Generator of the conditional WGAN-GP: ``G(z ⊙ e_G(y))`` with a DCGAN body.

    Args:
        num_classes: number of classes ``K``.
        nz: latent size (also the embedding size).
        image_size: output side ``S``.
        channels: output channels.
        width: DCGAN generator width.
    """

    def __init__(self, num_classes: int, nz: int = 64, image_size: int = 32, channels: int = 3,
                 width: int = 32) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 for a conditional GAN, got {num_classes}.")
        self.num_classes, self.nz, self.image_size, self.channels = num_classes, nz, image_size, channels
        self.embed = nn.Embedding(num_classes, nz)
        nn.init.normal_(self.embed.weight, 1.0, 0.1)  # near 1: starts close to the unconditional generator
        self.body = Generator(nz, image_size, channels, width)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        """Images of the classes ``y``.

        Args:
            z: latents `(B, nz)`.
            y: class labels `(B,)` int64.

        Returns:
            `(B, C, S, S)` in [-1, 1].
        """
        _check_labels(y, z.shape[0], self.num_classes)
        return self.body(z * self.embed(y))  # `(B, nz)` -> `(B, C, S, S)`


class CondCritic(nn.Module):
    """Critic of the conditional WGAN-GP: ``w^T (f(x) ⊙ e_D(y)) + b``.

    Args:
        num_classes: number of classes ``K``.
        image_size: input side ``S``.
        channels: input channels.
        width: trunk width (no normalisation).
    """

    def __init__(self, num_classes: int, image_size: int = 32, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.trunk = ConvTrunk(image_size, channels, width, norm="none")
        self.embed = nn.Embedding(num_classes, self.trunk.feature_dim)
        self.head = nn.Linear(self.trunk.feature_dim, 1)
        # PyTorch's default (Kaiming-uniform) initialisation, not DCGAN's N(0, 0.02): with tiny
        # weights the input gradient is far below the penalty's target norm 1, and the critic
        # spends its first few hundred steps only growing its weights (measured here: a 10x worse
        # FID after 250 steps).
        nn.init.normal_(self.embed.weight, 1.0, 0.1)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Critic scores.

        Args:
            x: images `(B, C, S, S)` in [-1, 1].
            y: class labels `(B,)` int64.

        Returns:
            `(B,)` scores (higher = more real for class ``y``).
        """
        _check_labels(y, x.shape[0], self.num_classes)
        h = self.trunk(x).flatten(1)  # `(B, F)`
        return self.head(h * self.embed(y)).flatten()


def generator(name: str = "cwgan_gp", *, num_classes: int, nz: int = 64, image_size: int = 32, channels: int = 3,
             width_G: int = 32) -> CondGenerator:
    """The conditional generator, by its registry name.

    Args:
        name: ``"cwgan_gp"``.
        num_classes: number of classes (>= 2).
        nz: latent size.
        image_size: image side.
        channels: image channels.
        width_G: generator width.
    """
    return CondGenerator(num_classes, nz, image_size, channels, width_G)


def discriminator(name: str = "cwgan_gp", *, num_classes: int, image_size: int = 32, channels: int = 3,
             width_D: int = 32) -> CondCritic:
    """The conditional critic, by its registry name.

    Args:
        name: ``"cwgan_gp"``.
        num_classes: number of classes (>= 2).
        image_size: image side.
        channels: image channels.
        width_D: critic width.
    """
    return CondCritic(num_classes, image_size, channels, width_D)


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """Seeded networks for :func:`~medgan_core.models.registry.build_gan`: ``torch.manual_seed(seed)``, then the pair.

    Args:
        name: ``"cwgan_gp"``.
        settings: the registry's settings (``num_classes``, ``nz``, ``image_size``, ``channels``,
            ``width_G``, ``width_D``, ``seed``).

    Returns:
        ``(net_G, net_D, extras)`` on the CPU; ``extras`` is empty.
    """
    s = settings
    torch.manual_seed(s["seed"])
    net_G = generator(name, num_classes=s["num_classes"], nz=s["nz"], image_size=s["image_size"], channels=s["channels"],
                      width_G=s["width_G"])
    return net_G, discriminator(name, num_classes=s["num_classes"], image_size=s["image_size"], channels=s["channels"],
                                width_D=s["width_D"]), {}


def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One conditional WGAN-GP update: ``n_critic`` critic steps on the same real batch, one generator step.

    ``(x, y) = data.batch(step)``; fakes ``G(z, y)`` of the batch's own classes with a fresh
    ``z ~ N(0, I)`` (global RNG) at every critic step;
    ``loss_D = E[D(G(z, y), y)] - E[D(x, y)] + gp_weight GP``, ``loss_G = -E[D(G(z, y), y)]``
    (:func:`~medgan_core.train.loop.adversarial_step`). The EMA (if any) follows the generator step.

    Args:
        gan: a ``"cwgan_gp"`` GAN.
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.

    Returns:
        ``loss_D``, ``loss_G``, ``d_real``, ``d_fake``, ``gp``.
    """
    d_loss, g_loss = get_losses("wgan")
    s, net_G = gan.settings, gan.net_G
    x_real, y_real = data.batch(step)  # `(B, C, S, S)`, `(B,)`
    dev = x_real.device
    return adversarial_step(net_G, gan.net_D, gan.opt_G, gan.opt_D, x_real, d_loss, g_loss,
                            make_fake=lambda n: net_G(torch.randn(n, s["nz"], device=dev), y_real), cond=(y_real,),
                            n_critic=s["n_critic"], gp_weight=s["gp_weight"], ema=gan.ema, step=step, amp=s["amp"],
                            augment=s.get("augment"), accumulate=s["accumulate"])
