"""The simple convolutional GAN: shapes at every size, its layers, the per-class pairs, a few training steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from medgan_core.losses import d_nonsaturating
from medgan_core.models import dcgan, simple_gan
from medgan_core.models.registry import FAMILIES, build_gan, define_D, define_G
from medgan_core.train import ImageBatches, count_parameters

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

TINY = dict(image_size=16, nz=8, width_G=4, width_D=4)

TEST_CASES = [  # (image_size, channels, width)
    (16, 3, 4),
    (32, 3, 8),
    (64, 1, 4),
]


def pair(nz: int = 8, size: int = 16, width: int = 4):
    """A tiny simple-GAN pair built by name through the registry (G first, then D)."""
    return (define_G("simple_gan", nz=nz, image_size=size, width_G=width),
            define_D("simple_gan", image_size=size, width_D=width))


def image_data(k: int = 2, n: int = 12, size: int = 16, seed: int = 0) -> ImageBatches:
    images = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return ImageBatches(images, np.arange(n) % k, batch_size=4, seed=0)


@pytest.mark.parametrize("size, channels, width", TEST_CASES)
def test_shapes(size, channels, width):
    torch.manual_seed(0)
    net_G = define_G("simple_gan", nz=8, image_size=size, channels=channels, width_G=width)
    net_D = define_D("simple_gan", image_size=size, channels=channels, width_D=width)
    x_fake = net_G(torch.randn(5, 8))
    assert x_fake.shape == (5, channels, size, size) and x_fake.abs().max() <= 1  # tanh output
    assert net_D(x_fake).shape == (5,)
    assert net_G.fc[0].out_features == 2 * width * (size // 4) ** 2  # the linear layer's map is S/4 square


def test_layers_are_the_write_ups():
    net_G, net_D = pair()
    for net in (net_G, net_D):
        assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    ups = [m for m in net_G.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 2 and all(m.mode == "nearest" and m.scale_factor == 2 for m in ups)
    assert [m.kernel_size for m in net_G.modules() if isinstance(m, nn.Conv2d)] == [(3, 3)] * 3
    assert all(m.negative_slope == 0.2 for m in net_G.modules() if isinstance(m, nn.LeakyReLU))
    convs = [m for m in net_D.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.kernel_size, m.stride) for m in convs] == [((4, 4), (2, 2))] * 2
    assert [m.p for m in net_D.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    # linear(8 -> 2*4*4*4)+bias, conv(8->4, 3x3)+bias, conv(4->4, 3x3)+bias, conv(4->3, 3x3)+bias
    assert count_parameters(net_G) == (8 * 128 + 128) + (8 * 4 * 9 + 4) + (4 * 4 * 9 + 4) + (4 * 3 * 9 + 3)


@pytest.mark.parametrize("size", [8, 24, "32"])
def test_bad_image_size_is_refused(size):
    with pytest.raises(ValueError, match="power of two"):
        simple_gan.Generator(8, size)
    with pytest.raises(ValueError, match="power of two"):
        simple_gan.Discriminator(size)


def test_wrong_inputs_name_the_expected_shape():
    net_G, net_D = pair()
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        net_G(torch.randn(2, 7))
    with pytest.raises(ValueError, match="resize the crops"):
        net_D(torch.randn(2, 3, 32, 32))


def test_registry_name_betas_and_learning_rate():
    assert FAMILIES["simple_gan"] is simple_gan
    gan = build_gan("simple_gan", **TINY)
    assert isinstance(gan.net_G, simple_gan.Generator) and gan.num_classes == 1
    assert gan.opt_G.defaults["betas"] == gan.opt_D.defaults["betas"] == (0.5, 0.999)
    assert gan.opt_G.param_groups[0]["lr"] == gan.opt_D.param_groups[0]["lr"] == 2e-4


@pytest.mark.parametrize("seed, k", [(0, 2), (5, 3)])
def test_per_class_pairs_equal_standalone_pairs_of_seed_plus_c(seed, k):
    gan = build_gan("simple_gan", num_classes=k, **TINY, seed=seed)
    assert isinstance(gan.net_G, nn.ModuleList) and len(gan.net_G) == len(gan.net_D) == k
    for c in range(k):
        torch.manual_seed(seed + c)
        net_G, net_D = pair()
        assert all(torch.equal(a, b) for a, b in zip(gan.net_G[c].state_dict().values(), net_G.state_dict().values()))
        assert all(torch.equal(a, b) for a, b in zip(gan.net_D[c].state_dict().values(), net_D.state_dict().values()))
    assert not torch.equal(gan.net_G[0].fc[0].weight, gan.net_G[1].fc[0].weight)


def test_per_class_pairs_train_independently():
    """Other class-0 images change pair 0 only: pair 1 ends with the same weights."""
    runs = []
    for images_seed in (0, 1):
        data = image_data(seed=0)
        other = image_data(seed=images_seed)
        data.x[data.y == 0] = other.x[other.y == 0]  # only class 0's images differ between the runs
        gan = build_gan("simple_gan", num_classes=2, **TINY, seed=3)
        torch.manual_seed(7)
        for step in range(2):
            gan.train_step(data, step)
        runs.append(gan)
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))  # noqa: E731
    assert same(runs[0].net_G[1], runs[1].net_G[1]) and same(runs[0].net_D[1], runs[1].net_D[1])
    assert not same(runs[0].net_D[0], runs[1].net_D[0])


def test_a_few_train_steps_move_the_weights_and_stay_finite():
    gan = build_gan("simple_gan", num_classes=2, **TINY, diffaug=True, ema_decay=0.9)
    data = image_data()
    before = [p.detach().clone() for p in gan.net_G.parameters()]
    outputs = []
    gan.net_D[1].register_forward_hook(lambda m, i, o: outputs.append(o.detach().clone()))
    for step in range(3):
        out = gan.train_step(data, step)
        assert all(map(math.isfinite, out.values()))
        assert {f"{k}_c{c}" for k in ("loss_D", "loss_G") for c in range(2)} <= set(out)
    # the non-saturating loss of class 1's last discriminator step (real, then the reused fakes)
    assert out["loss_D_c1"] == pytest.approx(d_nonsaturating(outputs[-3], outputs[-2]).item(), rel=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.net_G.parameters()))
    assert all(torch.isfinite(p).all() for p in gan.net_G.parameters())
    assert gan.ema.num_updates == 3  # once per step, after every class's generator step
    gan.refresh_ema()  # no batch norm: nothing to refresh
    assert gan.sample(1, 3, 0).shape == (3, 3, 16, 16)


def test_uses_dcgans_per_class_machinery():
    assert simple_gan.build_per_class is dcgan.build_per_class
    assert simple_gan.train_per_class is dcgan.train_per_class
