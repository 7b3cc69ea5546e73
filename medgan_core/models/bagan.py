"""BAGAN (Mariani et al. 2018) and BAGAN-GP (Huang & Jafari 2021): balancing GANs that start from an autoencoder.

Three stages:

1. An autoencoder ``x -> E(x) = c -> Dec(c)`` is trained on all classes with the reconstruction
   loss ``E[||x - Dec(E(x))||_2^2]`` (minority classes profit from what it learns on the others).
2. The codes of each class are summarised by one multivariate Gaussian,
   ``N(mu_k, Sigma_k)`` with ``mu_k``, ``Sigma_k`` the mean and covariance of ``E(x)`` over the
   training images of class ``k`` (:class:`ClassLatent`); a class-``k`` image is generated as
   ``G(c)``, ``c ~ N(mu_k, Sigma_k)``.
3. The generator starts as a copy of the decoder and the discriminator as a copy of the encoder
   (``critic_start="encoder"``, BAGAN's design; ``"fresh"`` keeps the architecture with new weights, as
   BAGAN-GP's released code does):
   - **BAGAN**: the discriminator has ``K + 1`` outputs (the ``K`` classes and "fake"), trained
     with cross-entropy; the generator wants its class-``k`` images classified as ``k``:

         loss_D = CE(D(x), y) + CE(D(G(c_k)), K),     loss_G = CE(D(G(c_k)), k)

   - **BAGAN-GP**: a Wasserstein critic with a gradient penalty and a class projection,
     ``D(x, y) = w^T h(x) + e(y)^T h(x)`` (``h`` the encoder's code), trained as in
     :mod:`.cgan` (``loss_D = E[D(G(c_y), y)] - E[D(x, y)] + 10 GP``, ``loss_G = -E[D(G(c_y), y)]``).

Shapes: images `(B, C, S, S)` in [-1, 1]; codes `(B, nz)`; labels `(B,)` int64 in ``0..K-1``;
BAGAN discriminator logits `(B, K + 1)`; BAGAN-GP critic scores `(B,)`. Encoder and decoder are
the DCGAN trunk and generator of :mod:`.dcgan` (no batch norm in the encoder, so that the
BAGAN-GP critic can start from it). The losses (:func:`~medgan_core.losses.reconstruction_mse`,
:func:`~medgan_core.losses.d_bagan`, :func:`~medgan_core.losses.g_bagan`) live in
:mod:`medgan_core.losses`.

Built by name through :func:`medgan_core.models.registry.build_gan`: ``"bagan_autoencoder"``
(stage 1 as a trainable unit), then :func:`fit_latent` (stage 2), then ``"bagan"`` or
``"bagan_gp"`` with ``autoencoder=`` and ``latent=`` (stage 3). :func:`train_step` is the step of
each of the three.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from medgan_core.data.datasets import to_tensor_images, to_uint8_images
from medgan_core.losses import d_bagan, g_bagan, get_losses, reconstruction_mse
from medgan_core.models.cgan import _check_labels
from medgan_core.models.dcgan import ConvTrunk, Generator, init_dcgan_weights
from medgan_core.train.device import amp_context
from medgan_core.train.guard import check_finite
from medgan_core.train.loop import adversarial_step

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NAMES = ("bagan", "bagan_gp", "bagan_autoencoder")
BETAS = {"bagan": (0.5, 0.999), "bagan_gp": (0.5, 0.9), "bagan_autoencoder": (0.5, 0.999)}  # Adam betas
# Adam learning rates: BAGAN 5e-5 for every stage (Mariani et al. 2018, their released code); BAGAN-GP 2e-4
# (Huang & Jafari 2021, their released code); the autoencoder keeps the BAGAN value.
PAPER_LR = {"bagan": 5e-5, "bagan_gp": 2e-4, "bagan_autoencoder": 5e-5}
CRITIC_STARTS = ("encoder", "fresh")  # where the discriminator's weights start (:func:`discriminator`)


class Encoder(nn.Module):
    """Images `(B, C, S, S)` -> codes `(B, nz)`: a DCGAN trunk (no batch norm) and a linear layer.

    Args:
        nz: code size.
        image_size: input side ``S``.
        channels: input channels.
        width: trunk width.
    """

    def __init__(self, nz: int = 64, image_size: int = 32, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        self.nz = nz
        self.trunk = ConvTrunk(image_size, channels, width, norm="none")
        self.fc = nn.Linear(self.trunk.feature_dim, nz)
        init_dcgan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """Codes.

        Args:
            x: images `(B, C, S, S)` in [-1, 1].

        Returns:
            `(B, nz)`.
        """
        return self.fc(self.trunk(x).flatten(1))


class Autoencoder(nn.Module):
    """BAGAN's autoencoder: :class:`Encoder` then the DCGAN :class:`~medgan_core.models.dcgan.Generator` as decoder.

    Args:
        nz: code size.
        image_size: image side.
        channels: image channels.
        width_E: encoder width.
        width_G: decoder width.
    """

    def __init__(self, nz: int = 64, image_size: int = 32, channels: int = 3, width_E: int = 32,
                 width_G: int = 32) -> None:
        super().__init__()
        self.encoder = Encoder(nz, image_size, channels, width_E)
        self.decoder = Generator(nz, image_size, channels, width_G)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstructions.

        Args:
            x: images `(B, C, S, S)` in [-1, 1].

        Returns:
            `(B, C, S, S)` in [-1, 1].
        """
        return self.decoder(self.encoder(x))


