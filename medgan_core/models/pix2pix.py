"""pix2pix (Isola et al. 2017, "Image-to-image translation with conditional adversarial networks").

A generator ``G: X -> Y`` learns paired translation (source ``x``, target ``y`` of the same scene);
a conditional discriminator ``D(x, .)`` judges the target given the source. The paper's objective
(binary cross-entropy on logits, ``s`` the sigmoid, ``lambda`` = 100), the paired baseline of CycleGAN:

    L_D = 1/2 [-E[log s(D(x, y))] - E[log(1 - s(D(x, G(x))))]]
    L_G = -E[log s(D(x, G(x)))] + lambda E[|y - G(x)|]

(:func:`~medgan_core.losses.d_nonsaturating`, :func:`~medgan_core.losses.g_nonsaturating`; the
1/2 slows D relative to G, as in the paper). G draws no latent: dropout is its only noise. Adam 2e-4,
betas (0.5, 0.999).

Shapes: :class:`UnetGenerator` `(B, C, H, W)` -> `(B, C, H, W)` in [-1, 1] for ``H`` and ``W``
divisible by ``2**n_down`` (encoder C64-C128-C256-C512-C512-... at ``width = 64``, 4x4 stride-2
convolutions, LeakyReLU 0.2, instance norm except first and innermost; decoder of 4x4 stride-2
transposed convolutions, ReLU, instance norm, dropout 0.5 in the three innermost, each concatenating
the mirrored encoder layer; tanh out). :class:`ConditionalPatchDiscriminator` `(B, C, H, W)` x 2 ->
`(B, 1, H/8 - 2, W/8 - 2)` logits: CycleGAN's 70x70 PatchGAN on the pair stacked as ``2C`` channels.
Built by name through :func:`medgan_core.models.registry.build_gan` (``"pix2pix"``); ``data`` gives
paired batches ``(x, y)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from medgan_core.losses import d_nonsaturating, g_nonsaturating
from medgan_core.models.cyclegan import PatchDiscriminator, decay_schedules
from medgan_core.train.device import amp_context
from medgan_core.train.guard import check_finite
from medgan_core.train.loop import frozen

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NAMES = ("pix2pix",)
BETAS = {"pix2pix": (0.5, 0.999)}
PAPER_LR = {"pix2pix": 2e-4}
LAMBDA_L1 = 100.0  # the paper's L1 weight


class UnetGenerator(nn.Module):
    """pix2pix's U-Net: ``n_down`` stride-2 encoder layers, a mirrored decoder, skips between mirrored layers.

    Args:
        channels: image channels in and out (1: grayscale).
        width: channels of the first convolution (64 in the paper); layer ``i`` has ``width * min(2**i, 8)``.
        n_down: stride-2 layers (8 for 256 px in the paper: the innermost features are 1x1).
        dropout: dropout rate of the three innermost decoder layers (0.5 in the paper; 0: none).
    """

    def __init__(self, channels: int = 1, width: int = 64, n_down: int = 8, dropout: float = 0.5) -> None:
        super().__init__()
        if channels < 1 or width < 1 or n_down < 1:
            raise ValueError(f"need channels >= 1, width >= 1 and n_down >= 1; got {channels}, {width}, {n_down}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) (0.5 in the paper, 0: none), got {dropout}.")
        self.n_down = n_down
        enc = [width * min(2 ** i, 8) for i in range(n_down)]  # encoder channels, outermost first
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        for i in range(n_down):  # down[i]: level i-1 -> level i (half the side)
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(channels if i == 0 else enc[i - 1], enc[i], 4, stride=2, padding=1))
            if 0 < i < n_down - 1:
                layers.append(nn.InstanceNorm2d(enc[i]))
            self.down.append(nn.Sequential(*layers))
        for i in range(n_down):  # up[i]: level i (with its skip) -> level i-1 (double the side)
            c_in = enc[i] if i == n_down - 1 else 2 * enc[i]
            layers = [nn.ReLU(True), nn.ConvTranspose2d(c_in, enc[i - 1] if i else channels, 4, stride=2, padding=1)]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.InstanceNorm2d(enc[i - 1]))
                if dropout > 0 and i >= n_down - 3:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        """Images `(B, C, H, W)` in [-1, 1], ``H`` and ``W`` divisible by ``2**n_down`` -> translations, same shape."""
        k = 2 ** self.n_down
        if x.ndim != 4 or x.shape[-2] % k or x.shape[-1] % k:
            raise ValueError(f"UnetGenerator needs (B, C, H, W) input; H and W must be divisible by 2**n_down = {k}, "
                             f"got {tuple(x.shape)}; crop or pad the images (or patches), or lower n_down.")
        skips = []  # `(B, enc[i], H / 2**(i+1), W / 2**(i+1))`
        h = x
        for down in self.down:
            h = down(h)
            skips.append(h)
        h = self.up[-1](skips[-1])
        for i in range(self.n_down - 2, -1, -1):
            h = self.up[i](torch.cat([h, skips[i]], 1))
        return h


class ConditionalPatchDiscriminator(nn.Module):
    """The conditional 70x70 PatchGAN: :class:`~medgan_core.models.cyclegan.PatchDiscriminator` on ``cat(x, y)``.

    Args:
        channels: channels of one image (the network sees ``2 * channels``).
        width: channels of the first convolution (64 in the paper).
    """

    def __init__(self, channels: int = 1, width: int = 64) -> None:
        super().__init__()
        self.net = PatchDiscriminator(2 * channels, width)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Source `(B, C, H, W)` and target (real or translated), same shape -> logits `(B, 1, H/8 - 2, W/8 - 2)`."""
        if x.shape != y.shape:
            raise ValueError(f"source {tuple(x.shape)} and target {tuple(y.shape)} must have one shape.")
        if x.ndim != 4 or min(x.shape[-2:]) < 24:
            raise ValueError(f"the 70x70 PatchGAN needs (B, C, H, W) with H and W >= 24 (its grid is H/8 - 2), "
                             f"got {tuple(x.shape)}; use larger patches.")
        return self.net(torch.cat([x, y], 1))


