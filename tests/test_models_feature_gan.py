"""Experiment 03's networks: the VGG-style extractor-classifier, the feature GAN and its head schedule."""

from __future__ import annotations

import copy

import pytest
import torch

from medgan_core.models import build_gan, feature_gan
from medgan_core.models.classifier import build_classifier
from medgan_core.models.feature_gan import FeatureScaler, head_due
from medgan_core.models.vgg_extractor import VGGFeatureClassifier
from medgan_core.train import ImageBatches, train_gan

VGG_CASES = [  # (width, size, split, feature shape)
    (64, 160, "deep", (512, 10, 10)),  # the write-up's network
    (64, 160, "shallow", (256, 20, 20)),
    (4, 64, "deep", (32, 4, 4)),
    (4, 64, "shallow", (16, 8, 8)),
]


@pytest.mark.parametrize("width,size,split,shape", VGG_CASES)
def test_vgg_feature_shapes(width, size, split, shape):
    torch.manual_seed(0)
    net = VGGFeatureClassifier(1, 6, width=width, image_size=size, split=split).eval()
    x = torch.randn(2, 1, size, size)
    with torch.no_grad():
        f = net.features(x)
        assert tuple(f.shape) == (2, *shape) == (2, *net.feature_shape)
        assert net.head(f).shape == net(x).shape == (2, 6)


def test_vgg_full_width_head_is_the_writeups():
    net = VGGFeatureClassifier(1, 6, width=64, image_size=160)
    fcs = [m for m in net.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in fcs] == [(512 * 5 * 5, 4096), (4096, 512), (512, 6)]
    convs = [m.out_channels for m in net.extractor.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [64, 64, 128, 128, 128, 128, 256, 256, 256, 512]
    assert all(isinstance(m, torch.nn.LeakyReLU) for m in net.modules() if isinstance(m, (torch.nn.ReLU, torch.nn.LeakyReLU)))


def test_vgg_split_keeps_the_network_and_rejects_bad_settings():
    torch.manual_seed(0)
    deep = VGGFeatureClassifier(1, 3, width=4, image_size=64, split="deep")
    torch.manual_seed(0)
    shallow = VGGFeatureClassifier(1, 3, width=4, image_size=64, split="shallow")
    assert [p.shape for p in deep.parameters()] == [p.shape for p in shallow.parameters()]
    with pytest.raises(ValueError, match="multiple of 32"):
        VGGFeatureClassifier(1, 3, image_size=100)
    with pytest.raises(ValueError, match="split must be one of"):
        VGGFeatureClassifier(1, 3, split="middle")
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 64, 64\)"):
        deep(torch.randn(2, 1, 32, 32))
    assert isinstance(build_classifier("vgg_feature", 1, 3, width=4, image_size=64), VGGFeatureClassifier)


@pytest.mark.parametrize("size,channels", [(10, 512), (20, 256), (4, 8)])
def test_feature_gan_shapes(size, channels):
    gan = build_gan("feature_gan", num_classes=3, image_size=size, channels=channels, nz=16, width_G=8, width_D=4, seed=0)
    z, y = torch.randn(5, 16), torch.tensor([0, 1, 2, 0, 1])
    f = gan.net_G(z, y)
    assert f.shape == (5, channels, size, size) and f.abs().max() <= 1.0
    assert gan.net_D(f, y).shape == (5,)
    assert gan.sample(cls=2, n=3, seed=0).shape == (3, channels, size, size)
    assert gan.settings["lr_G"] == 1e-3 and gan.settings["lr_D"] == 1e-4  # the write-up's rates


def test_feature_discriminator_depends_on_the_label_and_generator_on_the_class():
    gan = build_gan("feature_gan", num_classes=2, image_size=4, channels=8, nz=8, width_G=8, width_D=4, seed=0)
    gan.net_G.eval()
    f = torch.rand(3, 8, 4, 4) * 2 - 1
    with torch.no_grad():
        d0, d1 = gan.net_D(f, torch.zeros(3, dtype=torch.long)), gan.net_D(f, torch.ones(3, dtype=torch.long))
        z = torch.randn(3, 8)
        g0, g1 = gan.net_G(z, torch.zeros(3, dtype=torch.long)), gan.net_G(z, torch.ones(3, dtype=torch.long))
    assert not torch.allclose(d0, d1) and not torch.allclose(g0, g1)
    with pytest.raises(ValueError, match="diffaug augments images"):
        build_gan("feature_gan", num_classes=2, image_size=4, channels=8, diffaug=True)
    with pytest.raises(ValueError, match="class-conditional"):
        build_gan("feature_gan", num_classes=1, image_size=4, channels=8)


