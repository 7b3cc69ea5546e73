"""pix2pix's U-Net, conditional PatchGAN, builder, update step and translation (models/pix2pix.py)."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F

from medgan_core.models import pix2pix, tiling
from medgan_core.models.pix2pix import ConditionalPatchDiscriminator, UnetGenerator
from medgan_core.train.guard import NonFiniteLossError

SETTINGS = {"seed": 0, "channels": 1, "width_G": 4, "width_D": 4, "n_down": 3}


@pytest.mark.parametrize("n_down,size", [(1, (2, 6)), (2, (8, 8)), (3, (16, 24)), (5, (32, 32)), (5, (64, 32))])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_keeps_the_shape_of_inputs_divisible_by_2_to_the_n_down(n_down, size, channels):
    torch.manual_seed(0)
    x = torch.rand(2, channels, *size) * 2 - 1
    out = UnetGenerator(channels, width=4, n_down=n_down)(x)
    assert out.shape == x.shape and out.abs().max() <= 1.0


@pytest.mark.parametrize("shape", [(1, 1, 24, 32), (1, 1, 32, 20), (1, 32, 32)])
def test_generator_rejects_sides_not_divisible_by_2_to_the_n_down(shape):
    with pytest.raises(ValueError, match=r"divisible by 2\*\*n_down") as err:
        UnetGenerator(1, 4, n_down=4)(torch.zeros(shape))
    assert str(shape) in str(err.value)


@pytest.mark.parametrize("kw", [{"channels": 0}, {"width": 0}, {"n_down": 0}, {"dropout": 1.0}, {"dropout": -0.1}])
def test_generator_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        UnetGenerator(**kw)


def test_generator_layers_follow_the_paper():
    """C64-C128-C256-C512-C512-C512-C512-C512, no norm on the first and innermost, dropout in three decoder layers."""
    net_G = UnetGenerator(1, 64, 8)
    convs = [m for m in net_G.down.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 512, 512]
    normed = [any(isinstance(m, torch.nn.InstanceNorm2d) for m in d) for d in net_G.down]
    assert normed == [False] + [True] * 6 + [False]
    dropped = [any(isinstance(m, torch.nn.Dropout) for m in u) for u in net_G.up]  # outermost first
    assert dropped == [False] * 5 + [True] * 3
    assert not any(isinstance(m, torch.nn.Dropout) for m in UnetGenerator(1, 8, 8, dropout=0).modules())


def test_dropout_is_the_noise_in_train_mode_only():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    net_G = UnetGenerator(1, 8, 4)
    assert not torch.equal(net_G(x), net_G(x))
    net_G.eval()
    assert torch.equal(net_G(x), net_G(x))
    quiet = UnetGenerator(1, 8, 4, dropout=0.0)
    assert torch.equal(quiet(x), quiet(x))


def _forward_without_skips(net_G, x):
    """``net_G``'s forward with every skip replaced by zeros: the control of the next test."""
    skips, h = [], x
    for down in net_G.down:
        h = down(h)
        skips.append(h)
    h = net_G.up[-1](skips[-1])
    for i in range(net_G.n_down - 2, -1, -1):
        h = net_G.up[i](torch.cat([h, torch.zeros_like(skips[i])], 1))
    return h


@pytest.mark.parametrize("seed", [0, 1])
def test_skip_connections_carry_fine_detail_past_a_1x1_bottleneck(seed, one_thread):
    """With the bottleneck at 1x1 an output pixel still depends most on the input pixels around it
    (the mean |gradient| in its 5x5 window over the mean elsewhere); without the skips it does not."""
    torch.manual_seed(seed)
    net_G = UnetGenerator(1, 4, n_down=5, dropout=0.0)
    x = (torch.rand(1, 1, 32, 32) * 2 - 1).requires_grad_(True)
    pixels = [(16, 16), (5, 27), (0, 0), (30, 9), (12, 3), (24, 24)]
    x = x.expand(len(pixels), -1, -1, -1)  # one copy per output pixel: one backward pass for all of them

    def locality(forward):
        rows, cols = torch.tensor(pixels).T
        (grad,) = torch.autograd.grad(forward(x)[torch.arange(len(pixels)), 0, rows, cols].sum(), x)
        g = grad[:, 0].abs()  # `(6, 32, 32)`: copy k holds the gradient of output pixel k
        assert bool((g[torch.arange(len(pixels)), rows, cols] > 0).all())
        near = torch.zeros_like(g, dtype=torch.bool)
        for k, (r, c) in enumerate(pixels):
            near[k, max(r - 2, 0):r + 3, max(c - 2, 0):c + 3] = True
        ratios = torch.stack([g[k][near[k]].mean() / g[k][~near[k]].mean() for k in range(len(pixels))])
        return float(ratios.log().mean().exp())  # geometric mean over the pixels

    assert locality(net_G) > 2.0
    assert locality(lambda t: _forward_without_skips(net_G, t)) < 1.2