def generator(name: str = "pix2pix", *, channels: int = 1, width_G: int = 64, n_down: int = 8) -> UnetGenerator:
    """The pix2pix U-Net generator, by its registry name."""
    return UnetGenerator(channels, width_G, n_down)


def discriminator(name: str = "pix2pix", *, channels: int = 1, width_D: int = 64) -> ConditionalPatchDiscriminator:
    """The pix2pix conditional 70x70 PatchGAN, by its registry name."""
    return ConditionalPatchDiscriminator(channels, width_D)


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """The registry's builder: ``(net_G, net_D, {})`` from ``settings`` (``channels``, ``width_G``, ``width_D``,
    ``n_down``), weights seeded by ``torch.manual_seed(settings["seed"])``."""
    s = settings
    torch.manual_seed(s["seed"])
    net_G = generator(name, channels=s["channels"], width_G=s["width_G"], n_down=s["n_down"])
    return net_G, discriminator(name, channels=s["channels"], width_D=s["width_D"]), {}


def attach(gan: "GAN") -> None:
    """Give a built pix2pix the linearly decaying learning rate of its reference code (constant, then to 0):
    :func:`~medgan_core.models.cyclegan.decay_schedules` over ``lr_constant_steps`` and ``lr_decay_steps``."""
    gan.schedulers = decay_schedules(gan)


def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One pix2pix update: a discriminator step on ``L_D``, then a generator step on ``L_G`` (module docstring).

    ``(x, y) = data.batch(step)``; one forward ``G(x)`` serves both steps (detached for D); D's
    weights are frozen during the generator step. ``lambda = settings["lambda_l1"]`` (default 100).

    Args:
        gan: a ``"pix2pix"`` GAN (``net_G``, ``net_D``, ``opt_G``, ``opt_D``, ``settings``).
        data: paired batches: ``data.batch(step)`` gives source and target `(B, C, p, p)` in [-1, 1].
        step: the 0-based training step.

    Returns:
        ``loss_D``, ``loss_G``, ``loss_G_adv``, ``loss_l1``, ``d_real``, ``d_fake`` (mean logits) and the
        generator's learning rate ``lr`` during the step.
    """
    net_G, net_D, s = gan.net_G, gan.net_D, gan.settings
    lambda_l1, amp = s.get("lambda_l1", LAMBDA_L1), s.get("amp", False)
    x, y = data.batch(step)  # `(B, C, p, p)` each
    with amp_context(x.device, amp):
        y_fake = net_G(x)  # `(B, C, p, p)`, with G's graph
        d_real, d_fake = net_D(x, y).float(), net_D(x, y_fake.detach()).float()
        loss_D = 0.5 * d_nonsaturating(d_real, d_fake)
    check_finite("loss_D", loss_D, step)
    gan.opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    gan.opt_D.step()
    with frozen(net_D), amp_context(x.device, amp):
        loss_G_adv = g_nonsaturating(net_D(x, y_fake).float())
        loss_l1 = (y_fake.float() - y).abs().mean()
        loss_G = loss_G_adv + lambda_l1 * loss_l1
    check_finite("loss_G", loss_G, step)
    gan.opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    gan.opt_G.step()
    lr = gan.opt_G.param_groups[0]["lr"]
    for scheduler in getattr(gan, "schedulers", {}).values():
        scheduler.step()
    return {"loss_D": loss_D.item(), "loss_G": loss_G.item(), "loss_G_adv": loss_G_adv.item(),
            "loss_l1": loss_l1.item(), "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item(), "lr": float(lr)}

