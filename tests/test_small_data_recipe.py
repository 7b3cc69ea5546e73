"""Small-data recipe pieces: DiffAugment, the fake-batch reuse of the GAN step, validation-KID early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan_core.data.augment import DIFFAUG_OPS, DiffAugment
from medgan_core.losses import get_losses
from medgan_core.metrics.fidelity import validation_kid
from medgan_core.models.registry import build_gan
from medgan_core.train import ImageBatches, adversarial_step, train_gan

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("op", DIFFAUG_OPS)
def test_each_diffaugment_op_is_differentiable_and_the_identity_at_zero_strength(op):
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    assert torch.equal(DiffAugment(ops=(op,), strength=0.0)(x, torch.Generator().manual_seed(0)), x)
    y = DiffAugment(ops=(op,))(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(y, x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0  # gradients reach the images


def test_diffaugment_ops_do_what_the_paper_says():
    x = torch.ones(2, 1, 16, 16)
    gen = torch.Generator().manual_seed(3)
    cut = DiffAugment(ops=("cutout",))(x, gen)
    assert ((cut == 0).flatten(1).sum(1) == 8 * 8).all()  # one 8x8 square (half the side) set to 0 per image
    moved = DiffAugment(ops=("translation",))(torch.ones(64, 1, 16, 16), torch.Generator().manual_seed(0))
    zeros = (moved == 0).flatten(1).sum(1)
    assert zeros.max() <= 16 * 16 - 14 * 14 and zeros.max() > 0  # shifts of at most 2 px (1/8 of 16), zero padding
    grey = DiffAugment(ops=("color",))(torch.zeros(8, 1, 4, 4), torch.Generator().manual_seed(1))
    assert grey.abs().max() <= 0.5 and grey.std() > 0  # brightness within +-0.5
    same = DiffAugment()(x, torch.Generator().manual_seed(5)), DiffAugment()(x, torch.Generator().manual_seed(5))
    assert torch.equal(*same)  # the generator decides every draw
    with pytest.raises(ValueError, match="unknown DiffAugment ops"):
        DiffAugment(ops=("rotate",))


def test_reused_fake_batch_runs_the_generator_once_per_step():
    gan = build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4)
    calls = []
    gan.net_G.register_forward_hook(lambda *_: calls.append(1))
    x = torch.rand(4, 3, 16, 16) * 2 - 1
    d_loss, g_loss = get_losses("nonsaturating")
    out = adversarial_step(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, x, d_loss, g_loss,
                           sample_z=lambda n: torch.randn(n, 8), reuse_fake=True)
    assert len(calls) == 1 and np.isfinite(out["loss_G"])
    adversarial_step(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, x, d_loss, g_loss, sample_z=lambda n: torch.randn(n, 8))
    assert len(calls) == 3  # without reuse: once for D, once for G
    with pytest.raises(ValueError, match="n_critic == 1"):
        adversarial_step(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, x, d_loss, g_loss,
                         sample_z=lambda n: torch.randn(n, 8), reuse_fake=True, n_critic=2)


@pytest.mark.parametrize("name", ["dcgan", "cwgan_gp"])
def test_diffaug_option_augments_what_the_discriminator_sees(name):
    images = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    data = ImageBatches(images, np.arange(12) % 2, batch_size=4, seed=0)
    seen = []
    gan = build_gan(name, num_classes=2, image_size=16, nz=8, width_G=4, width_D=4, diffaug=True)
    net_D = gan.net_D[0] if isinstance(gan.net_D, torch.nn.ModuleList) else gan.net_D
    net_D.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    gan.train_step(data, 0)
    x_real = data.batch(0, cls=0)[0] if name == "dcgan" else data.batch(0)[0]
    assert not torch.equal(seen[0], x_real)  # D's real input was augmented
    assert (seen[0] == 0).flatten(1).sum(1).min() >= 8 * 8  # a cutout square in every image
    with pytest.raises(ValueError, match="diffaug"):
        build_gan("bagan_autoencoder", diffaug=True)


def test_early_stopping_keeps_the_best_validation_generator(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    data = ImageBatches(images, None, batch_size=4, seed=0)
    gan = build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4)
    curve = iter([5.0, 4.0, 1.0, 2.0, 3.0, 4.0, 0.5])  # the 0.5 would come too late
    kept = {}

    def score(g):
        s = next(curve)
        kept[s] = {k: v.clone() for k, v in g.net_G.state_dict().items()}
        return s

    run = train_gan(gan, data, num_steps=50, eval_fn=score, eval_every=2, patience=3, progress=False,
                    run_dir=tmp_path / "run")
    assert run.stopped_by == "early_stopping" and run.steps == 12  # 3 validations after the best (step 6)
    assert run.best_step == 6 and run.evals["score"].tolist() == [5.0, 4.0, 1.0, 2.0, 3.0, 4.0]
    assert all(torch.equal(v, kept[1.0][k]) for k, v in gan.net_G.state_dict().items())  # the best is loaded
    again = train_gan(build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4), data, num_steps=50,
                      eval_fn=score, eval_every=2, patience=3, progress=False, run_dir=tmp_path / "run")
    assert again.steps == 12 and again.best_step == 6 and again.stopped_by == "early_stopping"  # stays stopped
    with pytest.raises(ValueError, match="eval_every"):
        train_gan(gan, data, num_steps=2, eval_fn=score, progress=False)


def test_validation_curves_beside_the_score_survive_a_resume(tmp_path):
    """eval_fn may return {"score", ...}: each key is a column of run.evals, also after resuming from a checkpoint."""
    images = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    data = ImageBatches(images, None, batch_size=4, seed=0)
    calls = iter(range(100))

    def curves(g):
        i = next(calls)
        return {"score": 10.0 - i, "loss_D": float(i), "realism": 2.0 * i}

    kw = dict(eval_fn=curves, eval_every=2, progress=False, run_dir=tmp_path / "run", checkpoint_every=2)
    first = train_gan(build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4), data, num_steps=4, **kw)
    assert list(first.evals.columns) == ["step", "seconds", "score", "loss_D", "realism"]
    more = train_gan(build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4), data, num_steps=6, **kw)
    assert more.evals["step"].tolist() == [2, 4, 6] and more.evals["realism"].tolist() == [0.0, 2.0, 4.0]
    assert more.best_step == 6
    with pytest.raises(ValueError, match="'score'"):
        train_gan(build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4), data, num_steps=2, eval_every=2,
                  eval_fn=lambda g: {"kid": 1.0}, progress=False)


def test_snapshots_follow_the_time_budget_and_the_early_stop(tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    data = ImageBatches(images, None, batch_size=4, seed=0)
    gan = build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4)
    clock = iter(np.arange(0.0, 1000.0, 0.5))  # every perf_counter call advances 0.5 "seconds"
    monkeypatch.setattr("medgan_core.train.trainer.time.perf_counter", lambda: float(next(clock)))
    run = train_gan(gan, data, num_steps=10_000, time_budget_s=4.0, n_snapshots=2, progress=False)
    assert run.stopped_by == "time_budget" and len(run.snapshots) == 2
    assert max(run.snapshots) == run.steps  # the last snapshot is the budget's last step
    curve = iter([3.0, 2.0, 2.5, 2.6])
    stopped = train_gan(build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4), data, num_steps=10_000,
                        time_budget_s=1e6, n_snapshots=3, eval_fn=lambda g: next(curve), eval_every=1, patience=2,
                        progress=False, run_dir=tmp_path / "r")
    assert stopped.stopped_by == "early_stopping" and stopped.steps == 4 and list(stopped.snapshots) == [4]


def test_validation_kid_prefers_a_generator_that_matches_the_held_out_set():
    rng = np.random.default_rng(0)
    held = (rng.integers(100, 156, (40, 16, 16, 3), dtype=np.uint8), np.arange(40) % 2)
    features = lambda imgs: imgs.reshape(len(imgs), -1)[:, :8].astype(float) / 255.0  # noqa: E731

    class Fake:
        num_classes = 2

        def __init__(self, centre):
            self.centre = centre

        def sample(self, cls, n, seed):
            g = torch.Generator().manual_seed(seed + cls)
            return (torch.rand(n, 3, 16, 16, generator=g) * 0.44 - 0.22 + self.centre).clamp(-1, 1)

    score = validation_kid(features, held, max_per_class=15, seed=0, kid_subsets=10)
    close, far = score(Fake(0.0)), score(Fake(0.8))
    assert close < far and score(Fake(0.0)) == close  # deterministic for one generator
    one_class = Fake(0.0)
    one_class.num_classes = 1
    with pytest.raises(ValueError, match="makes 1"):
        score(one_class)


@pytest.mark.parametrize("name", ["dcgan", "cwgan_gp"])
def test_spectral_norm_option_normalises_every_discriminator_layer(name):
    gan = build_gan(name, num_classes=2, image_size=16, nz=8, width_G=4, width_D=4, spectral_norm=True)
    layers = [m for m in gan.net_D.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    plain = build_gan(name, num_classes=2, image_size=16, nz=8, width_G=4, width_D=4)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in plain.net_D.modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    with pytest.raises(ValueError, match="spectral_norm"):
        build_gan("bagan_autoencoder", spectral_norm=True)


def test_learning_rate_zero_means_the_papers_value():
    for name, lr in (("dcgan", 2e-4), ("cwgan_gp", 1e-4)):
        gan = build_gan(name, num_classes=2, image_size=16, nz=8, width_G=4, width_D=4)
        assert gan.opt_G.param_groups[0]["lr"] == lr and gan.opt_D.param_groups[0]["lr"] == lr
    gan = build_gan("dcgan", image_size=16, nz=8, width_G=4, width_D=4, lr_G=1e-3)
    assert gan.opt_G.param_groups[0]["lr"] == 1e-3 and gan.opt_D.param_groups[0]["lr"] == 2e-4
    with pytest.raises(ValueError, match="lr_G and lr_D"):
        build_gan("dcgan", lr_G=-1.0)


def test_ema_batchnorm_statistics_are_recomputed_from_the_averaged_generator():
    torch.manual_seed(0)
    gan = build_gan("dcgan", image_size=16, nz=8, width_G=8, width_D=4, ema_decay=0.5, ema_batchnorm="recompute")
    with torch.no_grad():  # make the averaged weights differ from the live ones
        for p in gan.ema.module.parameters():
            p.mul_(1.5)
    gan.ema.update(gan.net_G)  # copies the live generator's running statistics
    bn = next(m for m in gan.ema.module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    copied = bn.running_mean.clone()
    gan.refresh_ema(n=64, batches=2, seed=3)
    # the refreshed statistics are the exact mean of the first block's batch statistics over the two passes
    captured = []
    hook = bn.register_forward_hook(lambda m, inp, out: captured.append(inp[0].mean(dim=(0, 2, 3))))
    from medgan_core.models.registry import sample
    for i in range(2):
        sample(gan.ema.module, 64, 3 + i, batch_size=64, train_mode=True)
    hook.remove()
    gan.refresh_ema(n=64, batches=2, seed=3)
    assert torch.allclose(bn.running_mean, torch.stack(captured).mean(0), atol=1e-5)
    assert not torch.allclose(bn.running_mean, copied, atol=1e-3)
    assert not gan.ema.module.training
    kept = build_gan("dcgan", image_size=16, nz=8, width_G=8, width_D=4, ema_decay=0.5, ema_batchnorm="copy")
    kept.ema.update(kept.net_G)
    before = next(m for m in kept.ema.module.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean.clone()
    kept.refresh_ema()
    after = next(m for m in kept.ema.module.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean
    assert torch.equal(before, after)
