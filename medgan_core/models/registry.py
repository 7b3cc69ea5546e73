"""One registry of GAN families: build a GAN by name, train it with its family's step, sample it.

    gan = build_gan("cwgan_gp", num_classes=4, image_size=32, width_G=32, width_D=32, n_critic=2, seed=0)
    losses = gan.train_step(data, step)     # the family's update: models/cgan.py's train_step
    x = gan.sample(cls=1, n=16, seed=0)     # `(16, C, S, S)` in [-1, 1]

The names are the names in ``params/*.yaml`` (CycleGAN's ``define_G``/``define_D``; StudioGAN's
``d_losses[adv_loss]``). Each family's file owns its networks, its builder (``build``, which seeds
the weights with ``torch.manual_seed``; ``generator``/``discriminator`` build one network, which
:func:`define_G`/:func:`define_D` call), its Adam betas (``BETAS``) and its ``train_step``:

| name                 | file                | what it is                                              | Adam betas   | paper lr |
|----------------------|---------------------|---------------------------------------------------------|--------------|----------|
| `dcgan`              | :mod:`.dcgan`       | DCGAN; with ``num_classes = K > 1`` one DCGAN per class | (0.5, 0.999) | 2e-4     |
| `cwgan_gp`           | :mod:`.cgan`        | conditional WGAN-GP                                     | (0.5, 0.9)   | 1e-4     |
| `bagan_autoencoder`  | :mod:`.bagan`       | BAGAN stage 1: the autoencoder (``net_D`` is ``None``)  | (0.5, 0.999) | 5e-5     |
| `bagan`              | :mod:`.bagan`       | BAGAN (needs ``autoencoder=`` and ``latent=``)          | (0.5, 0.999) | 5e-5     |
| `bagan_gp`           | :mod:`.bagan`       | BAGAN-GP (needs ``autoencoder=`` and ``latent=``)       | (0.5, 0.9)   | 2e-4     |
| `sqaggan`            | :mod:`.sqaggan`     | SQ-AGGAN (``num_features``, ``lam``, ``grad_checkpoint``) | (0.5, 0.9) | 1e-4     |
| `sqaggan_no_lstm`    | :mod:`.sqaggan`     | its ablation without the Bi-ConvLSTMs                   | (0.5, 0.9)   | 1e-4     |
| `simple_gan`         | :mod:`.simple_gan`  | the simple conv GAN before DCGAN; per class like DCGAN  | (0.5, 0.999) | 2e-4     |
| `biggan`             | :mod:`.biggan`      | BigGAN (class-conditional, hinge; truncation at sampling) | (0.0, 0.999) | G 1e-4, D 4e-4 |
| `feature_gan`        | :mod:`.feature_gan` | class-conditional GAN over CNN feature maps (``channels``, ``image_size`` of the map) | (0.5, 0.999) | G 1e-3, D 1e-4 (write-up) |
| `cyclegan`           | :mod:`.cyclegan`    | unpaired translation X <-> Y (``net_G``: G and F, ``net_D``: D_X and D_Y) | (0.5, 0.999) | 2e-4 |
| `pix2pix`            | :mod:`.pix2pix`     | paired translation X -> Y (U-Net, conditional PatchGAN, L1) | (0.5, 0.999) | 2e-4 |

The learning rates (``PAPER_LR`` of each family file, where the source is named: one value for
both networks, or a ``(lr_G, lr_D)`` pair) are used when ``lr_G``/``lr_D`` are 0. The small-data
recipe adds named options to every image family, each keeping the family's objective: ``diffaug`` (differentiable augmentation of everything the
discriminator sees), ``ema_decay`` (an averaged generator for sampling; its batch-norm statistics
recomputed from its own outputs, ``ema_batchnorm="recompute"``) and ``spectral_norm`` (spectral
normalisation of every convolution and linear layer of the discriminator, Miyato et al. 2018;
layers the family already normalises, as BigGAN's, are left as they are).

``accumulate = k`` (gradient accumulation) splits every discriminator and generator update of the
families whose step is :func:`~medgan_core.train.loop.adversarial_step` (:data:`ACCUMULATING`)
into ``k`` micro-batches and steps once, to reach an effective batch the memory would not hold at
once; the others refuse it. To train on several processes (``torchrun``), see
:mod:`medgan_core.train.distributed`.

:func:`sample` is the one sampler of the image GANs: latents ``z ~ N(0, I)`` from
``torch.Generator().manual_seed(seed)`` (BAGAN: ``c ~ N(mu_cls, Sigma_cls)`` from the same
generator), the generator in eval mode, in batches; so one seed gives the same images wherever
it is used. ``truncation=t`` draws ``z`` from the normal truncated to ``[-t, t]`` (BigGAN's
truncation trick, :func:`truncated_normal`): fidelity for variety. The translation families
(``cyclegan``, ``pix2pix``) draw no latents: their ``data`` is a
:class:`~medgan_core.data.patches.PatchPairs`, and :func:`~medgan_core.models.tiling.translate` (whole
images) or :func:`~medgan_core.models.tiling.tiled_translate` (tiles) runs their generators.
A family may define ``attach(gan)``, called once the optimisers exist, to add the image pools and
learning-rate schedulers that :func:`~medgan_core.train.trainer.train_gan` checkpoints and resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from medgan_core.data.augment import DiffAugment
from medgan_core.losses import Lambdas
from medgan_core.models import bagan, biggan, cgan, cyclegan, dcgan, feature_gan, pix2pix, simple_gan, sqaggan
from medgan_core.train.ema import EMA
from medgan_core.train.loop import check_accumulate

FAMILIES: dict[str, ModuleType] = {name: family for family in (dcgan, cgan, bagan, sqaggan, simple_gan, biggan, feature_gan,
                                                                    cyclegan, pix2pix)
                                   for name in family.NAMES}
GAN_NAMES: tuple[str, ...] = tuple(FAMILIES)
# settings only some families take, with their defaults
FAMILY_SETTINGS: dict[str, dict[str, Any]] = {
    "sqaggan": {"num_features": None, "lam": Lambdas(), "grad_checkpoint": False},
    "sqaggan_no_lstm": {"num_features": None, "lam": Lambdas(), "grad_checkpoint": False},
    "bagan": {"critic_start": "encoder"},
    "bagan_gp": {"critic_start": "encoder"},
    "feature_gan": {"r1_weight": 0.0},
    "cyclegan": {"n_blocks": 9, "lambda_cycle": cyclegan.LAMBDA_CYCLE, "lambda_id": cyclegan.LAMBDA_ID,
                 "pool_size": 50, "lr_constant_steps": 0, "lr_decay_steps": 0},
    "pix2pix": {"n_down": 8, "lambda_l1": pix2pix.LAMBDA_L1, "lr_constant_steps": 0, "lr_decay_steps": 0},
}
_NOT_SAMPLERS = ("bagan_autoencoder", "sqaggan", "sqaggan_no_lstm", "cyclegan", "pix2pix")
# the families whose step is adversarial_step, and so can split it into micro-batches (``accumulate``)
ACCUMULATING: tuple[str, ...] = ("dcgan", "simple_gan", "cwgan_gp", "bagan_gp", "biggan", "feature_gan")


def _family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise ValueError(f"Unknown GAN {name!r}; valid names: {list(GAN_NAMES)}.")
    return FAMILIES[name]


@dataclass
class GAN:
    """A built GAN: its networks, optimisers, settings, and how to train and sample it.

    Args:
        name: the registry name, e.g. ``"dcgan"``.
        net_G: the generator (per-class DCGAN: an ``nn.ModuleList``; ``bagan_autoencoder``: the autoencoder).
        net_D: the discriminator (``None`` for ``bagan_autoencoder``).
        opt_G: Adam over ``net_G``.
        opt_D: Adam over ``net_D`` (``None`` without one).
        num_classes: classes it generates (1 = unconditional).
        settings: what the family's step needs (``nz``, ``n_critic``, ``gp_weight``, ``amp``, ``lam``, ...).
        extras: modules checkpointed with the networks (BAGAN's ``"latent"``).
        ema: an EMA of ``net_G`` when ``ema_decay > 0``; sampling then uses the averaged weights.
        extra_opts: optimisers of ``extras`` trained in the family's step, checkpointed with ``opt_G``
            and ``opt_D`` (the feature GAN's classifier head, :func:`~medgan_core.models.feature_gan.attach_head`).
        pools: image pools the family's step draws from, checkpointed (CycleGAN's ``"X"`` and ``"Y"``).
        schedulers: learning-rate schedulers the family's step advances, checkpointed (CycleGAN's linear decay).
    """

    name: str
    net_G: nn.Module
    net_D: nn.Module | None
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer | None
    num_classes: int
    settings: dict[str, Any]
    extras: dict[str, nn.Module] = field(default_factory=dict)
    ema: EMA | None = None
    extra_opts: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    pools: dict[str, Any] = field(default_factory=dict)
    schedulers: dict[str, Any] = field(default_factory=dict)

    @property
    def draws_latents(self) -> bool:
        """Whether :meth:`sample` works: the GAN maps latents to images (not the autoencoder, SQ-AGGAN or a translator)."""
        return self.name not in _NOT_SAMPLERS

    def train_step(self, data: Any, step: int) -> dict[str, float]:
        """One training step of this GAN's family (``FAMILIES[name].train_step``).

        Args:
            data: batches by step (:class:`~medgan_core.train.trainer.ImageBatches`, or
                :class:`~medgan_core.data.nodule_sequences.NoduleBatches` for SQ-AGGAN).
            step: the 0-based training step.

        Returns:
            The step's losses as floats.
        """
        return _family(self.name).train_step(self, data, step)

    def refresh_ema(self, n: int = 256, batches: int = 4, seed: int = 0) -> None:
        """Recompute the EMA generator's batch-norm statistics from its own outputs (see :func:`refresh_batchnorm`).

        A no-op without an EMA, without batch norm, or with ``ema_batchnorm="copy"`` (the EMA then
        keeps the live generator's running statistics, which belong to other weights). A
        class-conditional generator whose batch norms every class shares (``cwgan_gp``, ``biggan``)
        gets one average over every class's passes; per-class generators (``nn.ModuleList``) and
        BAGAN are refreshed class by class.

        Args:
            n: latents per forward pass and class.
            batches: forward passes per class.
            seed: seed of the latents.
        """
        if self.ema is None or self.settings.get("ema_batchnorm") != "recompute" or self.name in _NOT_SAMPLERS:
            return
        net_G, latent = self.ema.module, self.extras.get("latent")
        if latent is None and not isinstance(net_G, nn.ModuleList) and hasattr(net_G, "num_classes"):
            refresh_batchnorm(net_G, n, batches, seed, cls=list(range(self.num_classes)))
            return
        for cls in range(self.num_classes):
            refresh_batchnorm(net_G, n, batches, seed, cls=cls if self.num_classes > 1 else None, latent=latent)

    def sample(self, cls: int, n: int, seed: int, truncation: float | None = None) -> Tensor:
        """``n`` images of class ``cls`` (see :func:`sample`), from the EMA weights if there are any.

        Args:
            cls: class index in ``0..num_classes-1`` (0 for an unconditional GAN).
            n: number of images.
            seed: seed of the latents.
            truncation: the truncation threshold ``t > 0`` of the latents (``None``: none; not for BAGAN).

        Returns:
            `(n, C, S, S)` in [-1, 1], on the CPU.
        """
        if self.name in _NOT_SAMPLERS:
            raise ValueError(f"{self.name} does not sample from latents: use bagan.fit_latent and build 'bagan' "
                             "for the autoencoder, sqaggan.generate for SQ-AGGAN, tiling.translate (or tiled_translate) "
                             "for the translators.")
        if not 0 <= int(cls) < self.num_classes:
            raise ValueError(f"{self.name}: class {cls} is outside 0..{self.num_classes - 1}.")
        net_G = self.ema.module if self.ema is not None else self.net_G
        latent = self.extras.get("latent")
        takes_cls = latent is not None or isinstance(net_G, nn.ModuleList) or hasattr(net_G, "num_classes")
        return sample(net_G, n, seed, cls=int(cls) if takes_cls else None, latent=latent, truncation=truncation)


@torch.no_grad()
def refresh_batchnorm(net_G: nn.Module, n: int, batches: int, seed: int, cls: int | list[int] | None = None,
                      latent: nn.Module | None = None) -> None:
    """Replace a generator's batch-norm running statistics by the exact mean over its own outputs.

    An EMA generator's averaged weights produce activations with other means and variances than
    the live generator whose running statistics it would otherwise copy; so the statistics are reset
    and recomputed (``momentum=None``: a cumulative average) over ``batches`` forward passes of
    ``n`` latents in train mode, then the generator goes back to eval mode. For per-class
    generators (an ``nn.ModuleList``) only class ``cls``'s generator is refreshed. For a
    class-conditional generator whose batch norms all classes share, ``cls`` may be a list of
    classes: the statistics are reset once and averaged over ``batches`` passes of each.

    Args:
        net_G: the generator (or a per-class ``nn.ModuleList``).
        n: latents per forward pass.
        batches: forward passes (per class).
        seed: seed of the first pass's latents (pass ``i`` uses ``seed + i``, for every class).
        cls: the class (``None`` for an unconditional generator), or a list of classes of a
            conditional generator (one with a ``num_classes`` attribute).
        latent: BAGAN's fitted class latent.
    """
    several = isinstance(cls, (list, tuple, range))
    classes = list(cls) if several else [cls]
    if several and (isinstance(net_G, nn.ModuleList) or latent is not None or not hasattr(net_G, "num_classes")):
        raise ValueError("a list of classes (cls=) is for one class-conditional generator whose batch norms every "
                         "class shares; refresh per-class generators and BAGAN one class at a time.")
    if several and not classes:
        raise ValueError("cls is an empty list: pass at least one class.")
    target = net_G[int(cls)] if isinstance(net_G, nn.ModuleList) and cls is not None else net_G
    norms = [m for m in target.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    try:
        for c in classes:
            for i in range(int(batches)):
                sample(net_G, n, seed + i, cls=c, latent=latent, batch_size=n, train_mode=True)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum


def define_G(name: str, **kw: Any) -> nn.Module:
    """The generator network of ``name`` (no optimiser, no seeding): the family's ``generator``.

    Args:
        name: one of :data:`GAN_NAMES`.
        **kw: the family's network settings (e.g. ``nz``, ``image_size``, ``channels``, ``width_G``;
            ``num_classes`` for ``cwgan_gp``; ``autoencoder`` for BAGAN; ``num_features`` for SQ-AGGAN).
    """
    return _family(name).generator(name, **kw)


def define_D(name: str, **kw: Any) -> nn.Module:
    """The discriminator network of ``name`` (no optimiser, no seeding): the family's ``discriminator``.

    Args:
        name: one of :data:`GAN_NAMES` (``bagan_autoencoder`` has none).
        **kw: the family's network settings (e.g. ``image_size``, ``channels``, ``width_D``).
    """
    return _family(name).discriminator(name, **kw)


def build_gan(name: str, *, num_classes: int = 1, image_size: int = 32, channels: int = 3, nz: int = 64,
              width_G: int = 32, width_D: int = 32, lr_G: float = 0.0, lr_D: float = 0.0, n_critic: int = 1,
              accumulate: int = 1, gp_weight: float = 10.0, ema_decay: float = 0.0, ema_batchnorm: str = "recompute",
              seed: int = 0, device: str | torch.device = "cpu", amp: bool = False, diffaug: bool = False,
              spectral_norm: bool = False, autoencoder: nn.Module | None = None,
              latent: nn.Module | None = None, **family_kw: Any) -> GAN:
    """Build a GAN by name: seeded networks (as the family's ``build`` does), Adam optimisers, settings.

    Args:
        name: one of :data:`GAN_NAMES`.
        num_classes: classes to generate (``dcgan``, ``simple_gan``: ``K > 1`` builds one pair per class).
        image_size: image side ``S`` (a power of two >= 16; ``biggan``: >= 32; SQ-AGGAN: unused).
        channels: image channels.
        nz: latent (BAGAN: code) size (``biggan``: divisible by ``log2(S / 4) + 1``, e.g. 120).
        width_G: generator width (SQ-AGGAN: base width of G; BAGAN autoencoder: decoder width).
        width_D: discriminator width (BAGAN autoencoder: encoder width).
        lr_G: Adam learning rate of ``net_G`` (of the autoencoder for ``bagan_autoencoder``); 0: the
            family's paper value (``PAPER_LR``, table above; ``biggan``: 5e-5).
        lr_D: Adam learning rate of ``net_D``; 0: the family's paper value (``biggan``: 2e-4).
        n_critic: critic steps per generator step (WGAN-GP families, SQ-AGGAN and BigGAN, whose paper uses 2).
        accumulate: micro-batches per update, each back-propagated before one optimiser step
            (gradient accumulation; 1: none). Only for :data:`ACCUMULATING` (the families whose step is
            :func:`~medgan_core.train.loop.adversarial_step`); it must divide the batch size. The update
            equals the one on the whole batch (to float rounding) unless the discriminator has batch norm
            (``dcgan``, ``simple_gan``: each micro-batch is normalised on its own) or spectral
            normalisation (``biggan``, ``spectral_norm``: one power iteration per micro-batch).
        gp_weight: gradient-penalty weight (WGAN-GP families; SQ-AGGAN uses ``lam.gp``).
        ema_decay: decay of an EMA of ``net_G`` (0: none).
        ema_batchnorm: ``"recompute"``: the EMA generator's batch-norm statistics are recomputed from
            its own outputs before it is evaluated or sampled (:meth:`GAN.refresh_ema`); ``"copy"``:
            it keeps the live generator's (measured against each other in experiment 01).
        seed: seeds the weights (``torch.manual_seed``; per-class DCGAN pair ``c``: ``seed + c``).
        device: where the networks live.
        amp: bf16 autocast on CUDA (a no-op on CPU).
        diffaug: differentiable augmentation (:class:`~medgan_core.data.augment.DiffAugment`: colour,
            translation, cutout) of every image the discriminator sees (image GANs; the paper's
            objective is unchanged).
        spectral_norm: spectral normalisation of every convolution and linear layer of ``net_D``
            (Miyato et al. 2018; image GANs); layers that already carry a parametrization of their
            weight (BigGAN's, spectrally normalised by the family) are skipped.
        autoencoder: ``bagan``/``bagan_gp``: the trained :class:`~medgan_core.models.bagan.Autoencoder`.
        latent: ``bagan``/``bagan_gp``: the fitted :class:`~medgan_core.models.bagan.ClassLatent`.
        **family_kw: SQ-AGGAN: ``num_features`` (length of ``f``), ``lam``
            (:class:`~medgan_core.losses.Lambdas`), ``grad_checkpoint``; BAGAN and BAGAN-GP:
            ``critic_start`` (``"encoder"`` or ``"fresh"``, :func:`~medgan_core.models.bagan.discriminator`);
            ``feature_gan``: ``r1_weight`` (the R1 penalty's ``gamma``, :func:`~medgan_core.losses.r1_penalty`);
            ``cyclegan``: ``n_blocks``, ``lambda_cycle``, ``lambda_id``, ``pool_size``, ``lr_constant_steps``
            and ``lr_decay_steps`` (:func:`~medgan_core.models.cyclegan.linear_decay`; both 0: a constant rate);
            ``pix2pix``: ``n_down`` (stride-2 layers of the U-Net), ``lambda_l1``, ``lr_constant_steps`` and
            ``lr_decay_steps`` (the same schedule).

    Returns:
        The :class:`GAN`, its networks in train mode on ``device``.
    """
    family = _family(name)
    allowed = FAMILY_SETTINGS.get(name, {})
    unknown = sorted(set(family_kw) - set(allowed))
    if unknown:
        raise ValueError(f"{name} takes no settings {unknown}" + (f"; its extra settings are {sorted(allowed)}."
                                                                    if allowed else "."))
    if int(num_classes) < 1 or int(n_critic) < 1 or not gp_weight >= 0 or not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"need num_classes >= 1, n_critic >= 1, gp_weight >= 0 and 0 <= ema_decay < 1; got "
                         f"{num_classes}, {n_critic}, {gp_weight}, {ema_decay}.")
    accumulate = check_accumulate(int(accumulate) if isinstance(accumulate, np.integer) else accumulate)
    if accumulate > 1 and name not in ACCUMULATING:
        raise ValueError(f"{name} has its own update step, which does not split into micro-batches: pass accumulate=1 "
                         f"(gradient accumulation is for {list(ACCUMULATING)}).")
    if name.startswith("sqaggan") and num_classes != 1:
        raise ValueError(f"{name} is not class-conditional; use num_classes=1.")
    if family is not bagan or name == "bagan_autoencoder":
        if autoencoder is not None or latent is not None:
            raise ValueError(f"autoencoder= and latent= are for 'bagan' and 'bagan_gp' only, not {name!r}.")
    for option, on in (("diffaug", diffaug), ("spectral_norm", spectral_norm)):
        if on and (name.startswith("sqaggan") or name == "bagan_autoencoder"):
            raise ValueError(f"{option} is for the image GANs' discriminators; {name!r} has none it applies to.")
    if (diffaug or ema_decay > 0) and name in ("cyclegan", "pix2pix"):
        raise ValueError(f"{name} translates images: the small-data recipe's diffaug and ema_decay are not part of it; "
                         "pass diffaug=False and ema_decay=0.")
    if diffaug and name == "feature_gan":
        raise ValueError("diffaug augments images (colour, translation, cutout); feature_gan's discriminator sees "
                         "feature maps: pass diffaug=False.")
    if ema_batchnorm not in ("recompute", "copy"):
        raise ValueError(f"ema_batchnorm must be 'recompute' or 'copy', got {ema_batchnorm!r}.")
    if not lr_G >= 0 or not lr_D >= 0:
        raise ValueError(f"lr_G and lr_D must be >= 0 (0: the paper's {family.PAPER_LR[name]}), got {lr_G}, {lr_D}.")
    paper_lr = family.PAPER_LR[name]  # one rate for both networks, or a `(lr_G, lr_D)` pair
    paper_G, paper_D = paper_lr if isinstance(paper_lr, tuple) else (paper_lr, paper_lr)
    lr_G, lr_D = lr_G or paper_G, lr_D or paper_D
    device = torch.device(device)
    settings: dict[str, Any] = dict(num_classes=int(num_classes), image_size=image_size, channels=channels, nz=nz,
                                    width_G=width_G, width_D=width_D, lr_G=lr_G, lr_D=lr_D, n_critic=int(n_critic),
                                    accumulate=int(accumulate), gp_weight=float(gp_weight), ema_decay=float(ema_decay),
                                    ema_batchnorm=ema_batchnorm, seed=int(seed), device=str(device), amp=bool(amp), diffaug=bool(diffaug),
                                    spectral_norm=bool(spectral_norm),
                                    augment=DiffAugment() if diffaug else None, **{**allowed, **family_kw})
    if family is bagan:
        net_G, net_D, extras = bagan.build(name, settings, autoencoder=autoencoder, latent=latent)
    else:
        net_G, net_D, extras = family.build(name, settings)
    if spectral_norm:
        for module in list(net_D.modules()):  # layers already normalised (BigGAN's) are left as they are
            if isinstance(module, (nn.Conv2d, nn.Linear)) and not nn.utils.parametrize.is_parametrized(module, "weight"):
                nn.utils.parametrizations.spectral_norm(module)
    net_G = net_G.to(device).train()  # train mode even when copied from a network left in eval mode
    net_D = net_D.to(device).train() if net_D is not None else None
    extras = {k: v.to(device) for k, v in extras.items()}
    betas = family.BETAS[name]
    opt_G = torch.optim.Adam(net_G.parameters(), lr=lr_G, betas=betas)
    opt_D = torch.optim.Adam(net_D.parameters(), lr=lr_D, betas=betas) if net_D is not None else None
    ema = EMA(net_G, ema_decay) if ema_decay > 0 else None
    gan = GAN(name, net_G, net_D, opt_G, opt_D, int(num_classes), settings, extras, ema)
    if hasattr(family, "attach"):  # image pools, learning-rate schedulers
        family.attach(gan)
    return gan


def sample_like(gan: Any, labels: Any, max_per_class: int, seed: int) -> tuple[Tensor, np.ndarray]:
    """A generated set with the class counts of a real set (each capped at ``max_per_class``).

    Class ``c`` gets ``min(count of c in labels, max_per_class)`` images of ``gan.sample(c, n, seed)``
    (the same seed for every class).

    Args:
        gan: anything with ``sample(cls, n, seed)`` and ``num_classes`` (a :class:`GAN`).
        labels: the real set's class labels `(N,)`.
        max_per_class: the most images of any class.
        seed: seed of the latents.

    Returns:
        ``(images (M, C, S, S) float in [-1, 1], labels (M,) int64)``.
    """
    k = int(gan.num_classes)
    counts = np.bincount(np.asarray(labels, dtype=np.int64).reshape(-1), minlength=k)
    if len(counts) > k:
        raise ValueError(f"labels reach class {len(counts) - 1}, but {getattr(gan, 'name', 'the GAN')} makes "
                         f"{k} class{'es' if k != 1 else ''}.")
    counts = np.minimum(counts, int(max_per_class))
    kept = [c for c, n in enumerate(counts) if n]
    if not kept:
        raise ValueError("labels is empty (or max_per_class is 0): nothing to generate.")
    images = torch.cat([gan.sample(c, int(counts[c]), seed) for c in kept])
    return images, np.concatenate([np.full(int(counts[c]), c, dtype=np.int64) for c in kept])


def truncated_normal(n: int, nz: int, gen: torch.Generator, truncation: float) -> Tensor:
    """Latents from the standard normal truncated to ``[-t, t]`` (BigGAN's truncation trick).

    ``z = torch.randn(n, nz, generator=gen)``; then every entry with ``|z| > t`` is redrawn from
    ``gen``, again and again until all lie within ``t``. Smaller ``t``: images closer to the mode,
    more faithful and less varied (Brock et al. 2019, Sec. 3.1).

    Args:
        n: number of latents.
        nz: latent size.
        gen: the random generator every draw comes from.
        truncation: the threshold ``t > 0``.

    Returns:
        `(n, nz)` float32 with every ``|entry| <= t``.
    """
    if not truncation > 0:
        raise ValueError(f"truncation must be a threshold > 0 (or None for none), got {truncation}.")
    z = torch.randn(n, nz, generator=gen)  # `(n, nz)`
    outside = z.abs() > truncation
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=gen)
        outside = z.abs() > truncation
    return z


@torch.no_grad()
def sample(net_G: nn.Module, n: int, seed: int, cls: int | None = None, latent: nn.Module | None = None,
           batch_size: int = 256, train_mode: bool = False, truncation: float | None = None) -> Tensor:
    """``n`` images from a generator with latents drawn from ``seed``, in eval mode (the mode is restored).

    ``gen = torch.Generator().manual_seed(seed)``, then ``z = torch.randn(n, nz, generator=gen)``
    (with ``truncation=t``: :func:`truncated_normal`), or for BAGAN ``z = latent.sample(full(n, cls), gen)``;
    images ``G(z)``, ``G(z, y = cls)`` for a conditional generator (one with a ``num_classes``
    attribute), or ``G_cls(z)`` for an ``nn.ModuleList`` of per-class generators.

    Args:
        net_G: the generator (or an ``nn.ModuleList`` of per-class generators).
        n: number of images.
        seed: seed of the latents.
        cls: the class (``None`` for an unconditional generator).
        latent: BAGAN's fitted :class:`~medgan_core.models.bagan.ClassLatent` (needs ``cls``).
        batch_size: images per forward pass.
        train_mode: run in train mode (batch norm uses, and updates, batch statistics; for
            :func:`refresh_batchnorm`).
        truncation: redraw every latent entry with ``|z| > truncation`` (a threshold > 0; ``None``:
            no truncation; not with BAGAN's ``latent``).

    Returns:
        `(n, C, S, S)` float in [-1, 1], on the CPU.
    """
    if int(n) < 0 or int(batch_size) < 1:
        raise ValueError(f"need n >= 0 and batch_size >= 1, got {n} and {batch_size}.")
    if isinstance(net_G, nn.ModuleList):  # one unconditional generator per class
        if cls is None or not 0 <= int(cls) < len(net_G):
            raise ValueError(f"per-class generators need cls in 0..{len(net_G) - 1}, got {cls}.")
        net_G, cls = net_G[int(cls)], (None if latent is None else cls)
    conditional = latent is None and cls is not None
    if conditional and not hasattr(net_G, "num_classes"):
        raise ValueError(f"{type(net_G).__name__} is unconditional: pass cls=None (or latent= for BAGAN).")
    if latent is not None and cls is None:
        raise ValueError("BAGAN latents are per class: pass cls.")
    if truncation is not None and latent is not None:
        raise ValueError("truncation is for latents z ~ N(0, I); BAGAN's class latents (latent=) take none: "
                         "pass truncation=None.")
    if truncation is not None and not truncation > 0:
        raise ValueError(f"truncation must be a threshold > 0 (or None for none), got {truncation}.")
    gen = torch.Generator().manual_seed(int(seed))
    if latent is not None:
        z = latent.sample(torch.full((n,), int(cls), dtype=torch.long), gen)  # `(n, nz)`
    elif truncation is not None:
        z = truncated_normal(n, net_G.nz, gen, truncation)  # `(n, nz)`, every entry within the threshold
    else:
        z = torch.randn(n, net_G.nz, generator=gen)  # `(n, nz)`
    y = torch.full((n,), int(cls), dtype=torch.long) if conditional else None
    device = next(net_G.parameters()).device
    was_training = net_G.training
    net_G.train(train_mode)
    try:
        out = []
        for i in range(0, n, batch_size):
            z_i = z[i:i + batch_size].to(device)
            x = net_G(z_i, y[i:i + batch_size].to(device)) if conditional else net_G(z_i)
            out.append(x.float().cpu())
    finally:
        net_G.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, net_G.channels, net_G.image_size, net_G.image_size)

