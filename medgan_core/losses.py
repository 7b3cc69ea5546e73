"""Adversarial and reconstruction losses as pure functions.

Adversarial losses come in discriminator/generator pairs (``d_hinge`` / ``g_hinge``, as in
StudioGAN's ``src/utils/losses.py``) and are chosen by name through one registry, so the names
in ``params/*.yaml`` are the names here:

    d_loss_fn, g_loss_fn = get_losses("hinge")
    loss_D = d_loss_fn(net_D(x_real), net_D(x_fake.detach()))
    loss_G = g_loss_fn(net_D(x_fake))

Notation (plain text; the notebooks write the same in LaTeX): ``D(x)`` is the discriminator's
raw output, a logit for ``minimax``/``nonsaturating`` (the probability "real" is
``sigmoid(D(x))``) and an unbounded score for ``lsgan``, ``hinge`` and ``wgan``. ``E[.]`` is the
mean over the batch and over every output element (a PatchGAN's map counts as many outputs).
Each function returns a scalar tensor to *minimise*.

| name            | discriminator minimises                          | generator minimises          |
|-----------------|--------------------------------------------------|------------------------------|
| `minimax`       | -E[log s(D(x))] - E[log(1 - s(D(G(z))))]         | E[log(1 - s(D(G(z))))]        |
| `nonsaturating` | same as minimax                                  | -E[log s(D(G(z)))]            |
| `lsgan`         | 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]           | 1/2 E[(D(G(z)) - 1)^2]        |
| `hinge`         | E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]      | -E[D(G(z))]                   |
| `wgan`          | E[D(G(z))] - E[D(x)]                             | -E[D(G(z))]                   |

(``s`` is the sigmoid.) Also here: the WGAN-GP :func:`gradient_penalty` and the L1
reconstruction losses of CycleGAN and of masked (lesion/nodule) generation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_scores(**scores: Tensor) -> None:
    for name, t in scores.items():
        if not isinstance(t, Tensor) or not t.is_floating_point() or t.numel() == 0:
            got = f"{t.dtype} tensor of shape {tuple(t.shape)}" if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a non-empty float tensor of discriminator outputs, got {got}.")


# --- minimax and non-saturating (Goodfellow et al. 2014) -------------------------------------

def d_minimax(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Discriminator loss of the original GAN: binary cross-entropy on logits.

    ``loss_D = -E[log sigmoid(D(x))] - E[log(1 - sigmoid(D(G(z))))]``
    ``       = E[softplus(-D(x))] + E[softplus(D(G(z)))]``  (the numerically stable form).

    Args:
        d_real: logits of real images, any shape.
        d_fake: logits of generated images, any shape.
    """
    _check_scores(d_real=d_real, d_fake=d_fake)
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def g_minimax(d_fake: Tensor) -> Tensor:
    """Generator loss of the original minimax game (saturates when D rejects fakes early on).

    ``loss_G = E[log(1 - sigmoid(D(G(z))))] = -E[softplus(D(G(z)))]``

    Args:
        d_fake: logits of generated images.
    """
    _check_scores(d_fake=d_fake)
    return -F.softplus(d_fake).mean()


