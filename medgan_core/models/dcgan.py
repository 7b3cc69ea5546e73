"""DCGAN (Radford, Metz & Chintala 2016): transposed-convolution generator, strided-conv discriminator.

Objective (non-saturating GAN, ``D`` outputs a logit, ``s`` is the sigmoid):

    loss_D = -E[log s(D(x))] - E[log(1 - s(D(G(z))))],    loss_G = -E[log s(D(G(z)))]

(:func:`medgan_core.losses.get_losses` ``("nonsaturating")``). Experiment 01 trains one
unconditional DCGAN per cell type, as in the write-up.

Shapes, for an image side ``S`` in {16, 32, 64, 128} (a power of two, at least 16):

- :class:`Generator`: ``z`` `(B, nz)` -> 4x4 -> ... -> `(B, C, S, S)` in [-1, 1] (tanh);
  channels ``width * 2^(n-1)`` at 4x4, halved at every doubling (``n = log2(S / 4)``).
- :class:`ConvTrunk`: `(B, C, S, S)` -> `(B, width * 2^(n-1), 4, 4)`: the mirror image, strided
  4x4 convolutions with LeakyReLU(0.2); ``norm`` is ``"batch"`` (DCGAN) or ``"none"`` (critics
  trained with a gradient penalty, where batch norm would couple the samples of a batch).
- :class:`Discriminator`: trunk + a 4x4 convolution -> logits `(B,)`.

The generator and trunk are reused by the conditional WGAN-GP (:mod:`.cgan`) and by BAGAN
(:mod:`.bagan`, whose autoencoder is a trunk encoder plus a generator decoder).
Models are built by name from :data:`MODELS` (``"dcgan"``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

NORMS = ("batch", "none")


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


def build_dcgan(nz: int = 64, image_size: int = 32, channels: int = 3, width_G: int = 32,
                width_D: int = 32) -> tuple[Generator, Discriminator]:
    """Build an unconditional DCGAN pair ``(net_G, net_D)``.

    Args:
        nz: latent size.
        image_size: image side (power of two, >= 16).
        channels: image channels.
        width_G: generator width.
        width_D: discriminator width.
    """
    return Generator(nz, image_size, channels, width_G), Discriminator(image_size, channels, width_D)


MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"dcgan": build_dcgan}


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters.

    Args:
        net: the model.
    """
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@torch.no_grad()
def sample(net_G: nn.Module, n: int, seed: int, batch_size: int = 256) -> Tensor:
    """``n`` images from an unconditional generator with latents drawn from ``seed`` (eval mode).

    Args:
        net_G: a :class:`Generator`.
        n: number of images.
        seed: seed of the latents.
        batch_size: images per forward pass.

    Returns:
        `(n, C, S, S)` in [-1, 1], on the CPU.
    """
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, net_G.nz, generator=gen)  # `(n, nz)`
    device = next(net_G.parameters()).device
    was_training = net_G.training
    net_G.eval()
    out = [net_G(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, n, batch_size)]
    net_G.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, net_G.channels, net_G.image_size, net_G.image_size)
