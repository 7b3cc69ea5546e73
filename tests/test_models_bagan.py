"""BAGAN and BAGAN-GP: autoencoder, the class-conditional latent, the K+1 discriminator, training steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medgan_core.losses import get_losses
from medgan_core.models import bagan
from medgan_core.train import adversarial_step


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _codes():
    """Codes of two well-separated classes: 60 of class 0 around 0, 40 of class 1 around 5."""
    g = torch.Generator().manual_seed(0)
    c0 = torch.randn(60, 3, generator=g) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.3]])
    c1 = torch.randn(40, 3, generator=g) * 0.2 + 5.0
    return torch.cat([c0, c1]), torch.cat([torch.zeros(60), torch.ones(40)]).long()


def test_autoencoder_shapes():
    torch.manual_seed(0)
    ae = bagan.build_autoencoder(nz=8, image_size=16, width_E=4, width_G=4)
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    assert ae.encoder(x).shape == (5, 8)
    assert ae(x).shape == x.shape
    assert bagan.reconstruction_loss(x, x).item() == 0.0
    assert bagan.reconstruction_loss(x, torch.zeros_like(x)).item() == pytest.approx((x ** 2).mean().item())


def test_class_latent_means_and_covariances_match_the_codes_of_each_class():
    codes, labels = _codes()
    latent = bagan.ClassLatent(2, 3).fit(codes, labels)
    for k in range(2):
        ck = codes[labels == k].double().numpy()
        np.testing.assert_allclose(latent.means[k].numpy(), ck.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(latent.covs[k].numpy(), np.cov(ck, rowvar=False), rtol=1e-5, atol=1e-6)


def test_class_latent_samples_follow_each_class_gaussian():
    codes, labels = _codes()
    latent = bagan.ClassLatent(2, 3, jitter=0.0).fit(codes, labels)
    z = latent.sample(torch.ones(20000, dtype=torch.long), torch.Generator().manual_seed(1))
    np.testing.assert_allclose(z.mean(0).numpy(), latent.means[1].numpy(), atol=0.01)
    np.testing.assert_allclose(np.cov(z.numpy(), rowvar=False), latent.covs[1].numpy(), atol=0.005)
    z0 = latent.sample(torch.zeros(20000, dtype=torch.long), torch.Generator().manual_seed(1))
    np.testing.assert_allclose(np.cov(z0.numpy(), rowvar=False), latent.covs[0].numpy(), atol=0.05)


def test_class_latent_errors():
    latent = bagan.ClassLatent(2, 3)
    with pytest.raises(ValueError, match="at least 2"):
        latent.fit(torch.randn(3, 3), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        latent.fit(torch.randn(3, 4), torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        latent.sample(torch.tensor([2]))


def test_gan_pairs_start_from_the_autoencoder():
    torch.manual_seed(0)
    ae = bagan.build_autoencoder(nz=8, image_size=16, width_E=4, width_G=4)
    net_G, net_D = bagan.build_bagan(ae, num_classes=3)
    for a, b in zip(net_G.state_dict().values(), ae.decoder.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(net_D.encoder.fc.weight, ae.encoder.fc.weight)
    assert net_D.encoder.fc.weight.data_ptr() != ae.encoder.fc.weight.data_ptr()  # a copy
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert net_D(x).shape == (4, 4)  # K + 1 outputs
    net_G2, critic = bagan.build_bagan_gp(ae, num_classes=3)
    assert critic(x, torch.tensor([0, 1, 2, 0])).shape == (4,)


def test_bagan_losses_by_hand():
    logits_real = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # K = 2, last column = fake
    logits_fake = torch.tensor([[0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1])
    lse = lambda row: torch.logsumexp(row, 0).item()
    expected_real = ((lse(logits_real[0]) - 2.0) + (lse(logits_real[1]) - 1.0)) / 2
    expected_fake = lse(logits_fake[0]) - 3.0
    assert bagan.d_bagan(logits_real, y, logits_fake).item() == pytest.approx(expected_real + expected_fake)
    assert bagan.g_bagan(logits_fake, torch.tensor([1])).item() == pytest.approx(lse(logits_fake[0]) - 0.0)
    assert bagan.g_bagan(logits_fake, torch.tensor([1])).item() == pytest.approx(
        F.cross_entropy(logits_fake, torch.tensor([1])).item())


def test_a_few_bagan_gp_steps_and_class_sampling():
    torch.manual_seed(0)
    ae = bagan.build_autoencoder(nz=8, image_size=16, width_E=4, width_G=4)
    x_real, y = torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 0, 1, 0, 1])
    latent = bagan.ClassLatent(2, 8).fit(bagan.encode(ae.encoder, x_real), y)
    net_G, net_D = bagan.build_bagan_gp(ae, 2)
    opt_G, opt_D = torch.optim.Adam(net_G.parameters(), 1e-3), torch.optim.Adam(net_D.parameters(), 1e-3)
    d_loss, g_loss = get_losses("wgan")
    for step in range(2):
        out = adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                               make_fake=lambda n: net_G(latent.sample(y)), cond=(y,), gp_weight=10.0, step=step)
        assert np.isfinite(out["loss_D"]) and out["gp"] >= 0
    x = bagan.sample_class(net_G, latent, 1, 4, seed=0)
    assert x.shape == (4, 3, 16, 16) and torch.equal(x, bagan.sample_class(net_G, latent, 1, 4, seed=0))
    assert set(bagan.MODELS) == {"bagan", "bagan_gp"}
