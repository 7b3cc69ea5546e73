"""CycleGAN's networks, learning-rate schedule, losses and image pool (models/cyclegan.py, train/image_pool.py)."""

from __future__ import annotations

import pytest
import torch

from medgan_core.losses import cycle_consistency_l1
from medgan_core.models import cyclegan
from medgan_core.models.cyclegan import PatchDiscriminator, ResnetGenerator, linear_decay
from medgan_core.train import ImagePool


@pytest.mark.parametrize("size", [(8, 8), (12, 20), (32, 16), (36, 36)])
@pytest.mark.parametrize("n_blocks", [0, 2])
def test_generator_keeps_the_shape_of_any_input_divisible_by_4(size, n_blocks):
    torch.manual_seed(0)
    net_G = ResnetGenerator(channels=1, width=4, n_blocks=n_blocks)
    x = torch.rand(2, 1, *size) * 2 - 1
    out = net_G(x)
    assert out.shape == x.shape and out.abs().max() <= 1.0


def test_generator_rejects_sides_not_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        ResnetGenerator(1, 4, 1)(torch.zeros(1, 1, 18, 16))


@pytest.mark.parametrize("size,grid", [(64, 6), (70, 6), (128, 14), (256, 30)])
def test_patch_discriminator_grid_is_size_over_8_minus_2(size, grid):
    net_D = PatchDiscriminator(channels=1, width=4)
    assert net_D(torch.zeros(1, 1, size, size)).shape == (1, 1, grid, grid)


def test_patch_discriminator_score_sees_a_70_pixel_patch():
    """Changing a pixel moves only the scores whose 70x70 window holds it (instance norm, which mixes every
    position through its statistics, is taken out so that only the convolutions' geometry is tested)."""
    torch.manual_seed(0)
    net_D = PatchDiscriminator(channels=1, width=4).eval()
    for i, m in enumerate(net_D.net):
        if isinstance(m, torch.nn.InstanceNorm2d):
            net_D.net[i] = torch.nn.Identity()
    x = torch.rand(1, 1, 128, 128)
    x2 = x.clone()
    x2[0, 0, 0, 0] += 5.0  # the top-left corner pixel
    moved = (net_D(x2) - net_D(x)).abs()[0, 0] > 0
    rows, cols = torch.nonzero(moved, as_tuple=True)
    assert moved[0, 0] and not moved[-1, -1]
    assert int(rows.max()) * 8 < cyclegan.PATCH and int(cols.max()) * 8 < cyclegan.PATCH


def test_linear_decay_values():
    values = [linear_decay(s, n_constant=3, n_decay=4) for s in range(9)]
    assert values == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25, 0, 0])
    assert linear_decay(10, 5, 0) == 1.0
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: linear_decay(s, 2, 2))
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4, 0.0])
    with pytest.raises(ValueError, match="n_constant and n_decay"):
        linear_decay(0, -1, 2)


def test_image_pool_returns_stored_images_half_the_time_once_full():
    pool = ImagePool(10, seed=0)
    pool.query(torch.full((10, 1, 1, 1), -1.0))  # fills the pool with -1s, returns them
    assert len(pool) == 10
    returned_old, stored_new = 0, 0
    n = 4000
    for i in range(n):  # every new image is +i; a stored one is older
        out = pool.query(torch.full((1, 1, 1, 1), float(i)))
        returned_old += int(out.item() != i)
        stored_new += int(any(float(img) == i for img in pool.images))
    assert returned_old == stored_new  # an old image comes back exactly when the new one is stored
    assert abs(returned_old / n - 0.5) < 0.03  # with probability 1/2 (binomial sd 0.008)
    assert len(pool) == 10


def test_cyclegan_losses_match_their_terms_and_the_cycle_shrinks_with_training():
    torch.manual_seed(0)
    nets = {"G": ResnetGenerator(1, 4, 1), "F": ResnetGenerator(1, 4, 1), "D_X": PatchDiscriminator(1, 4),
            "D_Y": PatchDiscriminator(1, 4)}
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    loss, terms = cyclegan.losses_G(nets, x, y)
    total = terms["loss_G_adv"] + 10 * terms["loss_cycle"] + 10 * 0.5 * terms["loss_identity"]
    assert float(loss) == pytest.approx(total, rel=1e-5)
    loss_no_id, t2 = cyclegan.losses_G(nets, x, y, lambda_id=0.0)
    assert t2["loss_identity"] == 0 and float(loss_no_id) == pytest.approx(terms["loss_G_adv"] + 10 * terms["loss_cycle"], rel=1e-5)
    d_x, d_y = cyclegan.losses_D(nets, x, y, terms["fake_x"], terms["fake_y"])
    assert d_x.requires_grad and float(d_x) > 0 and float(d_y) > 0
    gens = list(nets["G"].parameters()) + list(nets["F"].parameters())
    opt = torch.optim.Adam(gens, lr=1e-2)
    start = cycle_consistency_l1(x, nets["F"](nets["G"](x))).item()
    for _ in range(30):  # the cycle term alone: the round trip learns to give x back
        loss = cycle_consistency_l1(x, nets["F"](nets["G"](x))) + cycle_consistency_l1(y, nets["G"](nets["F"](y)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert cycle_consistency_l1(x, nets["F"](nets["G"](x))).item() < 0.8 * start  # noise through width 4: a partial fit
