"""CycleGAN (Zhu et al. 2017, "Unpaired image-to-image translation using cycle-consistent adversarial networks").

Two generators translate between image domains X and Y, ``G: X -> Y`` and ``F: Y -> X``, and two
discriminators judge each domain, ``D_Y`` (real ``y`` vs ``G(x)``) and ``D_X`` (real ``x`` vs
``F(y)``). The least-squares objective of the paper (Mao et al. 2017), with the cycle weight
``lambda`` (10) and the identity weight ``lambda_id`` (0.5, relative to ``lambda``):

    L_G = (D_Y(G(x)) - 1)^2 + (D_X(F(y)) - 1)^2
          + lambda (|F(G(x)) - x|_1 + |G(F(y)) - y|_1) + lambda lambda_id (|G(y) - y|_1 + |F(x) - x|_1)
    L_D_Y = 1/2 [(D_Y(y) - 1)^2 + D_Y(pool(G(x)))^2],   L_D_X likewise

(:func:`~medgan_core.losses.d_lsgan`, :func:`~medgan_core.losses.g_lsgan`,
:func:`~medgan_core.losses.cycle_consistency_l1`, :func:`~medgan_core.losses.identity_l1`; the
discriminators see a mix of new and older fakes from an
:class:`~medgan_core.train.image_pool.ImagePool` of 50). Adam 2e-4, betas (0.5, 0.999); the rate
stays constant, then decays linearly to zero (:func:`linear_decay`).

Shapes: :class:`ResnetGenerator` `(B, C, H, W)` -> `(B, C, H, W)` in [-1, 1] for ``H`` and ``W``
divisible by 4 (c7s1-w, d2w, d4w, ``n_blocks`` residual blocks at 4w, u2w, uw, c7s1-C, tanh;
reflection padding, instance norm). :class:`PatchDiscriminator` `(B, C, H, W)` -> `(B, 1, H/8 - 2,
W/8 - 2)` scores (C64-C128-C256-C512 at ``width = 64``, 4x4 kernels, strides 2, 2, 2, 1, then a
stride-1 convolution to one channel): each score sees a 70x70 patch of the input, so a model
trained on patches applies to images of any size.

In the registry (``build_gan("cyclegan", ...)``) ``net_G`` is a ``ModuleDict`` of ``G`` and ``F`` (one
Adam over both, as in the paper's code), ``net_D`` one of ``D_X`` and ``D_Y``; :func:`attach` adds the
two image pools and the learning-rate schedules, and :func:`train_step` draws ``(x, y)`` from a
:class:`~medgan_core.data.patches.PatchPairs` (unpaired patches).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from medgan_core.losses import cycle_consistency_l1, d_lsgan, g_lsgan, identity_l1
from medgan_core.train.device import amp_context
from medgan_core.train.guard import check_finite
from medgan_core.train.image_pool import ImagePool
from medgan_core.train.loop import frozen

NAMES = ("cyclegan",)
BETAS = {"cyclegan": (0.5, 0.999)}
PAPER_LR = {"cyclegan": 2e-4}
LAMBDA_CYCLE = 10.0  # the paper's cycle weight
LAMBDA_ID = 0.5  # the paper's identity weight, relative to LAMBDA_CYCLE
PATCH = 70  # receptive field of one PatchDiscriminator score at n_layers = 3, px


class ResnetBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` at constant width, reflection-padded, instance-normalised."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width), nn.ReLU(True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's generator: two stride-2 downsamplings, ``n_blocks`` residual blocks, two upsamplings.

    Args:
        channels: image channels in and out (1: grayscale).
        width: channels of the first convolution (64 in the paper).
        n_blocks: residual blocks (6 for 128 px in the paper, 9 for 256 px and more).
    """

    def __init__(self, channels: int = 1, width: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        if channels < 1 or width < 1 or n_blocks < 0:
            raise ValueError(f"need channels >= 1, width >= 1 and n_blocks >= 0; got {channels}, {width}, {n_blocks}.")
        w = width
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(channels, w, 7), nn.InstanceNorm2d(w), nn.ReLU(True)]
        for m in (1, 2):  # d2w, d4w
            layers += [nn.Conv2d(w * m, w * 2 * m, 3, stride=2, padding=1), nn.InstanceNorm2d(w * 2 * m), nn.ReLU(True)]
        layers += [ResnetBlock(4 * w) for _ in range(n_blocks)]
        for m in (4, 2):  # u2w, uw
            layers += [nn.ConvTranspose2d(w * m, w * m // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(w * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Images `(B, C, H, W)` in [-1, 1], ``H`` and ``W`` divisible by 4 -> translated images of the same shape."""
        if x.ndim != 4 or x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"ResnetGenerator needs (B, C, H, W) with H and W divisible by 4, got {tuple(x.shape)}; "
                             "crop or pad the images (or patches) to a multiple of 4.")
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """The 70x70 PatchGAN of pix2pix and CycleGAN: a grid of real/fake scores, one per overlapping patch.

    Args:
        channels: image channels.
        width: channels of the first convolution (64 in the paper).
        n_layers: stride-2 convolutions (3: the 70x70 patch).
    """

    def __init__(self, channels: int = 1, width: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        if channels < 1 or width < 1 or n_layers < 1:
            raise ValueError(f"need channels >= 1, width >= 1 and n_layers >= 1; got {channels}, {width}, {n_layers}.")
        act = nn.LeakyReLU(0.2, True)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, stride=2, padding=1), act]
        c = width
        for i in range(1, n_layers + 1):  # stride 2 up to n_layers, then one stride-1 layer
            c_next = width * min(2 ** i, 8)
            layers += [nn.Conv2d(c, c_next, 4, stride=2 if i < n_layers else 1, padding=1), nn.InstanceNorm2d(c_next), act]
            c = c_next
        layers.append(nn.Conv2d(c, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Images `(B, C, H, W)` -> raw least-squares scores `(B, 1, H', W')` (``H' = H/8 - 2`` at ``n_layers = 3``)."""
        return self.net(x)


def linear_decay(step: int, n_constant: int, n_decay: int) -> float:
    """The paper's learning-rate factor: 1 for ``n_constant`` steps, then linearly to 0 over ``n_decay`` steps.

    ``factor(step) = 1 - max(0, step - n_constant) / n_decay``, clipped at 0 (use it with
    ``torch.optim.lr_scheduler.LambdaLR(opt, lambda s: linear_decay(s, n_constant, n_decay))``).

    Args:
        step: the 0-based step (or epoch).
        n_constant: steps at the full rate (the paper: 100 epochs).
        n_decay: steps of the linear decay to zero (the paper: 100 epochs); 0: no decay.
    """
    if n_constant < 0 or n_decay < 0:
        raise ValueError(f"n_constant and n_decay must be >= 0, got {n_constant} and {n_decay}.")
    if step < n_constant or n_decay == 0:
        return 1.0
    return max(0.0, 1.0 - (step - n_constant) / n_decay)


def generator(name: str = "cyclegan", *, channels: int = 1, width_G: int = 64, n_blocks: int = 9) -> ResnetGenerator:
    """One CycleGAN generator, by its registry name."""
    return ResnetGenerator(channels, width_G, n_blocks)


def discriminator(name: str = "cyclegan", *, channels: int = 1, width_D: int = 64) -> PatchDiscriminator:
    """One CycleGAN discriminator (70x70 PatchGAN), by its registry name."""
    return PatchDiscriminator(channels, width_D)


def losses_G(nets: dict[str, nn.Module], x: Tensor, y: Tensor, lambda_cycle: float = LAMBDA_CYCLE,
             lambda_id: float = LAMBDA_ID) -> tuple[Tensor, dict[str, Any]]:
    """The generators' loss ``L_G`` of the module docstring on one batch of each domain.

    Args:
        nets: ``{"G": X -> Y, "F": Y -> X, "D_X": ..., "D_Y": ...}``.
        x: images of domain X `(B, C, H, W)`.
        y: images of domain Y `(B, C, H, W)`.
        lambda_cycle: the cycle weight (10).
        lambda_id: the identity weight relative to ``lambda_cycle`` (0.5; 0: no identity term).

    Returns:
        ``(L_G, terms)``: the loss with its graph, and ``terms`` with every term as a float and the
        translations ``fake_y = G(x)`` and ``fake_x = F(y)`` (with their graphs) for the discriminators.
    """
    fake_y, fake_x = nets["G"](x), nets["F"](y)
    adv = 2.0 * (g_lsgan(nets["D_Y"](fake_y)) + g_lsgan(nets["D_X"](fake_x)))  # g_lsgan is 1/2 E[(D - 1)^2]
    cycle = cycle_consistency_l1(x, nets["F"](fake_y)) + cycle_consistency_l1(y, nets["G"](fake_x))
    ident = (identity_l1(y, nets["G"](y)) + identity_l1(x, nets["F"](x))) if lambda_id > 0 else torch.zeros((), device=x.device)
    loss = adv + lambda_cycle * cycle + lambda_cycle * lambda_id * ident
    return loss, {"loss_G_adv": float(adv.detach()), "loss_cycle": float(cycle.detach()), "loss_identity": float(ident.detach()),
                  "fake_y": fake_y, "fake_x": fake_x}


def losses_D(nets: dict[str, nn.Module], x: Tensor, y: Tensor, fake_x: Tensor, fake_y: Tensor) -> tuple[Tensor, Tensor]:
    """``(L_D_X, L_D_Y)``: each discriminator's least-squares loss on real images and (pooled) fakes, detached."""
    return (d_lsgan(nets["D_X"](x), nets["D_X"](fake_x.detach())), d_lsgan(nets["D_Y"](y), nets["D_Y"](fake_y.detach())))


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """The registry's builder: ``(ModuleDict(G, F), ModuleDict(D_X, D_Y), {})``, weights seeded by ``settings["seed"]``."""
    torch.manual_seed(settings["seed"])
    kw_G = dict(channels=settings["channels"], width_G=settings["width_G"], n_blocks=settings["n_blocks"])
    kw_D = dict(channels=settings["channels"], width_D=settings["width_D"])
    net_G = nn.ModuleDict({"G": generator(name, **kw_G), "F": generator(name, **kw_G)})
    net_D = nn.ModuleDict({"D_X": discriminator(name, **kw_D), "D_Y": discriminator(name, **kw_D)})
    return net_G, net_D, {}


def decay_schedules(gan: Any) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """``{"G": ..., "D": ...}``: both optimisers on :func:`linear_decay` over the settings ``lr_constant_steps``
    and ``lr_decay_steps`` (both 0: a constant rate); the family's ``train_step`` steps them once per step."""
    s = gan.settings
    factor = lambda step: linear_decay(step, int(s["lr_constant_steps"]), int(s["lr_decay_steps"]))  # noqa: E731
    return {k: torch.optim.lr_scheduler.LambdaLR(opt, factor) for k, opt in (("G", gan.opt_G), ("D", gan.opt_D))}


def attach(gan: Any) -> None:
    """Give a built CycleGAN its image pools (``"X"``: fakes of X for ``D_X``, ``"Y"``) and its learning-rate schedules.

    The pools hold ``pool_size`` images each; the schedules are :func:`decay_schedules`.
    """
    s = gan.settings
    gan.pools = {"X": ImagePool(s["pool_size"], seed=s["seed"] + 1), "Y": ImagePool(s["pool_size"], seed=s["seed"] + 2)}
    gan.schedulers = decay_schedules(gan)


def train_step(gan: Any, data: Any, step: int) -> dict[str, float]:
    """One CycleGAN update: the generators on ``L_G``, then both discriminators on pooled fakes, then the schedules.

    Args:
        gan: a ``"cyclegan"`` GAN (:func:`build`, :func:`attach`).
        data: a :class:`~medgan_core.data.patches.PatchPairs`; ``data.batch(step)`` gives ``(x, y)``.
        step: the 0-based training step.

    Returns:
        ``loss_G`` and its terms (``loss_G_adv``, ``loss_cycle``, ``loss_identity``), ``loss_D_X``,
        ``loss_D_Y``, ``loss_D`` (their sum) and the generators' learning rate ``lr``.
    """
    s = gan.settings
    x, y = data.batch(step)
    nets = {**gan.net_G, **gan.net_D}
    with frozen(gan.net_D), amp_context(x.device, s["amp"]):
        loss_G, terms = losses_G(nets, x, y, s["lambda_cycle"], s["lambda_id"])
    check_finite("loss_G", loss_G, step)
    gan.opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    gan.opt_G.step()
    fake_x, fake_y = gan.pools["X"].query(terms["fake_x"].detach()), gan.pools["Y"].query(terms["fake_y"].detach())
    with amp_context(x.device, s["amp"]):
        loss_DX, loss_DY = losses_D(nets, x, y, fake_x, fake_y)
    loss_D = loss_DX + loss_DY  # disjoint parameters: each discriminator gets its own loss's gradient
    check_finite("loss_D", loss_D, step)
    gan.opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    gan.opt_D.step()
    lr = gan.opt_G.param_groups[0]["lr"]
    for scheduler in gan.schedulers.values():
        scheduler.step()
    return {"loss_G": float(loss_G.detach()), **{k: v for k, v in terms.items() if k.startswith("loss_")},
            "loss_D_X": float(loss_DX.detach()), "loss_D_Y": float(loss_DY.detach()), "loss_D": float(loss_D.detach()),
            "lr": float(lr)}
