"""Tiled full-resolution inference with MONAI's sliding window, and the seam metric (models/tiling.py)."""

from __future__ import annotations

import math

import pytest
import torch

from medgan_core.models.tiling import seam_ratio, tiled_translate, translate, window_borders


def smooth_image(n: int = 96) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float32), torch.arange(n, dtype=torch.float32), indexing="ij")
    return (0.5 + 0.3 * torch.sin(2 * math.pi * xx / n) * torch.cos(2 * math.pi * yy / n))[None, None]  # `(1, 1, n, n)`


class FramedNet(torch.nn.Module):
    """A network with a border effect: the identity plus 0.3 on the top and left 3-pixel bands of whatever window
    it sees, so that pasted windows jump by 0.3 where one window ends and the next begins."""

    def forward(self, x):
        band = torch.zeros_like(x)
        band[..., :3, :] = band[..., :, :3] = 0.3
        return x + band


@pytest.mark.parametrize("overlap,mode", [(0.0, "constant"), (0.25, "gaussian"), (0.5, "gaussian")])
def test_identity_network_gives_the_input_back(overlap, mode):
    img = smooth_image()
    out, windows = tiled_translate(lambda x: x, img, roi=32, overlap=overlap, mode=mode)
    torch.testing.assert_close(out, img, rtol=0, atol=1e-5)
    covered = torch.zeros(96, 96, dtype=torch.bool)
    for r, c in windows:
        covered[r, c] = True
    assert covered.all() and all(r.stop - r.start == 32 for r, _ in windows)


def test_window_borders_and_the_ratio_of_a_seamless_ramp():
    windows = [(slice(r, r + 32), slice(c, c + 32)) for r in (0, 32) for c in (0, 32)]
    assert window_borders(windows, 64, 64) == ([32], [32])
    ramp = torch.arange(64, dtype=torch.float64)[None, :].repeat(64, 1) * 0.01 + torch.arange(64, dtype=torch.float64)[:, None] * 0.02
    assert seam_ratio(ramp, [32], [32]) == pytest.approx(1.0)
    stepped = ramp.clone()
    stepped[:, 32:] += 0.5
    assert seam_ratio(stepped, [32], [32]) > 100
    with pytest.raises(ValueError, match="at least one interior border"):
        seam_ratio(ramp, [], [])


def test_blending_removes_the_seams_that_plain_tiling_leaves():
    img, net = smooth_image(), FramedNet()
    tiled, w_tiled = tiled_translate(net, img, roi=32, overlap=0.0, mode="constant")
    blended, w_blend = tiled_translate(net, img, roi=32, overlap=0.5, mode="gaussian")
    plain = seam_ratio(tiled, *window_borders(w_tiled, 96, 96))
    smooth = seam_ratio(blended, *window_borders(w_blend, 96, 96))
    assert plain > 10 and smooth < 2.0  # plain tiling: about 30 here; blended: below 1
    inner = (slice(16, 80), slice(16, 80))  # away from the image's own edge, the blend is the identity's output
    assert (blended[0, 0][inner] - img[0, 0][inner]).abs().max() < 0.01


def test_bad_tiling_input_is_refused():
    with pytest.raises(ValueError, match="H and W >= roi"):
        tiled_translate(lambda x: x, torch.zeros(1, 1, 16, 16), roi=32)
    with pytest.raises(ValueError, match="overlap"):
        tiled_translate(lambda x: x, torch.zeros(1, 1, 64, 64), roi=32, overlap=1.0)
    with pytest.raises(ValueError, match="mode"):
        tiled_translate(lambda x: x, torch.zeros(1, 1, 64, 64), roi=32, mode="mean")


def noisy_net() -> torch.nn.Module:
    """A seeded image-to-image network whose train-mode output is random (dropout) and whose batch norm would
    move its running statistics in train mode."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5),
                               torch.nn.Conv2d(4, 1, 3, padding=1), torch.nn.Tanh())


def test_translate_is_the_eval_mode_output_at_any_batch_size():
    net, x = noisy_net(), torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    assert not torch.equal(net(x), net(x))  # train mode: dropout makes every call differ
    one, five, big = translate(net, x, batch_size=1), translate(net, x, batch_size=5), translate(net, x, batch_size=16)
    with torch.no_grad():
        expected = net.eval()(x)
    torch.testing.assert_close(one, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(five, expected, rtol=0, atol=1e-6)
    assert torch.equal(five, big) and five.shape == x.shape
    assert five.device.type == "cpu" and five.dtype == torch.float32 and not five.requires_grad
    assert len(translate(net, x, batch_size=2)) == 5  # a last, smaller batch is kept


@pytest.mark.parametrize("train", [True, False])
def test_translate_restores_the_mode_and_leaves_the_running_statistics(train):
    net = noisy_net().train(train)
    bn = net[1]
    mean, seen = bn.running_mean.clone(), int(bn.num_batches_tracked)
    translate(net, torch.rand(3, 1, 16, 16) * 2 - 1, batch_size=2)
    assert net.training is train and all(m.training is train for m in net.modules())
    assert torch.equal(bn.running_mean, mean) and int(bn.num_batches_tracked) == seen  # eval: statistics untouched


@pytest.mark.parametrize("batch_size", [0, -1])
def test_translate_refuses_a_batch_size_below_one(batch_size):
    net = noisy_net()
    with pytest.raises(ValueError, match="batch_size >= 1"):
        translate(net, torch.zeros(2, 1, 16, 16), batch_size=batch_size)
    assert net.training


def test_translate_works_for_a_network_without_parameters():
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    assert torch.equal(translate(torch.nn.Identity(), x), x)