def test_feature_scaler_round_trip_and_range():
    torch.manual_seed(0)
    f = torch.randn(50, 3, 4, 4) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1) + 2.0
    scaler = FeatureScaler.fit(f, quantile=0.0)
    s = scaler(f)
    assert s.min() >= -1 and s.max() <= 1 and torch.isclose(s.amin(dim=(0, 2, 3)), torch.tensor(-1.0)).all()
    torch.testing.assert_close(scaler.inverse(s), f, rtol=1e-5, atol=1e-5)
    clipped = FeatureScaler.fit(f)  # 0.5% and 99.5% quantiles: the extremes are clipped
    assert (clipped(f).abs() == 1).float().mean() > 0
    with pytest.raises(ValueError, match=r"expected feature maps \(B, 3, S, S\)"):
        scaler(torch.zeros(2, 4, 4, 4))


class SpyHead(torch.nn.Module):
    """A linear head that records, for every forward pass, whether it saw generated or real features."""

    def __init__(self, channels: int, size: int, num_classes: int, real_mean: float) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(channels * size * size, num_classes)
        self.real_mean, self.calls = real_mean, []

    def forward(self, f):
        self.calls.append("real" if abs(float(f.mean()) - self.real_mean) < 1e-4 else "fake")
        return self.lin(f.flatten(1))


@pytest.mark.parametrize("fake_every,real_every", [(2, 5), (1, 3), (3, 1)])
def test_head_is_trained_on_fake_and_real_batches_at_the_cadence(fake_every, real_every):
    torch.manual_seed(0)
    feats = torch.full((12, 4, 4, 4), 0.25)  # scaled real features, all 0.25
    data = ImageBatches(feats, torch.arange(12) % 2, batch_size=4, seed=0)
    gan = build_gan("feature_gan", num_classes=2, image_size=4, channels=4, nz=8, width_G=8, width_D=4, seed=0)
    scaler = FeatureScaler(torch.zeros(4), torch.ones(4))  # [0, 1] <-> [-1, 1]: the head sees real ones as 0.625
    head = SpyHead(4, 4, 2, real_mean=0.625)
    feature_gan.attach_head(gan, head, scaler, fake_every=fake_every, real_every=real_every, lr_head=1e-3)
    before = copy.deepcopy(head.lin.weight.detach())
    logs = [gan.train_step(data, step) for step in range(10)]
    expected = []
    for step in range(10):
        fake, real = head_due(step, fake_every, real_every)
        expected += ["fake"] * fake + ["real"] * real
        assert ("loss_head_fake" in logs[step]) == fake and ("loss_head_real" in logs[step]) == real
    assert head.calls == expected
    assert expected.count("fake") == len(range(0, 10, fake_every)) and expected.count("real") == len(range(0, 10, real_every))
    assert not torch.equal(before, head.lin.weight)  # the head's own optimiser moved it
    with pytest.raises(ValueError, match="fake_every must be an int >= 1"):
        feature_gan.attach_head(gan, head, scaler, fake_every=0)


def test_feature_gan_with_head_resumes_to_the_same_weights(tmp_path):
    feats = torch.rand(16, 4, 4, 4) * 2 - 1

    def run(folder, steps):
        gan = build_gan("feature_gan", num_classes=2, image_size=4, channels=4, nz=8, width_G=8, width_D=4, seed=0)
        torch.manual_seed(1)
        feature_gan.attach_head(gan, torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)),
                                FeatureScaler(-torch.ones(4), torch.ones(4)), lr_head=1e-3)
        train_gan(gan, ImageBatches(feats, torch.arange(16) % 2, 4, 0), num_steps=steps, run_dir=folder,
                  checkpoint_every=3, progress=False)
        return gan

    whole = run(tmp_path / "a", 6)
    run(tmp_path / "b", 3)
    resumed = run(tmp_path / "b", 6)  # picks up the step-3 checkpoint, head optimiser included
    for a, b in zip(whole.extras["head"].parameters(), resumed.extras["head"].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for a, b in zip(whole.net_G.parameters(), resumed.net_G.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_r1_weight_adds_half_gamma_times_r1_to_the_discriminator_loss():
    feats = torch.rand(8, 4, 4, 4) * 2 - 1
    data = ImageBatches(feats, torch.arange(8) % 2, batch_size=8, seed=0)
    logs = {}
    for gamma in (0.0, 2.0):
        gan = build_gan("feature_gan", num_classes=2, image_size=4, channels=4, nz=8, width_G=8, width_D=4, seed=0,
                        r1_weight=gamma)
        torch.manual_seed(3)
        logs[gamma] = gan.train_step(data, 0)
    assert "r1" not in logs[0.0] and logs[2.0]["r1"] > 0
    # same weights, batch and fakes: the loss differs by exactly gamma / 2 * R1
    assert logs[2.0]["loss_D"] == pytest.approx(logs[0.0]["loss_D"] + 0.5 * 2.0 * logs[2.0]["r1"], rel=1e-5)
    with pytest.raises(ValueError, match="r1_weight must be >= 0"):
        build_gan("feature_gan", num_classes=2, image_size=4, channels=4, r1_weight=-1.0)
    with pytest.raises(ValueError, match="takes no settings"):
        build_gan("dcgan", r1_weight=1.0)
