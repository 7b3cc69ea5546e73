"""Tests of medgan_core.losses: every loss against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medgan_core.losses import (D_LOSSES, G_LOSSES, Lambdas, background_l1, cycle_consistency_l1, d_bagan, d_hinge,
                                d_lsgan, d_minimax, d_nonsaturating, d_sqaggan, d_wasserstein, feature_term, g_bagan,
                                g_hinge, g_lsgan, g_minimax, g_nonsaturating, g_sqaggan, g_wasserstein, get_losses,
                                gradient_penalty, identity_l1, masked_l1, nodule_l1, presence_term, r1_penalty,
                                reconstruction_mse)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# --- adversarial losses against hand-computed numbers ------------------------------------------

def test_d_minimax_is_bce_on_logits():
    # real logits [0, 2] should be called real, fake logits [0, -1] fake:
    # -mean(log s(0), log s(2)) - mean(log(1 - s(0)), log(1 - s(-1)))
    expected = (-(math.log(0.5) + math.log(sigmoid(2.0))) / 2
                - (math.log(0.5) + math.log(1.0 - sigmoid(-1.0))) / 2)
    assert d_minimax(t(0, 2), t(0, -1)).item() == pytest.approx(expected, rel=1e-12)
    assert d_nonsaturating(t(0, 2), t(0, -1)).item() == pytest.approx(expected, rel=1e-12)
    bce = (F.binary_cross_entropy_with_logits(t(0, 2), t(1, 1))
           + F.binary_cross_entropy_with_logits(t(0, -1), t(0, 0)))
    assert d_minimax(t(0, 2), t(0, -1)).item() == pytest.approx(bce.item(), rel=1e-12)


def test_g_minimax_and_nonsaturating_values():
    # minimax G minimises mean log(1 - s(D)); non-saturating G minimises -mean log s(D)
    assert g_minimax(t(0, 2)).item() == pytest.approx((math.log(0.5) + math.log(1 - sigmoid(2.0))) / 2, rel=1e-12)
    assert g_nonsaturating(t(0, 2)).item() == pytest.approx(-(math.log(0.5) + math.log(sigmoid(2.0))) / 2, rel=1e-12)


def test_minimax_saturates_where_nonsaturating_does_not():
    # a confident discriminator (logit -10 on a fake): minimax's gradient is -s(-10) ~ -4.5e-5,
    # the non-saturating one is -(1 - s(-10)) ~ -1
    logit = torch.tensor([-10.0], dtype=torch.float64, requires_grad=True)
    (grad_mm,) = torch.autograd.grad(g_minimax(logit), logit)
    (grad_ns,) = torch.autograd.grad(g_nonsaturating(logit), logit)
    assert grad_mm.item() == pytest.approx(-sigmoid(-10.0), rel=1e-9)
    assert grad_ns.item() == pytest.approx(-(1 - sigmoid(-10.0)), rel=1e-9)


def test_lsgan_values():
    # D: 0.5 * mean((1-1)^2, (3-1)^2) + 0.5 * mean(0^2, 2^2) = 0.5 * 2 + 0.5 * 2 = 2
    assert d_lsgan(t(1, 3), t(0, 2)).item() == pytest.approx(2.0)
    # G: 0.5 * mean((0-1)^2, (2-1)^2) = 0.5
    assert g_lsgan(t(0, 2)).item() == pytest.approx(0.5)


def test_hinge_values():
    # D: mean(max(0, 1 - [2, 0.5, -1])) + mean(max(0, 1 + [-2, 0, 1])) = 2.5/3 + 3/3
    assert d_hinge(t(2, 0.5, -1), t(-2, 0, 1)).item() == pytest.approx(2.5 / 3 + 1.0)
    assert g_hinge(t(-2, 0, 1)).item() == pytest.approx(1.0 / 3)


def test_wasserstein_values():
    # D: mean(fake) - mean(real) = -1 - 2 = -3; G: -mean(fake) = 1
    assert d_wasserstein(t(1, 3), t(0, -2)).item() == pytest.approx(-3.0)
    assert g_wasserstein(t(0, -2)).item() == pytest.approx(1.0)


def test_patch_outputs_are_averaged_over_every_element():
    # a PatchGAN map `(B, 1, 2, 2)` counts as 4 outputs per image
    d_fake = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]]])
    assert g_wasserstein(d_fake).item() == pytest.approx(-3.0)


@pytest.mark.parametrize("bad", [torch.tensor([1, 2]), torch.empty(0), [0.0, 1.0]])
def test_losses_reject_non_float_scores(bad):
    with pytest.raises(ValueError, match="d_fake must be a non-empty float tensor"):
        g_hinge(bad)


# --- registry ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["minimax", "nonsaturating", "lsgan", "hinge", "wgan"])
def test_registry_returns_the_pair(name):
    d_fn, g_fn = get_losses(name)
    assert d_fn is D_LOSSES[name] and g_fn is G_LOSSES[name]
    assert d_fn(t(0.5), t(-0.5)).dim() == 0 and g_fn(t(-0.5)).dim() == 0


def test_registry_rejects_unknown_names_with_the_valid_list():
    assert set(D_LOSSES) == set(G_LOSSES) == {"minimax", "nonsaturating", "lsgan", "hinge", "wgan"}
    with pytest.raises(ValueError, match=r"'wasserstein'.*\['hinge', 'lsgan', 'minimax', 'nonsaturating', 'wgan'\]"):
        get_losses("wasserstein")


# --- gradient penalty --------------------------------------------------------------------------

class LinearCritic(torch.nn.Module):
    """D(x) = w . flatten(x) (+ y if a condition is given): its gradient is w everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())

    def forward(self, x, y=None):
        out = x.flatten(1) @ self.w
        return out if y is None else out + y


