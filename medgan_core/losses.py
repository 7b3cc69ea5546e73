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

(``s`` is the sigmoid.) The model families' own objectives live here too, so every loss has
one home (the family files wire them in their ``train_step``):

| name                  | what it computes                                              | used by        |
|-----------------------|---------------------------------------------------------------|----------------|
| `gradient_penalty`    | E[(norm(grad D(x_hat)) - 1)^2], x_hat between real and fake    | WGAN-GP critics |
| `reconstruction_mse`  | E[(x - x_rec)^2]                                               | BAGAN autoencoder |
| `d_bagan` / `g_bagan` | CE(D(x), y) + CE(D(G(c)), K) / CE(D(G(c_k)), k) (K+1 logits)   | BAGAN          |
| `cycle_consistency_l1`, `identity_l1` | E[abs(x - F(G(x)))], E[abs(x - G(x))]  | CycleGAN       |
| `masked_l1`           | sum(m abs(x - y)) / sum(m) (or / N)                            | lesions, nodules |
| `feature_term`, `presence_term` | sum MSE(C_F(.), f); sum BCE(C_YN(.), 1 or 0)   | SQ-AGGAN       |
| `nodule_l1`, `background_l1` | L_G,F and L_G,B (L1 inside / outside the nodule)         | SQ-AGGAN       |
| `d_sqaggan` / `g_sqaggan` | L_D and L_G of SQ-AGGAN, weighted by :class:`Lambdas`     | SQ-AGGAN       |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

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


