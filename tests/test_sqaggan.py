"""SQ-AGGAN: generator/discriminator shapes and heads, one update, batches by step, generation and panels.

The loss terms are tested against hand values in ``test_losses.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from medgan_core.data.augment import augment_batch
from medgan_core.data.nodule_sequences import NoduleBatches, NoduleSequences, make_batch
from medgan_core.losses import Lambdas
from medgan_core.models.registry import build_gan, define_D, define_G
from medgan_core.models.sqaggan import (SQAGGANDiscriminator, SQAGGANGenerator, five_panel_snapshot, generate,
                                        generate_pair, loss_terms, random_batch, update)
from medgan_core.train import count_parameters, step_batch_indices, train_gan


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TEST_CASES = [  # (generator name, B, T, S, F, width)
    ("sqaggan", 2, 3, 16, 2, 4),
    ("sqaggan_no_lstm", 1, 3, 24, 1, 2),
    ("sqaggan", 1, 1, 16, 3, 2),
]


@pytest.mark.parametrize("name, b, t, s, nf, w", TEST_CASES)
def test_generator_and_discriminator_shapes(name, b, t, s, nf, w):
    torch.manual_seed(0)
    net_G, net_D = define_G(name, num_features=nf, width_G=w), define_D(name, num_features=nf, width_D=w)
    x = torch.rand(b, t, 1, s, s) * 2 - 1
    m = (torch.rand(b, t, 1, s, s) > 0.8).float()
    out = net_G(x, m, torch.rand(b, nf))
    assert out.shape == (b, t, 1, s, s) and out.abs().max() <= 1
    critic, feats, presence = net_D(out[:, t // 2], m[:, t // 2])
    assert critic.shape == (b,) and feats.shape == (b, nf) and presence.shape == (b,)


def test_ablation_has_no_lstm_and_gpu_config_size():
    with_lstm = define_G("sqaggan", num_features=2, width_G=4)
    without = define_G("sqaggan_no_lstm", num_features=2, width_G=4)
    assert any("fwd" in n for n, _ in with_lstm.named_modules())
    assert not any("fwd" in n for n, _ in without.named_modules())
    # the write-up-scale configuration (width 64, two features): a regression value for the cost table
    assert count_parameters(define_G("sqaggan", num_features=2, width_G=64),
                            define_D("sqaggan", num_features=2, width_D=64)) == 36_358_149


def test_shape_errors_name_the_fix():
    net_G = SQAGGANGenerator(2, 2)
    with pytest.raises(ValueError, match="divisible by 8"):
        net_G(torch.zeros(1, 3, 1, 12, 12), torch.zeros(1, 3, 1, 12, 12), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"f must be \(B, 2\)"):
        net_G(torch.zeros(1, 3, 1, 16, 16), torch.zeros(1, 3, 1, 16, 16), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="at least 16 px"):
        SQAGGANDiscriminator(2, 2)(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="valid names"):
        define_G("unet", num_features=2)
    with pytest.raises(ValueError, match=">= 0"):
        Lambdas(GB=-1.0)


def test_update_changes_both_networks():
    torch.manual_seed(0)
    net_G, net_D = define_G("sqaggan", num_features=2, width_G=2), define_D("sqaggan", num_features=2, width_D=2)
    opt_G, opt_D = torch.optim.Adam(net_G.parameters(), 1e-3), torch.optim.Adam(net_D.parameters(), 1e-3)
    b, t, s = 2, 3, 16
    batch = {k: torch.rand(b, t, 1, s, s) * 2 - 1 for k in ("x", "x_removed", "y")}
    batch["m"] = (torch.rand(b, t, 1, s, s) > 0.8).float()
    batch["f"] = torch.rand(b, 2)
    g0, d0 = [p.clone() for p in net_G.parameters()], [p.clone() for p in net_D.parameters()]
    out = update(net_G, net_D, opt_G, opt_D, batch, Lambdas())
    assert {"loss_D", "adv_F", "adv_B", "D_f", "D_e", "loss_G", "G_F", "G_B"} <= set(out)
    assert all(math.isfinite(v) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, net_G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, net_D.parameters()))
    assert all(p.requires_grad for p in net_D.parameters())
    with pytest.raises(ValueError, match="lacks"):
        update(net_G, net_D, opt_G, opt_D, {"x": batch["x"]}, Lambdas())


def test_reconstruction_only_update_leaves_the_discriminator_alone():
    """adv = f = yn = 0: the yardstick generator trains on its L1 terms; D gets no step and no term says otherwise."""
    torch.manual_seed(0)
    net_G, net_D = define_G("sqaggan", num_features=2, width_G=2), define_D("sqaggan", num_features=2, width_D=2)
    opt_G, opt_D = torch.optim.Adam(net_G.parameters(), 1e-3), torch.optim.Adam(net_D.parameters(), 1e-3)
    batch = random_batch(2, 3, 16, 2, seed=1)
    g0, d0 = [p.clone() for p in net_G.parameters()], [p.clone() for p in net_D.parameters()]
    lam = Lambdas(adv=0.0, f=0.0, yn=0.0)
    assert lam.reconstruction_only and not Lambdas().reconstruction_only and not Lambdas(adv=0.0).reconstruction_only
    out = update(net_G, net_D, opt_G, opt_D, batch, lam)
    assert "loss_D" not in out
    assert out["loss_G"] == pytest.approx(lam.GF * out["G_F"] + lam.GB * out["G_B"], rel=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(d0, net_D.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(g0, net_G.parameters()))


def test_loss_terms_validate_without_training_or_global_rng():
    """Every term of update() is reported, the weights and the global RNG are untouched, repeated calls agree."""
    torch.manual_seed(0)
    net_G, net_D = define_G("sqaggan", num_features=2, width_G=2), define_D("sqaggan", num_features=2, width_D=2)
    batch = random_batch(3, 3, 16, 2, seed=2)
    w0 = [p.clone() for p in (*net_G.parameters(), *net_D.parameters())]
    state = torch.random.get_rng_state()
    a, b = loss_terms(net_G, net_D, batch, Lambdas()), loss_terms(net_G, net_D, batch, Lambdas())
    assert torch.equal(state, torch.random.get_rng_state())
    assert a == b and {"loss_D", "adv_F", "adv_B", "D_f", "D_e", "loss_G", "G_adv", "G_F", "G_B"} <= set(a)
    assert all(math.isfinite(v) for v in a.values()) and a["adv_F"] != a["adv_B"]
    assert all(torch.equal(p, q) for p, q in zip(w0, (*net_G.parameters(), *net_D.parameters())))
    assert net_G.training and net_D.training


# --- batches by step, the registry's step, generation and the five panels ------------------------

def tiny_sequences(n: int = 5, t: int = 3, size: int = 16, nf: int = 2) -> tuple[NoduleSequences, np.ndarray]:
    """Random nodule sequences (a square nodule) and 4 random background sequences."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (n, t, size, size)).astype(np.float32)
    m = np.zeros((n, t, size, size), bool)
    m[:, :, 5:9, 6:10] = True
    x_removed = np.where(m, 0.0, x).astype(np.float32)
    f = rng.uniform(0, 1, (n, nf)).astype(np.float32)
    seqs = NoduleSequences(x, x_removed, m, m.copy(), f, pd.DataFrame({"nodule_id": [f"n{i}" for i in range(n)]}))
    return seqs, rng.uniform(-1, 1, (4, t, size, size)).astype(np.float32)