def test_gradient_penalty_of_a_linear_critic_is_exact():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64)  # ||w|| = 5
    net_D = LinearCritic(w)
    gen = torch.Generator().manual_seed(0)
    x_real = torch.randn(6, 1, 2, 2, dtype=torch.float64, generator=gen)  # `(B, C, H, W)`
    x_fake = torch.randn(6, 1, 2, 2, dtype=torch.float64, generator=gen)
    gp = gradient_penalty(net_D, x_real, x_fake, generator=gen)
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2, rel=1e-12)  # 16
    assert gradient_penalty(net_D, x_real, x_fake, center=0.0).item() == pytest.approx(25.0, rel=1e-12)
    # the penalty back-propagates into the critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    gp.backward()
    assert torch.allclose(net_D.w.grad, 2 * (5.0 - 1.0) * w / 5.0)


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64)  # ||w||^2 = 25 wherever D is evaluated
    net_D = LinearCritic(w)
    x = torch.randn(5, 1, 2, 2, dtype=torch.float64).requires_grad_(True)
    r1 = r1_penalty(net_D(x), x)
    assert r1.item() == pytest.approx(25.0, rel=1e-12)
    r1.backward()  # d/dw ||w||^2 = 2 w: the penalty reaches the critic
    assert torch.allclose(net_D.w.grad, 2 * w)
    quad = lambda v: (v ** 2).flatten(1).sum(1)  # grad 2x: R1 = mean 4 ||x||^2, so it depends on the real batch
    x2 = torch.ones(3, 4).requires_grad_(True)
    assert r1_penalty(quad(x2), x2).item() == pytest.approx(16.0)
    with pytest.raises(ValueError, match="must require grad"):
        r1_penalty(net_D(x.detach()), x.detach())


def test_gradient_penalty_passes_conditions_and_is_seeded():
    class Bumpy(torch.nn.Module):
        def forward(self, x, y):
            return (x ** 3).flatten(1).sum(1) * y  # gradient depends on where x_hat falls

    x_real, x_fake, y = torch.ones(4, 3), -torch.ones(4, 3), torch.tensor([1.0, 2.0, 3.0, 4.0])
    gp_a = gradient_penalty(Bumpy(), x_real, x_fake, y, generator=torch.Generator().manual_seed(1))
    gp_b = gradient_penalty(Bumpy(), x_real, x_fake, y, generator=torch.Generator().manual_seed(1))
    gp_c = gradient_penalty(Bumpy(), x_real, x_fake, y, generator=torch.Generator().manual_seed(2))
    assert gp_a.item() == gp_b.item() != gp_c.item()


def test_gradient_penalty_checks_shapes():
    with pytest.raises(ValueError, match="one shape"):
        gradient_penalty(LinearCritic(torch.ones(4)), torch.zeros(2, 4), torch.zeros(3, 4))


# --- reconstruction losses ---------------------------------------------------------------------

def test_cycle_and_identity_l1():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    x_rec = torch.tensor([[[[1.0, 1.0], [2.0, 0.0]]]])  # |x - x_rec| = [1, 0, 0, 3], mean 1
    assert cycle_consistency_l1(x, x_rec).item() == pytest.approx(1.0)
    assert identity_l1(x, x_rec).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        cycle_consistency_l1(x, x_rec[..., :1])


def test_masked_l1_with_and_without_area():
    x = torch.zeros(1, 1, 2, 2)
    y = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # errors inside: 1 and 4, sum 5
    assert masked_l1(x, y, mask, normalise_by_area=True).item() == pytest.approx(5 / 2)
    assert masked_l1(x, y, mask, normalise_by_area=False).item() == pytest.approx(5 / 4)