def d_nonsaturating(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Discriminator loss of the non-saturating GAN: the same as :func:`d_minimax` (logits).

    Args:
        d_real: logits of real images.
        d_fake: logits of generated images.
    """
    return d_minimax(d_real, d_fake)


def g_nonsaturating(d_fake: Tensor) -> Tensor:
    """Non-saturating generator loss: strong gradients when D rejects the fakes.

    ``loss_G = -E[log sigmoid(D(G(z)))] = E[softplus(-D(G(z)))]``

    Args:
        d_fake: logits of generated images.
    """
    _check_scores(d_fake=d_fake)
    return F.softplus(-d_fake).mean()


# --- least squares (Mao et al. 2017), targets a=0 (fake), b=1 (real), c=1 (G's aim) ------------

def d_lsgan(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Least-squares discriminator loss on raw scores (no sigmoid).

    ``loss_D = 1/2 E[(D(x) - 1)^2] + 1/2 E[(D(G(z)) - 0)^2]``

    Args:
        d_real: scores of real images.
        d_fake: scores of generated images.
    """
    _check_scores(d_real=d_real, d_fake=d_fake)
    return 0.5 * (d_real - 1.0).pow(2).mean() + 0.5 * d_fake.pow(2).mean()


def g_lsgan(d_fake: Tensor) -> Tensor:
    """Least-squares generator loss on raw scores.

    ``loss_G = 1/2 E[(D(G(z)) - 1)^2]``

    Args:
        d_fake: scores of generated images.
    """
    _check_scores(d_fake=d_fake)
    return 0.5 * (d_fake - 1.0).pow(2).mean()


# --- hinge (Lim & Ye 2017; Miyato et al. 2018) ----------------------------------------------

def d_hinge(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Hinge discriminator loss on raw scores.

    ``loss_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``

    Args:
        d_real: scores of real images.
        d_fake: scores of generated images.
    """
    _check_scores(d_real=d_real, d_fake=d_fake)
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def g_hinge(d_fake: Tensor) -> Tensor:
    """Hinge generator loss on raw scores.

    ``loss_G = -E[D(G(z))]``

    Args:
        d_fake: scores of generated images.
    """
    _check_scores(d_fake=d_fake)
    return -d_fake.mean()


# --- Wasserstein (Arjovsky et al. 2017) ------------------------------------------------------

def d_wasserstein(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Wasserstein critic loss on critic scores; pair it with :func:`gradient_penalty` (WGAN-GP).

    ``loss_D = E[D(G(z))] - E[D(x)]``  (minus the critic's estimate of the Wasserstein-1 distance)

    Args:
        d_real: critic scores of real images.
        d_fake: critic scores of generated images.
    """
    _check_scores(d_real=d_real, d_fake=d_fake)
    return d_fake.mean() - d_real.mean()


def g_wasserstein(d_fake: Tensor) -> Tensor:
    """Wasserstein generator loss on critic scores.

    ``loss_G = -E[D(G(z))]``

    Args:
        d_fake: critic scores of generated images.
    """
    _check_scores(d_fake=d_fake)
    return -d_fake.mean()


D_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "minimax": d_minimax,
    "nonsaturating": d_nonsaturating,
    "lsgan": d_lsgan,
    "hinge": d_hinge,
    "wgan": d_wasserstein,
}
G_LOSSES: dict[str, Callable[[Tensor], Tensor]] = {
    "minimax": g_minimax,
    "nonsaturating": g_nonsaturating,
    "lsgan": g_lsgan,
    "hinge": g_hinge,
    "wgan": g_wasserstein,
}


def get_losses(name: str) -> tuple[Callable[[Tensor, Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Return the ``(d_loss_fn, g_loss_fn)`` pair registered under ``name``.

    Args:
        name: one of ``"minimax"``, ``"nonsaturating"``, ``"lsgan"``, ``"hinge"``, ``"wgan"``.
    """
    if name not in D_LOSSES:
        raise ValueError(f"Unknown GAN loss {name!r}; valid names: {sorted(D_LOSSES)}.")
    return D_LOSSES[name], G_LOSSES[name]


# --- gradient penalty (Gulrajani et al. 2017) ------------------------------------------------

def gradient_penalty(net_D: Callable[..., Tensor], x_real: Tensor, x_fake: Tensor, *cond: Tensor,
                     center: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP penalty on the critic's gradient norm at random points between real and fake.

    ``x_hat = a * x + (1 - a) * G(z)`` with one ``a ~ U[0, 1]`` per sample, and
    ``GP = E[(||grad_x_hat D(x_hat)||_2 - center)^2]``, the norm taken over all non-batch
    dimensions. ``center=1`` is WGAN-GP; ``center=0`` is the zero-centred variant. The graph is
    kept (``create_graph=True``) so that the penalty can be back-propagated into ``net_D``.
    Multiply by the weight (10 in the paper) and add to the critic loss.

    Args:
        net_D: the critic; called as ``net_D(x_hat, *cond)``; its outputs are summed per batch.
        x_real: real images `(B, ...)`.
        x_fake: generated images of the same shape (detached here).
        *cond: extra inputs of a conditional critic (e.g. class labels `(B,)`), passed unchanged.
        center: the target gradient norm.
        generator: a torch generator for ``a`` (drawn on the CPU); ``None`` uses the global RNG.
    """
    if x_real.shape != x_fake.shape:
        raise ValueError(f"x_real {tuple(x_real.shape)} and x_fake {tuple(x_fake.shape)} must have one shape.")
    batch = x_real.shape[0]
    alpha_shape = (batch,) + (1,) * (x_real.dim() - 1)  # `(B, 1, 1, 1)` for images
    if generator is not None:
        alpha = torch.rand(alpha_shape, generator=generator, device=generator.device)
    else:
        alpha = torch.rand(alpha_shape, device=x_real.device)
    alpha = alpha.to(device=x_real.device, dtype=x_real.dtype)
    x_hat = (alpha * x_real.detach() + (1.0 - alpha) * x_fake.detach()).requires_grad_(True)
    out = net_D(x_hat, *cond)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)  # `(B,)`
    return (norm - center).pow(2).mean()


# --- reconstruction losses --------------------------------------------------------------------

def _check_same_shape(a: Tensor, b: Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}.")


def cycle_consistency_l1(x: Tensor, x_rec: Tensor) -> Tensor:
    """CycleGAN's cycle-consistency loss (Zhu et al. 2017): ``E[|x - F(G(x))|]``.

    Multiply by lambda (10 in the paper).

    Args:
        x: images of one domain `(B, C, H, W)`.
        x_rec: the same images after a round trip through both generators.
    """
    _check_same_shape(x, x_rec, "x and x_rec")
    return (x - x_rec).abs().mean()


def identity_l1(x: Tensor, x_id: Tensor) -> Tensor:
    """CycleGAN's identity loss: ``E[|x - G(x)|]`` for ``x`` already in G's target domain.

    Multiply by lambda_id * lambda (0.5 * 10 in the paper).

    Args:
        x: images of G's target domain `(B, C, H, W)`.
        x_id: ``G(x)``.
    """
    _check_same_shape(x, x_id, "x and x_id")
    return (x - x_id).abs().mean()


def masked_l1(x: Tensor, y: Tensor, mask: Tensor, normalise_by_area: bool = True) -> Tensor:
    """Mean absolute error counted only where ``mask`` is on (e.g. inside a nodule or lesion).

    ``sum(m * |x - y|) / sum(m)`` with area normalisation (the mean error per masked pixel,
    independent of the region's size), else ``sum(m * |x - y|) / N`` with ``N`` every element
    of ``x`` (small regions then weigh little). Sums run over the whole batch; ``m`` is the mask
    broadcast to ``x``'s shape. An empty mask gives 0, not NaN.

    Args:
        x: prediction `(B, C, H, W)`.
        y: target, same shape.
        mask: weights in ``[0, 1]`` broadcastable to ``x`` (e.g. `(B, 1, H, W)`).
        normalise_by_area: divide by the mask's area instead of the number of elements.
    """
    _check_same_shape(x, y, "x and y")
    try:
        m = torch.broadcast_to(mask.to(x.dtype), x.shape)
    except RuntimeError as err:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to {tuple(x.shape)}; "
                         "give it shape (B, 1, H, W) or (B, C, H, W).") from err
    if bool((m < 0).any()):
        raise ValueError("mask has negative values; give weights in [0, 1] (1 inside the region).")
    total = (m * (x - y).abs()).sum()
    if not normalise_by_area:
        return total / x.numel()
    return total / m.sum().clamp_min(torch.finfo(x.dtype).eps)
