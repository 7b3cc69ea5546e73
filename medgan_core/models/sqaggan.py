"""SQ-AGGAN: sequential, attribute-guided nodule reconstruction and injection on CT slices.

The generator ``G`` is a U-Net over a short sequence of ``T`` neighbouring slices (encoder: 3 x
[two 3x3 convolutions, one 2x2 max-pool]; decoder: 3 x [one up-sampling, two 3x3 convolutions])
with a bidirectional ConvLSTM (:class:`~medgan_core.models.convlstm.BiConvLSTM`) at the end of
the encoder and at the end of the decoder, so neighbouring output slices stay consistent. Each
slice's input is its image, the nodule mask ``M_n`` (where the nodule is to be) and the nodule
features ``f`` broadcast to maps. It does two jobs:

- reconstruction ``G(x')``: re-draw the nodule into ``x'`` (``x`` with the nodule region erased)
  with the requested features ``f``, leaving the surroundings unchanged;
- injection ``G(y)``: draw a nodule of mask ``M_n`` and features ``f`` into a nodule-free
  background sequence ``y``.

The discriminator ``D`` is a 4-layer CNN on the *middle* slice and a mask channel with three
heads: a WGAN-GP critic score, the nodule features (``C_F``, regression) and nodule presence at
the masked place (``C_YN``, a logit). It sees the pair ``(G(x'), x)`` with the nodule mask and
the pair ``(G(y), y)`` restricted to the background ``M_bg = 1 - M_n`` (both images multiplied by
``M_bg``), so ``L_adv,B`` judges whether injection kept a realistic background. Objective
(``_m`` = middle slice, ``E`` = batch mean, ``s`` = sigmoid):

    L_adv,F = E[D(G(x')_m)] - E[D(x_m)] + l_gp GP        (critic on the reconstruction pair)
    L_adv,B = E[D(M_bg G(y)_m)] - E[D(M_bg y_m)] + l_gp GP  (critic on the injection pair's background)
    L_D,f   = ||C_F(x_m) - f||^2 + ||C_F(G(x')_m) - f||^2 + ||C_F(G(y)_m) - f||^2   (mean squared)
    L_D,e   = BCE(C_YN(x_m), 1) + BCE(C_YN(G(x')_m), 1) + BCE(C_YN(G(y)_m), 1) + BCE(C_YN(y_m), 0)
    L_D     = L_adv,F + L_adv,B + l_f L_D,f + l_yn L_D,e
    L_G,F   = (N_total / N_n) (||M_n G(x') - M_n x||_1 + ||M_n G(y) - M_n x||_1)
    L_G,B   = ||M_bg G(x') - M_bg x||_1 + ||M_bg G(y) - M_bg y||_1
    L_G     = -E[D(G(x')_m)] - E[D(M_bg G(y)_m)] + l_f L_G,f + l_yn L_G,e + l_GF L_G,F + l_GB L_G,B

with ``L_G,f``, ``L_G,e`` the generated-image terms of ``L_D,f``, ``L_D,e`` and ``||.||_1`` the
mean absolute value over all ``N_total`` elements (``N_n`` of them inside the nodule), over every
slice of the sequence. The loss terms are pure functions in :mod:`medgan_core.losses`
(:class:`~medgan_core.losses.Lambdas`, :func:`~medgan_core.losses.d_sqaggan`,
:func:`~medgan_core.losses.g_sqaggan`, ...); :func:`update` wires them.

Built by name through :func:`medgan_core.models.registry.build_gan` (``"sqaggan"``, or
``"sqaggan_no_lstm"`` for the ablation, with ``num_features``, ``lam`` and ``grad_checkpoint``),
which calls :func:`build`; :func:`train_step` draws the step's batch from a
:class:`~medgan_core.data.nodule_sequences.NoduleBatches` and runs :func:`update`.
:func:`generate` runs ``G`` over a whole set and :func:`five_panel_snapshot` makes the
write-up's five panels.

Shapes: sequences `(B, T, 1, H, W)` in [-1, 1], masks `(B, T, 1, H, W)` in {0, 1}, features
`(B, F)` in [0, 1]; ``H, W`` divisible by 8 (generator) and >= 16 (discriminator). Outputs:
``G`` -> `(B, T, 1, H, W)` (tanh); ``D(image, mask)`` with `(B, 1, H, W)` each ->
``(critic (B,), features (B, F), presence logit (B,))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from medgan_core.data.nodule_sequences import sequence_tensor
from medgan_core.losses import Lambdas, background_l1, d_sqaggan, g_sqaggan, gradient_penalty, nodule_l1
from medgan_core.models.convlstm import BiConvLSTM
from medgan_core.train.cost import count_parameters
from medgan_core.train.device import amp_context
from medgan_core.train.guard import check_finite

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NAMES = ("sqaggan", "sqaggan_no_lstm")
BETAS = {"sqaggan": (0.5, 0.9), "sqaggan_no_lstm": (0.5, 0.9)}  # Adam betas of WGAN-GP
PAPER_LR = {"sqaggan": 1e-4, "sqaggan_no_lstm": 1e-4}  # the WGAN-GP critic's rate (Gulrajani et al. 2017)


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """Two (3x3 conv, instance norm, LeakyReLU) layers: the U-Net's unit, applied per slice."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.InstanceNorm2d(c_out, affine=True), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.InstanceNorm2d(c_out, affine=True), nn.LeakyReLU(0.2, inplace=True),
    )


