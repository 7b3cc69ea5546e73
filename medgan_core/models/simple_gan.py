"""The simple convolutional GAN of the write-up: the step before DCGAN (no batch norm, no transposed convs).

Objective (non-saturating GAN, ``D`` outputs a logit, ``s`` is the sigmoid; Goodfellow et al. 2014):

    loss_D = -E[log s(D(x))] - E[log(1 - s(D(G(z))))],    loss_G = -E[log s(D(G(z)))]

(:func:`medgan_core.losses.get_losses` ``("nonsaturating")``), Adam with learning rate 2e-4 and
betas (0.5, 0.999) as for DCGAN. Like DCGAN, with ``num_classes = K > 1`` the registry builds ``K``
independent unconditional pairs (``nn.ModuleList``s, pair ``c`` initialised after
``torch.manual_seed(seed + c)``) and :func:`train_step` updates each on its own class's batch; the
pairing is DCGAN's (:func:`~medgan_core.models.dcgan.build_per_class`,
:func:`~medgan_core.models.dcgan.train_per_class`). Both networks keep PyTorch's default initialisation.

Shapes, for an image side ``S`` in {16, 32, 64, 128} (a power of two, at least 16):

- :class:`Generator`: ``z`` `(B, nz)` -> Linear -> LeakyReLU(0.2) -> `(B, 2 width, S/4, S/4)`
  -> [nearest upsample x2, 3x3 conv, LeakyReLU(0.2)] x 2 -> `(B, width, S, S)`
  -> 3x3 conv, tanh -> `(B, C, S, S)` in [-1, 1]. Channels ``2 width`` -> ``width`` -> ``width``.
- :class:`Discriminator`: `(B, C, S, S)` -> [4x4 stride-2 conv, LeakyReLU(0.2), Dropout(0.3)] x 2
  -> `(B, 2 width, S/4, S/4)` -> flatten, Linear -> logits `(B,)`.

Built by name through :func:`medgan_core.models.registry.build_gan` (``"simple_gan"``), which calls
:func:`build`; :func:`train_step` is one update of every class's pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from medgan_core.models.dcgan import build_per_class, check_image_size, train_per_class

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NAMES = ("simple_gan",)
BETAS = {"simple_gan": (0.5, 0.999)}  # Adam betas, as for DCGAN (Radford et al. 2016)
PAPER_LR = {"simple_gan": 2e-4}  # Adam learning rate of G and D, as for DCGAN (Radford et al. 2016)


def _check_sizes(image_size: int, channels: int, width: int) -> None:
    check_image_size(image_size)
    if width < 1 or channels < 1:
        raise ValueError(f"width and channels must be >= 1, got {width}, {channels}.")


class Generator(nn.Module):
    """Simple generator: ``z`` `(B, nz)` -> images `(B, C, S, S)` in [-1, 1].

    Args:
        nz: latent size.
        image_size: output side ``S`` (power of two, >= 16).
        channels: output channels (3 for RGB).
        width: channels of the last hidden block (the linear layer's map has ``2 width``).
    """

    def __init__(self, nz: int = 64, image_size: int = 32, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        _check_sizes(image_size, channels, width)
        if nz < 1:
            raise ValueError(f"nz must be >= 1, got {nz}.")
        self.nz, self.image_size, self.channels = nz, image_size, channels
        self.start = image_size // 4  # side of the linear layer's map
        self.fc = nn.Sequential(nn.Linear(nz, 2 * width * self.start ** 2), nn.LeakyReLU(0.2, True))
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(2 * width, width, 3, 1, 1), nn.LeakyReLU(0.2, True),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, 1, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        """Images from latents.

        Args:
            z: latents `(B, nz)`.

        Returns:
            `(B, channels, S, S)` in [-1, 1].
        """
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"Generator expects z of shape (B, {self.nz}), got {tuple(z.shape)}.")
        h = self.fc(z).view(z.shape[0], -1, self.start, self.start)  # `(B, 2 width, S/4, S/4)`
        return self.net(h)


class Discriminator(nn.Module):
    """Simple discriminator: images `(B, C, S, S)` -> logits `(B,)`.

    Args:
        image_size: input side ``S`` (power of two, >= 16).
        channels: input channels.
        width: channels of the first convolution (the second has ``2 width``).
        dropout: dropout probability after each convolution.
    """

    def __init__(self, image_size: int = 32, channels: int = 3, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        _check_sizes(image_size, channels, width)
        self.image_size, self.channels = image_size, channels
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True), nn.Dropout(dropout),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2, True), nn.Dropout(dropout))
        self.head = nn.Linear(2 * width * (image_size // 4) ** 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits.

        Args:
            x: images `(B, C, S, S)` in [-1, 1].

        Returns:
            `(B,)` logits (real if large).
        """
        if x.ndim != 4 or x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ValueError(f"expected images (B, {self.channels}, {self.image_size}, {self.image_size}), "
                             f"got {tuple(x.shape)}; resize the crops to image_size first.")
        return self.head(self.net(x).flatten(1)).flatten()  # `(B, 2 width, S/4, S/4)` -> `(B,)`


def generator(name: str = "simple_gan", *, nz: int = 64, image_size: int = 32, channels: int = 3,
              width_G: int = 32) -> Generator:
    """The simple generator, by its registry name.

    Args:
        name: ``"simple_gan"``.
        nz: latent size.
        image_size: image side.
        channels: image channels.
        width_G: generator width.
    """
    return Generator(nz, image_size, channels, width_G)


def discriminator(name: str = "simple_gan", *, image_size: int = 32, channels: int = 3,
                  width_D: int = 32) -> Discriminator:
    """The simple discriminator, by its registry name.

    Args:
        name: ``"simple_gan"``.
        image_size: image side.
        channels: image channels.
        width_D: discriminator width.
    """
    return Discriminator(image_size, channels, width_D)


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """Seeded networks for :func:`~medgan_core.models.registry.build_gan`: one pair, or one per class.

    DCGAN's :func:`~medgan_core.models.dcgan.build_per_class` with this family's networks: pair ``c``
    built right after ``torch.manual_seed(seed + c)``.

    Args:
        name: ``"simple_gan"``.
        settings: the registry's settings (``num_classes``, ``nz``, ``image_size``, ``channels``,
            ``width_G``, ``width_D``, ``seed``).

    Returns:
        ``(net_G, net_D, extras)`` on the CPU; ``extras`` is empty.
    """
    return build_per_class(name, settings, generator, discriminator)


def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One non-saturating GAN update of every class's pair (DCGAN's :func:`~medgan_core.models.dcgan.train_per_class`).

    Args:
        gan: a ``"simple_gan"`` GAN.
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.

    Returns:
        ``loss_D``, ``loss_G``, ``d_real``, ``d_fake``; with ``K > 1`` each also per class
        (``loss_D_c0``, ...) and the plain names hold the means over classes.
    """
    return train_per_class(gan, data, step, "nonsaturating")