@pytest.mark.parametrize("step, seed", [(0, 0), (3, 2), (7, 5)])
def test_nodule_batches_follow_the_step_recipe(step, seed):
    seqs, backgrounds = tiny_sequences()
    batch = NoduleBatches(seqs, backgrounds, batch_size=2, seed=seed).batch(step)
    idx = step_batch_indices(step, 5, 2, seed).numpy()
    bg = step_batch_indices(step, 4, 2, seed + 1).numpy()
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    seq = lambda a: torch.from_numpy(a.astype(np.float32)).unsqueeze(2)  # noqa: E731
    x, xr, m = augment_batch([seq(seqs.x[idx]), seq(seqs.x_removed[idx]), seq(seqs.m[idx])], gen)
    (y,) = augment_batch([seq(backgrounds[bg])], gen)
    for key, expected in dict(x=x, x_removed=xr, m=m, y=y, f=torch.from_numpy(seqs.f[idx])).items():
        assert torch.equal(batch[key], expected), key
    assert batch["x"].shape == (2, 3, 1, 16, 16)


def test_nodule_batches_fixed_rows_and_errors():
    seqs, backgrounds = tiny_sequences()
    data = NoduleBatches(seqs, backgrounds, batch_size=2, seed=0)
    fixed = data.fixed([3, 1])
    assert torch.equal(fixed["x"][:, :, 0], torch.from_numpy(seqs.x[[3, 1]]))  # not augmented
    assert torch.equal(fixed["y"][:, :, 0], torch.from_numpy(backgrounds[[0, 1]]))
    with pytest.raises(ValueError, match="lower it"):
        NoduleBatches(seqs, backgrounds, batch_size=5)
    with pytest.raises(ValueError, match=r"backgrounds must be \(M, T, S, S\)"):
        NoduleBatches(seqs, backgrounds[:, :2], batch_size=2)
    with pytest.raises(ValueError, match="one length"):
        make_batch(seqs, np.array([0, 1]), backgrounds, np.array([0]))