class ClassLatent(nn.Module):
    """One multivariate Gaussian of codes per class; samples class-conditional latents.

    The buffers ``means`` `(K, nz)`, ``covs`` `(K, nz, nz)` and ``chol`` (their Cholesky factors,
    after adding ``jitter`` to the diagonal) are saved with the model's state.

    Args:
        num_classes: ``K``.
        nz: code size.
        jitter: added to each covariance's diagonal before factorising, as a share of its mean
            variance (trace / nz): classes with fewer images than ``nz`` have singular
            covariances, and a fixed absolute jitter is lost in round-off when the codes are
            large (a width-64 encoder's codes on 12 monocytes). Factorised in float64.
    """

    def __init__(self, num_classes: int, nz: int, jitter: float = 1e-4) -> None:
        super().__init__()
        self.num_classes, self.nz, self.jitter = num_classes, nz, jitter
        self.register_buffer("means", torch.zeros(num_classes, nz))
        self.register_buffer("covs", torch.eye(nz).repeat(num_classes, 1, 1))
        self.register_buffer("chol", torch.eye(nz).repeat(num_classes, 1, 1))

    @torch.no_grad()
    def fit(self, codes: Tensor, labels: Tensor) -> "ClassLatent":
        """Set each class's mean and covariance (``numpy.cov``, ``ddof=1``) from encoded codes.

        Args:
            codes: encoder outputs `(N, nz)`.
            labels: their classes `(N,)` int64.

        Returns:
            ``self``.
        """
        if codes.ndim != 2 or codes.shape[1] != self.nz or len(codes) != len(labels):
            raise ValueError(f"codes must be (N, {self.nz}) with one label each, got {tuple(codes.shape)} "
                             f"and {len(labels)} labels.")
        c, y = codes.detach().double().cpu().numpy(), labels.cpu().numpy()
        for k in range(self.num_classes):
            ck = c[y == k]
            if len(ck) < 2:
                raise ValueError(f"class {k} has {len(ck)} encoded images; a covariance needs at least 2.")
            if not np.isfinite(ck).all():
                raise ValueError(f"class {k}: {int((~np.isfinite(ck).all(1)).sum())} of its {len(ck)} codes are not "
                                 "finite; the autoencoder's weights have probably blown up (retrain it).")
            mean, cov = ck.mean(0), np.cov(ck, rowvar=False)
            self.means[k] = torch.from_numpy(mean).float()
            self.covs[k] = torch.from_numpy(cov).float()
            ridge = self.jitter * max(float(np.trace(cov)) / self.nz, np.finfo(np.float64).tiny)
            try:
                chol = np.linalg.cholesky(cov + ridge * np.eye(self.nz))
            except np.linalg.LinAlgError as err:
                raise ValueError(f"class {k}: the covariance of its {len(ck)} codes cannot be factorised even with "
                                 f"{ridge:.3g} on its diagonal ({err}).") from err
            self.chol[k] = torch.from_numpy(chol).float()
        return self

    def sample(self, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Latents ``c ~ N(mu_y, Sigma_y)``, one per label.

        Args:
            y: class labels `(B,)` int64.
            generator: CPU generator for the normal draws (``None``: the global RNG).

        Returns:
            `(B, nz)` on the buffers' device.
        """
        _check_labels(y, y.shape[0], self.num_classes)
        eps = torch.randn(y.shape[0], self.nz, generator=generator).to(self.means.device)  # `(B, nz)`
        y = y.to(self.means.device)
        return self.means[y] + torch.einsum("bij,bj->bi", self.chol[y], eps)


class BaganDiscriminator(nn.Module):
    """BAGAN's discriminator: an encoder copy, LeakyReLU, and ``K + 1`` logits (last = fake).

    Args:
        encoder: the trained autoencoder's encoder (deep-copied).
        num_classes: ``K``.
    """

    def __init__(self, encoder: Encoder, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = copy.deepcopy(encoder)
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(encoder.nz, num_classes + 1))

    def forward(self, x: Tensor) -> Tensor:
        """Logits.

        Args:
            x: images `(B, C, S, S)`.

        Returns:
            `(B, K + 1)`: the ``K`` classes, then "fake".
        """
        return self.head(self.encoder(x))


class BaganGPCritic(nn.Module):
    """BAGAN-GP's critic: an encoder copy and a class projection, ``w^T h + e(y)^T h + b``.

    Args:
        encoder: the trained autoencoder's encoder (deep-copied).
        num_classes: ``K``.
    """

    def __init__(self, encoder: Encoder, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.encoder = copy.deepcopy(encoder)
        self.act = nn.LeakyReLU(0.2)
        self.linear = nn.Linear(encoder.nz, 1)
        self.embed = nn.Embedding(num_classes, encoder.nz)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Critic scores.

        Args:
            x: images `(B, C, S, S)`.
            y: class labels `(B,)` int64.

        Returns:
            `(B,)` scores.
        """
        _check_labels(y, x.shape[0], self.num_classes)
        h = self.act(self.encoder(x))  # `(B, nz)`
        return self.linear(h).flatten() + (self.embed(y) * h).sum(1)


@torch.no_grad()
def encode(encoder: Encoder, x: Tensor, batch_size: int = 256) -> Tensor:
    """Codes of many images, batched, in eval mode.

    Args:
        encoder: the encoder.
        x: images `(N, C, S, S)` in [-1, 1].
        batch_size: images per forward pass.

    Returns:
        `(N, nz)` on the CPU.
    """
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    out = [encoder(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    encoder.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, encoder.nz)


def _as_images(x: Tensor | np.ndarray) -> Tensor:
    """uint8 `(N, S, S, C)` -> float `(N, C, S, S)` in [-1, 1]; float tensors pass unchanged."""
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8 (N, S, S, C), got {x.dtype}; or pass a float tensor.")
        return to_tensor_images(x)
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim != 4:
        raise ValueError("images must be uint8 (N, S, S, C) arrays or float (N, C, S, S) tensors in [-1, 1].")
    return x


def fit_latent(autoencoder: Autoencoder, x: Tensor | np.ndarray, y: Tensor | np.ndarray,
               num_classes: int | None = None) -> ClassLatent:
    """Stage 2: encode the training images and fit one Gaussian of codes per class.

    Args:
        autoencoder: the trained autoencoder.
        x: training images, float `(N, C, S, S)` in [-1, 1] or uint8 `(N, S, S, C)`.
        y: their classes `(N,)`.
        num_classes: ``K`` (default: the largest label + 1).

    Returns:
        The fitted :class:`ClassLatent`, on the CPU.
    """
    y = torch.as_tensor(y.cpu() if isinstance(y, Tensor) else np.asarray(y)).long()
    k = int(num_classes) if num_classes is not None else int(y.max()) + 1
    return ClassLatent(k, autoencoder.encoder.nz).fit(encode(autoencoder.encoder, _as_images(x)), y)


@torch.no_grad()
def reconstruct(autoencoder: Autoencoder, x: Tensor | np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Reconstructions ``Dec(E(x))`` as uint8 images (eval mode; the mode is restored), e.g. for a figure.

    Args:
        autoencoder: the (trained) autoencoder.
        x: images, uint8 `(N, S, S, C)` or float `(N, C, S, S)` in [-1, 1].
        batch_size: images per forward pass.

    Returns:
        uint8 `(N, S, S, C)`.
    """
    x = _as_images(x)
    device = next(autoencoder.parameters()).device
    was_training = autoencoder.training
    autoencoder.eval()
    try:
        out = [autoencoder(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        autoencoder.train(was_training)
    rec = torch.cat(out) if out else torch.zeros(0, *x.shape[1:])
    return to_uint8_images(rec, squeeze_gray=False)


# --- registry hooks ---------------------------------------------------------------------------

def _check_autoencoder(name: str, autoencoder: Any) -> Autoencoder:
    if not isinstance(autoencoder, Autoencoder):
        raise ValueError(f"{name} starts from a trained autoencoder: pass autoencoder= (a bagan.Autoencoder, e.g. "
                         "build_gan('bagan_autoencoder', ...).net_G after training), got "
                         f"{type(autoencoder).__name__}.")
    return autoencoder


def generator(name: str, *, autoencoder: Autoencoder | None = None, nz: int = 64, image_size: int = 32,
             channels: int = 3, width_G: int = 32, width_D: int = 32) -> nn.Module:
    """BAGAN's trainable generator-side network, by its registry name.

    Args:
        name: ``"bagan_autoencoder"`` (a fresh :class:`Autoencoder`, encoder width ``width_D``) or
            ``"bagan"``/``"bagan_gp"`` (a copy of ``autoencoder``'s decoder).
        autoencoder: the trained autoencoder (``"bagan"``, ``"bagan_gp"``).
        nz: code size (autoencoder).
        image_size: image side (autoencoder).
        channels: image channels (autoencoder).
        width_G: decoder width (autoencoder).
        width_D: encoder width (autoencoder; the encoder becomes the discriminator later).
    """
    if name == "bagan_autoencoder":
        return Autoencoder(nz, image_size, channels, width_E=width_D, width_G=width_G)
    return copy.deepcopy(_check_autoencoder(name, autoencoder).decoder)


def discriminator(name: str, *, autoencoder: Autoencoder, num_classes: int, critic_start: str = "encoder") -> nn.Module:
    """BAGAN's discriminator (``K + 1`` logits) or BAGAN-GP's critic, started from the encoder or afresh.

    Args:
        name: ``"bagan"`` or ``"bagan_gp"`` (the autoencoder has none).
        autoencoder: the trained autoencoder.
        num_classes: ``K``.
        critic_start: ``"encoder"``: the trained encoder's weights (BAGAN's design); ``"fresh"``: the
            encoder's architecture with PyTorch's default initialisation (BAGAN-GP's released code builds
            its critic afresh: an encoder trained to reconstruct gives a Wasserstein critic a poor start).
    """
    if name == "bagan_autoencoder":
        raise ValueError("bagan_autoencoder has no discriminator; build 'bagan' or 'bagan_gp' from it.")
    if critic_start not in CRITIC_STARTS:
        raise ValueError(f"critic_start must be one of {CRITIC_STARTS}, got {critic_start!r}.")
    encoder = _check_autoencoder(name, autoencoder).encoder  # the discriminators copy it
    if critic_start == "fresh":
        encoder = copy.deepcopy(encoder)  # new weights on a copy: the autoencoder is not modified
        for module in encoder.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.reset_parameters()
    return BaganDiscriminator(encoder, num_classes) if name == "bagan" else BaganGPCritic(encoder, num_classes)


def build(name: str, settings: dict[str, Any], autoencoder: Autoencoder | None = None,
          latent: ClassLatent | None = None) -> tuple[nn.Module, nn.Module | None, dict[str, nn.Module]]:
    """Seeded networks for :func:`~medgan_core.models.registry.build_gan`: ``torch.manual_seed(seed)``, then build.

    Args:
        name: ``"bagan"``, ``"bagan_gp"`` or ``"bagan_autoencoder"``.
        settings: the registry's settings (``num_classes``, ``nz``, ``image_size``, ``channels``,
            ``width_G``, ``width_D``, ``seed``).
        autoencoder: the trained autoencoder (``"bagan"``, ``"bagan_gp"``; copied, not modified).
        latent: the fitted :class:`ClassLatent` (``"bagan"``, ``"bagan_gp"``; copied).

    Returns:
        ``(net_G, net_D, extras)`` on the CPU: ``(autoencoder, None, {})`` for stage 1, else
        ``(decoder copy, discriminator, {"latent": latent})``.
    """
    s = settings
    if name == "bagan_autoencoder":
        torch.manual_seed(s["seed"])
        return generator(name, nz=s["nz"], image_size=s["image_size"], channels=s["channels"], width_G=s["width_G"],
                        width_D=s["width_D"]), None, {}
    ae = _check_autoencoder(name, autoencoder)
    if not isinstance(latent, ClassLatent):
        raise ValueError(f"{name} samples latents per class: pass latent= (bagan.fit_latent(autoencoder, x, y)), "
                         f"got {type(latent).__name__}.")
    dec = ae.decoder
    if (dec.nz, dec.image_size, dec.channels) != (s["nz"], s["image_size"], s["channels"]):
        raise ValueError(f"the autoencoder has nz={dec.nz}, image_size={dec.image_size}, channels={dec.channels}; "
                         f"build_gan got nz={s['nz']}, image_size={s['image_size']}, channels={s['channels']}. "
                         "Pass the autoencoder's settings.")
    if latent.num_classes != s["num_classes"] or latent.nz != ae.encoder.nz:
        raise ValueError(f"latent has {latent.num_classes} classes of codes of size {latent.nz}; build_gan got "
                         f"num_classes={s['num_classes']} and an autoencoder with nz={ae.encoder.nz}. Fit the latent "
                         "with this autoencoder on labels 0..num_classes-1.")
    torch.manual_seed(s["seed"])
    net_G = generator(name, autoencoder=ae)
    net_D = discriminator(name, autoencoder=ae, num_classes=s["num_classes"], critic_start=s["critic_start"])
    return net_G, net_D, {"latent": copy.deepcopy(latent)}


# --- training steps -----------------------------------------------------------------------------

def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One step of the GAN's stage: :func:`autoencoder_step`, :func:`bagan_step` or :func:`bagan_gp_step`.

    Args:
        gan: a ``"bagan_autoencoder"``, ``"bagan"`` or ``"bagan_gp"`` GAN.
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.
    """
    steps = {"bagan_autoencoder": autoencoder_step, "bagan": bagan_step, "bagan_gp": bagan_gp_step}
    if gan.name not in steps:
        raise ValueError(f"{gan.name!r} is not a BAGAN name; valid names: {list(steps)}.")
    return steps[gan.name](gan, data, step)


def autoencoder_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """Stage 1: one Adam step on ``loss_AE = E[(x - Dec(E(x)))^2]`` over ``x = data.batch(step)[0]``.

    Args:
        gan: a ``"bagan_autoencoder"`` GAN (``net_G`` is the autoencoder).
        data: the training images (all classes).
        step: the 0-based training step.

    Returns:
        ``{"loss_AE"}``.
    """
    ae, opt = gan.net_G, gan.opt_G
    x_real = data.batch(step)[0]  # `(B, C, S, S)`
    with amp_context(x_real.device, gan.settings["amp"]):
        loss = reconstruction_mse(x_real, ae(x_real).float())
    check_finite("loss_AE", loss, step)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if gan.ema is not None:
        gan.ema.update(ae)
    return {"loss_AE": loss.item()}


def bagan_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One BAGAN update: a (K+1)-class discriminator step, then a generator step.

    ``(x, y) = data.batch(step)``; the fake classes ``y_fake`` are drawn uniformly from
    ``0..K-1`` (global RNG), latents ``c ~ N(mu_y_fake, Sigma_y_fake)``;
    ``loss_D = CE(D(x), y) + CE(D(G(c)), K)``, then with fresh latents of the same classes
    ``loss_G = CE(D(G(c)), y_fake)`` (:func:`~medgan_core.losses.d_bagan`,
    :func:`~medgan_core.losses.g_bagan`). The EMA (if any) follows the generator step.

    Args:
        gan: a ``"bagan"`` GAN (``extras["latent"]`` the fitted :class:`ClassLatent`).
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.

    Returns:
        ``{"loss_D", "loss_G"}``.
    """
    net_G, net_D, latent, amp = gan.net_G, gan.net_D, gan.extras["latent"], gan.settings["amp"]
    aug = gan.settings.get("augment") or (lambda t: t)  # DiffAugment of every image D sees, if asked for
    x_real, y_real = data.batch(step)  # `(B, C, S, S)`, `(B,)`
    dev = x_real.device
    y_fake = torch.randint(gan.num_classes, (x_real.shape[0],), device=dev)  # classes drawn uniformly, as in BAGAN
    with amp_context(dev, amp):
        with torch.no_grad():
            x_fake = net_G(latent.sample(y_fake))
        loss_D = d_bagan(net_D(aug(x_real)).float(), y_real, net_D(aug(x_fake)).float())
    check_finite("loss_D", loss_D, step)
    gan.opt_D.zero_grad(set_to_none=True)
    loss_D.backward()
    gan.opt_D.step()
    net_D.requires_grad_(False)
    try:
        with amp_context(dev, amp):
            loss_G = g_bagan(net_D(aug(net_G(latent.sample(y_fake)))).float(), y_fake)
    finally:
        net_D.requires_grad_(True)
    check_finite("loss_G", loss_G, step)
    gan.opt_G.zero_grad(set_to_none=True)
    loss_G.backward()
    gan.opt_G.step()
    if gan.ema is not None:
        gan.ema.update(net_G)
    return {"loss_D": loss_D.item(), "loss_G": loss_G.item()}


def bagan_gp_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One BAGAN-GP update: ``n_critic`` critic steps on the same real batch, one generator step.

    ``(x, y) = data.batch(step)``; fakes ``G(c)``, ``c ~ N(mu_y, Sigma_y)`` of the batch's own
    classes, fresh at every critic step; ``loss_D = E[D(G(c), y)] - E[D(x, y)] + gp_weight GP``,
    ``loss_G = -E[D(G(c), y)]`` (:func:`~medgan_core.train.loop.adversarial_step`).

    Args:
        gan: a ``"bagan_gp"`` GAN (``extras["latent"]`` the fitted :class:`ClassLatent`).
        data: an :class:`~medgan_core.train.trainer.ImageBatches`.
        step: the 0-based training step.

    Returns:
        ``loss_D``, ``loss_G``, ``d_real``, ``d_fake``, ``gp``.
    """
    d_loss, g_loss = get_losses("wgan")
    s, net_G, latent = gan.settings, gan.net_G, gan.extras["latent"]
    x_real, y_real = data.batch(step)
    return adversarial_step(net_G, gan.net_D, gan.opt_G, gan.opt_D, x_real, d_loss, g_loss,
                            make_fake=lambda n: net_G(latent.sample(y_real)), cond=(y_real,),
                            n_critic=s["n_critic"], gp_weight=s["gp_weight"], ema=gan.ema, step=step, amp=s["amp"],
                            augment=s.get("augment"), accumulate=s["accumulate"])
