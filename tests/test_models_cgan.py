"""Conditional WGAN-GP: shapes, label checks, the gradient penalty with a class-conditional critic."""

from __future__ import annotations

import pytest
import torch

from medgan_core.losses import get_losses, gradient_penalty
from medgan_core.models import cgan
from medgan_core.models.registry import build_gan, define_D, define_G, sample
from medgan_core.train import ImageBatches, adversarial_step

def pair(num_classes: int, nz: int = 8, size: int = 16, width: int = 4):
    """A tiny conditional WGAN-GP pair built by name through the registry (G first, then D)."""
    return (define_G("cwgan_gp", num_classes=num_classes, nz=nz, image_size=size, width_G=width),
            define_D("cwgan_gp", num_classes=num_classes, image_size=size, width_D=width))



pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


def test_shapes_and_class_dependence():
    torch.manual_seed(0)
    net_G, net_D = pair(3)
    z, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    x = net_G(z, y)
    assert x.shape == (6, 3, 16, 16)
    assert net_D(x, y).shape == (6,)
    # the same latent with another label gives another image (the embedding multiplies the latent)
    assert not torch.allclose(net_G(z[:1], y[:1]), net_G(z[:1], torch.tensor([2])))


@pytest.mark.parametrize("y, match", [(torch.tensor([0, 3]), r"0\.\.2"), (torch.tensor([0.0, 1.0]), "int64"),
                                      (torch.tensor([0]), r"\(2,\)")])
def test_bad_labels_are_refused(y, match):
    net_G = cgan.CondGenerator(3, nz=8, image_size=16, width=4)
    with pytest.raises(ValueError, match=match):
        net_G(torch.randn(2, 8), y)


def test_needs_two_classes():
    with pytest.raises(ValueError, match="num_classes"):
        cgan.CondGenerator(1)


class LinearCondCritic(torch.nn.Module):
    """D(x, y) = <W[y], x>: its input gradient is W[y], so the penalty is known in closed form."""

    def __init__(self, weights):
        super().__init__()
        self.weights = weights  # `(K, C*H*W)`

    def forward(self, x, y):
        return (x.flatten(1) * self.weights[y]).sum(1)


def test_gradient_penalty_of_a_linear_conditional_critic_by_hand():
    d = 3 * 4 * 4
    weights = torch.zeros(2, d)
    weights[0, 0] = 3.0  # ||W[0]|| = 3 -> (3 - 1)^2 = 4
    weights[1, :4] = 0.5  # ||W[1]|| = 1 -> 0
    y = torch.tensor([0, 1, 0, 1])
    gp = gradient_penalty(LinearCondCritic(weights), torch.randn(4, 3, 4, 4), torch.randn(4, 3, 4, 4), y)
    assert gp.item() == pytest.approx((4 + 0 + 4 + 0) / 4)


def test_gradient_penalty_of_the_cond_critic_matches_manual_autograd():
    torch.manual_seed(0)
    net_D = cgan.CondCritic(3, image_size=16, width=4)
    x_real, x_fake, y = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 1])
    gp = gradient_penalty(net_D, x_real, x_fake, y, generator=torch.Generator().manual_seed(5))
    alpha = torch.rand((4, 1, 1, 1), generator=torch.Generator().manual_seed(5))
    x_hat = (alpha * x_real + (1 - alpha) * x_fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(net_D(x_hat, y).sum(), x_hat)
    expected = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    gp.backward()  # the penalty reaches the critic's weights, the label embedding included
    assert net_D.embed.weight.grad is not None and net_D.embed.weight.grad.abs().sum() > 0


def test_a_few_wgan_gp_steps():
    torch.manual_seed(0)
    net_G, net_D = pair(2)
    opt_G, opt_D = torch.optim.Adam(net_G.parameters(), 1e-3), torch.optim.Adam(net_D.parameters(), 1e-3)
    d_loss, g_loss = get_losses("wgan")
    x_real, y = torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 0, 1, 0, 1])
    before = net_D.embed.weight.detach().clone()
    for step in range(2):
        out = adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                               make_fake=lambda n: net_G(torch.randn(n, 8), y), cond=(y,), n_critic=2,
                               gp_weight=10.0, step=step)
        assert out["gp"] >= 0 and torch.isfinite(torch.tensor(out["loss_D"]))
    assert not torch.equal(before, net_D.embed.weight)


def test_sample_class_follows_the_old_recipe():
    torch.manual_seed(0)
    net_G = cgan.CondGenerator(3, nz=8, image_size=16, width=4)
    x = sample(net_G, 5, seed=0, cls=2)
    assert x.shape == (5, 3, 16, 16) and torch.equal(x, sample(net_G, 5, seed=0, cls=2))
    assert not torch.equal(x, sample(net_G, 5, seed=0, cls=1))
    net_G.eval()  # the old cgan.sample_class: z from Generator().manual_seed(seed), labels all cls, eval mode
    expected = net_G(torch.randn(5, 8, generator=torch.Generator().manual_seed(0)), torch.full((5,), 2))
    assert torch.equal(x, expected)


def test_train_step_is_the_wgan_gp_update_on_one_real_batch():
    """gan.train_step == adversarial_step on data.batch(step) with the same seeds (n_critic steps, one batch)."""
    x, y = torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 0, 1, 0, 1])
    data = ImageBatches(x, y, batch_size=4, seed=1)
    kw = dict(num_classes=2, nz=8, image_size=16, width_G=4, width_D=4, n_critic=2, seed=3)
    gan, ref = build_gan("cwgan_gp", **kw), build_gan("cwgan_gp", **kw)
    d_loss, g_loss = get_losses("wgan")
    torch.manual_seed(9)
    out = gan.train_step(data, 0)
    torch.manual_seed(9)
    x_real, y_real = data.batch(0)
    expected = adversarial_step(ref.net_G, ref.net_D, ref.opt_G, ref.opt_D, x_real, d_loss, g_loss,
                                make_fake=lambda n: ref.net_G(torch.randn(n, 8), y_real), cond=(y_real,),
                                n_critic=2, gp_weight=10.0, step=0)
    assert out == expected
    assert all(torch.equal(a, b) for a, b in zip(gan.net_G.parameters(), ref.net_G.parameters()))
    assert gan.opt_G.defaults["betas"] == (0.5, 0.9)