@pytest.mark.parametrize("name", ["sqaggan", "sqaggan_no_lstm"])
def test_registry_step_is_update_on_the_step_batch(name):
    seqs, backgrounds = tiny_sequences()
    data = NoduleBatches(seqs, backgrounds, batch_size=2, seed=1)
    kw = dict(num_features=2, width_G=2, width_D=2, lr_G=1e-3, lr_D=1e-3, seed=4, lam=Lambdas(GB=50.0))
    gan, ref = build_gan(name, **kw), build_gan(name, **kw)
    assert gan.opt_G.defaults["betas"] == (0.5, 0.9) and gan.settings["lam"].GB == 50.0
    torch.manual_seed(3)
    out = gan.train_step(data, 2)
    torch.manual_seed(3)
    expected = update(ref.net_G, ref.net_D, ref.opt_G, ref.opt_D, data.batch(2), Lambdas(GB=50.0), step=2)
    assert out == expected
    assert all(torch.equal(a, b) for a, b in zip(gan.net_G.state_dict().values(), ref.net_G.state_dict().values()))
    with pytest.raises(ValueError, match="num_features="):
        build_gan(name, width_G=2, width_D=2)
    with pytest.raises(ValueError, match="sqaggan_no_lstm takes no settings|sqaggan takes no settings"):
        build_gan(name, num_features=2, base_width=2)


def test_generate_and_five_panel_snapshot():
    seqs, backgrounds = tiny_sequences()
    torch.manual_seed(0)
    net_G = define_G("sqaggan", num_features=2, width_G=2)
    out = generate(net_G, seqs.x_removed, seqs.m, seqs.f, batch_size=2)
    assert out.shape == seqs.x.shape and out.dtype == np.float32 and np.abs(out).max() <= 1 and net_G.training
    fixed = NoduleBatches(seqs, backgrounds, batch_size=2).fixed([0, 2])
    panels = five_panel_snapshot(net_G, fixed)
    assert panels.shape == (2, 5, 16, 16) and net_G.training
    np.testing.assert_array_equal(panels[:, 0], seqs.x[[0, 2], 1])  # original middle slices
    np.testing.assert_array_equal(panels[:, 3], backgrounds[[0, 1], 1])  # backgrounds
    np.testing.assert_allclose(panels[:, 2], out[[0, 2], 1], atol=1e-6)  # G(x') as generate gives it
    net_G.eval()
    with torch.no_grad():
        g_rec, g_inj = generate_pair(net_G, fixed)
    np.testing.assert_array_equal(panels[:, 4], g_inj[:, 1, 0].numpy())


def test_train_gan_keeps_five_panel_snapshots():
    seqs, backgrounds = tiny_sequences()
    data = NoduleBatches(seqs, backgrounds, batch_size=2, seed=0)
    gan = build_gan("sqaggan", num_features=2, width_G=2, width_D=2)
    fixed = data.fixed([0])
    run = train_gan(gan, data, num_steps=2, n_snapshots=2, progress=False,
                    snapshot_fn=lambda g: five_panel_snapshot(g.net_G, fixed))
    assert sorted(run.snapshots) == [1, 2] and run.snapshots[2].shape == (1, 5, 16, 16)
    assert {"loss_D", "loss_G", "G_F", "G_B"} <= set(run.history.columns)
    with pytest.raises(ValueError, match="snapshot_fn"):
        train_gan(gan, data, num_steps=1, n_snapshots=1, progress=False)
    with pytest.raises(ValueError, match="sqaggan.generate"):
        gan.sample(0, 1, 0)


def test_random_batch_shapes_ranges_and_seed():
    batch = random_batch(3, 5, 16, 2, seed=1)
    assert all(batch[k].shape == (3, 5, 1, 16, 16) for k in ("x", "x_removed", "m", "y")) and batch["f"].shape == (3, 2)
    assert batch["x"].abs().max() <= 1 and set(batch["m"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(batch["x"], random_batch(3, 5, 16, 2, seed=1)["x"])
    assert not torch.equal(batch["x"], random_batch(3, 5, 16, 2, seed=2)["x"])
