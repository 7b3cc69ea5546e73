"""The GAN registry: every name builds and trains one step; the one sampler; seeding; betas; errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from medgan_core.data.patches import PatchPairs
from medgan_core.data.nodule_sequences import NoduleBatches, NoduleSequences
from medgan_core.models import bagan, cgan, cyclegan, dcgan, pix2pix, sqaggan
from medgan_core.models.registry import FAMILIES, GAN_NAMES, build_gan, define_D, define_G, sample
from medgan_core.train import ImageBatches


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


TINY = dict(image_size=16, nz=8, width_G=4, width_D=4)  # image size 16, widths 4


def image_data(k: int = 3, size: int = 16) -> ImageBatches:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4 * k, 3, size, size, generator=g) * 2 - 1
    return ImageBatches(x, torch.arange(4 * k) % k, batch_size=4, seed=0)


def nodule_data() -> NoduleBatches:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    m = np.zeros_like(x, bool)
    m[..., 6:10, 6:10] = True
    seqs = NoduleSequences(x, np.where(m, 0, x).astype(np.float32), m, m, rng.uniform(0, 1, (4, 2)).astype(np.float32),
                           pd.DataFrame({"nodule_id": list("abcd")}))
    return NoduleBatches(seqs, rng.uniform(-1, 1, (3, 3, 16, 16)).astype(np.float32), batch_size=2)


def build_tiny(name: str, seed: int = 0, **kw):
    """Every registry name at the tiny size, with what it needs (BAGAN: a tiny autoencoder and latent)."""
    if name.startswith("sqaggan"):
        return build_gan(name, num_features=2, width_G=2, width_D=2, seed=seed, **kw), nodule_data()
    if name in ("cyclegan", "pix2pix"):  # translators: patches of two domains, at least 24 px for the PatchGAN
        g = torch.Generator().manual_seed(seed)
        x, y = (torch.rand(4, 1, 32, 32, generator=g) * 2 - 1 for _ in range(2))
        family = {"n_blocks": 1} if name == "cyclegan" else {"n_down": 2}
        return (build_gan(name, channels=1, width_G=4, width_D=4, seed=seed, **family, **kw),
                PatchPairs(x, y, patch=32, batch_size=2, paired=name == "pix2pix"))
    if name == "biggan":  # at least 32 px; nz divisible by the 4 latent chunks
        return build_gan(name, num_classes=3, **{**TINY, "image_size": 32}, seed=seed, n_critic=2, **kw), image_data(size=32)
    data = image_data()
    if name in ("bagan", "bagan_gp"):
        ae = build_gan("bagan_autoencoder", **TINY, seed=seed)
        latent = bagan.fit_latent(ae.net_G, data.x, data.y)
        return build_gan(name, num_classes=3, **TINY, autoencoder=ae.net_G, latent=latent, seed=seed, **kw), data
    k = 1 if name == "bagan_autoencoder" else 3
    return build_gan(name, num_classes=k, **TINY, seed=seed, n_critic=2, **kw), data


def test_names_and_families():
    assert GAN_NAMES == ("dcgan", "cwgan_gp", "bagan", "bagan_gp", "bagan_autoencoder", "sqaggan", "sqaggan_no_lstm",
                         "simple_gan", "biggan", "feature_gan", "cyclegan", "pix2pix")
    assert FAMILIES["dcgan"] is dcgan and FAMILIES["cwgan_gp"] is cgan and FAMILIES["bagan_gp"] is bagan
    assert FAMILIES["sqaggan_no_lstm"] is sqaggan and FAMILIES["cyclegan"] is cyclegan and FAMILIES["pix2pix"] is pix2pix
    for name, family in FAMILIES.items():
        assert callable(family.train_step) and name in family.BETAS


@pytest.mark.parametrize("name", GAN_NAMES)
def test_every_name_builds_and_does_one_finite_step(name):
    gan, data = build_tiny(name)
    assert gan.name == name and gan.net_G.training
    before = [p.detach().clone() for p in gan.net_G.parameters()]
    losses = gan.train_step(data, 0)
    assert losses and all(math.isfinite(v) for v in losses.values())
    assert ("loss_AE" in losses) if name == "bagan_autoencoder" else {"loss_D", "loss_G"} <= set(losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.net_G.parameters()))


@pytest.mark.parametrize("name, betas", [("dcgan", (0.5, 0.999)), ("cwgan_gp", (0.5, 0.9)), ("bagan", (0.5, 0.999)),
                                         ("bagan_gp", (0.5, 0.9)), ("bagan_autoencoder", (0.5, 0.999)),
                                         ("sqaggan", (0.5, 0.9)), ("sqaggan_no_lstm", (0.5, 0.9))])
def test_optimiser_betas_and_learning_rates(name, betas):
    gan, _ = build_tiny(name, lr_G=3e-4, lr_D=1e-4)
    assert gan.opt_G.defaults["betas"] == betas and gan.opt_G.defaults["lr"] == 3e-4
    if gan.opt_D is not None:
        assert gan.opt_D.defaults["betas"] == betas and gan.opt_D.defaults["lr"] == 1e-4


@pytest.mark.parametrize("name", ["dcgan", "cwgan_gp", "sqaggan"])
def test_same_seed_same_weights_other_seed_other_weights(name):
    a, b, c = build_tiny(name, seed=1)[0], build_tiny(name, seed=1)[0], build_tiny(name, seed=2)[0]
    assert all(torch.equal(x, y) for x, y in zip(a.net_G.state_dict().values(), b.net_G.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.net_G.state_dict().values(), c.net_G.state_dict().values()))


def test_build_seeds_as_the_old_code_did():
    """cwgan_gp and sqaggan: torch.manual_seed(seed), then the networks (G before D)."""
    gan = build_gan("cwgan_gp", num_classes=2, **TINY, seed=7)
    torch.manual_seed(7)
    net_G, net_D = (define_G("cwgan_gp", num_classes=2, nz=8, image_size=16, width_G=4),
                    define_D("cwgan_gp", num_classes=2, image_size=16, width_D=4))
    assert all(torch.equal(a, b) for a, b in zip(gan.net_D.state_dict().values(), net_D.state_dict().values()))
    gan = build_gan("sqaggan_no_lstm", num_features=1, width_G=2, width_D=3, seed=7)
    torch.manual_seed(7)
    net_G = sqaggan.SQAGGANGenerator(1, 2, bilstm=False)
    net_D = sqaggan.SQAGGANDiscriminator(1, 3)
    assert all(torch.equal(a, b) for a, b in zip(gan.net_D.state_dict().values(), net_D.state_dict().values()))


@pytest.mark.parametrize("name", ["dcgan", "cwgan_gp", "bagan", "bagan_gp"])
def test_sample_is_deterministic_per_seed_and_keeps_train_mode(name):
    gan, _ = build_tiny(name)
    a, b, c = gan.sample(2, 5, seed=3), gan.sample(2, 5, seed=3), gan.sample(2, 5, seed=4)
    assert a.shape == (5, 3, 16, 16) and a.dtype == torch.float32 and a.abs().max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert gan.net_G.training
    assert not torch.equal(a, gan.sample(1, 5, seed=3))  # another class, other images
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        gan.sample(3, 1, 0)


@pytest.mark.parametrize("n, batch_size", [(5, 256), (7, 3), (0, 4)])
def test_sample_equals_the_old_recipes(n, batch_size):
    """z from torch.Generator().manual_seed(seed) (BAGAN: latent.sample(y, gen)), G in eval mode."""
    seed = 11
    per_class = build_tiny("dcgan")[0]
    cond = build_tiny("cwgan_gp")[0]
    bg = build_tiny("bagan")[0]
    for gan in (per_class, cond, bg):
        gan.net_G.eval()
    with torch.no_grad():
        z = torch.randn(n, 8, generator=torch.Generator().manual_seed(seed))
        expected_dcgan = per_class.net_G[1](z)
        expected_cgan = cond.net_G(z, torch.full((n,), 1))
        latent = bg.extras["latent"]
        expected_bagan = bg.net_G(latent.sample(torch.full((n,), 1), torch.Generator().manual_seed(seed)))
    for gan in (per_class, cond, bg):
        gan.net_G.train()
    assert torch.equal(sample(per_class.net_G, n, seed, cls=1, batch_size=batch_size), expected_dcgan)
    assert torch.equal(sample(cond.net_G, n, seed, cls=1, batch_size=batch_size), expected_cgan)
    assert torch.equal(sample(bg.net_G, n, seed, cls=1, latent=latent, batch_size=batch_size), expected_bagan)
    assert torch.equal(per_class.sample(1, n, seed), expected_dcgan)


def test_unconditional_dcgan_samples_class_zero_only():
    gan = build_gan("dcgan", **TINY)
    assert isinstance(gan.net_G, dcgan.Generator) and gan.num_classes == 1
    gan.net_G.eval()
    with torch.no_grad():
        expected = gan.net_G(torch.randn(2, 8, generator=torch.Generator().manual_seed(0)))
    gan.net_G.train()
    assert torch.equal(gan.sample(0, 2, 0), expected)
    with pytest.raises(ValueError, match="unconditional"):
        sample(gan.net_G, 2, 0, cls=0)


def test_ema_is_updated_by_the_step_and_used_for_sampling():
    gan, data = build_tiny("cwgan_gp", ema_decay=0.5)
    start = [p.detach().clone() for p in gan.ema.module.parameters()]
    gan.train_step(data, 0)
    assert gan.ema.num_updates == 1
    for s, e, p in zip(start, gan.ema.module.parameters(), gan.net_G.parameters()):
        assert torch.allclose(e, 0.1 * s + 0.9 * p)  # first update: the warm-up decay min(0.5, 1 / 10)
    assert torch.equal(gan.sample(0, 3, 0), sample(gan.ema.module, 3, 0, cls=0))
    per_class, data = build_tiny("dcgan", ema_decay=0.9)
    per_class.train_step(data, 0)
    assert per_class.ema.num_updates == 1  # once per step, after every class's generator step


def test_define_G_and_D_by_name():
    assert isinstance(define_G("dcgan", nz=8, image_size=16, width_G=4), dcgan.Generator)
    assert isinstance(define_D("cwgan_gp", num_classes=2, image_size=16, width_D=4), cgan.CondCritic)
    ae = define_G("bagan_autoencoder", nz=8, image_size=16, width_G=4, width_D=4)
    assert isinstance(ae, bagan.Autoencoder)
    assert isinstance(define_D("bagan", autoencoder=ae, num_classes=2), bagan.BaganDiscriminator)
    assert isinstance(define_D("bagan_gp", autoencoder=ae, num_classes=2), bagan.BaganGPCritic)
    assert not define_G("sqaggan_no_lstm", num_features=1, width_G=2).bilstm
    with pytest.raises(ValueError, match="no discriminator"):
        define_D("bagan_autoencoder", autoencoder=ae, num_classes=2)
    with pytest.raises(TypeError):
        define_G("dcgan", widht_G=4)  # a misspelt setting is not ignored


def test_unknown_names_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match=r"Unknown GAN 'wgan'.*'dcgan', 'cwgan_gp'"):
        build_gan("wgan")
    with pytest.raises(ValueError, match="valid names"):
        define_G("stylegan")
    with pytest.raises(ValueError, match="takes no settings"):
        build_gan("dcgan", **TINY, num_features=2)
    with pytest.raises(ValueError, match="for 'bagan' and 'bagan_gp' only"):
        build_gan("dcgan", **TINY, autoencoder=nn.Linear(1, 1))
    with pytest.raises(ValueError, match="n_critic >= 1"):
        build_gan("cwgan_gp", num_classes=2, **TINY, n_critic=0)
    with pytest.raises(ValueError, match="num_classes=1"):
        build_gan("sqaggan", num_classes=2, num_features=1)
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        build_gan("cwgan_gp", num_classes=1, **TINY)
    with pytest.raises(ValueError, match="does not sample"):
        build_gan("bagan_autoencoder", **TINY).sample(0, 1, 0)
