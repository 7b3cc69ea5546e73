"""The CheXpert write-up's feature GAN: a class-conditional GAN over CNN feature maps, and the classifier it feeds.

Instead of images, the GAN learns the feature maps ``f = E(x)`` of the extractor of
:class:`~medgan_core.models.vgg_extractor.VGGFeatureClassifier` (`(B, 512, 10, 10)` at 160 px and
full width), and the layers after the split (the *head* ``h``) are trained further on real and
generated features. The write-up does not say how generated features get a class label; here the
generator is **class-conditional** (a label embedding concatenated with ``z``) and the
discriminator is a projection discriminator, so a generated feature map has the label it was asked for.

Features are scaled to [-1, 1] for the GAN (the generator ends in tanh, as in the write-up) by a
per-channel :class:`FeatureScaler` fitted on the training features (its 0.5th and 99.5th
percentiles map to -1 and 1; values beyond are clipped); the head sees features on their own scale
again (``scaler.inverse``). Objective (non-saturating GAN loss on logits,
:func:`medgan_core.losses.get_losses` ``("nonsaturating")``):

    loss_D = -E[log sigma(D(s(f), y))] - E[log(1 - sigma(D(G(z, y), y)))],    loss_G = -E[log sigma(D(G(z, y), y))]
    loss_h = CE(h(s^-1(G(z, y'))), y')   every ``fake_every`` steps (y' uniform over the classes)
             CE(h(f), y)                 every ``real_every`` steps (the real batch)

with the write-up's learning rates G 1e-3, D 1e-4 and head 1e-7 (Adam; betas (0.5, 0.999), which
the write-up does not give) and cadence 2 and 5. The family setting ``r1_weight`` (``gamma``, 0 by
default: the write-up's GAN) adds ``gamma / 2 * R1`` (:func:`medgan_core.losses.r1_penalty`) to
``loss_D``; experiment 03 uses 1, because without it the generator collapses to one point per
class. Uniform ``y'`` is what makes the generated features a remedy for imbalance: every class is
drawn equally often.

Shapes: :class:`FeatureGenerator` ``z`` `(B, nz)`, ``y`` `(B,)` -> linear -> `(B, 2^u w_G, S/2^u, S/2^u)`
-> ``u`` transposed convolutions (stride 2; ``u = 2`` when ``S`` is divisible by 4, else 1) -> 3x3
conv -> tanh -> `(B, C, S, S)`. :class:`FeatureDiscriminator` `(B, C, S, S)`, ``y`` -> three 5x5
convolutions (``w_D``, ``2 w_D`` stride 2, ``4 w_D``) -> FC ``16 w_D`` -> FC ``w_D`` -> logit
``w^T h + <e(y), h> + b`` `(B,)` (the write-up's three 5x5 convs, FC 1024, 64, 1 at ``w_D = 64``).
Built by name through :func:`medgan_core.models.registry.build_gan` (``"feature_gan"``, with
``channels = C`` and ``image_size = S`` of the feature map); :func:`attach_head` adds the head,
its optimiser and the cadence; :func:`train_step` is one update.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan_core.losses import get_losses
from medgan_core.models.cgan import _check_labels  # the one label check of the conditional families
from medgan_core.train.loop import adversarial_step

if TYPE_CHECKING:
    from medgan_core.models.registry import GAN

NAMES = ("feature_gan",)
BETAS = {"feature_gan": (0.5, 0.999)}  # the write-up gives none; DCGAN's
PAPER_LR = {"feature_gan": (1e-3, 1e-4)}  # (G, D): the write-up's own learning rates
HEAD_LR = 1e-7  # the write-up's learning rate of the classifier head
QUANTILE = 0.005  # FeatureScaler maps this quantile and 1 - it of each channel to -1 and 1


class FeatureScaler(nn.Module):
    """Per-channel affine map of feature maps to [-1, 1] (clipped) and back.

    Args:
        low: `(C,)` value mapped to -1.
        high: `(C,)` value mapped to 1 (a channel with ``high <= low`` gets ``high = low + 1``).
    """

    def __init__(self, low: Tensor, high: Tensor) -> None:
        super().__init__()
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        if low.ndim != 1 or low.shape != high.shape:
            raise ValueError(f"low and high must be (C,) vectors of one shape, got {tuple(low.shape)} and "
                             f"{tuple(high.shape)}.")
        self.register_buffer("low", low.clone())
        self.register_buffer("high", torch.where(high > low, high, low + 1.0))

    @classmethod
    def fit(cls, features: Tensor, quantile: float = QUANTILE) -> "FeatureScaler":
        """Fit on training features `(N, C, S, S)`: per channel, the ``quantile`` and ``1 - quantile`` values."""
        if features.ndim != 4 or not len(features):
            raise ValueError(f"features must be a non-empty (N, C, S, S) tensor, got {tuple(features.shape)}.")
        if not 0.0 <= quantile < 0.5:
            raise ValueError(f"quantile must lie in [0, 0.5), got {quantile}.")
        flat = features.detach().float().transpose(0, 1).reshape(features.shape[1], -1)  # `(C, N S S)`
        return cls(torch.quantile(flat, quantile, dim=1), torch.quantile(flat, 1.0 - quantile, dim=1))

    def _shape(self, f: Tensor) -> tuple[Tensor, Tensor]:
        if f.ndim != 4 or f.shape[1] != len(self.low):
            raise ValueError(f"expected feature maps (B, {len(self.low)}, S, S), got {tuple(f.shape)}.")
        return self.low.view(1, -1, 1, 1), self.high.view(1, -1, 1, 1)

    def forward(self, f: Tensor) -> Tensor:
        """Features `(B, C, S, S)` on their own scale -> [-1, 1]."""
        low, high = self._shape(f)
        return (2.0 * (f - low) / (high - low) - 1.0).clamp(-1.0, 1.0)

    def inverse(self, s: Tensor) -> Tensor:
        """Scaled features in [-1, 1] -> their own scale."""
        low, high = self._shape(s)
        return low + (s + 1.0) * 0.5 * (high - low)


class FeatureGenerator(nn.Module):
    """``G(z, y)``: noise and a label embedding -> a feature map in [-1, 1].

    Args:
        num_classes: ``K`` (>= 2).
        nz: latent size (100 in the write-up); the label embedding has the same size.
        image_size: side ``S`` of the feature map (10 at 160 px, deep split).
        channels: channels ``C`` of the feature map (512 at full width, deep split).
        width: ``w_G``, channels of the last transposed convolution.
    """

    def __init__(self, num_classes: int, nz: int = 100, image_size: int = 10, channels: int = 512,
                 width: int = 64) -> None:
        super().__init__()
        if num_classes < 2 or image_size < 2 or image_size % 2 or channels < 1 or width < 1:
            raise ValueError(f"need num_classes >= 2, an even image_size >= 2, channels >= 1 and width >= 1; got "
                             f"{num_classes}, {image_size}, {channels}, {width}.")
        self.num_classes, self.nz, self.image_size, self.channels = num_classes, nz, image_size, channels
        ups = 2 if image_size % 4 == 0 else 1
        self.start, self.c0 = image_size // 2 ** ups, width * 2 ** ups
        self.embed = nn.Embedding(num_classes, nz)
        self.fc = nn.Sequential(nn.Linear(2 * nz, self.c0 * self.start ** 2), nn.BatchNorm1d(self.c0 * self.start ** 2),
                                nn.ReLU())
        layers: list[nn.Module] = []
        c = self.c0
        for _ in range(ups):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU()]
            c //= 2
        self.body = nn.Sequential(*layers, nn.Conv2d(c, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        """Feature maps `(B, C, S, S)` in [-1, 1] of the classes ``y`` `(B,)` from ``z`` `(B, nz)`."""
        _check_labels(y, z.shape[0], self.num_classes)
        h = self.fc(torch.cat([z, self.embed(y)], dim=1))  # `(B, c0 S0 S0)`
        return self.body(h.view(-1, self.c0, self.start, self.start))


class FeatureDiscriminator(nn.Module):
    """``D(f, y)``: three 5x5 convolutions, two FC layers and a projection of the label; a logit.

    Args:
        num_classes: ``K``.
        image_size: side ``S`` of the feature map.
        channels: its channels ``C``.
        width: ``w_D`` (64 in the write-up: FC 1024 and 64).
    """

    def __init__(self, num_classes: int, image_size: int = 10, channels: int = 512, width: int = 64) -> None:
        super().__init__()
        self.num_classes = num_classes
        act = nn.LeakyReLU(0.2)
        self.convs = nn.Sequential(nn.Conv2d(channels, width, 5, padding=2), act,
                                   nn.Conv2d(width, 2 * width, 5, stride=2, padding=2), act,
                                   nn.Conv2d(2 * width, 4 * width, 5, padding=2), act)
        side = (image_size + 1) // 2
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(4 * width * side * side, 16 * width), act,
                                nn.Linear(16 * width, width), act)
        self.out = nn.Linear(width, 1)
        self.embed = nn.Embedding(num_classes, width)  # projection: <e(y), h>

    def forward(self, f: Tensor, y: Tensor) -> Tensor:
        """Logits `(B,)` (higher: more real for class ``y``) of scaled feature maps `(B, C, S, S)`."""
        _check_labels(y, f.shape[0], self.num_classes)
        h = self.fc(self.convs(f))  # `(B, w_D)`
        return (self.out(h).squeeze(1) + (self.embed(y) * h).sum(1))


def generator(name: str = "feature_gan", *, num_classes: int, nz: int = 100, image_size: int = 10,
              channels: int = 512, width_G: int = 64) -> FeatureGenerator:
    """The feature generator, by its registry name (``"feature_gan"``)."""
    return FeatureGenerator(num_classes, nz, image_size, channels, width_G)


def discriminator(name: str = "feature_gan", *, num_classes: int, image_size: int = 10, channels: int = 512,
                  width_D: int = 64) -> FeatureDiscriminator:
    """The feature discriminator, by its registry name (``"feature_gan"``)."""
    return FeatureDiscriminator(num_classes, image_size, channels, width_D)


def build(name: str, settings: dict[str, Any]) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """Seeded ``(net_G, net_D, {})`` for :func:`~medgan_core.models.registry.build_gan` (``torch.manual_seed(seed)``)."""
    s = settings
    if s["num_classes"] < 2:
        raise ValueError(f"{name} is class-conditional: pass num_classes >= 2, got {s['num_classes']}.")
    if not s["r1_weight"] >= 0:
        raise ValueError(f"r1_weight must be >= 0 (0: no R1 penalty), got {s['r1_weight']}.")
    torch.manual_seed(s["seed"])
    net_G = generator(name, num_classes=s["num_classes"], nz=s["nz"], image_size=s["image_size"],
                      channels=s["channels"], width_G=s["width_G"])
    net_D = discriminator(name, num_classes=s["num_classes"], image_size=s["image_size"], channels=s["channels"],
                          width_D=s["width_D"])
    return net_G, net_D, {}


def attach_head(gan: "GAN", head: nn.Module, scaler: FeatureScaler, fake_every: int = 2, real_every: int = 5,
                lr_head: float = HEAD_LR) -> None:
    """Give a feature GAN the classifier head it trains alongside (the write-up's step 2).

    The head and the scaler become ``gan.extras`` (checkpointed with the networks), the head's Adam
    ``gan.extra_opts["head"]``, the cadence and rate ``gan.settings``.

    Args:
        gan: a ``"feature_gan"`` GAN.
        head: the layers after the split, initialised from step 1 (``VGGFeatureClassifier.head``, a copy).
        scaler: the :class:`FeatureScaler` the GAN's features were scaled with.
        fake_every: train the head on a generated batch every this many steps (the write-up's 2).
        real_every: train it on the real batch every this many steps (the write-up's 5).
        lr_head: the head's Adam learning rate (the write-up's 1e-7).
    """
    if gan.name not in NAMES:
        raise ValueError(f"attach_head is for {NAMES}, not {gan.name!r}.")
    for label, every in (("fake_every", fake_every), ("real_every", real_every)):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"{label} must be an int >= 1 (steps between head updates), got {every!r}.")
    if not lr_head > 0:
        raise ValueError(f"lr_head must be > 0, got {lr_head}.")
    dev = torch.device(gan.settings["device"])
    gan.extras.update(head=head.to(dev).train(), scaler=scaler.to(dev))
    gan.extra_opts["head"] = torch.optim.Adam(head.parameters(), lr=lr_head, betas=BETAS[gan.name])
    gan.settings.update(fake_every=fake_every, real_every=real_every, lr_head=float(lr_head))


def head_due(step: int, fake_every: int, real_every: int) -> tuple[bool, bool]:
    """``(on a generated batch, on the real batch)``: which head updates step ``step`` (0-based) makes."""
    return step % fake_every == 0, step % real_every == 0


def _head_update(gan: "GAN", f: Tensor, y: Tensor) -> float:
    """One Adam step of the head on features on their own scale; the cross-entropy as a float."""
    head, opt = gan.extras["head"], gan.extra_opts["head"]
    loss = F.cross_entropy(head(f), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def train_step(gan: "GAN", data: Any, step: int) -> dict[str, float]:
    """One feature-GAN update, then the head's updates that are due (:func:`head_due`).

    ``(f, y) = data.batch(step)`` (scaled real features and labels); one D step and one G step with
    fakes ``G(z, y)`` of the batch's own classes (:func:`~medgan_core.train.loop.adversarial_step`);
    then, with a head attached, a head step on ``s^-1(G(z, y'))`` (``y'`` uniform, ``G`` in eval
    mode and without gradients) when the fake update is due, and on ``s^-1(f)`` when the real one is.
    The registry's ``accumulate`` splits the GAN update into micro-batches, not the head's updates.

    Returns:
        ``loss_D``, ``loss_G``, ``d_real``, ``d_fake``, and ``loss_head_fake`` / ``loss_head_real``
        on the steps that made them.
    """
    d_loss, g_loss = get_losses("nonsaturating")
    s, net_G = gan.settings, gan.net_G
    f_real, y_real = data.batch(step)  # `(B, C, S, S)` in [-1, 1], `(B,)`
    dev = f_real.device
    out = adversarial_step(net_G, gan.net_D, gan.opt_G, gan.opt_D, f_real, d_loss, g_loss,
                           make_fake=lambda n: net_G(torch.randn(n, s["nz"], device=dev), y_real), cond=(y_real,),
                           n_critic=s["n_critic"], r1_weight=s["r1_weight"], ema=gan.ema, step=step, amp=s["amp"],
                           accumulate=s["accumulate"])
    if "head" not in gan.extras:
        return out
    fake_due, real_due = head_due(step, s["fake_every"], s["real_every"])
    scaler = gan.extras["scaler"]
    if fake_due:
        y_fake = torch.randint(0, gan.num_classes, (len(y_real),), device=dev)
        was_training = net_G.training
        net_G.eval()
        with torch.no_grad():
            f_fake = scaler.inverse(net_G(torch.randn(len(y_fake), s["nz"], device=dev), y_fake))
        net_G.train(was_training)
        out["loss_head_fake"] = _head_update(gan, f_fake, y_fake)
    if real_due:
        out["loss_head_real"] = _head_update(gan, scaler.inverse(f_real), y_real)
    return out


@torch.no_grad()
def head_drift(before: nn.Module, after: nn.Module) -> dict[str, float]:
    """How far the head moved in the write-up's step 2: its weights, and its batch-norm running statistics.

    With the write-up's head learning rate of 1e-7 the weights barely move, but every head update in
    train mode also moves the batch-norm running means and variances toward the batch it saw
    (generated features included), whatever the learning rate. Both are relative L2 changes,
    ``||a - b|| / ||b||`` over all tensors of the kind.

    Args:
        before: the head as step 1 left it.
        after: the same head after step 2 (same architecture).

    Returns:
        ``{"weights": ..., "bn_running_stats": ...}`` (NaN for a kind the head does not have).
    """
    sb, sa = before.state_dict(), after.state_dict()
    if sb.keys() != sa.keys():
        raise ValueError("before and after must be the same head architecture (their state dicts differ in keys).")
    kinds = {"weights": [k for k, _ in before.named_parameters()],
             "bn_running_stats": [k for k in sb if k.endswith(("running_mean", "running_var"))]}
    out = {}
    for kind, keys in kinds.items():
        if not keys:
            out[kind] = float("nan")
            continue
        diff = torch.cat([(sa[k].float() - sb[k].float().to(sa[k].device)).flatten().cpu() for k in keys])
        base = torch.cat([sb[k].float().flatten().cpu() for k in keys])
        out[kind] = float(diff.norm() / base.norm().clamp_min(1e-12))
    return out
