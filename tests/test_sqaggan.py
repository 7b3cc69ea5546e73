"""SQ-AGGAN: generator/discriminator shapes and heads, every loss term against hand values, one training step."""

from __future__ import annotations

import math

import pytest
import torch

from medgan_core.models.sqaggan import (Lambdas, SQAGGANDiscriminator, SQAGGANGenerator, background_l1,
                                        count_parameters, d_sqaggan, define_D, define_G, feature_term, g_sqaggan,
                                        nodule_l1, presence_term, train_step)

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
    net_G, net_D = define_G(name, nf, w), define_D(nf, w)
    x = torch.rand(b, t, 1, s, s) * 2 - 1
    m = (torch.rand(b, t, 1, s, s) > 0.8).float()
    out = net_G(x, m, torch.rand(b, nf))
    assert out.shape == (b, t, 1, s, s) and out.abs().max() <= 1
    critic, feats, presence = net_D(out[:, t // 2], m[:, t // 2])
    assert critic.shape == (b,) and feats.shape == (b, nf) and presence.shape == (b,)


def test_ablation_has_no_lstm_and_gpu_config_size():
    with_lstm, without = define_G("sqaggan", 2, 4), define_G("sqaggan_no_lstm", 2, 4)
    assert any("fwd" in n for n, _ in with_lstm.named_modules())
    assert not any("fwd" in n for n, _ in without.named_modules())
    # the write-up-scale configuration (width 64, two features): a regression value for the cost table
    assert count_parameters(define_G("sqaggan", 2, 64)) + count_parameters(define_D(2, 64)) == 36_358_149


def test_shape_errors_name_the_fix():
    net_G = SQAGGANGenerator(2, 2)
    with pytest.raises(ValueError, match="divisible by 8"):
        net_G(torch.zeros(1, 3, 1, 12, 12), torch.zeros(1, 3, 1, 12, 12), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"f must be \(B, 2\)"):
        net_G(torch.zeros(1, 3, 1, 16, 16), torch.zeros(1, 3, 1, 16, 16), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="at least 16 px"):
        SQAGGANDiscriminator(2, 2)(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="valid names"):
        define_G("unet", 2, 2)
    with pytest.raises(ValueError, match=">= 0"):
        Lambdas(GB=-1.0)


def test_feature_and_presence_terms_hand_values():
    f = torch.tensor([[0.0, 1.0]])
    # MSE of (1, 1) vs (0, 1) = 0.5 ; of (0, 0) vs (0, 1) = 0.5 -> sum 1.0
    assert feature_term([torch.tensor([[1.0, 1.0]]), torch.tensor([[0.0, 0.0]])], f).item() == pytest.approx(1.0)
    zero = torch.zeros(3)
    # logit 0: BCE = log 2 whatever the target
    assert presence_term([zero, zero], [zero]).item() == pytest.approx(3 * math.log(2))
    big = torch.full((2,), 20.0)
    assert presence_term([big]).item() == pytest.approx(0.0, abs=1e-6)
    assert presence_term([], [big]).item() == pytest.approx(20.0, abs=1e-6)


def test_nodule_l1_hand_values():
    x = torch.zeros(1, 1, 1, 2, 2)
    m = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 1, 2, 2)
    g_rec = torch.tensor([0.5, 9.0, 9.0, 9.0]).reshape(1, 1, 1, 2, 2)  # only the masked pixel counts
    g_inj = torch.tensor([-0.25, 0.0, 0.0, 0.0]).reshape(1, 1, 1, 2, 2)
    # (N_total / N_n) * mean|M (G - x)| = 4 / 1 * (0.5 / 4) + 4 / 1 * (0.25 / 4)
    assert nodule_l1(g_rec, g_inj, x, m).item() == pytest.approx(0.75)


def test_background_l1_is_zero_when_outputs_equal_inputs_outside_the_mask():
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 1, 8, 8), torch.rand(2, 3, 1, 8, 8)
    m = torch.zeros(2, 3, 1, 8, 8)
    m[..., 2:5, 2:5] = 1
    g_rec = torch.where(m.bool(), torch.full_like(x, 7.0), x)  # anything inside the nodule
    g_inj = torch.where(m.bool(), -x, y)
    assert background_l1(g_rec, g_inj, x, y, 1 - m).item() == 0.0
    # hand value: one background pixel off by 0.8 in g_rec -> 0.8 / numel
    g_rec[0, 0, 0, 0, 0] += 0.8
    assert background_l1(g_rec, g_inj, x, y, 1 - m).item() == pytest.approx(0.8 / x.numel(), rel=1e-5)


def test_objectives_combine_the_terms_with_their_weights():
    lam = Lambdas(gp=10.0, f=2.0, yn=3.0, GF=5.0, GB=7.0)
    t = torch.tensor
    f = t([[0.0]])
    d = d_sqaggan(c_x=t([1.0]), c_rec=t([0.5]), c_ybg=t([2.0]), c_injbg=t([1.0]), f_hats=[t([[1.0]])], f=f,
                  e_present=[t([0.0])], e_absent=[], gp_f=t(0.1), gp_b=t(0.2), lam=lam)
    assert d["adv_F"].item() == pytest.approx(0.5 - 1.0 + 10 * 0.1)
    assert d["adv_B"].item() == pytest.approx(1.0 - 2.0 + 10 * 0.2)
    assert d["loss_D"].item() == pytest.approx(0.5 + 1.0 + 2 * 1.0 + 3 * math.log(2))
    g = g_sqaggan(c_rec=t([0.5]), c_injbg=t([1.0]), f_hats=[t([[1.0]])], f=f, e_present=[t([0.0])],
                  l1_nodule=t(0.2), l1_background=t(0.01), lam=lam)
    assert g["G_adv"].item() == pytest.approx(-1.5)
    assert g["loss_G"].item() == pytest.approx(-1.5 + 2 * 1.0 + 3 * math.log(2) + 5 * 0.2 + 7 * 0.01)


def test_train_step_updates_both_networks():
    torch.manual_seed(0)
    net_G, net_D = define_G("sqaggan", 2, 2), define_D(2, 2)
    opt_G, opt_D = torch.optim.Adam(net_G.parameters(), 1e-3), torch.optim.Adam(net_D.parameters(), 1e-3)
    b, t, s = 2, 3, 16
    batch = {k: torch.rand(b, t, 1, s, s) * 2 - 1 for k in ("x", "x_removed", "y")}
    batch["m"] = (torch.rand(b, t, 1, s, s) > 0.8).float()
    batch["f"] = torch.rand(b, 2)
    g0, d0 = [p.clone() for p in net_G.parameters()], [p.clone() for p in net_D.parameters()]
    out = train_step(net_G, net_D, opt_G, opt_D, batch, Lambdas())
    assert {"loss_D", "adv_F", "adv_B", "D_f", "D_e", "loss_G", "G_F", "G_B"} <= set(out)
    assert all(math.isfinite(v) for v in out.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, net_G.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, net_D.parameters()))
    assert all(p.requires_grad for p in net_D.parameters())
    with pytest.raises(ValueError, match="lacks"):
        train_step(net_G, net_D, opt_G, opt_D, {"x": batch["x"]}, Lambdas())
