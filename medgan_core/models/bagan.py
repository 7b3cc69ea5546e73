"""BAGAN (Mariani et al. 2018) and BAGAN-GP (Huang & Jafari 2021): balancing GANs that start from an autoencoder.

Three stages:

1. An autoencoder ``x -> E(x) = c -> Dec(c)`` is trained on all classes with the reconstruction
   loss ``E[||x - Dec(E(x))||_2^2]`` (minority classes profit from what it learns on the others).
2. The codes of each class are summarised by one multivariate Gaussian,
   ``N(mu_k, Sigma_k)`` with ``mu_k``, ``Sigma_k`` the mean and covariance of ``E(x)`` over the
   training images of class ``k`` (:class:`ClassLatent`); a class-``k`` image is generated as
   ``G(c)``, ``c ~ N(mu_k, Sigma_k)``.
3. The generator starts as a copy of the decoder and the discriminator as a copy of the encoder:
   - **BAGAN**: the discriminator has ``K + 1`` outputs (the ``K`` classes and "fake"), trained
     with cross-entropy; the generator wants its class-``k`` images classified as ``k``:

         loss_D = CE(D(x), y) + CE(D(G(c_k)), K),     loss_G = CE(D(G(c_k)), k)

   - **BAGAN-GP**: a Wasserstein critic with a gradient penalty and a class projection,
     ``D(x, y) = w^T h(x) + e(y)^T h(x)`` (``h`` the encoder's code), trained as in
     :mod:`.cgan` (``loss_D = E[D(G(c_y), y)] - E[D(x, y)] + 10 GP``, ``loss_G = -E[D(G(c_y), y)]``).

Shapes: images `(B, C, S, S)` in [-1, 1]; codes `(B, nz)`; labels `(B,)` int64 in ``0..K-1``;
BAGAN discriminator logits `(B, K + 1)`; BAGAN-GP critic scores `(B,)`. Encoder and decoder are
the DCGAN trunk and generator of :mod:`.dcgan` (no batch norm in the encoder, so that the
BAGAN-GP critic can start from it). Built by name from :data:`MODELS` (``"bagan"``, ``"bagan_gp"``).
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan_core.models.cgan import _check_labels
from medgan_core.models.dcgan import ConvTrunk, Generator, init_dcgan_weights


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


def reconstruction_loss(x: Tensor, x_rec: Tensor) -> Tensor:
    """Mean squared reconstruction error ``E[(x - x_rec)^2]`` (over pixels and the batch).

    Args:
        x: images `(B, C, S, S)`.
        x_rec: reconstructions, same shape.
    """
    if x.shape != x_rec.shape:
        raise ValueError(f"x {tuple(x.shape)} and x_rec {tuple(x_rec.shape)} must have one shape.")
    return F.mse_loss(x_rec, x)


class ClassLatent(nn.Module):
    """One multivariate Gaussian of codes per class; samples class-conditional latents.

    The buffers ``means`` `(K, nz)`, ``covs`` `(K, nz, nz)` and ``chol`` (their Cholesky factors,
    after adding ``jitter`` to the diagonal) are saved with the model's state.

    Args:
        num_classes: ``K``.
        nz: code size.
        jitter: added to each covariance's diagonal before factorising (classes with fewer
            images than ``nz`` have singular covariances).
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
            mean, cov = ck.mean(0), np.cov(ck, rowvar=False)
            self.means[k] = torch.from_numpy(mean).float()
            self.covs[k] = torch.from_numpy(cov).float()
            jittered = torch.from_numpy(cov + self.jitter * np.eye(self.nz)).float()
            self.chol[k] = torch.linalg.cholesky(jittered)
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


def d_bagan(logits_real: Tensor, y_real: Tensor, logits_fake: Tensor) -> Tensor:
    """BAGAN discriminator loss: ``CE(D(x), y) + CE(D(G(c)), K)`` (logits, class ``K`` = fake).

    Args:
        logits_real: `(B, K + 1)` on real images.
        y_real: their classes `(B,)`.
        logits_fake: `(B', K + 1)` on generated images.
    """
    fake = torch.full((logits_fake.shape[0],), logits_fake.shape[1] - 1, dtype=torch.long, device=logits_fake.device)
    return F.cross_entropy(logits_real, y_real) + F.cross_entropy(logits_fake, fake)


def g_bagan(logits_fake: Tensor, y_fake: Tensor) -> Tensor:
    """BAGAN generator loss: ``CE(D(G(c_k)), k)``: class-``k`` images should be seen as class ``k``.

    Args:
        logits_fake: `(B, K + 1)` on generated images.
        y_fake: the classes they were generated for `(B,)`.
    """
    return F.cross_entropy(logits_fake, y_fake)


def build_autoencoder(nz: int = 64, image_size: int = 32, channels: int = 3, width_E: int = 32,
                      width_G: int = 32) -> Autoencoder:
    """Build BAGAN's autoencoder (stage 1).

    Args:
        nz: code size.
        image_size: image side.
        channels: image channels.
        width_E: encoder width.
        width_G: decoder width.
    """
    return Autoencoder(nz, image_size, channels, width_E, width_G)


def build_bagan(autoencoder: Autoencoder, num_classes: int) -> tuple[Generator, BaganDiscriminator]:
    """BAGAN pair ``(net_G, net_D)`` started from a trained autoencoder.

    Args:
        autoencoder: the trained autoencoder (copied, not modified).
        num_classes: ``K``.
    """
    return copy.deepcopy(autoencoder.decoder), BaganDiscriminator(autoencoder.encoder, num_classes)


def build_bagan_gp(autoencoder: Autoencoder, num_classes: int) -> tuple[Generator, BaganGPCritic]:
    """BAGAN-GP pair ``(net_G, net_D)`` started from a trained autoencoder.

    Args:
        autoencoder: the trained autoencoder (copied, not modified).
        num_classes: ``K``.
    """
    return copy.deepcopy(autoencoder.decoder), BaganGPCritic(autoencoder.encoder, num_classes)


MODELS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"bagan": build_bagan, "bagan_gp": build_bagan_gp}


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


@torch.no_grad()
def sample_class(net_G: Generator, latent: ClassLatent, cls: int, n: int, seed: int, batch_size: int = 256) -> Tensor:
    """``n`` images of class ``cls``: ``G(c)``, ``c ~ N(mu_cls, Sigma_cls)`` drawn from ``seed``.

    Args:
        net_G: the generator (decoder).
        latent: the fitted :class:`ClassLatent`.
        cls: the class index.
        n: number of images.
        seed: seed of the latents.
        batch_size: images per forward pass.

    Returns:
        `(n, C, S, S)` in [-1, 1], on the CPU.
    """
    gen = torch.Generator().manual_seed(int(seed))
    z = latent.sample(torch.full((n,), int(cls), dtype=torch.long), gen)  # `(n, nz)`
    device = next(net_G.parameters()).device
    was_training = net_G.training
    net_G.eval()
    out = [net_G(z[i:i + batch_size].to(device)).float().cpu() for i in range(0, n, batch_size)]
    net_G.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, net_G.channels, net_G.image_size, net_G.image_size)