@pytest.mark.parametrize("size,grid", [(64, 6), (128, 14), (256, 30)])
@pytest.mark.parametrize("channels", [1, 3])
def test_conditional_patch_discriminator_grid_is_size_over_8_minus_2(size, grid, channels):
    net_D = ConditionalPatchDiscriminator(channels, width=4)
    assert net_D.net.net[0].in_channels == 2 * channels
    x = torch.zeros(2, channels, size, size)
    assert net_D(x, x).shape == (2, 1, grid, grid)


def test_conditional_patch_discriminator_sees_both_images_and_checks_their_shapes():
    torch.manual_seed(0)
    net_D = ConditionalPatchDiscriminator(1, 4)
    x, y = torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64)
    assert not torch.equal(net_D(x, y), net_D(y, x))
    assert torch.equal(net_D(x, y), net_D.net(torch.cat([x, y], 1)))
    with pytest.raises(ValueError, match="must have one shape"):
        net_D(x, torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match=">= 24"):
        net_D(x[..., :16, :16], y[..., :16, :16])


def test_build_is_seeded():
    def weights(seed):
        net_G, net_D, extras = pix2pix.build("pix2pix", {**SETTINGS, "seed": seed})
        assert extras == {} and isinstance(net_G, UnetGenerator) and isinstance(net_D, ConditionalPatchDiscriminator)
        return [p.detach().clone() for p in list(net_G.parameters()) + list(net_D.parameters())]

    same, again, other = weights(3), weights(3), weights(4)
    assert all(torch.equal(a, b) for a, b in zip(same, again))
    assert not all(torch.equal(a, b) for a, b in zip(same, other))
    assert pix2pix.generator(width_G=4, n_down=3).n_down == 3 and pix2pix.BETAS["pix2pix"] == (0.5, 0.999)


class Pairs:
    """Fixed seeded sources and their targets, a blurred negative of the source, at every step."""

    def __init__(self, n: int = 8, size: int = 32, nan: bool = False) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 1, size, size, generator=g) * 2 - 1
        self.y = -F.avg_pool2d(self.x, 3, stride=1, padding=1, count_include_pad=False)
        if nan:
            self.x[0, 0, 0, 0] = float("nan")

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x, self.y


def tiny_gan(**settings):
    s = {**SETTINGS, "width_G": 8, "width_D": 8, "n_down": 2, **settings}
    net_G, net_D, _ = pix2pix.build("pix2pix", s)
    return types.SimpleNamespace(net_G=net_G, net_D=net_D, settings=s,
                                 opt_G=torch.optim.Adam(net_G.parameters(), lr=2e-3, betas=pix2pix.BETAS["pix2pix"]),
                                 opt_D=torch.optim.Adam(net_D.parameters(), lr=2e-4, betas=pix2pix.BETAS["pix2pix"]))


def test_train_step_learns_a_paired_translation(one_thread):
    gan, data = tiny_gan(), Pairs()
    history = [pix2pix.train_step(gan, data, step) for step in range(80)]
    first, last = history[0], history[-1]
    assert set(first) == {"loss_D", "loss_G", "loss_G_adv", "loss_l1", "d_real", "d_fake", "lr"}
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for h in history for v in h.values())
    assert first["loss_D"] == pytest.approx(math.log(2), abs=0.1)  # 1/2 (log 2 + log 2) at logits near 0
    assert first["loss_G"] == pytest.approx(first["loss_G_adv"] + pix2pix.LAMBDA_L1 * first["loss_l1"], rel=1e-5)
    assert last["loss_l1"] < 0.3 * first["loss_l1"]  # about 0.49 -> 0.07-0.10 over seeds 0-2
    assert all(p.requires_grad for p in gan.net_D.parameters())  # D unfrozen after G's step


def test_train_step_uses_the_settings_l1_weight(one_thread):
    gan = tiny_gan(lambda_l1=3.0)
    out = pix2pix.train_step(gan, Pairs(), 0)
    assert out["loss_G"] == pytest.approx(out["loss_G_adv"] + 3.0 * out["loss_l1"], rel=1e-5)


def test_train_step_stops_on_a_nan_before_any_update():
    gan = tiny_gan()
    before = [p.detach().clone() for p in gan.net_D.parameters()]
    with pytest.raises(NonFiniteLossError, match="loss_D"):
        pix2pix.train_step(gan, Pairs(nan=True), 7)
    assert all(torch.equal(a, p) for a, p in zip(before, gan.net_D.parameters()))


@pytest.mark.parametrize("train", [True, False])
def test_translate_is_deterministic_batched_and_restores_the_mode(train):
    torch.manual_seed(0)
    net_G = UnetGenerator(1, 4, 3).train(train)
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    out = tiling.translate(net_G, x, batch_size=2)
    assert net_G.training is train and out.shape == x.shape and not out.requires_grad
    assert torch.equal(out, tiling.translate(net_G, x))  # eval mode: no dropout, per-sample norms
    with pytest.raises(ValueError, match="batch_size"):
        tiling.translate(net_G, x, batch_size=0)
