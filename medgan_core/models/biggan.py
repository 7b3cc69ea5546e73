"""BigGAN (Brock, Donahue & Simonyan 2019) at small scale: a class-conditional GAN with its defining parts.

Objective (hinge loss on raw scores, Lim & Ye 2017; Miyato et al. 2018):

    loss_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z, y), y))],    loss_G = -E[D(G(z, y), y)]

(:func:`medgan_core.losses.get_losses` ``("hinge")``), ``n_critic`` discriminator steps per
generator step (2 in the paper), Adam with betas (0, 0.999) and the paper's two learning rates at
128 px, 1e-4 for G and 4e-4 for D (it used 5e-5 and 2e-4 at 256 and 512 px). The parts that make it BigGAN:

- spectral normalisation (Miyato et al. 2018) of every convolution and linear layer of *both*
  networks (``torch.nn.utils.parametrizations.spectral_norm``; in D also the projection embedding,
  as in the authors' code), and orthogonal initialisation of every conv, linear and embedding weight;
- a shared class embedding ``e(y)`` `(B, shared_dim)` and a hierarchical latent: ``z`` is split into
  ``n + 1`` equal chunks; the first feeds the linear layer to the 4x4 map, chunk ``i + 1``
  concatenated with ``e(y)`` conditions up-block ``i`` (so ``nz`` must be divisible by ``n + 1``);
- conditional batch norm in every residual up-block: ``BN(h) * (1 + W_g c) + W_b c`` with
  ``BN`` without its own affine parameters and ``c = [e(y), z_i]`` the block's conditioning vector;
- one non-local self-attention block (Zhang et al. 2019, SAGAN) in each network, at 32x32 feature
  maps when ``S >= 64`` and at 16x16 otherwise, its output scaled by a learned ``gamma`` that starts at 0;
- a projection discriminator (Miyato & Koyama 2018): ``D(x, y) = w^T h + <e_D(y), h> + b`` with
  ``h`` the ReLU'd features summed over space.

Shapes, for an image side ``S`` in {32, 64, 128} (a power of two, at least 32), ``n = log2(S / 4)``:

- :class:`Generator`: ``z`` `(B, nz)`, ``y`` `(B,)` -> linear -> `(B, width * 2^(n-1), 4, 4)`
  -> ``n`` up-blocks (block ``i`` outputs ``width * 2^(n-1-i)`` channels at twice the side; the
  last has ``width``) with attention after the block that reaches 16 or 32 -> BN, ReLU, 3x3 conv,
  tanh -> `(B, C, S, S)` in [-1, 1].
- :class:`Discriminator`: `(B, C, S, S)`, ``y`` `(B,)` -> ``n`` down-blocks (block ``i`` outputs
  ``width * 2^i`` channels at half the side) with attention after the block that reaches 16 or 32
  -> `(B, width * 2^(n-1), 4, 4)` -> ReLU, sum over space -> `(B, width * 2^(n-1))` -> scores `(B,)`.

Built by name through :func:`medgan_core.models.registry.build_gan` (``"biggan"``), which calls
:func:`build`; :func:`train_step` is one update. Sampling may use the truncation trick
(``sample(..., truncation=t)`` in :mod:`.registry`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from medgan_core.losses import get_losses
from medgan_core.models.cgan import _check_labels
from medgan_core.models.dcgan import check_image_size
from medgan_core.train.loop import adversarial_step

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NAMES = ("biggan",)
BETAS = {"biggan": (0.0, 0.999)}  # Adam betas (Brock et al. 2019)
PAPER_LR = {"biggan": (1e-4, 4e-4)}  # Adam learning rates (G, D) of Brock et al. 2019 at 128 px (5e-5, 2e-4 at 256 and 512 px)

_Layer = TypeVar("_Layer", nn.Conv2d, nn.Linear, nn.Embedding)


def ortho_sn(layer: _Layer) -> _Layer:
    """Orthogonal initialisation of ``layer.weight``, then spectral normalisation of it.

    Args:
        layer: a convolution, linear layer or embedding (modified in place and returned).
    """
    nn.init.orthogonal_(layer.weight)
    return spectral_norm(layer)


def attention_resolution(image_size: int) -> int:
    """The side of the feature maps that carry the self-attention block: 32 if ``image_size >= 64``, else 16.

    Args:
        image_size: the image side ``S`` (a power of two, at least 32).
    """
    check_image_size(image_size)
    if image_size < 32:
        raise ValueError(f"biggan needs image_size >= 32 (its discriminator's attention sits on 16x16 feature maps "
                         f"after the first down-block), got {image_size}.")
    return 32 if image_size >= 64 else 16


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias come from a conditioning vector: ``BN(x) * (1 + W_g c) + W_b c``.

    Args:
        num_features: channels ``C`` of ``x``.
        cond_dim: size of the conditioning vector ``c``.
    """

    def __init__(self, num_features: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, affine=False)
        self.gain = ortho_sn(nn.Linear(cond_dim, num_features, bias=False))
        self.bias = ortho_sn(nn.Linear(cond_dim, num_features, bias=False))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """Normalised, class-modulated features.

        Args:
            x: features `(B, C, H, W)`.
            cond: conditioning vectors `(B, cond_dim)`.

        Returns:
            `(B, C, H, W)`.
        """
        gain = 1 + self.gain(cond)[:, :, None, None]  # `(B, C, 1, 1)`
        return self.bn(x) * gain + self.bias(cond)[:, :, None, None]


