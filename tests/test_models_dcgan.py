"""DCGAN generator, trunk and discriminator: shapes, input checks, a few training steps, the per-class step."""

from __future__ import annotations

import pytest
import torch

from medgan_core.losses import get_losses
from medgan_core.models import dcgan
from medgan_core.models.registry import build_gan, define_D, define_G, sample
from medgan_core.train import ImageBatches, adversarial_step, count_parameters, step_batch_indices

def pair(nz: int = 8, size: int = 16, width: int = 4):
    """A tiny DCGAN pair built by name through the registry (G first, then D)."""
    return define_G("dcgan", nz=nz, image_size=size, width_G=width), define_D("dcgan", image_size=size, width_D=width)



pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

TEST_CASES = [  # (image_size, channels, width)
    (16, 3, 4),
    (32, 3, 8),
    (32, 1, 4),
]


@pytest.mark.parametrize("size, channels, width", TEST_CASES)
def test_shapes(size, channels, width):
    torch.manual_seed(0)
    net_G, net_D = (define_G("dcgan", nz=8, image_size=size, channels=channels, width_G=width),
                    define_D("dcgan", image_size=size, channels=channels, width_D=width))
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
    net_G, net_D = pair()
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        net_G(torch.randn(2, 7))
    with pytest.raises(ValueError, match="resize the crops"):
        net_D(torch.randn(2, 3, 32, 32))


def test_parameter_count_by_hand():
    net = dcgan.Discriminator(16, 3, 2, norm="none")
    # conv(3->2, 4x4)+bias, conv(2->4, 4x4)+bias, head conv(4->1, 4x4)+bias
    assert count_parameters(net) == (3 * 2 * 16 + 2) + (2 * 4 * 16 + 4) + (4 * 16 + 1)


def test_a_few_training_steps_move_the_weights_and_stay_finite():
    torch.manual_seed(0)
    net_G, net_D = pair()
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
    a, b = sample(net_G, 3, seed=1), sample(net_G, 3, seed=1)
    assert torch.equal(a, b) and a.shape == (3, 3, 16, 16)
    assert not torch.equal(a, sample(net_G, 3, seed=2))
    assert net_G.training
    # the recipe of the old dcgan.sample: z from a fresh generator seeded with `seed`, G in eval mode
    net_G.eval()
    expected = net_G(torch.randn(3, 8, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(a, expected)


@pytest.mark.parametrize("seed, k", [(0, 2), (5, 3)])
def test_per_class_pairs_equal_standalone_dcgans_of_seed_plus_c(seed, k):
    gan = build_gan("dcgan", num_classes=k, nz=8, image_size=16, width_G=4, width_D=4, seed=seed)
    assert isinstance(gan.net_G, torch.nn.ModuleList) and len(gan.net_G) == len(gan.net_D) == k
    for c in range(k):
        torch.manual_seed(seed + c)
        net_G, net_D = pair()
        for a, b in zip(gan.net_G[c].state_dict().values(), net_G.state_dict().values()):
            assert torch.equal(a, b)
        for a, b in zip(gan.net_D[c].state_dict().values(), net_D.state_dict().values()):
            assert torch.equal(a, b)
    assert not torch.equal(gan.net_G[0].net[0].weight, gan.net_G[1].net[0].weight)


def test_per_class_step_equals_standalone_pairs_with_their_own_optimisers():
    """One Adam over the ModuleList updates pair c exactly as its own Adam would (the others have no grads)."""
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    y = torch.tensor([0, 1, 0, 1, 0, 1, 1, 0])
    data = ImageBatches(x, y, batch_size=3, seed=4)
    gan = build_gan("dcgan", num_classes=2, nz=8, image_size=16, width_G=4, width_D=4, lr_G=1e-3, lr_D=1e-3, seed=2)
    pairs = []
    for c in range(2):
        torch.manual_seed(2 + c)
        net_G, net_D = pair()
        pairs.append((net_G, net_D, torch.optim.Adam(net_G.parameters(), 1e-3, betas=(0.5, 0.999)),
                      torch.optim.Adam(net_D.parameters(), 1e-3, betas=(0.5, 0.999))))
    d_loss, g_loss = get_losses("nonsaturating")
    torch.manual_seed(11)
    history = [gan.train_step(data, step) for step in range(3)]
    torch.manual_seed(11)
    for step in range(3):
        for c, (net_G, net_D, opt_G, opt_D) in enumerate(pairs):
            x_real = x[y == c][step_batch_indices(step, int((y == c).sum()), 3, 4 + c)]  # class c's batch, seed + c
            out = adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                                   sample_z=lambda n: torch.randn(n, 8), step=step, reuse_fake=True)
            assert history[step][f"loss_D_c{c}"] == out["loss_D"]
    for c, (net_G, net_D, _, _) in enumerate(pairs):
        assert all(torch.equal(a, b) for a, b in zip(gan.net_G[c].state_dict().values(), net_G.state_dict().values()))
        assert all(torch.equal(a, b) for a, b in zip(gan.net_D[c].state_dict().values(), net_D.state_dict().values()))
    assert history[0]["loss_D"] == pytest.approx((history[0]["loss_D_c0"] + history[0]["loss_D_c1"]) / 2)
