"""DCGAN generator, trunk and discriminator: shapes, input checks, a few training steps."""

from __future__ import annotations

import pytest
import torch

from medgan_core.losses import get_losses
from medgan_core.models import dcgan
from medgan_core.train import adversarial_step


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

TEST_CASES = [  # (image_size, channels, width)
    (16, 3, 4),
    (32, 3, 8),
    (32, 1, 4),
]


@pytest.mark.parametrize("size, channels, width", TEST_CASES)
def test_shapes(size, channels, width):
    torch.manual_seed(0)
    net_G, net_D = dcgan.build_dcgan(nz=8, image_size=size, channels=channels, width_G=width, width_D=width)
    x_fake = net_G(torch.randn(5, 8))
    assert x_fake.shape == (5, channels, size, size)
    assert x_fake.min() >= -1 and x_fake.max() <= 1  # tanh output
    assert net_D(x_fake).shape == (5,)
    trunk = dcgan.ConvTrunk(size, channels, width)
    assert trunk(x_fake).shape == (5, trunk.out_channels, 4, 4)
    assert trunk.feature_dim == trunk.out_channels * 16


def test_block_count_follows_image_size():
    assert dcgan.check_image_size(16) == 2
    assert dcgan.check_image_size(64) == 4
    # channels double at every halving: 32 px, width 4 -> 4, 8, 16
    assert dcgan.ConvTrunk(32, 3, 4).out_channels == 16


@pytest.mark.parametrize("size", [8, 24, 48, "32"])
def test_bad_image_size_is_refused(size):
    with pytest.raises(ValueError, match="power of two"):
        dcgan.Generator(8, size)


def test_wrong_inputs_name_the_expected_shape():
    net_G, net_D = dcgan.build_dcgan(nz=8, image_size=16, width_G=4, width_D=4)
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        net_G(torch.randn(2, 7))
    with pytest.raises(ValueError, match="resize the crops"):
        net_D(torch.randn(2, 3, 32, 32))


def test_parameter_count_by_hand():
    net = dcgan.Discriminator(16, 3, 2, norm="none")
    # conv(3->2, 4x4)+bias, conv(2->4, 4x4)+bias, head conv(4->1, 4x4)+bias
    assert dcgan.count_parameters(net) == (3 * 2 * 16 + 2) + (2 * 4 * 16 + 4) + (4 * 16 + 1)


def test_a_few_training_steps_move_the_weights_and_stay_finite():
    torch.manual_seed(0)
    net_G, net_D = dcgan.build_dcgan(nz=8, image_size=16, width_G=4, width_D=4)
    opt_G, opt_D = torch.optim.Adam(net_G.parameters(), 1e-3), torch.optim.Adam(net_D.parameters(), 1e-3)
    before = [p.detach().clone() for p in net_G.parameters()]
    d_loss, g_loss = get_losses("nonsaturating")
    x_real = torch.rand(8, 3, 16, 16) * 2 - 1
    for step in range(3):
        out = adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                               sample_z=lambda n: torch.randn(n, 8), step=step)
        assert all(torch.isfinite(torch.tensor(v)) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, net_G.parameters()))


def test_sample_is_seeded_and_keeps_train_mode():
    torch.manual_seed(0)
    net_G = dcgan.Generator(8, 16, 3, 4)
    a, b = dcgan.sample(net_G, 3, seed=1), dcgan.sample(net_G, 3, seed=1)
    assert torch.equal(a, b) and a.shape == (3, 3, 16, 16)
    assert not torch.equal(a, dcgan.sample(net_G, 3, seed=2))
    assert net_G.training
    assert dcgan.MODELS["dcgan"] is dcgan.build_dcgan