class SelfAttention(nn.Module):
    """Non-local self-attention (SAGAN; BigGAN's ``Attention``): ``x + gamma * o(softmax(q^T k) v)``.

    Query and key are 1x1 convolutions to ``C / 8`` channels, the value to ``C / 2``; keys and values
    are max-pooled 2x2 (as in BigGAN), the output 1x1 convolution maps back to ``C``; ``gamma`` starts at 0.

    Args:
        ch: channels ``C`` of the feature maps.
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.ch_qk, self.ch_v = max(ch // 8, 1), max(ch // 2, 1)
        self.query = ortho_sn(nn.Conv2d(ch, self.ch_qk, 1, bias=False))
        self.key = ortho_sn(nn.Conv2d(ch, self.ch_qk, 1, bias=False))
        self.value = ortho_sn(nn.Conv2d(ch, self.ch_v, 1, bias=False))
        self.out = ortho_sn(nn.Conv2d(self.ch_v, ch, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        """Features with attention added.

        Args:
            x: features `(B, C, H, W)`, ``H`` and ``W`` even.

        Returns:
            `(B, C, H, W)`.
        """
        b, _, h, w = x.shape
        q = self.query(x).flatten(2)  # `(B, C/8, HW)`
        k = F.max_pool2d(self.key(x), 2).flatten(2)  # `(B, C/8, HW/4)`
        v = F.max_pool2d(self.value(x), 2).flatten(2)  # `(B, C/2, HW/4)`
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # `(B, HW, HW/4)`
        o = (v @ attn.transpose(1, 2)).view(b, self.ch_v, h, w)  # `(B, C/2, H, W)`
        return x + self.gamma * self.out(o)


class GBlock(nn.Module):
    """Residual up-block: ``BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3`` plus an upsampled 1x1-conv skip.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        cond_dim: size of the conditioning vector of both conditional batch norms.
    """

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_ch, cond_dim)
        self.conv1 = ortho_sn(nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.bn2 = ConditionalBatchNorm2d(out_ch, cond_dim)
        self.conv2 = ortho_sn(nn.Conv2d(out_ch, out_ch, 3, 1, 1))
        self.skip = ortho_sn(nn.Conv2d(in_ch, out_ch, 1))

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """Twice the side.

        Args:
            x: features `(B, in_ch, H, W)`.
            cond: conditioning vectors `(B, cond_dim)`.

        Returns:
            `(B, out_ch, 2H, 2W)`.
        """
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Residual down-block: ``ReLU-conv3x3-ReLU-conv3x3-avgpool`` plus a 1x1-conv, avg-pooled skip.

    As in BigGAN's code, the first block (on the image) has no leading ReLU and pools its skip
    before the 1x1 convolution.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        preactivation: apply ReLU to the input first (every block but the first).
    """

    def __init__(self, in_ch: int, out_ch: int, preactivation: bool = True) -> None:
        super().__init__()
        self.preactivation = preactivation
        self.conv1 = ortho_sn(nn.Conv2d(in_ch, out_ch, 3, 1, 1))
        self.conv2 = ortho_sn(nn.Conv2d(out_ch, out_ch, 3, 1, 1))
        self.skip = ortho_sn(nn.Conv2d(in_ch, out_ch, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Half the side.

        Args:
            x: features `(B, in_ch, H, W)`.

        Returns:
            `(B, out_ch, H/2, W/2)`.
        """
        h = F.relu(x) if self.preactivation else x
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        s = F.avg_pool2d(self.skip(x), 2) if self.preactivation else self.skip(F.avg_pool2d(x, 2))
        return h + s


class Generator(nn.Module):
    """BigGAN generator: ``z`` `(B, nz)`, ``y`` `(B,)` -> images `(B, C, S, S)` in [-1, 1].

    Args:
        num_classes: number of classes ``K``.
        nz: latent size, divisible by ``n + 1`` (``n = log2(S / 4)`` up-blocks).
        image_size: output side ``S`` (power of two, >= 32).
        channels: output channels.
        width: channels of the last up-block (``width * 2^(n-1)`` at 4x4).
        shared_dim: size of the shared class embedding.
    """

    def __init__(self, num_classes: int, nz: int = 120, image_size: int = 32, channels: int = 3, width: int = 32,
                 shared_dim: int = 128) -> None:
        super().__init__()
        attn_res = attention_resolution(image_size)
        n = check_image_size(image_size)
        if num_classes < 1 or width < 1 or channels < 1 or shared_dim < 1:
            raise ValueError(f"num_classes, width, channels and shared_dim must be >= 1, got {num_classes}, {width}, "
                             f"{channels}, {shared_dim}.")
        if nz < n + 1 or nz % (n + 1):
            raise ValueError(f"nz must be divisible by n_blocks + 1 = {n + 1} at image_size {image_size} (the "
                             f"hierarchical latent has one chunk for the 4x4 map and one per up-block), got nz={nz}; "
                             f"use e.g. nz={max(n + 1, nz - nz % (n + 1))}.")
        self.num_classes, self.nz, self.image_size, self.channels = num_classes, nz, image_size, channels
        self.chunk = nz // (n + 1)
        out_chs = [width * 2 ** (n - 1 - i) for i in range(n)]  # block i's output channels; the last is `width`
        in_chs = [out_chs[0]] + out_chs[:-1]
        self.top = out_chs[0]  # channels at 4x4
        self.shared = nn.Embedding(num_classes, shared_dim)
        nn.init.orthogonal_(self.shared.weight)
        self.linear = ortho_sn(nn.Linear(self.chunk, 16 * self.top))
        self.blocks = nn.ModuleList(GBlock(i, o, shared_dim + self.chunk) for i, o in zip(in_chs, out_chs))
        self.attn_after = int(math.log2(attn_res // 4)) - 1  # the block whose output side is attn_res
        self.attention = SelfAttention(out_chs[self.attn_after])
        self.out = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), ortho_sn(nn.Conv2d(width, channels, 3, 1, 1)),
                                 nn.Tanh())

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        """Images of the classes ``y``.

        Args:
            z: latents `(B, nz)`.
            y: class labels `(B,)` int64.

        Returns:
            `(B, C, S, S)` in [-1, 1].
        """
        if z.ndim != 2 or z.shape[1] != self.nz:
            raise ValueError(f"Generator expects z of shape (B, {self.nz}), got {tuple(z.shape)}.")
        _check_labels(y, z.shape[0], self.num_classes)
        zs = z.split(self.chunk, dim=1)  # n + 1 chunks `(B, nz / (n + 1))`
        e = self.shared(y)  # `(B, shared_dim)`
        h = self.linear(zs[0]).view(z.shape[0], self.top, 4, 4)  # `(B, top, 4, 4)`
        for i, block in enumerate(self.blocks):
            h = block(h, torch.cat([e, zs[i + 1]], dim=1))  # `(B, out_chs[i], 2^(i+3), 2^(i+3))`
            if i == self.attn_after:
                h = self.attention(h)
        return self.out(h)


class Discriminator(nn.Module):
    """BigGAN projection discriminator: images `(B, C, S, S)`, ``y`` `(B,)` -> scores `(B,)`.

    Args:
        num_classes: number of classes ``K``.
        image_size: input side ``S`` (power of two, >= 32).
        channels: input channels.
        width: channels of the first down-block (``width * 2^(n-1)`` at 4x4).
    """

    def __init__(self, num_classes: int, image_size: int = 32, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        attn_res = attention_resolution(image_size)
        n = check_image_size(image_size)
        if num_classes < 1 or width < 1 or channels < 1:
            raise ValueError(f"num_classes, width and channels must be >= 1, got {num_classes}, {width}, {channels}.")
        self.num_classes, self.image_size, self.channels = num_classes, image_size, channels
        out_chs = [width * 2 ** i for i in range(n)]
        in_chs = [channels] + out_chs[:-1]
        self.blocks = nn.ModuleList(DBlock(i, o, preactivation=k > 0) for k, (i, o) in enumerate(zip(in_chs, out_chs)))
        self.attn_after = int(math.log2(image_size // attn_res)) - 1  # the block whose output side is attn_res
        self.attention = SelfAttention(out_chs[self.attn_after])
        self.linear = ortho_sn(nn.Linear(out_chs[-1], 1))
        self.embed = ortho_sn(nn.Embedding(num_classes, out_chs[-1]))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Scores.

        Args:
            x: images `(B, C, S, S)` in [-1, 1].
            y: class labels `(B,)` int64.

        Returns:
            `(B,)` scores (higher = more real for class ``y``).
        """
        if x.ndim != 4 or x.shape[1:] != (self.channels, self.image_size, self.image_size):
            raise ValueError(f"expected images (B, {self.channels}, {self.image_size}, {self.image_size}), "
                             f"got {tuple(x.shape)}; resize the crops to image_size first.")
        _check_labels(y, x.shape[0], self.num_classes)
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)  # `(B, out_chs[i], S / 2^(i+1), S / 2^(i+1))`
            if i == self.attn_after:
                h = self.attention(h)
        h = F.relu(h).sum(dim=(2, 3))  # `(B, top)`: global sum pooling
        return self.linear(h).flatten() + (self.embed(y) * h).sum(dim=1)  # `(B,)`: w^T h + b + <e_D(y), h>


def generator(name: str = "biggan", *, num_classes: int, nz: int = 120, image_size: int = 32, channels: int = 3,
              width_G: int = 32, shared_dim: int = 128) -> Generator:
    """The BigGAN generator, by its registry name.

    Args:
        name: ``"biggan"``.
        num_classes: number of classes.
        nz: latent size (divisible by ``log2(image_size / 4) + 1``).
        image_size: image side (>= 32).
        channels: image channels.
        width_G: generator width (channels of the last up-block).
        shared_dim: size of the shared class embedding.
    """
    return Generator(num_classes, nz, image_size, channels, width_G, shared_dim)


def discriminator(name: str = "biggan", *, num_classes: int, image_size: int = 32, channels: int = 3,
                  width_D: int = 32) -> Discriminator:
    """The BigGAN discriminator, by its registry name.

    Args:
        name: ``"biggan"``.
        num_classes: number of classes.
        image_size: image side (>= 32).
        channels: image channels.
        width_D: discriminator width (channels of the first down-block).
    """
    return Discriminator(num_classes, image_size, channels, width_D)


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """Seeded networks for :func:`~medgan_core.models.registry.build_gan`: ``torch.manual_seed(seed)``, then G and D.

    Args:
        name: ``"biggan"``.
        settings: the registry's settings (``num_classes``, ``nz``, ``image_size``, ``channels``,
            ``width_G``, ``width_D``, ``seed``).

    Returns:
        ``(net_G, net_D, extras)`` on the CPU; ``extras`` is empty.
    """
    s = settings
    torch.manual_seed(s["seed"])
    net_G = generator(name, num_classes=s["num_classes"], nz=s["nz"], image_size=s["image_size"],
                      channels=s["channels"], width_G=s["width_G"])
    net_D = discriminator(name, num_classes=s["num_classes"], image_size=s["image_size"], channels=s["channels"],
                          width_D=s["width_D"])
    return net_G, net_D, {}


def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One BigGAN update: ``n_critic`` hinge discriminator steps on the same real batch, one generator step.

    ``(x, y) = data.batch(step)``; fakes ``G(z, y)`` of the batch's own classes with a fresh
    ``z ~ N(0, I)`` (global RNG) at every step; ``loss_D = E[max(0, 1 - D(x, y))] + E[max(0, 1 + D(G(z, y), y))]``,
    ``loss_G = -E[D(G(z, y), y)]`` (:func:`~medgan_core.train.loop.adversarial_step`, with the
    registry's ``augment``). The EMA (if any) follows the generator step.

    Args:
        gan: a ``"biggan"`` GAN.
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.

    Returns:
        ``loss_D``, ``loss_G``, ``d_real``, ``d_fake``.
    """
    d_loss, g_loss = get_losses("hinge")
    s, net_G = gan.settings, gan.net_G
    x_real, y_real = data.batch(step)  # `(B, C, S, S)`, `(B,)`
    dev = x_real.device
    return adversarial_step(net_G, gan.net_D, gan.opt_G, gan.opt_D, x_real, d_loss, g_loss,
                            make_fake=lambda n: net_G(torch.randn(n, s["nz"], device=dev), y_real), cond=(y_real,),
                            n_critic=s["n_critic"], ema=gan.ema, step=step, amp=s["amp"], augment=s.get("augment"),
                            accumulate=s["accumulate"])
