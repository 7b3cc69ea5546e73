"""DCGAN (Radford, Metz & Chintala 2016): transposed-convolution generator, strided-conv discriminator.

Objective (non-saturating GAN, ``D`` outputs a logit, ``s`` is the sigmoid):

    loss_D = -E[log s(D(x))] - E[log(1 - s(D(G(z))))],    loss_G = -E[log s(D(G(z)))]

(:func:`medgan_core.losses.get_losses` ``("nonsaturating")``). Experiment 01 trains one
unconditional DCGAN per cell type, as in the write-up: with ``num_classes = K > 1`` the registry
builds ``K`` independent pairs (``nn.ModuleList``s, pair ``c`` initialised after
``torch.manual_seed(seed + c)``) and :func:`train_step` updates each on its own class's batch.

Shapes, for an image side ``S`` in {16, 32, 64, 128} (a power of two, at least 16):

- :class:`Generator`: ``z`` `(B, nz)` -> 4x4 -> ... -> `(B, C, S, S)` in [-1, 1] (tanh);
  channels ``width * 2^(n-1)`` at 4x4, halved at every doubling (``n = log2(S / 4)``).
- :class:`ConvTrunk`: `(B, C, S, S)` -> `(B, width * 2^(n-1), 4, 4)`: the mirror image, strided
  4x4 convolutions with LeakyReLU(0.2); ``norm`` is ``"batch"`` (DCGAN) or ``"none"`` (critics
  trained with a gradient penalty, where batch norm would couple the samples of a batch).
- :class:`Discriminator`: trunk + a 4x4 convolution -> logits `(B,)`.

The generator and trunk are reused by the conditional WGAN-GP (:mod:`.cgan`) and by BAGAN
(:mod:`.bagan`, whose autoencoder is a trunk encoder plus a generator decoder).
Built by name through :func:`medgan_core.models.registry.build_gan` (``"dcgan"``), which calls
:func:`build`; :func:`train_step` is one update of every class's pair. The per-class pairing
(:func:`build_per_class`, :func:`train_per_class`) is shared with the simple GAN (:mod:`.simple_gan`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from medgan_core.losses import get_losses
from medgan_core.train.loop import adversarial_step

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NORMS = ("batch", "none")
NAMES = ("dcgan",)
BETAS = {"dcgan": (0.5, 0.999)}  # Adam betas (Radford et al. 2016)
PAPER_LR = {"dcgan": 2e-4}  # Adam learning rate of G and D (Radford et al. 2016)


def check_image_size(size: int) -> int:
    """Return ``log2(size / 4)``, the number of 2x up- or down-sampling blocks for side ``size``.

    Args:
        size: the image side in pixels; a power of two, at least 16.
    """
    if not isinstance(size, int) or size < 16 or size & (size - 1):
        raise ValueError(f"image size must be a power of two >= 16 (16, 32, 64, 128), got {size!r}.")
    return int(math.log2(size // 4))


def init_dcgan_weights(net: nn.Module) -> nn.Module:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), batch-norm weights ~ N(1, 0.02), biases 0.

    Args:
        net: the model, modified in place and returned.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


class Generator(nn.Module):
    """DCGAN generator: ``z`` `(B, nz)` -> images `(B, C, S, S)` in [-1, 1].

    Args:
        nz: latent size.
        image_size: output side ``S`` (power of two, >= 16).
        channels: output channels (3 for RGB).
        width: channels of the last hidden block (the first has ``width * 2^(n-1)``).
    """

    def __init__(self, nz: int = 64, image_size: int = 32, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        n = check_image_size(image_size)
        if nz < 1 or width < 1 or channels < 1:
            raise ValueError(f"nz, width and channels must be >= 1, got {nz}, {width}, {channels}.")
        self.nz, self.image_size, self.channels = nz, image_size, channels
        c = width * 2 ** (n - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        """Images from latents.

        Args:
            z: latents `(B, nz)`.

        Returns:
            `(B, channels, S, S)` in [-1, 1].
        """
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"Generator expects z of shape (B, {self.nz}), got {tuple(z.shape)}.")
        return self.net(z[:, :, None, None])


class ConvTrunk(nn.Module):
    """Strided-conv feature extractor: `(B, C, S, S)` -> `(B, out_channels, 4, 4)`.

    Args:
        image_size: input side ``S`` (power of two, >= 16).
        channels: input channels.
        width: channels of the first block (doubled at every halving).
        norm: ``"batch"`` or ``"none"`` after every block but the first.
    """

    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 32, norm: str = "batch") -> None:
        super().__init__()
        n = check_image_size(image_size)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")
        self.image_size, self.channels = image_size, channels
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = width
        for _ in range(n - 1):
            layers.append(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=norm == "none"))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(2 * c))
            layers.append(nn.LeakyReLU(0.2, True))
            c *= 2
        self.net = nn.Sequential(*layers)
        self.out_channels = c
        self.feature_dim = c * 16  # flattened `(c, 4, 4)`

    def forward(self, x: Tensor) -> Tensor:
        """Feature maps.

        Args:
            x: images `(B, C, S, S)`.

        Returns:
            `(B, out_channels, 4, 4)`.
        """
        if x.ndim != 4 or x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ValueError(f"expected images (B, {self.channels}, {self.image_size}, {self.image_size}), "
                             f"got {tuple(x.shape)}; resize the crops to image_size first.")
        return self.net(x)


class Discriminator(nn.Module):
    """DCGAN discriminator: images `(B, C, S, S)` -> logits `(B,)`.

    Args:
        image_size: input side ``S``.
        channels: input channels.
        width: channels of the first block.
        norm: ``"batch"`` (DCGAN) or ``"none"``.
    """

    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 32, norm: str = "batch") -> None:
        super().__init__()
        self.trunk = ConvTrunk(image_size, channels, width, norm)
        self.head = nn.Conv2d(self.trunk.out_channels, 1, 4, 1, 0)
        init_dcgan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """Logits.

        Args:
            x: images `(B, C, S, S)` in [-1, 1].

        Returns:
            `(B,)` logits (real if large).
        """
        return self.head(self.trunk(x)).flatten()


def generator(name: str = "dcgan", *, nz: int = 64, image_size: int = 32, channels: int = 3,
             width_G: int = 32) -> Generator:
    """The DCGAN generator, by its registry name.

    Args:
        name: ``"dcgan"``.
        nz: latent size.
        image_size: image side.
        channels: image channels.
        width_G: generator width.
    """
    return Generator(nz, image_size, channels, width_G)


def discriminator(name: str = "dcgan", *, image_size: int = 32, channels: int = 3, width_D: int = 32) -> Discriminator:
    """The DCGAN discriminator, by its registry name.

    Args:
        name: ``"dcgan"``.
        image_size: image side.
        channels: image channels.
        width_D: discriminator width.
    """
    return Discriminator(image_size, channels, width_D)


def build_per_class(name: str, settings: dict[str, Any], generator_fn: Callable[..., nn.Module],
                    discriminator_fn: Callable[..., nn.Module]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """Seeded unconditional pairs of a family: one pair, or one per class (DCGAN, the simple GAN).

    With ``K = settings["num_classes"] > 1``: ``nn.ModuleList``s of ``K`` generators and ``K``
    discriminators, pair ``c`` built right after ``torch.manual_seed(seed + c)`` (so it equals a
    standalone pair built after that seed); with ``K = 1``: one pair after ``torch.manual_seed(seed)``.

    Args:
        name: the registry name, passed on to the builders.
        settings: the registry's settings (``num_classes``, ``nz``, ``image_size``, ``channels``,
            ``width_G``, ``width_D``, ``seed``).
        generator_fn: the family's ``generator(name, *, nz, image_size, channels, width_G)``.
        discriminator_fn: the family's ``discriminator(name, *, image_size, channels, width_D)``.

    Returns:
        ``(net_G, net_D, extras)`` on the CPU; ``extras`` is empty.
    """
    s = settings
    pairs = []
    for c in range(s["num_classes"]):
        torch.manual_seed(s["seed"] + c)
        pairs.append((generator_fn(name, nz=s["nz"], image_size=s["image_size"], channels=s["channels"],
                                   width_G=s["width_G"]),
                      discriminator_fn(name, image_size=s["image_size"], channels=s["channels"], width_D=s["width_D"])))
    if len(pairs) == 1:
        return pairs[0][0], pairs[0][1], {}
    return nn.ModuleList(g for g, _ in pairs), nn.ModuleList(d for _, d in pairs), {}


def train_per_class(gan: "GAN", data: Any, step: int, loss: str = "nonsaturating") -> dict[str, float]:
    """One update of every class's unconditional pair (one discriminator step, one generator step).

    For each class ``c``: ``x_real = data.batch(step, cls=c)[0]`` (with ``K = 1``: ``data.batch(step)``,
    all images), one fake batch ``G_c(z)`` with ``z ~ N(0, I)`` from the global RNG, used by both
    updates as in the DCGAN reference loop (the discriminator sees it detached), then
    :func:`~medgan_core.train.loop.adversarial_step` with the losses ``get_losses(loss)`` (split into
    the registry's ``accumulate`` micro-batches). The EMA (if any) is updated after the generator steps.

    Args:
        gan: a GAN built by :func:`build_per_class` (``"dcgan"``, ``"simple_gan"``).
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.
        loss: a name of :func:`~medgan_core.losses.get_losses`.

    Returns:
        ``loss_D``, ``loss_G``, ``d_real``, ``d_fake``; with ``K > 1`` each also per class
        (``loss_D_c0``, ...) and the plain names hold the means over classes.
    """
    d_loss, g_loss = get_losses(loss)
    nz, amp = gan.settings["nz"], gan.settings["amp"]
    per_class = isinstance(gan.net_G, nn.ModuleList)
    pairs = list(zip(gan.net_G, gan.net_D)) if per_class else [(gan.net_G, gan.net_D)]
    if per_class and getattr(data, "num_classes", len(pairs)) != len(pairs):
        raise ValueError(f"the per-class {gan.name} has {len(pairs)} pairs but the data {data.num_classes} classes; "
                         "build it with num_classes=data.num_classes.")
    out: dict[str, float] = {}
    for c, (net_G, net_D) in enumerate(pairs):
        x_real = data.batch(step, cls=c)[0] if per_class else data.batch(step)[0]  # `(B, C, S, S)`
        dev = x_real.device
        losses = adversarial_step(net_G, net_D, gan.opt_G, gan.opt_D, x_real, d_loss, g_loss,
                                  sample_z=lambda n: torch.randn(n, nz, device=dev), step=step, amp=amp,
                                  ema=None if per_class else gan.ema, augment=gan.settings.get("augment"),
                                  reuse_fake=True, accumulate=gan.settings["accumulate"])
        if not per_class:
            return losses
        out.update({f"{k}_c{c}": v for k, v in losses.items()})
    for k in ("loss_D", "loss_G", "d_real", "d_fake"):
        out[k] = sum(out[f"{k}_c{c}"] for c in range(len(pairs))) / len(pairs)
    if gan.ema is not None:
        gan.ema.update(gan.net_G)
    return out


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """Seeded networks for :func:`~medgan_core.models.registry.build_gan`: one pair, or one per class.

    :func:`build_per_class` with the DCGAN :func:`generator` and :func:`discriminator`: pair ``c``
    built right after ``torch.manual_seed(seed + c)``.

    Args:
        name: ``"dcgan"``.
        settings: the registry's settings (``num_classes``, ``nz``, ``image_size``, ``channels``,
            ``width_G``, ``width_D``, ``seed``).

    Returns:
        ``(net_G, net_D, extras)`` on the CPU; ``extras`` is empty.
    """
    return build_per_class(name, settings, generator, discriminator)


def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One non-saturating GAN update of every class's pair (:func:`train_per_class`).

    ``loss_D = E[softplus(-D(x))] + E[softplus(D(G(z)))]`` and ``loss_G = E[softplus(-D(G(z)))]``,
    one discriminator and one generator step per class on the class's own batch, one fake batch
    reused by both.

    Args:
        gan: a ``"dcgan"`` GAN.
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.

    Returns:
        ``loss_D``, ``loss_G``, ``d_real``, ``d_fake``; with ``K > 1`` each also per class
        (``loss_D_c0``, ...) and the plain names hold the means over classes.
    """
    return train_per_class(gan, data, step, "nonsaturating")
