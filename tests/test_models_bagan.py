"""BAGAN and BAGAN-GP: autoencoder, the class-conditional latent, the K+1 discriminator, the three stages' steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan_core.losses import d_bagan, g_bagan, get_losses, reconstruction_mse
from medgan_core.models import bagan
from medgan_core.models.registry import build_gan, define_D, define_G, sample
from medgan_core.train import ImageBatches, adversarial_step


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


def _codes():
    """Codes of two well-separated classes: 60 of class 0 around 0, 40 of class 1 around 5."""
    g = torch.Generator().manual_seed(0)
    c0 = torch.randn(60, 3, generator=g) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.3]])
    c1 = torch.randn(40, 3, generator=g) * 0.2 + 5.0
    return torch.cat([c0, c1]), torch.cat([torch.zeros(60), torch.ones(40)]).long()


def test_autoencoder_shapes():
    torch.manual_seed(0)
    ae = define_G("bagan_autoencoder", nz=8, image_size=16, width_D=4, width_G=4)
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    assert ae.encoder(x).shape == (5, 8)
    assert ae(x).shape == x.shape
    assert reconstruction_mse(x, ae(x)).item() > 0


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


def test_class_latent_fits_a_class_with_fewer_large_codes_than_dimensions():
    """12 codes in 64 dimensions at a scale of 1e3 (a wide encoder on the rarest white cells): a
    rank-deficient covariance whose fixed 1e-4 jitter was lost in float32 round-off."""
    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.normal(0, 1, (40, 64)) @ rng.normal(0, 1e3, (64, 64))).float()
    labels = torch.tensor([0] * 28 + [1] * 12)
    latent = bagan.ClassLatent(2, 64).fit(codes, labels)
    assert torch.isfinite(latent.chol).all()
    z = latent.sample(torch.ones(4000, dtype=torch.long), torch.Generator().manual_seed(0))
    spread = codes[labels == 1].std(0).mean()
    assert (z.mean(0) - latent.means[1]).abs().max() < 0.2 * spread  # centred on the class's codes
    with pytest.raises(ValueError, match="class 0: 4 of its 4 codes are not finite"):
        bagan.ClassLatent(2, 3).fit(torch.tensor([[float("nan")] * 3] * 6), torch.tensor([0] * 4 + [1] * 2))


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
    ae = define_G("bagan_autoencoder", nz=8, image_size=16, width_D=4, width_G=4)
    net_G, net_D = define_G("bagan", autoencoder=ae), define_D("bagan", autoencoder=ae, num_classes=3)
    for a, b in zip(net_G.state_dict().values(), ae.decoder.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(net_D.encoder.fc.weight, ae.encoder.fc.weight)
    assert net_D.encoder.fc.weight.data_ptr() != ae.encoder.fc.weight.data_ptr()  # a copy
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    assert net_D(x).shape == (4, 4)  # K + 1 outputs
    net_G2, critic = define_G("bagan_gp", autoencoder=ae), define_D("bagan_gp", autoencoder=ae, num_classes=3)
    assert critic(x, torch.tensor([0, 1, 2, 0])).shape == (4,)


def test_a_fresh_critic_keeps_the_encoder_architecture_but_not_its_weights():
    ae, data = _stage1()
    latent = bagan.fit_latent(ae.net_G, data.x, data.y)
    kw = dict(num_classes=3, nz=8, image_size=16, width_G=4, width_D=4, autoencoder=ae.net_G, latent=latent, seed=3)
    started, fresh = build_gan("bagan_gp", **kw), build_gan("bagan_gp", critic_start="fresh", **kw)
    enc = ae.net_G.encoder.state_dict()
    assert all(torch.equal(v, enc[k]) for k, v in started.net_D.encoder.state_dict().items())  # default: the encoder
    new = fresh.net_D.encoder.state_dict()
    assert new.keys() == enc.keys() and all(new[k].shape == enc[k].shape for k in enc)
    assert not any(torch.equal(new[k], enc[k]) for k in enc if k.endswith("weight"))
    again = build_gan("bagan_gp", critic_start="fresh", **kw).net_D.encoder.state_dict()
    assert all(torch.equal(again[k], new[k]) for k in new)  # seeded
    assert all(torch.equal(a, b) for a, b in zip(fresh.net_G.state_dict().values(), ae.net_G.decoder.state_dict().values()))
    with pytest.raises(ValueError, match="critic_start must be one of"):
        build_gan("bagan_gp", critic_start="decoder", **kw)
    with pytest.raises(ValueError, match="takes no settings"):
        build_gan("cwgan_gp", num_classes=3, image_size=16, critic_start="fresh")


def _stage1(seed: int = 0):
    """A tiny trained autoencoder (2 steps) and its data: 3 classes of 16 px images."""
    x = torch.rand(9, 3, 16, 16) * 2 - 1
    y = torch.tensor([0, 1, 2] * 3)
    data = ImageBatches(x, y, batch_size=4, seed=seed)
    ae = build_gan("bagan_autoencoder", nz=8, image_size=16, width_G=4, width_D=4, lr_G=1e-3, seed=seed)
    for step in range(2):
        out = ae.train_step(data, step)
    assert set(out) == {"loss_AE"} and np.isfinite(out["loss_AE"])
    return ae, data


def test_autoencoder_step_minimises_reconstruction_mse():
    ae, data = _stage1()
    assert ae.net_D is None and ae.opt_D is None and ae.opt_G.defaults["betas"] == (0.5, 0.999)
    x = data.batch(2)[0]
    expected = reconstruction_mse(x, ae.net_G(x)).item()
    assert ae.train_step(data, 2)["loss_AE"] == pytest.approx(expected, rel=1e-6)


def test_fit_latent_encodes_and_fits_each_class():
    ae, data = _stage1()
    latent = bagan.fit_latent(ae.net_G, data.x, data.y)
    codes = bagan.encode(ae.net_G.encoder, data.x)
    assert latent.num_classes == 3 and latent.nz == 8
    for k in range(3):
        np.testing.assert_allclose(latent.means[k].numpy(), codes[data.y == k].mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_bagan_step_by_hand():
    """bagan_step == the written-out (K+1)-class update with the same global-RNG draws."""
    ae, data = _stage1()
    latent = bagan.fit_latent(ae.net_G, data.x, data.y)
    kw = dict(num_classes=3, nz=8, image_size=16, autoencoder=ae.net_G, latent=latent, lr_G=1e-3, lr_D=1e-3, seed=1)
    gan, ref = build_gan("bagan", **kw), build_gan("bagan", **kw)
    assert gan.opt_D.defaults["betas"] == (0.5, 0.999) and "latent" in gan.extras
    torch.manual_seed(5)
    out = gan.train_step(data, 0)
    torch.manual_seed(5)
    x_real, y_real = data.batch(0)
    y_fake = torch.randint(3, (x_real.shape[0],))
    with torch.no_grad():
        x_fake = ref.net_G(ref.extras["latent"].sample(y_fake))
    loss_D = d_bagan(ref.net_D(x_real), y_real, ref.net_D(x_fake))
    ref.opt_D.zero_grad()
    loss_D.backward()
    ref.opt_D.step()
    ref.net_D.requires_grad_(False)
    loss_G = g_bagan(ref.net_D(ref.net_G(ref.extras["latent"].sample(y_fake))), y_fake)
    ref.opt_G.zero_grad()
    loss_G.backward()
    ref.opt_G.step()
    assert out == {"loss_D": loss_D.item(), "loss_G": loss_G.item()}
    assert all(torch.equal(a, b) for a, b in zip(gan.net_G.parameters(), ref.net_G.parameters()))
    assert all(p.requires_grad for p in gan.net_D.parameters())


def test_bagan_gp_step_and_class_sampling():
    ae, data = _stage1()
    latent = bagan.fit_latent(ae.net_G, data.x, data.y)
    gan = build_gan("bagan_gp", num_classes=3, nz=8, image_size=16, autoencoder=ae.net_G, latent=latent, n_critic=2)
    assert gan.opt_G.defaults["betas"] == (0.5, 0.9)
    out = gan.train_step(data, 0)
    assert np.isfinite(out["loss_D"]) and out["gp"] >= 0
    x = gan.sample(1, 4, seed=0)
    # the old bagan.sample_class: c ~ N(mu_1, Sigma_1) from Generator().manual_seed(seed), G in eval mode
    gan.net_G.eval()
    z = gan.extras["latent"].sample(torch.full((4,), 1), torch.Generator().manual_seed(0))
    assert torch.equal(x, gan.net_G(z)) and torch.equal(x, sample(gan.net_G.train(), 4, 0, cls=1, latent=latent))


def test_stage3_needs_the_autoencoder_and_latent():
    ae, data = _stage1()
    latent = bagan.fit_latent(ae.net_G, data.x, data.y)
    with pytest.raises(ValueError, match="autoencoder="):
        build_gan("bagan", num_classes=3, nz=8, image_size=16, latent=latent)
    with pytest.raises(ValueError, match="latent="):
        build_gan("bagan_gp", num_classes=3, nz=8, image_size=16, autoencoder=ae.net_G)
    with pytest.raises(ValueError, match="3 classes"):
        build_gan("bagan", num_classes=2, nz=8, image_size=16, autoencoder=ae.net_G, latent=latent)
    with pytest.raises(ValueError, match="nz=8, image_size=16"):
        build_gan("bagan", num_classes=3, autoencoder=ae.net_G, latent=latent)


def test_stage3_networks_train_even_if_the_autoencoder_was_left_in_eval_mode():
    ae, data = _stage1()
    latent = bagan.fit_latent(ae.net_G, data.x, data.y)
    ae.net_G.eval()
    gan = build_gan("bagan", num_classes=3, nz=8, image_size=16, autoencoder=ae.net_G, latent=latent)
    assert gan.net_G.training and gan.net_D.training


def test_a_few_bagan_gp_steps_through_adversarial_step():
    torch.manual_seed(0)
    ae = define_G("bagan_autoencoder", nz=8, image_size=16, width_D=4, width_G=4)
    x_real, y = torch.rand(6, 3, 16, 16) * 2 - 1, torch.tensor([0, 1, 0, 1, 0, 1])
    latent = bagan.ClassLatent(2, 8).fit(bagan.encode(ae.encoder, x_real), y)
    net_G, net_D = define_G("bagan_gp", autoencoder=ae), define_D("bagan_gp", autoencoder=ae, num_classes=2)
    opt_G, opt_D = torch.optim.Adam(net_G.parameters(), 1e-3), torch.optim.Adam(net_D.parameters(), 1e-3)
    d_loss, g_loss = get_losses("wgan")
    for step in range(2):
        out = adversarial_step(net_G, net_D, opt_G, opt_D, x_real, d_loss, g_loss,
                               make_fake=lambda n: net_G(latent.sample(y)), cond=(y,), gp_weight=10.0, step=step)
        assert np.isfinite(out["loss_D"]) and out["gp"] >= 0
    x = sample(net_G, 4, seed=0, cls=1, latent=latent)
    assert x.shape == (4, 3, 16, 16) and torch.equal(x, sample(net_G, 4, seed=0, cls=1, latent=latent))


def test_fit_latent_and_reconstruct_take_uint8_images():
    ae, data = _stage1()
    images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)
    labels = np.array([0, 1, 0, 1, 0, 1])
    from medgan_core.data.datasets import to_tensor_images, to_uint8_images

    latent = bagan.fit_latent(ae.net_G, images, labels)
    expected = bagan.fit_latent(ae.net_G, to_tensor_images(images), torch.from_numpy(labels))
    assert torch.equal(latent.means, expected.means) and latent.num_classes == 2
    rec = bagan.reconstruct(ae.net_G, images)
    assert rec.shape == images.shape and rec.dtype == np.uint8 and ae.net_G.training
    ae.net_G.eval()
    with torch.no_grad():
        by_hand = to_uint8_images(ae.net_G(to_tensor_images(images)), squeeze_gray=False)
    np.testing.assert_array_equal(rec, by_hand)
    with pytest.raises(ValueError, match="uint8"):
        bagan.reconstruct(ae.net_G, images.astype(np.float32))
