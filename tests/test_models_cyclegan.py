"""CycleGAN's networks, learning-rate schedule, losses and image pool (models/cyclegan.py, train/image_pool.py)."""

from __future__ import annotations

import math

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


# ---------------------------------------------------------------- the registry's CycleGAN: build, attach, train_step
from medgan_core.data.patches import PatchPairs  # noqa: E402
from medgan_core.models import build_gan, tiling  # noqa: E402
from medgan_core.train import train_gan  # noqa: E402

TINY = dict(channels=1, width_G=4, width_D=4, n_blocks=1)


def tiny_cyclegan(pool_size: int = 3, lr_constant_steps: int = 0, lr_decay_steps: int = 0, seed: int = 0):
    return build_gan("cyclegan", **TINY, pool_size=pool_size, lr_constant_steps=lr_constant_steps,
                     lr_decay_steps=lr_decay_steps, seed=seed)


def unpaired_patches(seed: int = 0) -> PatchPairs:
    """Random 40x40 images of each domain in [-1, 1], drawn as 32-px patches (the PatchGAN needs >= 24 px)."""
    g = torch.Generator().manual_seed(seed)
    return PatchPairs(torch.rand(4, 1, 40, 40, generator=g) * 2 - 1, torch.rand(4, 1, 40, 40, generator=g) * 2 - 1,
                      patch=32, batch_size=2, seed=seed)