def r1_penalty(d_real: Tensor, x_real: Tensor) -> Tensor:
    """R1 penalty (Mescheder et al. 2018): the squared gradient norm of D at real data.

    ``R1 = E[||grad_x D(x)||_2^2]`` over real ``x`` only, the norm over all non-batch dimensions; it
    keeps the discriminator flat on the data so that it cannot push the generator around a mode
    (the paper proves local convergence for GANs trained with it). The graph is kept
    (``create_graph=True``); add ``weight / 2 * R1`` to the discriminator loss (the paper's
    ``gamma / 2``).

    Args:
        d_real: the discriminator's outputs `(B,)` on ``x_real``.
        x_real: the real batch `(B, ...)` exactly as the discriminator saw it, with ``requires_grad``.
    """
    if not x_real.requires_grad:
        raise ValueError("x_real must require grad (x.detach().requires_grad_(True)) before the discriminator sees it.")
    (grad,) = torch.autograd.grad(d_real.sum(), x_real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


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


def reconstruction_mse(x: Tensor, x_rec: Tensor) -> Tensor:
    """BAGAN's autoencoder loss: the mean squared reconstruction error ``E[(x - x_rec)^2]``.

    The mean runs over pixels, channels and the batch.

    Args:
        x: images `(B, C, S, S)`.
        x_rec: reconstructions ``Dec(E(x))``, same shape.
    """
    if x.shape != x_rec.shape:
        raise ValueError(f"x {tuple(x.shape)} and x_rec {tuple(x_rec.shape)} must have one shape.")
    return F.mse_loss(x_rec, x)


# --- BAGAN (Mariani et al. 2018): a (K + 1)-class discriminator, the last class is "fake" ---------

def d_bagan(logits_real: Tensor, y_real: Tensor, logits_fake: Tensor) -> Tensor:
    """BAGAN discriminator loss on logits: ``CE(D(x), y) + CE(D(G(c)), K)`` (class ``K`` = fake).

    ``CE`` is the batch mean of the softmax cross-entropy over the ``K + 1`` logits.

    Args:
        logits_real: `(B, K + 1)` logits of real images.
        y_real: their classes `(B,)` int64 in ``0..K-1``.
        logits_fake: `(B', K + 1)` logits of generated images.
    """
    _check_scores(logits_real=logits_real, logits_fake=logits_fake)
    if logits_real.ndim != 2 or logits_fake.ndim != 2 or logits_real.shape[1] != logits_fake.shape[1]:
        raise ValueError(f"logits must be (B, K + 1) with one K, got {tuple(logits_real.shape)} and "
                         f"{tuple(logits_fake.shape)}.")
    fake = torch.full((logits_fake.shape[0],), logits_fake.shape[1] - 1, dtype=torch.long, device=logits_fake.device)
    return F.cross_entropy(logits_real, y_real) + F.cross_entropy(logits_fake, fake)


def g_bagan(logits_fake: Tensor, y_fake: Tensor) -> Tensor:
    """BAGAN generator loss on logits: ``CE(D(G(c_k)), k)``: class-``k`` images should be seen as class ``k``.

    Args:
        logits_fake: `(B, K + 1)` logits of generated images.
        y_fake: the classes they were generated for `(B,)` int64.
    """
    _check_scores(logits_fake=logits_fake)
    return F.cross_entropy(logits_fake, y_fake)


# --- SQ-AGGAN (sequential, attribute-guided nodule generation) ------------------------------------

@dataclass(frozen=True)
class Lambdas:
    """Weights of the SQ-AGGAN objective (the write-up names them but gives no values).

    Args:
        gp: WGAN-GP gradient-penalty weight (10, Gulrajani et al.).
        f: feature-classifier weight ``lambda_f``.
        yn: presence-classifier weight ``lambda_yn``.
        GF: nodule reconstruction L1 weight ``lambda_GF``.
        GB: background L1 weight ``lambda_GB``.
        adv: weight of the generator's adversarial term (1 in SQ-AGGAN). ``adv = f = yn = 0`` is the
            **reconstruction-only** yardstick: the same generator trained on its two L1 terms alone
            (:attr:`reconstruction_only`; its update then skips the discriminator).
    """

    gp: float = 10.0
    f: float = 1.0
    yn: float = 1.0
    GF: float = 10.0
    GB: float = 100.0
    adv: float = 1.0

    @property
    def reconstruction_only(self) -> bool:
        """True when no discriminator term reaches the generator (``adv``, ``f`` and ``yn`` are 0)."""
        return self.adv == 0 and self.f == 0 and self.yn == 0

    def __post_init__(self) -> None:
        bad = {k: v for k, v in asdict(self).items() if not v >= 0}
        if bad:
            raise ValueError(f"loss weights must be >= 0; got {bad}.")


def feature_term(f_hats: list[Tensor], f: Tensor) -> Tensor:
    """Sum over the given inputs of the mean squared error between ``C_F`` outputs and ``f``.

    ``sum_k mean((C_F(.)_k - f)^2)``: ``L_D,f`` with real, reconstructed and injected outputs,
    ``L_G,f`` with the two generated ones.

    Args:
        f_hats: ``C_F`` outputs (regressions, not logits), each `(B, F)`.
        f: the target features `(B, F)`.
    """
    for f_hat in f_hats:
        if f_hat.shape != f.shape:
            raise ValueError(f"C_F output {tuple(f_hat.shape)} and f {tuple(f.shape)} must have one shape.")
    return sum(F.mse_loss(f_hat, f) for f_hat in f_hats)


def presence_term(logits_present: list[Tensor], logits_absent: list[Tensor] = ()) -> Tensor:
    """Sum of BCE-with-logits of ``C_YN``: target 1 for nodule-bearing inputs, 0 for backgrounds.

    ``sum_k BCE(s(e_k), 1) + sum_j BCE(s(e_j), 0)`` with ``BCE`` the batch mean.

    Args:
        logits_present: presence logits of inputs that hold a nodule, each `(B,)`.
        logits_absent: presence logits of nodule-free inputs, each `(B,)`.
    """
    terms = [F.binary_cross_entropy_with_logits(e, torch.ones_like(e)) for e in logits_present]
    terms += [F.binary_cross_entropy_with_logits(e, torch.zeros_like(e)) for e in logits_absent]
    if not terms:
        raise ValueError("presence_term needs at least one logit tensor.")
    return sum(terms)


def nodule_l1(g_rec: Tensor, g_inj: Tensor, x: Tensor, m_n: Tensor) -> Tensor:
    """``L_G,F = (N_total / N_n)(||M_n G(x') - M_n x||_1 + ||M_n G(y) - M_n x||_1)``.

    ``||.||_1`` is the mean absolute value over all ``N_total`` elements, so each term is the
    mean error per nodule pixel (:func:`masked_l1` with area normalisation).

    Args:
        g_rec: ``G(x')`` `(B, T, 1, H, W)`.
        g_inj: ``G(y)``, same shape.
        x: the real nodule sequence, same shape.
        m_n: the nodule mask, same shape, in {0, 1}.
    """
    return masked_l1(g_rec, x, m_n) + masked_l1(g_inj, x, m_n)


def background_l1(g_rec: Tensor, g_inj: Tensor, x: Tensor, y: Tensor, m_bg: Tensor) -> Tensor:
    """``L_G,B = ||M_bg G(x') - M_bg x||_1 + ||M_bg G(y) - M_bg y||_1`` (means over all elements).

    Zero when the outputs equal their inputs wherever ``m_bg`` is on.

    Args:
        g_rec: ``G(x')`` `(B, T, 1, H, W)`.
        g_inj: ``G(y)``, same shape.
        x: the real nodule sequence, same shape.
        y: the background sequence, same shape.
        m_bg: the background mask ``1 - M_n``, same shape.
    """
    return masked_l1(g_rec, x, m_bg, normalise_by_area=False) + masked_l1(g_inj, y, m_bg, normalise_by_area=False)


def d_sqaggan(c_x: Tensor, c_rec: Tensor, c_ybg: Tensor, c_injbg: Tensor, f_hats: list[Tensor], f: Tensor,
              e_present: list[Tensor], e_absent: list[Tensor], gp_f: Tensor, gp_b: Tensor,
              lam: Lambdas) -> dict[str, Tensor]:
    """SQ-AGGAN's discriminator objective ``L_D = L_adv,F + L_adv,B + l_f L_D,f + l_yn L_D,e`` and its terms.

    ``L_adv,F = E[D(G(x')_m)] - E[D(x_m)] + l_gp GP_F`` and
    ``L_adv,B = E[D(M_bg G(y)_m)] - E[D(M_bg y_m)] + l_gp GP_B`` on critic scores;
    ``L_D,f`` is :func:`feature_term`, ``L_D,e`` :func:`presence_term` (logits).

    Args:
        c_x: critic scores of ``x_m`` `(B,)`.
        c_rec: critic scores of ``G(x')_m``.
        c_ybg: critic scores of ``M_bg y_m``.
        c_injbg: critic scores of ``M_bg G(y)_m``.
        f_hats: ``C_F`` outputs on ``x_m``, ``G(x')_m``, ``G(y)_m``.
        f: target features `(B, F)`.
        e_present: ``C_YN`` logits on ``x_m``, ``G(x')_m``, ``G(y)_m``.
        e_absent: ``C_YN`` logits on ``y_m``.
        gp_f: gradient penalty of the reconstruction pair.
        gp_b: gradient penalty of the injection (background) pair.
        lam: the loss weights.

    Returns:
        ``{"loss_D", "adv_F", "adv_B", "D_f", "D_e"}`` (``adv_*`` include their penalties).
    """
    adv_f = d_wasserstein(c_x, c_rec) + lam.gp * gp_f
    adv_b = d_wasserstein(c_ybg, c_injbg) + lam.gp * gp_b
    d_f = feature_term(f_hats, f)
    d_e = presence_term(e_present, e_absent)
    return {"loss_D": adv_f + adv_b + lam.f * d_f + lam.yn * d_e, "adv_F": adv_f, "adv_B": adv_b,
            "D_f": d_f, "D_e": d_e}


def g_sqaggan(c_rec: Tensor, c_injbg: Tensor, f_hats: list[Tensor], f: Tensor, e_present: list[Tensor],
              l1_nodule: Tensor, l1_background: Tensor, lam: Lambdas) -> dict[str, Tensor]:
    """SQ-AGGAN's generator objective and its terms.

    ``L_G = -l_adv (E[D(G(x')_m)] + E[D(M_bg G(y)_m)]) + l_f L_G,f + l_yn L_G,e + l_GF L_G,F + l_GB L_G,B``
    (``l_adv`` = 1 in SQ-AGGAN).

    Args:
        c_rec: critic scores of ``G(x')_m`` `(B,)`.
        c_injbg: critic scores of ``M_bg G(y)_m``.
        f_hats: ``C_F`` outputs on ``G(x')_m``, ``G(y)_m``.
        f: target features `(B, F)`.
        e_present: ``C_YN`` logits on ``G(x')_m``, ``G(y)_m``.
        l1_nodule: :func:`nodule_l1`.
        l1_background: :func:`background_l1`.
        lam: the loss weights.

    Returns:
        ``{"loss_G", "G_adv", "G_f", "G_e", "G_F", "G_B"}``.
    """
    adv = g_wasserstein(c_rec) + g_wasserstein(c_injbg)
    g_f = feature_term(f_hats, f)
    g_e = presence_term(e_present)
    total = lam.adv * adv + lam.f * g_f + lam.yn * g_e + lam.GF * l1_nodule + lam.GB * l1_background
    return {"loss_G": total, "G_adv": adv, "G_f": g_f, "G_e": g_e, "G_F": l1_nodule, "G_B": l1_background}
