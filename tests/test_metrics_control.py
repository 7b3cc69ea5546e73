"""Feature control: descriptors by hand, the regressor's ceiling, fake generators that follow or ignore f, the
effect in rating points against the ceiling, and the verdict."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from medgan_core.data.nodule_sequences import scale_features
from medgan_core.metrics.control import (control_effect, control_verdict, feature_control, fit_feature_regressor,
                                         nodule_descriptors, regressor_ceiling, regressor_validity, spearman_ci)
from medgan_core.metrics.stats import bootstrap_ci, cluster_bootstrap_ci

S, T = 16, 3


def disk(radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:S, :S]
    return (yy - 7.5) ** 2 + (xx - 7.5) ** 2 <= radius ** 2


def brightness(rating: np.ndarray) -> np.ndarray:
    """The nodule intensity that goes with a rating 1..5: -0.6 .. 0.6."""
    return -0.6 + 0.3 * (np.asarray(rating, float) - 1)


def nodules(ratings: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences `(N, T, S, S)`: noisy dark lung, a disk of rating-dependent intensity; and the masks."""
    rng = np.random.default_rng(seed)
    n = len(ratings)
    x = rng.uniform(-1.0, -0.8, (n, T, S, S))
    m = np.zeros((n, T, S, S), bool)
    for i, r in enumerate(ratings):
        m[i] = disk(rng.uniform(3, 5))[None]
        x[i][m[i]] = brightness(r) + rng.normal(scale=0.03, size=m[i].sum())
    return x.astype(np.float32), m