class _PerSlice(nn.Module):
    """Apply a 2D module to every slice of a `(B, T, C, H, W)` sequence (the ablation's stand-in)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        """Run the module on each slice.

        Args:
            x: `(B, T, C, H, W)`.
        """
        b, t = x.shape[:2]
        return self.module(x.flatten(0, 1)).unflatten(0, (b, t))


class SQAGGANGenerator(nn.Module):
    """U-Net over slice sequences with Bi-ConvLSTMs after the encoder and after the decoder.

    Args:
        num_features: length of the feature vector ``f`` (e.g. 2: malignancy, spiculation).
        base_width: channels of the first level (then 2x, 4x; the bottleneck LSTM has 8x).
        bilstm: use the two Bi-ConvLSTMs; ``False`` (the ablation) puts per-slice 3x3 conv
            blocks of the same widths in their place, so no information crosses slices.
        grad_checkpoint: recompute each U-Net block and each Bi-ConvLSTM in the backward pass
            (saves activation memory for about one extra forward pass of compute).
    """

    def __init__(self, num_features: int, base_width: int = 64, bilstm: bool = True,
                 grad_checkpoint: bool = False) -> None:
        super().__init__()
        if num_features < 0 or base_width < 1:
            raise ValueError(f"num_features must be >= 0 and base_width >= 1; got {num_features}, {base_width}.")
        self.num_features, self.bilstm, self.grad_checkpoint = num_features, bilstm, grad_checkpoint
        w = [base_width, 2 * base_width, 4 * base_width]
        self.enc = nn.ModuleList([_double_conv(2 + num_features, w[0]), _double_conv(w[0], w[1]),
                                  _double_conv(w[1], w[2])])
        bottleneck = 8 * base_width
        self.mid = BiConvLSTM(w[2], bottleneck) if bilstm else _PerSlice(_double_conv(w[2], bottleneck))
        ups_in = [bottleneck, w[2], w[1]]
        self.up = nn.ModuleList([nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in ups_in])
        self.dec = nn.ModuleList([_double_conv(w[2] * 2, w[2]), _double_conv(w[1] * 2, w[1]),
                                  _double_conv(w[0] * 2, w[0])])
        self.end = BiConvLSTM(w[0], w[0]) if bilstm else _PerSlice(_double_conv(w[0], w[0]))
        self.out = nn.Conv2d(w[0], 1, 1)

    def _run(self, block: nn.Module, x: Tensor) -> Tensor:
        """Apply ``block``, with gradient checkpointing when asked for and training."""
        if self.grad_checkpoint and self.training and x.requires_grad:
            return checkpoint(block, x, use_reentrant=False)
        return block(x)

    def forward(self, x_in: Tensor, mask: Tensor, f: Tensor) -> Tensor:
        """Generate a sequence.

        Args:
            x_in: `(B, T, 1, H, W)`: ``x'`` (reconstruction) or ``y`` (injection), in [-1, 1].
            mask: `(B, T, 1, H, W)` nodule mask ``M_n`` in {0, 1}.
            f: `(B, F)` nodule features in [0, 1].

        Returns:
            `(B, T, 1, H, W)` in [-1, 1].
        """
        if x_in.dim() != 5 or x_in.shape[2] != 1 or mask.shape != x_in.shape:
            raise ValueError(f"x_in and mask must both be (B, T, 1, H, W); got {tuple(x_in.shape)} and "
                             f"{tuple(mask.shape)}.")
        b, t, _, hh, ww = x_in.shape
        if hh % 8 or ww % 8:
            raise ValueError(f"H and W must be divisible by 8 (three poolings); got {hh}x{ww}. Change the crop size.")
        if f.shape != (b, self.num_features):
            raise ValueError(f"f must be (B, {self.num_features}) = ({b}, {self.num_features}); got {tuple(f.shape)}.")
        f_map = f[:, None, :, None, None].expand(b, t, self.num_features, hh, ww)
        h = torch.cat([x_in, mask.to(x_in.dtype), f_map.to(x_in.dtype)], dim=2).flatten(0, 1)  # `(B T, 2+F, H, W)`
        skips = []
        for block in self.enc:
            h = self._run(block, h)
            skips.append(h)
            h = F.max_pool2d(h, 2)
        h = self._run(self.mid, h.unflatten(0, (b, t))).flatten(0, 1)  # `(B T, 8 w, H/8, W/8)`
        for up, block, skip in zip(self.up, self.dec, reversed(skips)):
            h = self._run(block, torch.cat([up(h), skip], dim=1))
        h = self._run(self.end, h.unflatten(0, (b, t)))  # `(B, T, w, H, W)`
        return torch.tanh(self.out(h.flatten(0, 1))).unflatten(0, (b, t))


class SQAGGANDiscriminator(nn.Module):
    """Four stride-2 convolutions, global average pooling, and three linear heads.

    No normalisation layers (a WGAN-GP critic must not mix samples of a batch).

    Args:
        num_features: length of ``f`` predicted by ``C_F``.
        base_width: channels of the first layer (then 2x, 4x, 8x).
    """

    def __init__(self, num_features: int, base_width: int = 64) -> None:
        super().__init__()
        w = [base_width, 2 * base_width, 4 * base_width, 8 * base_width]
        layers: list[nn.Module] = []
        c_in = 2
        for c in w:
            layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.critic = nn.Linear(w[-1], 1)
        self.features = nn.Linear(w[-1], num_features)
        self.presence = nn.Linear(w[-1], 1)

    def forward(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Score a middle slice.

        Args:
            image: `(B, 1, H, W)` in [-1, 1].
            mask: `(B, 1, H, W)` the mask channel (nodule mask).

        Returns:
            ``(critic (B,), features (B, F), presence logit (B,))``.
        """
        if image.dim() != 4 or image.shape[1] != 1 or mask.shape != image.shape:
            raise ValueError(f"image and mask must both be (B, 1, H, W); got {tuple(image.shape)}, "
                             f"{tuple(mask.shape)}.")
        if min(image.shape[-2:]) < 16:
            raise ValueError(f"the discriminator needs slices of at least 16 px; got {tuple(image.shape[-2:])}.")
        h = self.body(torch.cat([image, mask.to(image.dtype)], dim=1)).mean(dim=(2, 3))  # `(B, 8 w)`
        return self.critic(h).squeeze(1), self.features(h), self.presence(h).squeeze(1)


