"""BigGAN: shapes, conditional batch norm, spectral norm, orthogonal init, projection D, hinge step, truncation, EMA refresh."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from medgan_core.losses import d_hinge, g_hinge, get_losses
from medgan_core.models import biggan
from medgan_core.models.registry import (FAMILIES, GAN_NAMES, build_gan, define_D, define_G, refresh_batchnorm, sample,
                                         truncated_normal)
from medgan_core.train import ImageBatches

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

TINY = dict(nz=8, width_G=4, width_D=4)  # 32 px: 3 up-blocks, 4 latent chunks of 2

TEST_CASES = [  # (image_size, nz, width, num_classes, attention side)
    (32, 8, 4, 2, 16),
    (32, 12, 8, 3, 16),
    (64, 10, 4, 2, 32),
]


def nets(size: int = 32, nz: int = 8, width: int = 4, k: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    return (define_G("biggan", num_classes=k, nz=nz, image_size=size, width_G=width),
            define_D("biggan", num_classes=k, image_size=size, width_D=width))


def image_data(size: int = 32, k: int = 2, n: int = 16) -> ImageBatches:
    images = np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return ImageBatches(images, np.arange(n) % k, batch_size=4, seed=0)


def sn_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if parametrize.is_parametrized(m, "weight")]


@pytest.mark.parametrize("size, nz, width, k, attn", TEST_CASES)
def test_shapes_and_where_the_attention_sits(size, nz, width, k, attn):
    net_G, net_D = nets(size, nz, width, k)
    y = torch.arange(5) % k
    seen = {}
    net_G.attention.register_forward_hook(lambda m, i, o: seen.update(G=o.shape))
    net_D.attention.register_forward_hook(lambda m, i, o: seen.update(D=o.shape))
    x_fake = net_G(torch.randn(5, nz), y)
    assert x_fake.shape == (5, 3, size, size) and x_fake.abs().max() <= 1  # tanh output
    assert net_D(x_fake, y).shape == (5,)
    n = int(math.log2(size // 4))
    assert net_G.top == width * 2 ** (n - 1) and net_G.blocks[-1].conv2.out_channels == width
    assert net_D.blocks[-1].conv2.out_channels == width * 2 ** (n - 1)
    assert seen["G"][-2:] == (attn, attn) and seen["D"][-2:] == (attn, attn)


@pytest.mark.parametrize("size, nz", [(32, 10), (64, 8), (32, 3)])
def test_nz_not_divisible_by_the_chunks_is_refused(size, nz):
    with pytest.raises(ValueError, match=r"nz must be divisible.*got nz="):
        define_G("biggan", num_classes=2, nz=nz, image_size=size)


def test_image_size_below_32_is_refused():
    with pytest.raises(ValueError, match="image_size >= 32"):
        define_D("biggan", num_classes=2, image_size=16)
    with pytest.raises(ValueError, match="power of two"):
        define_G("biggan", num_classes=2, image_size=48)


def test_hierarchical_latent_feeds_each_block_its_own_chunk():
    net_G, _ = nets()
    net_G.eval()
    z, y = torch.randn(3, 8), torch.tensor([0, 1, 0])
    seen = []
    net_G.blocks[1].bn1.gain.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    net_G(z, y)
    assert torch.equal(seen[0], torch.cat([net_G.shared(y), z[:, 4:6]], dim=1))  # block 1: [e(y), chunk 2]


def test_conditional_batchnorm_uses_the_class():
    net_G, _ = nets()
    cbn = net_G.blocks[0].bn2
    x = torch.randn(6, cbn.bn.num_features, 8, 8)
    z_chunk = torch.randn(6, net_G.chunk)
    cond = lambda y: torch.cat([net_G.shared(torch.full((6,), y)), z_chunk], dim=1)  # noqa: E731
    with torch.no_grad():
        out0, out1 = cbn(x, cond(0)), cbn(x, cond(1))
    assert not torch.allclose(out0, out1, atol=1e-3)  # same features, other class, other output
    # BN(x) * (1 + W_g c) + W_b c, with the plain batch norm's own statistics
    c = cond(1)
    mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    normed = (x - mean) / torch.sqrt(var + cbn.bn.eps)
    expected = normed * (1 + c @ cbn.gain.weight.T)[:, :, None, None] + (c @ cbn.bias.weight.T)[:, :, None, None]
    assert torch.allclose(out1, expected, atol=1e-4)
    assert not cbn.bn.affine


def test_every_conv_linear_and_d_embedding_is_spectrally_normalised_and_sigma_goes_to_one():
    net_G, net_D = nets()
    for net in (net_G, net_D):
        layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert parametrize.is_parametrized(net_D.embed, "weight") and not parametrize.is_parametrized(net_G.shared)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # move every weight far from sigma 1, with a dominant direction
        for m in sn_layers(net_G) + sn_layers(net_D):
            w = m.parametrizations.weight.original
            a, b = torch.randn(w.shape[0], 1, generator=g), torch.randn(1, w[0].numel(), generator=g)
            w.mul_(2).add_((3 * a @ b / (a.norm() * b.norm())).view_as(w))
            assert torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2) > 2
    y = torch.tensor([0, 1, 1, 0])
    with torch.no_grad():  # power iteration: one step per forward pass in train mode
        for _ in range(10):
            net_D(net_G(torch.randn(4, 8), y), y)
    for m in sn_layers(net_G) + sn_layers(net_D):
        w = m.weight
        sigma = torch.linalg.matrix_norm(w.detach().reshape(w.shape[0], -1), ord=2)
        assert abs(float(sigma) - 1.0) < 0.1, type(m).__name__


def test_weights_start_orthogonal():
    net_G, net_D = nets(width=8)
    weights = [m.parametrizations.weight.original for m in sn_layers(net_G) + sn_layers(net_D)] + [net_G.shared.weight]
    for w in weights:
        m = w.detach().reshape(w.shape[0], -1)
        gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m  # the smaller side has orthonormal vectors
        assert torch.allclose(gram, torch.eye(len(gram)), atol=1e-4)


def test_attention_starts_as_the_identity_and_is_learned():
    net_G, net_D = nets()
    for att in (net_G.attention, net_D.attention):
        assert att.gamma.item() == 0.0 and att.gamma.requires_grad
        x = torch.randn(2, att.query.in_channels, 16, 16)
        assert torch.equal(att(x), x)


def test_projection_discriminator_depends_on_the_label():
    _, net_D = nets()
    net_D.eval()  # spectral norm's vectors frozen: the same weights for every call
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        d0, d1 = net_D(x, y0), net_D(x, y1)
        h = x
        for i, block in enumerate(net_D.blocks):
            h = net_D.attention(block(h)) if i == net_D.attn_after else block(h)
        h = torch.relu(h).sum(dim=(2, 3))  # `(B, C)`
    assert not torch.allclose(d0, d1, atol=1e-4)
    assert torch.allclose(d1, net_D.linear(h).flatten() + (net_D.embed(y1) * h).sum(1), atol=1e-4)
    assert torch.allclose(d1 - d0, h @ (net_D.embed.weight[1] - net_D.embed.weight[0]), atol=1e-3)


def test_registry_picks_the_papers_two_learning_rates_and_betas():
    assert {"biggan", "simple_gan"} <= set(GAN_NAMES) and FAMILIES["biggan"] is biggan
    gan = build_gan("biggan", num_classes=2, **TINY)
    assert gan.opt_G.param_groups[0]["lr"] == 1e-4 and gan.opt_D.param_groups[0]["lr"] == 4e-4
    assert gan.opt_G.defaults["betas"] == gan.opt_D.defaults["betas"] == (0.0, 0.999)
    mine = build_gan("biggan", num_classes=2, **TINY, lr_G=1e-3)
    assert mine.opt_G.param_groups[0]["lr"] == 1e-3 and mine.opt_D.param_groups[0]["lr"] == 4e-4
    assert build_gan("cwgan_gp", num_classes=2, **TINY).opt_D.param_groups[0]["lr"] == 1e-4  # one value: both nets


def test_spectral_norm_option_does_not_wrap_twice():
    plain = build_gan("biggan", num_classes=2, **TINY)
    option = build_gan("biggan", num_classes=2, **TINY, spectral_norm=True)
    assert all(len(m.parametrizations.weight) == 1 for m in sn_layers(option.net_D))
    assert option.net_D.state_dict().keys() == plain.net_D.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(option.net_D.state_dict().values(), plain.net_D.state_dict().values()))


def test_a_few_train_steps_move_the_weights_and_stay_finite():
    gan = build_gan("biggan", num_classes=2, **TINY, n_critic=2, diffaug=True, ema_decay=0.9, lr_G=1e-3, lr_D=1e-3)
    data = image_data()
    before_G = [p.detach().clone() for p in gan.net_G.parameters()]
    before_D = [p.detach().clone() for p in gan.net_D.parameters()]
    for step in range(3):
        out = gan.train_step(data, step)
        assert {"loss_D", "loss_G", "d_real", "d_fake"} <= set(out) and all(map(math.isfinite, out.values()))
    for before, net in ((before_G, gan.net_G), (before_D, gan.net_D)):
        assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))
        assert all(torch.isfinite(p).all() for p in net.parameters())
    assert gan.ema.num_updates == 3
    assert gan.net_G.attention.gamma.item() != 0.0  # the attention is trained


def test_step_reports_the_hinge_losses_of_the_discriminator_outputs():
    gan = build_gan("biggan", num_classes=2, **TINY, n_critic=2)
    outputs = []
    gan.net_D.register_forward_hook(lambda m, i, o: outputs.append(o.detach().clone()))
    torch.manual_seed(0)
    out = gan.train_step(image_data(), 0)
    assert len(outputs) == 2 * 2 + 1  # real and fake at each of the 2 critic steps, then the generator's fakes
    d_loss, g_loss = get_losses("hinge")
    assert d_loss is d_hinge and g_loss is g_hinge
    assert out["loss_D"] == pytest.approx(d_hinge(outputs[2], outputs[3]).item(), rel=1e-6)
    assert out["loss_G"] == pytest.approx(g_hinge(outputs[4]).item(), rel=1e-6)
    # the hinge by hand: mean(max(0, 1 - [0.5, 2])) + mean(max(0, 1 + [-2, 0])) = 0.25 + 0.5
    assert d_hinge(torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.0])).item() == pytest.approx(0.75)


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0])
def test_truncated_latents_lie_within_the_threshold(t):
    z = truncated_normal(200, 16, torch.Generator().manual_seed(0), t)
    plain = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    assert z.shape == (200, 16) and z.abs().max() <= t
    assert (plain.abs() > t).any()  # the plain draw had entries to redraw
    inside = plain.abs() <= t
    assert torch.equal(z[inside], plain[inside])  # entries within the threshold are kept
    assert torch.equal(z, truncated_normal(200, 16, torch.Generator().manual_seed(0), t))
    assert z.std() < plain.std()
    with pytest.raises(ValueError, match="truncation must be"):
        truncated_normal(2, 2, torch.Generator(), 0.0)


def test_sample_with_truncation_is_seeded_and_differs_from_the_plain_sample():
    gan = build_gan("biggan", num_classes=2, **TINY)
    a, b = gan.sample(1, 4, seed=3, truncation=0.5), gan.sample(1, 4, seed=3, truncation=0.5)
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b)
    assert not torch.equal(a, gan.sample(1, 4, seed=3)) and not torch.equal(a, gan.sample(1, 4, seed=4, truncation=0.5))
    gan.net_G.eval()
    with torch.no_grad():
        z = truncated_normal(4, 8, torch.Generator().manual_seed(3), 0.5)
        expected = gan.net_G(z, torch.ones(4, dtype=torch.long))
    gan.net_G.train()
    assert torch.equal(a, expected)
    assert torch.equal(gan.sample(1, 4, seed=3), sample(gan.net_G, 4, 3, cls=1))  # None: no truncation
    for t in (0.0, -1.0):
        with pytest.raises(ValueError, match="truncation must be"):
            gan.sample(0, 2, 0, truncation=t)
    with pytest.raises(ValueError, match="BAGAN"):
        sample(gan.net_G, 2, 0, cls=0, latent=nn.Identity(), truncation=1.0)


@pytest.mark.parametrize("name", ["biggan", "cwgan_gp"])
def test_refresh_ema_averages_the_batchnorm_statistics_over_every_class(name):
    """Shared batch norms of a conditional generator: one average over all classes' passes, not the last class's."""
    gan = build_gan(name, num_classes=2, image_size=32, nz=8, width_G=4, width_D=4, ema_decay=0.5, seed=1)
    net_G = gan.ema.module
    bn = net_G.blocks[0].bn2.bn if name == "biggan" else net_G.body.net[1]  # its input depends on the class
    start = {k: v.clone() for k, v in net_G.state_dict().items()}
    gan.refresh_ema(n=32, batches=2, seed=5)
    refreshed = bn.running_mean.clone()
    assert not net_G.training
    net_G.load_state_dict(start)  # the same starting state (BigGAN: spectral norm's vectors too)
    means = {c: [] for c in range(2)}
    cls_now = []
    hook = bn.register_forward_hook(lambda m, i, o: means[cls_now[-1]].append(i[0].mean(dim=(0, 2, 3))))
    for c in range(2):
        cls_now.append(c)
        for i in range(2):
            sample(net_G, 32, 5 + i, cls=c, batch_size=32, train_mode=True)
    hook.remove()
    every_class = torch.stack(means[0] + means[1]).mean(0)
    last_class = torch.stack(means[1]).mean(0)
    scale = float(every_class.abs().max())  # DCGAN's N(0, 0.02) weights give small activations
    assert float((refreshed - every_class).abs().max()) < 1e-4 * scale
    assert float((refreshed - last_class).abs().max()) > 0.05 * scale
    with pytest.raises(ValueError, match="list of classes"):
        refresh_batchnorm(build_gan("dcgan", num_classes=2, **TINY).net_G, 4, 1, 0, cls=[0, 1])