@pytest.fixture(scope="module")
def regressor():
    ratings = np.tile(np.arange(1, 6), 10)
    x, m = nodules(ratings, seed=0)
    return fit_feature_regressor(x[:, T // 2], m[:, T // 2], ratings)


def test_nodule_descriptors_hand_values():
    x = np.full((1, S, S), -0.5)
    m = disk(3)[None]
    x[m] = 0.8
    d = nodule_descriptors(x, m)
    assert d.shape == (1, 74)
    assert d[0, :6] == pytest.approx([0.8, 0.0, 0.8, 0.8, 0.8, 0.8])  # mean, std, p10, p50, p90, max inside
    assert d[0, 6:8] == pytest.approx([-0.5, 1.3])  # ring mean, contrast
    assert d[0, 9] == pytest.approx(m.sum() / S ** 2)
    with pytest.raises(ValueError, match=r"\(N, S, S\)"):
        nodule_descriptors(x, m[:, :8])


def test_regressor_validity_on_held_out_nodules(regressor):
    truth = np.tile(np.arange(1, 6), 4)
    x, m = nodules(truth, seed=1)
    rho = regressor_validity(regressor, x[:, T // 2], m[:, T // 2], truth)
    pred = regressor.predict(nodule_descriptors(x[:, T // 2], m[:, T // 2]))
    assert rho == pytest.approx(spearmanr(truth, pred).statistic) and rho > 0.9  # as the notebook computed it
    assert np.isnan(regressor_validity(regressor, x[:, T // 2], m[:, T // 2], np.full(20, 3)))
    with pytest.raises(ValueError, match="two distinct values"):
        fit_feature_regressor(x[:, T // 2], m[:, T // 2], np.full(20, 3))


def test_spearman_ci_by_hand_and_as_the_old_mean_ci():
    requested = np.tile([1.0, 2.0, 3.0], 3)
    measured = np.r_[[1, 2, 3], [3, 2, 1], [2, 2, 2]].astype(float)  # rho 1, -1, constant -> 0
    groups = np.repeat([0, 1, 2], 3)
    rho, low, high = spearman_ci(requested, measured, groups, n_boot=200, seed=0)
    assert (rho, low, high) == bootstrap_ci([1.0, -1.0, 0.0], n_boot=200, seed=0)
    assert rho == 0.0 and low == -1.0 and high == 1.0
    with pytest.raises(ValueError, match="single requested level"):
        spearman_ci([1.0, 1.0], [1.0, 2.0], [0, 0])


def _inputs(n: int = 12):
    x, m = nodules(np.full(n, 3), seed=2)
    backgrounds = np.where(m, -0.9, x).astype(np.float32)  # nodules erased
    base_f = np.full((n, 2), 0.5, np.float32)
    return backgrounds, m, base_f


def test_a_generator_that_follows_the_request_scores_high(regressor):
    backgrounds, m, base_f = _inputs()
    asked = []

    def follows(x_in, masks, f):  # draws the nodule at the intensity of the requested rating
        asked.append(f[:, 1].copy())
        rating = 1 + 4 * f[:, 1]
        return np.where(masks, brightness(rating)[:, None, None, None], x_in)

    res = feature_control(follows, regressor, backgrounds, m, base_f, feature_index=1, seed=0)
    assert [a[0] for a in asked] == pytest.approx(scale_features(np.arange(1, 6)))  # 0, .25, .5, .75, 1
    assert res["rho"] == pytest.approx(1.0) and res["ci"] == pytest.approx((1.0, 1.0))
    assert res["mae"] < 0.5 and res["mode"] == "inject"
    assert list(res["per_level"]) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert np.all(np.diff(list(res["per_level"].values())) > 0)
    assert len(res["table"]) == 5 * len(backgrounds)


def test_a_generator_that_ignores_the_request_scores_near_zero(regressor):
    backgrounds, m, base_f = _inputs(20)
    rng = np.random.default_rng(3)

    def ignores(x_in, masks, f):  # a random rating per image, whatever was asked
        rating = rng.integers(1, 6, len(x_in))
        return np.where(masks, brightness(rating)[:, None, None, None], x_in)

    res = feature_control(ignores, regressor, backgrounds, m, base_f, feature_index=0, mode="reconstruct", seed=0)
    assert abs(res["rho"]) < 0.3 and res["ci"][0] < 0 < res["ci"][1]
    constant = feature_control(lambda x, mm, f: np.where(mm, 0.0, x), regressor, backgrounds, m, base_f, 0)
    assert (constant["rho"], *constant["ci"]) == (0.0, 0.0, 0.0)


def test_feature_control_checks_its_inputs(regressor):
    backgrounds, m, base_f = _inputs(4)
    with pytest.raises(ValueError, match="mode"):
        feature_control(lambda x, mm, f: x, regressor, backgrounds, m, base_f, 0, mode="edit")
    with pytest.raises(ValueError, match="generate_fn returned shape"):
        feature_control(lambda x, mm, f: x[:, :, None], regressor, backgrounds, m, base_f, 0)
    with pytest.raises(ValueError, match="feature_index"):
        feature_control(lambda x, mm, f: x, regressor, backgrounds, m, base_f, 5)


# --- effect in rating points, the regressor's ceiling, the verdict -------------------------------------------------

LEVELS = np.arange(1.0, 6.0)


def _table(read_back, n_patients: int = 8, inputs_per_patient: int = 2, seed: int = 0) -> pd.DataFrame:
    """Every input asked for 1..5; ``read_back(requested, rng) -> measured``; inputs nested in patients."""
    rng = np.random.default_rng(seed)
    n = n_patients * inputs_per_patient
    req = np.tile(LEVELS, n)
    inp = np.repeat(np.arange(n), len(LEVELS))
    return pd.DataFrame({"input": inp, "requested": req, "measured": read_back(req, rng),
                         "patient": inp // inputs_per_patient})


class ReadsBrightness:
    """A perfect reader of the synthetic nodules: the rating whose intensity is the mean inside the mask."""

    def predict(self, d: np.ndarray) -> np.ndarray:
        return 1 + (d[:, 0] + 0.6) / 0.3


class Guesses:
    """A reader that cannot see the rating: a seeded random guess."""

    def predict(self, d: np.ndarray) -> np.ndarray:
        return np.random.default_rng(7).normal(3.0, 1.0, len(d))


def _held_out(n_patients: int = 6, per_patient: int = 5, seed: int = 4):
    truth = np.tile(LEVELS, n_patients)[: n_patients * per_patient]
    x, m = nodules(truth, seed=seed)
    patient = np.repeat(np.arange(n_patients), per_patient)
    return x[:, T // 2], m[:, T // 2], truth, patient


@pytest.fixture(scope="module")
def perfect_ceiling():
    x, m, truth, patient = _held_out()
    return regressor_ceiling(ReadsBrightness(), x, m, truth, patient, units=np.arange(len(truth)) // 2, n_boot=300)


TEST_CASE_1 = (None, 4.0)  # all levels: span 1..5
TEST_CASE_2 = ([2, 3, 4, 5], 3.0)  # the in-training levels only


@pytest.mark.parametrize("levels, span", [TEST_CASE_1, TEST_CASE_2])
def test_read_back_equal_to_request_gives_the_span_and_is_measurable(levels, span, perfect_ceiling):
    table = _table(lambda req, rng: req.copy())
    eff = control_effect(table, levels=levels, n_boot=300)
    assert eff["effect"] == pytest.approx(span) and eff["span"] == span
    assert eff["ci"] == pytest.approx((span, span))
    assert eff["unit"] == "patients" and eff["n_units"] == 8  # the patient column, not the 16 inputs
    assert eff["per_level"] == pytest.approx({lv: lv for lv in eff["levels"]})
    ceiling = regressor_ceiling(ReadsBrightness(), *_held_out(), levels=eff["levels"], n_boot=300)
    verdict = control_verdict(eff, ceiling)
    assert verdict["measurable"] and verdict["failed"] == []
    assert verdict["share"] == pytest.approx(1.0, abs=0.05)
    assert verdict["reason"].startswith("measurable control") and f"span of {span:.2f}" in verdict["reason"]


def test_flat_noisy_read_back_is_no_measurable_control(perfect_ceiling):
    # the published pattern: read-back about 4 whatever was asked, moving 0.14 points over 1..5
    published = dict(zip(LEVELS, [3.98, 4.04, 4.10, 4.12, 4.12]))
    table = _table(lambda req, rng: np.vectorize(published.get)(req) + rng.normal(0, 0.8, len(req)), seed=1)
    eff = control_effect(table, n_boot=500, seed=0)
    assert abs(eff["effect"]) < 0.6 and eff["ci"][0] < 0 < eff["ci"][1]
    assert table.groupby("requested")["measured"].mean().to_dict() == pytest.approx(eff["per_level"])
    verdict = control_verdict(eff, perfect_ceiling)
    assert not verdict["measurable"] and verdict["failed"] == ["effect_not_above_0"]
    assert "effect's interval includes 0" in verdict["reason"]
    assert re.search(rf"effect {eff['effect']:.2f} \[{eff['ci'][0]:.2f}, {eff['ci'][1]:.2f}\]", verdict["reason"])
    assert f"{verdict['share']:.2f} of the ceiling" in verdict["reason"]


def test_perfect_regressor_ceiling_is_the_span(perfect_ceiling):
    c = perfect_ceiling
    assert c["effect"] == pytest.approx(4.0, abs=0.1) and c["span"] == 4.0 and c["levels"] == [1.0, 5.0]
    assert c["ci"][0] > 3.5 and c["slope"] == pytest.approx(1.0, abs=0.03)
    assert c["rho"] > 0.95 and c["rho_ci"][0] > 0.9  # below 1 only through the ties of truth
    assert (c["n_images"], c["n_patients"], c["n_nodules"]) == (30, 6, 15)
    assert c["per_level"] == pytest.approx({lv: lv for lv in LEVELS}, abs=0.1)
    x, m, truth, patient = _held_out()
    assert c["rho"] == pytest.approx(regressor_validity(ReadsBrightness(), x, m, truth))  # as regressor_validity


def test_a_regressor_that_cannot_see_the_rating_blocks_the_verdict():
    x, m, truth, patient = _held_out(n_patients=8)
    blind = regressor_ceiling(Guesses(), x, m, truth, patient, n_boot=500)
    assert blind["ci"][0] < 0 < blind["ci"][1]
    eff = control_effect(_table(lambda req, rng: req.copy()), n_boot=200)  # a perfect generator...
    verdict = control_verdict(eff, blind)  # ...cannot be confirmed by a blind reader
    assert not verdict["measurable"] and verdict["failed"] == ["ceiling_not_above_0"]
    assert "cannot resolve the rating even on real nodules" in verdict["reason"]


def test_two_patients_give_no_interval(regressor):
    backgrounds, m, base_f = _inputs(6)
    two = np.repeat([10, 20], 3)

    def follows(x_in, masks, f):
        return np.where(masks, brightness(1 + 4 * f[:, 1])[:, None, None, None], x_in)

    res = feature_control(follows, regressor, backgrounds, m, base_f, feature_index=1, groups=two)
    assert res["rho"] == pytest.approx(1.0) and np.isnan(res["ci"]).all()  # estimate kept, no interval
    assert set(res["table"]["patient"]) == {10, 20} and res["effect"]["n_units"] == 2
    assert np.isnan(res["effect"]["ci"]).all() and res["effect"]["effect"] > 3
    x, mm, truth, _ = _held_out(n_patients=2)
    ceiling = regressor_ceiling(ReadsBrightness(), x, mm, truth, np.repeat([0, 1], 5), n_boot=200)
    assert np.isnan(ceiling["ci"]).all() and np.isnan(ceiling["rho_ci"]).all()
    verdict = control_verdict(res["effect"], ceiling)
    assert not verdict["measurable"] and verdict["failed"] == ["effect_no_interval", "ceiling_no_interval"]
    assert "2 patients; an interval needs at least 3" in verdict["reason"]


def test_spearman_interval_resamples_patients():
    requested = np.tile([1.0, 2.0, 3.0], 6)
    measured = np.r_[[1, 2, 3], [1, 3, 2], [3, 2, 1], [1, 2, 3], [2, 2, 2], [1, 2, 3]].astype(float)
    inputs, patients = np.repeat(np.arange(6), 3), np.repeat([0, 0, 1, 1, 2, 2], 3)
    rhos = [1.0, 0.5, -1.0, 1.0, 0.0, 1.0]
    got = spearman_ci(requested, measured, inputs, n_boot=300, seed=1, clusters=patients)
    assert got == cluster_bootstrap_ci(rhos, [0, 0, 1, 1, 2, 2], n_boot=300, seed=1)
    assert got[0] == spearman_ci(requested, measured, inputs, n_boot=300, seed=1)[0]  # same estimate
    with pytest.raises(ValueError, match="spans patients"):
        spearman_ci(requested, measured, inputs, clusters=np.arange(18) % 2)


def test_outside_training_flags_level_1_and_the_effect_leaves_it_out(regressor):
    backgrounds, m, base_f = _inputs(6)

    def follows(x_in, masks, f):
        return np.where(masks, brightness(1 + 4 * f[:, 0])[:, None, None, None], x_in)

    res = feature_control(follows, regressor, backgrounds, m, base_f, 0, groups=np.arange(6) // 2,
                          train_levels={2, 3, 4, 5})
    assert res["outside_training"] == [1.0]
    assert res["effect"]["levels"] == [2.0, 3.0, 4.0, 5.0] and res["effect"]["span"] == 3.0
    assert res["effect"]["effect"] == pytest.approx(3.0, abs=0.3) and res["effect"]["ci"][0] > 2.5
    assert "outside_training" not in feature_control(follows, regressor, backgrounds, m, base_f, 0)


def test_new_functions_check_their_inputs(regressor):
    backgrounds, m, base_f = _inputs(4)
    with pytest.raises(ValueError, match="groups has 3 labels for 4 inputs"):
        feature_control(lambda x, mm, f: x, regressor, backgrounds, m, base_f, 0, groups=[0, 1, 2])
    table = _table(lambda req, rng: req.copy())
    with pytest.raises(ValueError, match="groups has 5 labels"):
        control_effect(table, groups=np.arange(5))
    with pytest.raises(ValueError, match="never requested"):
        control_effect(table, levels=[2, 6])
    with pytest.raises(ValueError, match="requested"):
        control_effect(table.drop(columns="requested"))
    x, mm, truth, patient = _held_out()
    for kwargs, name in (({"truth": truth[:-1], "groups": patient}, "truth"),
                         ({"truth": truth, "groups": patient[:-1]}, "groups"),
                         ({"truth": truth, "groups": patient, "units": np.arange(3)}, "units")):
        with pytest.raises(ValueError, match=rf"^{name} has"):
            regressor_ceiling(ReadsBrightness(), x, mm, **kwargs)
    eff = control_effect(table, levels=[2, 3, 4, 5], n_boot=50)
    ceiling = regressor_ceiling(ReadsBrightness(), x, mm, truth, patient, n_boot=50)
    with pytest.raises(ValueError, match=r"levels=effect\['levels'\]"):
        control_verdict(eff, ceiling)  # span 3 vs 4
    with pytest.raises(ValueError, match="ceiling lacks"):
        control_verdict(eff, {"effect": 1.0})