# --- registry hooks ---------------------------------------------------------------------------

def generator(name: str, *, num_features: int, width_G: int = 64, grad_checkpoint: bool = False) -> SQAGGANGenerator:
    """The generator by its registry name.

    Args:
        name: ``"sqaggan"`` (with the Bi-ConvLSTMs) or ``"sqaggan_no_lstm"`` (the ablation).
        num_features: length of ``f``.
        width_G: first-level channels.
        grad_checkpoint: recompute blocks in the backward pass.
    """
    return SQAGGANGenerator(num_features, width_G, bilstm=name == "sqaggan", grad_checkpoint=grad_checkpoint)


def discriminator(name: str = "sqaggan", *, num_features: int, width_D: int = 64) -> SQAGGANDiscriminator:
    """The three-headed discriminator (the same for both names).

    Args:
        name: ``"sqaggan"`` or ``"sqaggan_no_lstm"``.
        num_features: length of ``f``.
        width_D: first-layer channels.
    """
    return SQAGGANDiscriminator(num_features, width_D)


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """Seeded networks for :func:`~medgan_core.models.registry.build_gan`: ``torch.manual_seed(seed)``, G, then D.

    Args:
        name: ``"sqaggan"`` or ``"sqaggan_no_lstm"``.
        settings: the registry's settings (``num_features``, ``width_G``, ``width_D``,
            ``grad_checkpoint``, ``seed``).

    Returns:
        ``(net_G, net_D, extras)`` on the CPU; ``extras`` is empty.
    """
    s = settings
    if not isinstance(s.get("num_features"), int) or s["num_features"] < 0:
        raise ValueError(f"{name} needs num_features= (the length of f, e.g. seqs.f.shape[1]), got "
                         f"{s.get('num_features')!r}.")
    if not isinstance(s.get("lam"), Lambdas):
        raise ValueError(f"lam must be a medgan_core.losses.Lambdas, got {type(s.get('lam')).__name__}.")
    torch.manual_seed(s["seed"])
    net_G = generator(name, num_features=s["num_features"], width_G=s["width_G"], grad_checkpoint=s["grad_checkpoint"])
    net_D = discriminator(name, num_features=s["num_features"], width_D=s["width_D"])
    return net_G, net_D, {}