def weights(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_build_gives_two_seeded_generators_and_two_discriminators():
    settings = {"seed": 3, **TINY}
    net_G, net_D, extras = cyclegan.build("cyclegan", settings)
    assert extras == {} and set(net_G) == {"G", "F"} and set(net_D) == {"D_X", "D_Y"}
    assert isinstance(net_G["G"], ResnetGenerator) and isinstance(net_D["D_Y"], PatchDiscriminator)
    again, other = cyclegan.build("cyclegan", settings)[0], cyclegan.build("cyclegan", {**settings, "seed": 4})[0]
    assert all(torch.equal(a, b) for a, b in zip(weights(net_G), weights(again)))
    assert not all(torch.equal(a, b) for a, b in zip(weights(net_G), weights(other)))
    assert not torch.equal(net_G["G"].net[1].weight, net_G["F"].net[1].weight)  # G and F start apart


def test_train_step_returns_finite_losses_and_moves_all_four_networks(one_thread):
    gan, data = tiny_cyclegan(), unpaired_patches()
    before = {k: weights(net) for k, net in {**gan.net_G, **gan.net_D}.items()}
    out = gan.train_step(data, 0)
    assert set(out) == {"loss_G", "loss_G_adv", "loss_cycle", "loss_identity", "loss_D_X", "loss_D_Y", "loss_D", "lr"}
    assert all(isinstance(v, float) and math.isfinite(v) for v in out.values())
    assert out["loss_D"] == pytest.approx(out["loss_D_X"] + out["loss_D_Y"], rel=1e-6)
    total = out["loss_G_adv"] + 10 * out["loss_cycle"] + 10 * 0.5 * out["loss_identity"]
    assert out["loss_G"] == pytest.approx(total, rel=1e-5)
    assert out["lr"] == pytest.approx(2e-4) and out["loss_cycle"] > 0 and out["loss_D_X"] > 0
    for name, net in {**gan.net_G, **gan.net_D}.items():
        assert not all(torch.equal(a, b) for a, b in zip(before[name], net.parameters())), name
    assert all(p.requires_grad for p in gan.net_D.parameters())  # D unfrozen after G's step


def test_learning_rate_follows_linear_decay_and_lr_is_the_rate_of_its_step(one_thread):
    c, d = 2, 3
    gan, data = tiny_cyclegan(lr_constant_steps=c, lr_decay_steps=d), unpaired_patches()
    returned, moved = [], []
    for k in range(7):
        for opt in (gan.opt_G, gan.opt_D):  # the rate after k steps
            assert opt.param_groups[0]["lr"] == pytest.approx(2e-4 * linear_decay(k, c, d), abs=1e-12)
        before = weights(gan.net_G)
        returned.append(gan.train_step(data, k)["lr"])
        moved.append(not all(torch.equal(a, b) for a, b in zip(before, gan.net_G.parameters())))
    assert returned == pytest.approx([2e-4 * linear_decay(k, c, d) for k in range(7)], abs=1e-12)
    assert returned[:3] == pytest.approx([2e-4, 2e-4, 2e-4]) and returned[5:] == [0.0, 0.0]
    assert moved == [True] * 5 + [False] * 2  # a step whose returned rate is 0 leaves the weights where they were


def test_constant_rate_without_a_schedule(one_thread):
    gan, data = tiny_cyclegan(), unpaired_patches()
    assert [gan.train_step(data, k)["lr"] for k in range(3)] == pytest.approx([2e-4] * 3)
    assert set(gan.schedulers) == {"G", "D"} and gan.opt_D.param_groups[0]["lr"] == pytest.approx(2e-4)


@pytest.mark.parametrize("pool_size,sizes", [(3, [2, 3, 3, 3]), (5, [2, 4, 5, 5]), (0, [0, 0, 0, 0])])
def test_pools_fill_up_to_pool_size(pool_size, sizes, one_thread):
    gan, data = tiny_cyclegan(pool_size=pool_size), unpaired_patches()
    assert set(gan.pools) == {"X", "Y"} and len(gan.pools["X"]) == 0
    seen = []
    for k in range(4):
        gan.train_step(data, k)
        seen.append((len(gan.pools["X"]), len(gan.pools["Y"])))
    assert seen == [(n, n) for n in sizes]
    if pool_size:
        assert gan.pools["X"].images[0].shape == (1, 32, 32)
        assert not torch.equal(gan.pools["X"].images[0], gan.pools["Y"].images[0])  # fakes of X vs fakes of Y


def _state(gan) -> dict:
    return {"G": gan.net_G.state_dict(), "D": gan.net_D.state_dict(),
            "pools": {k: p.state_dict() for k, p in gan.pools.items()},
            "schedulers": {k: s.state_dict() for k, s in gan.schedulers.items()},
            "lr": (gan.opt_G.param_groups[0]["lr"], gan.opt_D.param_groups[0]["lr"])}


def test_interrupted_training_resumes_to_the_uninterrupted_weights_pools_and_schedules(tmp_path, one_thread):
    kw = dict(pool_size=3, lr_constant_steps=2, lr_decay_steps=3)
    run = dict(checkpoint_every=2, progress=False)
    whole = tiny_cyclegan(**kw)
    train_gan(whole, unpaired_patches(), num_steps=6, run_dir=tmp_path / "whole", **run)
    first = train_gan(tiny_cyclegan(**kw), unpaired_patches(), num_steps=3, run_dir=tmp_path / "cut", **run)
    assert first.steps == 3
    resumed = tiny_cyclegan(**kw)  # a fresh process: new networks, pools and schedulers
    result = train_gan(resumed, unpaired_patches(), num_steps=6, run_dir=tmp_path / "cut", **run)
    assert result.resumed_from == 3 and result.steps == 6
    a, b = _state(whole), _state(resumed)
    for net in ("G", "D"):
        assert a[net].keys() == b[net].keys() and all(torch.equal(a[net][k], b[net][k]) for k in a[net]), net
    for k in ("X", "Y"):
        assert len(whole.pools[k]) == 3
        assert torch.equal(a["pools"][k]["images"], b["pools"][k]["images"])
        assert torch.equal(a["pools"][k]["rng"], b["pools"][k]["rng"])
    assert a["schedulers"] == b["schedulers"] and a["schedulers"]["G"]["last_epoch"] == 6
    assert a["lr"] == b["lr"] == pytest.approx((2e-4 * linear_decay(6, 2, 3),) * 2)
    uncut = train_gan(tiny_cyclegan(**kw), unpaired_patches(), num_steps=6, progress=False)  # no checkpoints at all
    assert uncut.history["loss_G"].tolist() == result.history["loss_G"].tolist()


@pytest.mark.parametrize("name", ["cyclegan", "pix2pix"])
@pytest.mark.parametrize("option", [{"diffaug": True}, {"ema_decay": 0.999}])
def test_translators_refuse_diffaug_and_ema(name, option):
    with pytest.raises(ValueError, match=f"{name} translates images.*diffaug=False and ema_decay=0"):
        build_gan(name, channels=1, width_G=4, width_D=4, **option)


def test_cyclegan_does_not_sample_and_needs_a_snapshot_fn(one_thread):
    gan, data = tiny_cyclegan(), unpaired_patches()
    assert not gan.draws_latents
    with pytest.raises(ValueError, match="translate"):
        gan.sample(0, 2, seed=0)
    with pytest.raises(ValueError, match="pass snapshot_fn"):
        train_gan(gan, data, num_steps=2, n_snapshots=1, progress=False)
    fixed = data.x[:2, :, :32, :32]
    run = train_gan(gan, data, num_steps=2, n_snapshots=1, progress=False,
                    snapshot_fn=lambda g: tiling.translate(g.net_G["G"], fixed))
    assert list(run.snapshots) == [2] and tuple(run.snapshots[2].shape) == (2, 1, 32, 32)