def test_masked_l1_broadcasts_a_one_channel_mask():
    x = torch.zeros(1, 2, 2, 2)
    y = torch.ones(1, 2, 2, 2) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1)  # channel errors 1 and 3
    mask = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])  # `(1, 1, 2, 2)`: top row, area 2 x 2 channels
    # inside: 2 pixels x (1 + 3) = 8 over an area of 4 elements -> 2; over all 8 elements -> 1
    assert masked_l1(x, y, mask).item() == pytest.approx(2.0)
    assert masked_l1(x, y, mask, normalise_by_area=False).item() == pytest.approx(1.0)


def test_masked_l1_empty_mask_is_zero_not_nan():
    x = torch.randn(2, 1, 3, 3, requires_grad=True)
    loss = masked_l1(x, torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 3, 3))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all()


def test_masked_l1_rejects_bad_masks():
    x = torch.zeros(1, 1, 2, 2)
    with pytest.raises(ValueError, match="does not broadcast"):
        masked_l1(x, x, torch.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="negative"):
        masked_l1(x, x, -torch.ones(1, 1, 2, 2))


def test_reconstruction_mse_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    x_rec = torch.tensor([[[[1.0, 1.0], [0.0, 3.0]]]])  # squared errors 1, 0, 4, 0 -> mean 1.25
    assert reconstruction_mse(x, x_rec).item() == pytest.approx(1.25)
    assert reconstruction_mse(x, x).item() == 0.0
    with pytest.raises(ValueError, match="one shape"):
        reconstruction_mse(x, x_rec[..., :1])


# --- BAGAN --------------------------------------------------------------------------------------

def test_bagan_losses_by_hand():
    logits_real = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # K = 2, last column = fake
    logits_fake = torch.tensor([[0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1])
    # CE(row, k) = log(sum(exp(row))) - row[k]
    ce_real = ((math.log(math.exp(2) + 2) - 2.0) + (math.log(2 + math.e) - 1.0)) / 2
    ce_fake_as_fake = math.log(2 + math.exp(3)) - 3.0
    assert d_bagan(logits_real, y, logits_fake).item() == pytest.approx(ce_real + ce_fake_as_fake, rel=1e-6)
    # the generator wants its fake seen as class 1: log(2 + e^3) - 0
    assert g_bagan(logits_fake, torch.tensor([1])).item() == pytest.approx(math.log(2 + math.exp(3)), rel=1e-6)
    assert g_bagan(logits_fake, torch.tensor([1])).item() == pytest.approx(
        F.cross_entropy(logits_fake, torch.tensor([1])).item())


def test_d_bagan_checks_the_class_count():
    with pytest.raises(ValueError, match=r"\(B, K \+ 1\)"):
        d_bagan(torch.zeros(2, 3), torch.tensor([0, 1]), torch.zeros(1, 4))


# --- SQ-AGGAN -------------------------------------------------------------------------------------

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
    with pytest.raises(ValueError, match="at least one"):
        presence_term([])
    with pytest.raises(ValueError, match="one shape"):
        feature_term([torch.zeros(1, 3)], f)


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


def test_sqaggan_objectives_combine_the_terms_with_their_weights():
    lam = Lambdas(gp=10.0, f=2.0, yn=3.0, GF=5.0, GB=7.0)
    f = torch.tensor([[0.0]])
    d = d_sqaggan(c_x=torch.tensor([1.0]), c_rec=torch.tensor([0.5]), c_ybg=torch.tensor([2.0]),
                  c_injbg=torch.tensor([1.0]), f_hats=[torch.tensor([[1.0]])], f=f, e_present=[torch.tensor([0.0])],
                  e_absent=[], gp_f=torch.tensor(0.1), gp_b=torch.tensor(0.2), lam=lam)
    assert d["adv_F"].item() == pytest.approx(0.5 - 1.0 + 10 * 0.1)
    assert d["adv_B"].item() == pytest.approx(1.0 - 2.0 + 10 * 0.2)
    assert d["D_f"].item() == pytest.approx(1.0) and d["D_e"].item() == pytest.approx(math.log(2))
    assert d["loss_D"].item() == pytest.approx(0.5 + 1.0 + 2 * 1.0 + 3 * math.log(2))
    g = g_sqaggan(c_rec=torch.tensor([0.5]), c_injbg=torch.tensor([1.0]), f_hats=[torch.tensor([[1.0]])], f=f,
                  e_present=[torch.tensor([0.0])], l1_nodule=torch.tensor(0.2), l1_background=torch.tensor(0.01),
                  lam=lam)
    assert g["G_adv"].item() == pytest.approx(-1.5)
    assert g["loss_G"].item() == pytest.approx(-1.5 + 2 * 1.0 + 3 * math.log(2) + 5 * 0.2 + 7 * 0.01)


@pytest.mark.parametrize("field", ["gp", "f", "yn", "GF", "GB"])
def test_lambdas_refuse_negative_weights(field):
    with pytest.raises(ValueError, match=">= 0"):
        Lambdas(**{field: -1.0})