# --- one training step ----------------------------------------------------------------------

def _check_batch(batch: dict[str, Tensor]) -> None:
    need = ("x", "x_removed", "m", "y", "f")
    missing = [k for k in need if k not in batch]
    if missing:
        raise ValueError(f"the batch lacks {missing}; build it with medgan_core.data.nodule_sequences.")
    shape = batch["x"].shape
    for k in ("x_removed", "m", "y"):
        if batch[k].shape != shape:
            raise ValueError(f"batch[{k!r}] has shape {tuple(batch[k].shape)}, batch['x'] {tuple(shape)}; all "
                             "sequences must be (B, T, 1, H, W).")


def generate_pair(net_G: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Return ``(G(x'), G(y))`` for a batch.

    Args:
        net_G: the generator.
        batch: ``x_removed``, ``y``, ``m`` `(B, T, 1, H, W)` and ``f`` `(B, F)`.
    """
    x_in = torch.cat([batch["x_removed"], batch["y"]])
    out = net_G(x_in, torch.cat([batch["m"], batch["m"]]), torch.cat([batch["f"], batch["f"]]))
    return out.chunk(2)


def _d_terms(net_D: nn.Module, batch: dict[str, Tensor], g_rec: Tensor, g_inj: Tensor, lam: Lambdas, amp: bool,
             gen: torch.Generator | None = None) -> dict[str, Tensor]:
    """``L_D`` and its terms for detached middle slices ``g_rec`` = ``G(x')_m``, ``g_inj`` = ``G(y)_m`` `(B, 1, H, W)`."""
    x, m, y, f = batch["x"], batch["m"], batch["y"], batch["f"]
    t_mid = x.shape[1] // 2
    m_mid = m[:, t_mid]  # `(B, 1, H, W)`
    bg_mid = 1.0 - m_mid
    critic = lambda img, msk: net_D(img, msk)[0]  # noqa: E731  (the critic head alone, for the penalty)
    with amp_context(x.device, amp):
        c_x, f_x, e_x = net_D(x[:, t_mid], m_mid)
        c_rec, f_rec, e_rec = net_D(g_rec, m_mid)
        c_ybg = net_D(y[:, t_mid] * bg_mid, m_mid)[0]
        c_injbg = net_D(g_inj * bg_mid, m_mid)[0]
        _, _, e_y = net_D(y[:, t_mid], m_mid)
        _, f_inj, e_inj = net_D(g_inj, m_mid)
    with torch.enable_grad():  # the penalty differentiates the critic, also when validating
        gp_f = gradient_penalty(critic, x[:, t_mid], g_rec, m_mid, generator=gen)
        gp_b = gradient_penalty(critic, y[:, t_mid] * bg_mid, g_inj * bg_mid, m_mid, generator=gen)
    return d_sqaggan(c_x.float(), c_rec.float(), c_ybg.float(), c_injbg.float(),
                     [f_x.float(), f_rec.float(), f_inj.float()], f,
                     [e_x.float(), e_rec.float(), e_inj.float()], [e_y.float()], gp_f, gp_b, lam)


def _g_terms(net_D: nn.Module, batch: dict[str, Tensor], g_rec_seq: Tensor, g_inj_seq: Tensor, lam: Lambdas,
             amp: bool) -> dict[str, Tensor]:
    """``L_G`` and its terms for the generated sequences (``D``'s weights get no gradient)."""
    x, m, y, f = batch["x"], batch["m"], batch["y"], batch["f"]
    t_mid = x.shape[1] // 2
    m_mid = m[:, t_mid]
    bg_mid = 1.0 - m_mid
    flags = [p.requires_grad for p in net_D.parameters()]
    net_D.requires_grad_(False)
    try:
        with amp_context(x.device, amp):
            c_rec, f_rec, e_rec = net_D(g_rec_seq[:, t_mid], m_mid)
            c_injbg = net_D(g_inj_seq[:, t_mid] * bg_mid, m_mid)[0]
            _, f_inj, e_inj = net_D(g_inj_seq[:, t_mid], m_mid)
        return g_sqaggan(c_rec.float(), c_injbg.float(), [f_rec.float(), f_inj.float()], f,
                         [e_rec.float(), e_inj.float()], nodule_l1(g_rec_seq, g_inj_seq, x, m),
                         background_l1(g_rec_seq, g_inj_seq, x, y, 1.0 - m), lam)
    finally:
        for p, flag in zip(net_D.parameters(), flags):
            p.requires_grad_(flag)


def update(net_G: nn.Module, net_D: nn.Module, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer,
           batch: dict[str, Tensor], lam: Lambdas, n_critic: int = 1, amp: bool = False,
           step: int | None = None) -> dict[str, float]:
    """One SQ-AGGAN update: ``n_critic`` steps on ``L_D``, then one on ``L_G``.

    With ``lam.reconstruction_only`` (no discriminator term reaches ``G``) the critic steps are
    skipped and ``G`` trains on its two L1 terms alone: the reconstruction-only yardstick.

    Args:
        net_G: the generator.
        net_D: the discriminator.
        opt_G: the generator's optimiser.
        opt_D: the discriminator's optimiser.
        batch: ``x``, ``x_removed``, ``m``, ``y`` `(B, T, 1, H, W)` and ``f`` `(B, F)`.
        lam: the loss weights.
        n_critic: discriminator steps per generator step.
        amp: bf16 autocast on CUDA (a no-op on CPU).
        step: the training step, quoted if a loss is not finite.

    Returns:
        Every loss term as a float (``loss_D``, ``loss_G`` and their parts).
    """
    _check_batch(batch)
    t_mid = batch["x"].shape[1] // 2
    # One generator pass serves both updates (as in pix2pix): the critic sees it detached, the
    # generator step back-propagates through it after the critic has moved.
    with amp_context(batch["x"].device, amp):
        g_rec_seq, g_inj_seq = generate_pair(net_G, batch)
    g_rec_seq, g_inj_seq = g_rec_seq.float(), g_inj_seq.float()
    out: dict[str, float] = {}
    for _ in range(0 if lam.reconstruction_only else n_critic):
        terms = _d_terms(net_D, batch, g_rec_seq.detach()[:, t_mid], g_inj_seq.detach()[:, t_mid], lam, amp)
        check_finite("loss_D", terms["loss_D"], step)
        opt_D.zero_grad(set_to_none=True)
        terms["loss_D"].backward()
        opt_D.step()
        out.update({k: v.item() for k, v in terms.items()})
    terms = _g_terms(net_D, batch, g_rec_seq, g_inj_seq, lam, amp)
    check_finite("loss_G", terms["loss_G"], step)
    opt_G.zero_grad(set_to_none=True)
    terms["loss_G"].backward()
    opt_G.step()
    out.update({k: v.item() for k, v in terms.items()})
    return out


@torch.no_grad()
def loss_terms(net_G: nn.Module, net_D: nn.Module, batch: dict[str, Tensor], lam: Lambdas,
               seed: int = 0) -> dict[str, float]:
    """Every term of ``L_D`` and ``L_G`` on a batch, without training (for validation curves).

    Both networks run in eval mode (restored after); the penalty's interpolation weights come from
    a generator seeded with ``seed``, so the global RNG is untouched and repeated calls agree.

    Args:
        net_G: the generator.
        net_D: the discriminator.
        batch: as for :func:`update` (e.g. a validation patient's crops).
        lam: the loss weights.
        seed: seed of the gradient penalty's interpolation weights.

    Returns:
        The same keys as :func:`update`.
    """
    _check_batch(batch)
    t_mid = batch["x"].shape[1] // 2
    modes = net_G.training, net_D.training
    net_G.eval(), net_D.eval()
    try:
        g_rec_seq, g_inj_seq = (g.float() for g in generate_pair(net_G, batch))
        gen = torch.Generator(device=batch["x"].device).manual_seed(int(seed))
        terms = _d_terms(net_D, batch, g_rec_seq[:, t_mid], g_inj_seq[:, t_mid], lam, False, gen)
        terms |= _g_terms(net_D, batch, g_rec_seq, g_inj_seq, lam, False)
    finally:
        net_G.train(modes[0]), net_D.train(modes[1])
    return {k: float(v) for k, v in terms.items()}


def random_batch(batch: int, seq_len: int, size: int, num_features: int, seed: int = 0,
                 device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """A random batch of SQ-AGGAN's shapes, for timing and memory measurements (not for training).

    ``x``, ``x_removed``, ``y`` uniform in [-1, 1], ``m`` on where a uniform draw exceeds 0.9,
    ``f`` uniform in [0, 1], all from ``torch.Generator().manual_seed(seed)``.

    Args:
        batch: sequences ``B``.
        seq_len: slices ``T``.
        size: slice side ``S`` (divisible by 8, at least 16).
        num_features: length ``F`` of ``f``.
        seed: seed of the draws.
        device: where the tensors go.

    Returns:
        ``{x, x_removed, m, y}`` `(B, T, 1, S, S)` and ``f`` `(B, F)`.
    """
    gen = torch.Generator().manual_seed(int(seed))
    shape = (batch, seq_len, 1, size, size)
    out = {k: torch.rand(shape, generator=gen) * 2 - 1 for k in ("x", "x_removed", "y")}
    out["m"] = (torch.rand(shape, generator=gen) > 0.9).float()
    out["f"] = torch.rand(batch, num_features, generator=gen)
    return {k: v.to(device) for k, v in out.items()}


def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One SQ-AGGAN step: ``batch = data.batch(step)``, then :func:`update` (``n_critic`` steps on
    ``L_D``, one on ``L_G``), then the EMA (if any).

    Args:
        gan: a ``"sqaggan"`` or ``"sqaggan_no_lstm"`` GAN (``settings``: ``lam``, ``n_critic``, ``amp``).
        data: a :class:`~medgan_core.data.nodule_sequences.NoduleBatches`.
        step: the 0-based training step.

    Returns:
        Every loss term as a float (``loss_D``, ``loss_G`` and their parts).
    """
    s = gan.settings
    batch = data.batch(step)
    out = update(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, batch, s["lam"], n_critic=s["n_critic"], amp=s["amp"],
                 step=step)
    if gan.ema is not None:
        gan.ema.update(gan.net_G)
    return out


@torch.no_grad()
def generate(net_G: nn.Module, x_in: np.ndarray, m: np.ndarray, f: np.ndarray, batch_size: int = 64,
             device: torch.device | str = "cpu") -> np.ndarray:
    """Run ``G`` over a set in eval mode (the mode is restored after).

    Args:
        net_G: the generator.
        x_in: `(N, T, S, S)` inputs (``x'`` or ``y``) in [-1, 1].
        m: `(N, T, S, S)` nodule masks.
        f: `(N, F)` features in [0, 1].
        batch_size: sequences per forward pass.
        device: where to run.

    Returns:
        `(N, T, S, S)` float32 in [-1, 1].
    """
    if not (len(x_in) == len(m) == len(f)):
        raise ValueError(f"x_in, m and f need one length; got {len(x_in)}, {len(m)}, {len(f)}.")
    was = net_G.training
    net_G.eval()
    out = []
    for i in range(0, len(x_in), batch_size):
        sl = slice(i, i + batch_size)
        o = net_G(sequence_tensor(x_in[sl], device), sequence_tensor(m[sl], device),
                  torch.as_tensor(f[sl], dtype=torch.float32, device=device))
        out.append(o.squeeze(2).float().cpu().numpy())
    net_G.train(was)
    return np.concatenate(out) if out else np.zeros((0,) + tuple(x_in.shape[1:]), np.float32)


@torch.no_grad()
def five_panel_snapshot(net_G: nn.Module, fixed_batch: dict[str, Tensor]) -> np.ndarray:
    """The write-up's five panels of fixed examples: middle slices of ``x``, ``x'``, ``G(x')``, ``y``, ``G(y)``.

    ``G`` runs in eval mode (the mode is restored after).

    Args:
        net_G: the generator.
        fixed_batch: ``x``, ``x_removed``, ``m``, ``y`` `(R, T, 1, S, S)` and ``f`` `(R, F)`
            (e.g. :meth:`~medgan_core.data.nodule_sequences.NoduleBatches.fixed`).

    Returns:
        `(R, 5, S, S)` float32: original, erased, reconstructed, background, injected.
    """
    _check_batch(fixed_batch)
    t_mid = fixed_batch["x"].shape[1] // 2
    was = net_G.training
    net_G.eval()
    try:
        g_rec, g_inj = generate_pair(net_G, fixed_batch)
    finally:
        net_G.train(was)
    panels = torch.stack([fixed_batch["x"][:, t_mid, 0], fixed_batch["x_removed"][:, t_mid, 0], g_rec[:, t_mid, 0],
                          fixed_batch["y"][:, t_mid, 0], g_inj[:, t_mid, 0]], dim=1)  # `(R, 5, S, S)`
    return panels.float().cpu().numpy()


def config_summary(net_G: nn.Module, net_D: nn.Module) -> dict[str, Any]:
    """Parameter counts of a generator/discriminator pair.

    Args:
        net_G: the generator.
        net_D: the discriminator.
    """
    n_g, n_d = count_parameters(net_G), count_parameters(net_D)
    return {"params_G": n_g, "params_D": n_d, "params_total": n_g + n_d}
