"""The classifier-utility harness: augmentation, metrics, paired test, verdict, planted effects."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from medgan_core.data.augment import ClassicAug
from medgan_core.metrics.utility import (
    select_arms,
    ALL_ARMS, ClassifierSettings, PairedTest, UtilityResult, classification_metrics, degenerate_reason,
    induced_imbalance, metric_functions, paired_comparison, run_utility_study, select_classifier_settings,
    summarise, verdict_sentence,
)
from medgan_core.models.classifier import SmallCNN


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster and steadier on one thread when the cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def stripes(counts: list[int], rng: np.random.Generator, size: int = 16,
            noise: float = 1.8) -> tuple[np.ndarray, np.ndarray]:
    """A 3-class texture task: class 0 plain noise, class 1 horizontal stripes, class 2 vertical
    stripes (period 4 px, random phase), under heavy Gaussian noise; uint8 `(N, size, size)`."""
    yy, xx = np.mgrid[:size, :size]
    xs, ys = [], []
    for c, n in enumerate(counts):
        for _ in range(n):
            phase = rng.uniform(0, 2 * np.pi)
            pattern = (0 * xx, np.sin(2 * np.pi * yy / 4 + phase), np.sin(2 * np.pi * xx / 4 + phase))[c]
            img = pattern + noise * rng.standard_normal((size, size))
            xs.append(np.clip(127.5 + 50 * img, 0, 255).astype(np.uint8))
            ys.append(c)
    return np.stack(xs), np.array(ys)


@pytest.fixture(scope="module")
def task():
    """Train 150/150/4 (vertical stripes are the rare class), val and test balanced, and a
    separate pool of real images that plays a perfect generator."""
    rng = np.random.default_rng(0)
    return {
        "train": stripes([150, 150, 4], rng),
        "val": stripes([30, 30, 30], rng),
        "test": stripes([100, 100, 100], rng),
        "pool": stripes([200, 200, 200], rng),
    }


def tiny_cnn() -> SmallCNN:
    return SmallCNN(1, 3, width=8, image_size=16)


STUDY = dict(arms=("real", "real+oversample", "real+gan"), seeds=(0, 1, 2), epochs=15, patience=4, size=16,
             class_names=["none", "horizontal", "vertical"], progress=False)


# ---------------------------------------------------------------- planted effects

def test_planted_effects_real_images_help_noise_does_not(task):
    """Held-out real images as 'GAN' output must be judged helpful; pure noise must not."""
    pool_x, pool_y = task["pool"]

    def oracle(cls: int, n: int, seed: int) -> np.ndarray:
        """A perfect generator: held-out real images of the class (never test images)."""
        idx = np.flatnonzero(pool_y == cls)
        return pool_x[np.random.default_rng(seed + 100 * cls).choice(idx, n, replace=n > len(idx))]

    def noise(cls: int, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(7 * seed + cls).integers(0, 256, (n, 16, 16), dtype=np.uint8)

    res = run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], {"oracle": oracle, "noise": noise},
                            **STUDY)
    mean = res.summary.set_index(["arm", "metric"])["mean"]
    assert res.minority_class == 2
    assert res.n_synthetic["real+gan"] == {"none": 0, "horizontal": 0, "vertical": 146}
    assert mean["real+gan[oracle]", "minority_recall"] > mean["real", "minority_recall"] + 0.5
    assert mean["real+gan[oracle]", "balanced_accuracy"] > mean["real", "balanced_accuracy"] + 0.15
    pt = res.paired_test
    assert pt.gan_arm == "real+gan[oracle]" and pt.base_arm in ("real", "real+oversample")
    assert pt.outcome == "helped" and pt.ci_low > 0 and pt.t_pvalue < 0.05
    assert res.verdict.startswith("Adding GAN images helped: real+gan[oracle] changed balanced accuracy by +")
    assert f"{pt.mean_diff:+.3f}" in res.verdict and "3 seeds" in res.verdict

    pt_noise = paired_comparison(res.table, "real+gan[noise]", pt.base_arm)
    assert pt_noise.outcome != "helped"
    text = verdict_sentence(pt_noise)
    assert "helped" not in text and text.startswith(("Adding GAN images did not help", "Adding GAN images hurt"))


# ---------------------------------------------------------------- every arm, several generators

def test_all_arms_binary_with_two_generators(task):
    x, y = task["train"]
    keep = y < 2  # binary: none vs horizontal, made imbalanced
    keep &= (y == 0) | (np.cumsum(y == 1) <= 20)
    train = (x[keep][:, :, :, None].repeat(3, -1), y[keep])  # RGB this time
    val = (task["val"][0][task["val"][1] < 2][..., None].repeat(3, -1), task["val"][1][task["val"][1] < 2])
    test = (task["test"][0][task["test"][1] < 2][..., None].repeat(3, -1), task["test"][1][task["test"][1] < 2])
    calls = []

    def make_sampler(name: str):
        def sampler(cls: int, n: int, seed: int) -> np.ndarray:
            calls.append((name, cls, n, seed))
            return np.random.default_rng(seed).integers(0, 256, (n, 20, 20, 3), dtype=np.uint8)  # another size
        return sampler

    res = run_utility_study(lambda: SmallCNN(3, 2, width=4, image_size=16), train, val, test,
                            {"a": make_sampler("a"), "b": make_sampler("b")}, seeds=(0, 1), epochs=1,
                            size=16, class_names=["normal", "lesion"], progress=False)
    base = ["real", "real+class_weights", "real+oversample", "real+classic_aug"]
    gan = [f"{arm}[{g}]" for arm in ALL_ARMS[4:] for g in "ab"]
    assert list(dict.fromkeys(res.table.arm)) == base + gan
    assert len(res.table) == 2 * len(base + gan)
    metrics = {"balanced_accuracy", "macro_auc", "minority_recall", "sens_at_spec90", "sens_at_spec80", "f1[normal]",
               "f1[lesion]"}
    assert metrics <= set(res.table)
    assert res.minority_class == 1
    # Synthetic images drawn once per generator, seed and class, then reused by the three GAN arms.
    assert sorted({(g, c, s) for g, c, _, s in calls}) == sorted((g, c, s) for g in "ab" for c in (0, 1) for s in (0, 1))
    assert len(calls) == 8
    n_real = int(keep.sum())
    only = res.table[res.table.base_arm == "synthetic_only"].n_train
    assert (only == 2 * round(n_real / 2)).all()
    added = res.table[res.table.base_arm == "real+gan"].n_train
    assert (added == 2 * 150).all()  # the minority topped up to the majority's 150
    assert res.summary.n_seeds.max() == 2
    wide = res.summary_table(["balanced_accuracy"])
    assert list(wide.index) == base + gan
    real = res.summary.set_index(["arm", "metric"]).loc[("real", "balanced_accuracy")]
    # "0.612 (0.540 to 0.684)", or "0.500 (n/a)" when no interval or a zero-width one (1 epoch can do that)
    expected = (f"{real['mean']:.3f} (n/a)" if not real.ci_high > real.ci_low
                else f"{real['mean']:.3f} ({real.ci_low:.3f} to {real.ci_high:.3f})")
    assert wide.iloc[0, 0] == expected
    assert res.as_dict()["n_seeds"] == 2
    # One epoch of a width-4 CNN is often degenerate; then the pair is chosen among the others, or
    # there is none and the verdict says why.
    if res.paired_test is not None:
        assert res.paired_test.gan_arm.startswith("real+gan") and res.paired_test.base_arm in base
    else:
        assert "degenerate" in res.verdict
    assert set(res.test_proba) == set(res.table.arm) and res.test_proba["real"].shape == (2, len(test[1]), 2)
    assert "Training on synthetic images only (synthetic_only[a]) reached balanced accuracy" in res.verdict


def test_majority_cap_and_balanced_warning(task):
    with pytest.warns(UserWarning, match="erasing the imbalance under study"):  # 37.5:1 became 10:1
        res = run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], arms=("real",), seeds=(0,),
                                epochs=1, size=16, max_train_per_class=40, progress=False)
    assert res.train_counts == {"0": 40, "1": 40, "2": 4}
    assert res.notes == ["class 0 capped from 150 to 40 training images", "class 1 capped from 150 to 40 training images"]
    assert res.table.n_train.tolist() == [84]
    assert "no paired test" not in res.verdict and "says nothing about GAN images" in res.verdict
    prop = run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], arms=("real",), seeds=(0,),
                             epochs=1, size=16, max_train_total=100, progress=False)
    # 150:150:4 shrunk to 100: the class of 4 is under the floor of 10, so it is kept whole
    assert prop.train_counts == {"0": 48, "1": 48, "2": 4}
    assert prop.notes == ["training set capped in proportion from 304 to 100 images "
                          "(class ratio largest/smallest 37.5 before, 12.0 after)"]
    x, y = task["val"]  # balanced classes: 'balance' adds nothing, which is worth a warning
    with pytest.warns(UserWarning, match="add no synthetic image"):
        run_utility_study(tiny_cnn, (x, y), task["val"], task["test"], lambda c, n, s: x[:n], arms=("real+gan",),
                          seeds=(0,), epochs=1, size=16, progress=False)


def test_harness_rejects_bad_arguments(task):
    args = (tiny_cnn, task["train"], task["val"], task["test"])
    with pytest.raises(ValueError, match="Unknown utility arm"):
        run_utility_study(*args, lambda c, n, s: None, arms=("real", "real+smote"), progress=False)
    with pytest.raises(ValueError, match="needs a sampler"):
        run_utility_study(*args, None, arms=("real", "real+gan"), progress=False)
    x, y = task["train"]
    with pytest.raises(ValueError, match="have no training image"):
        run_utility_study(tiny_cnn, (x[y < 2], y[y < 2]), task["val"], task["test"], arms=("real",), progress=False)
    with pytest.raises(ValueError, match="labels must be integer class indices"):
        run_utility_study(tiny_cnn, (x, y.astype(str)), task["val"], task["test"], arms=("real",), progress=False)


# ---------------------------------------------------------------- pieces, against hand-computed values

def test_classic_aug_is_seeded_and_in_range():
    x = torch.linspace(-1, 1, 2 * 16 * 16).reshape(2, 1, 16, 16)
    aug = ClassicAug()
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1 and not torch.equal(a, x)
    off = ClassicAug(flip=False, rot90=False, shift=0, brightness=0, contrast=0)
    assert torch.equal(off(x, torch.Generator()), x)
    flips = ClassicAug(rot90=False, shift=0, brightness=0, contrast=0)(x, torch.Generator().manual_seed(1))
    for img, out in zip(x, flips):  # every output is one of the four flips of its input
        assert any(torch.equal(out, img.flip(d)) if d else torch.equal(out, img) for d in (None, (1,), (2,), (1, 2)))


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 0, 0, 1, 1])
    proba1 = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.9])  # P(class 1)
    proba = np.stack([1 - proba1, proba1], 1)
    m = classification_metrics(y, proba, ["neg", "pos"], minority_class=1)
    # predictions 0,0,0,1,0,1: recall(neg) = 3/4, recall(pos) = 1/2
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert m["minority_recall"] == pytest.approx(1 / 2)
    # AUC: positive scores 0.4, 0.9 vs negatives 0.1, 0.2, 0.3, 0.6: pairs won 3 + 4 = 7 of 8
    assert m["macro_auc"] == pytest.approx(7 / 8)
    # specificity >= 90% allows no false positive: threshold above 0.6 catches 0.9 only
    assert m["sens_at_spec90"] == pytest.approx(1 / 2)
    assert m["f1[neg]"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # tp 3, fp 1, fn 1
    assert m["f1[pos]"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    assert m["sens_at_spec80"] == pytest.approx(1 / 2)  # 1 false positive of 4 is 75% specificity: still none
    three = classification_metrics(np.array([0, 1, 2]), np.eye(3), ["a", "b", "c"], minority_class=2)
    assert three["balanced_accuracy"] == 1.0 and three["macro_auc"] == 1.0 and "sens_at_spec90" not in three
    assert "sens_at_spec80" not in three


@pytest.mark.parametrize("positive_class", [0, 1])
def test_sens_at_spec80_and_90_by_hand(positive_class):
    """10 negatives, 4 positives: 90% specificity allows 1 false positive, 80% allows 2."""
    neg = [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.85, 0.95]
    pos = [0.90, 0.82, 0.75, 0.30]  # P(positive)
    # Thresholds by hand: >= 0.90 keeps 1 positive and 1 negative (0.95): sensitivity 1/4 at specificity 0.9;
    # >= 0.82 keeps 2 positives and 2 negatives (0.95, 0.85): 2/4 at specificity 0.8; >= 0.80 adds a third
    # negative (0.7 specificity); >= 0.75 would catch a third positive but has 3 negatives above it.
    score = np.array(neg + pos)
    is_pos = np.r_[np.zeros(10, bool), np.ones(4, bool)]
    y = np.where(is_pos, positive_class, 1 - positive_class)
    proba = np.zeros((14, 2))
    proba[:, positive_class], proba[:, 1 - positive_class] = score, 1 - score
    names = ["melanoma", "nevus"]
    m = classification_metrics(y, proba, names, minority_class=positive_class, positive_class=positive_class)
    fns = metric_functions(names, minority_class=positive_class, positive_class=positive_class)
    assert m["sens_at_spec90"] == pytest.approx(1 / 4) and m["sens_at_spec80"] == pytest.approx(2 / 4)
    assert fns["sens_at_spec90"](y, proba) == pytest.approx(1 / 4)
    assert fns["sens_at_spec80"](y, proba) == pytest.approx(2 / 4)


def test_sens_at_spec_keeps_thresholds_on_a_straight_roc_segment():
    """Each tied score holds one positive and one negative: the ROC is a straight line through (0.2, 0.2),
    a point sklearn's default drop_intermediate would drop (and report 0.1)."""
    y = np.tile([1, 0], 10)
    score = np.repeat(np.arange(10, 0, -1), 2) / 10
    proba = np.stack([1 - score, score], 1)
    m = classification_metrics(y, proba, ["neg", "pos"], minority_class=1)
    fns = metric_functions(["neg", "pos"], minority_class=1)
    assert m["sens_at_spec80"] == pytest.approx(0.2) == fns["sens_at_spec80"](y, proba)
    assert m["sens_at_spec90"] == pytest.approx(0.1) == fns["sens_at_spec90"](y, proba)


def test_paired_comparison_and_verdict_by_hand():
    table = pd.DataFrame({
        "arm": ["real"] * 3 + ["real+gan"] * 3,
        "seed": [0, 1, 2] * 2,
        "balanced_accuracy": [0.50, 0.60, 0.70, 0.60, 0.80, 1.00],  # differences 0.1, 0.2, 0.3
    })
    pt = paired_comparison(table, "real+gan", "real")
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert pt.mean_diff == pytest.approx(0.2) and pt.n_seeds == 3
    assert (pt.ci_low, pt.ci_high) == pytest.approx((0.2 - half, 0.2 + half))
    assert pt.t_pvalue == pytest.approx(stats.ttest_1samp([0.1, 0.2, 0.3], 0).pvalue)
    # 0.25 is the smallest exact two-sided p with 3 pairs; the stats module may decline to quote it (NaN)
    assert pt.wilcoxon_pvalue == pytest.approx(0.25) or np.isnan(pt.wilcoxon_pvalue)
    wilcoxon = "p = 0.25" if np.isfinite(pt.wilcoxon_pvalue) else "p = n/a"
    assert pt.outcome == "did not help" and pt.ci_low < 0  # 0.2 +- 0.248
    text = verdict_sentence(pt)
    assert text == ("Adding GAN images did not help: real+gan changed balanced accuracy by +0.200 "
                    f"(95% CI {0.2 - half:+.3f} to {0.2 + half:+.3f}) versus the best non-GAN arm (real, arms chosen on validation); "
                    f"the difference is not significant (paired t-test p = 0.074, Wilcoxon {wilcoxon}, 3 seeds).")
    helped = PairedTest("balanced_accuracy", "real+gan[x]", "real", 5, 0.03, 0.01, 0.05, 0.01, 0.06)
    hurt = PairedTest("balanced_accuracy", "real+gan[x]", "real", 5, -0.03, -0.05, -0.01, 0.01, 0.06)
    assert verdict_sentence(helped).startswith("Adding GAN images helped: real+gan[x] changed balanced accuracy by +0.030")
    assert verdict_sentence(hurt).startswith("Adding GAN images hurt: real+gan[x] changed balanced accuracy by -0.030")
    assert "says nothing about GAN images" in verdict_sentence(None)
    summary = summarise(table, ["balanced_accuracy"])
    assert summary.set_index("arm").loc["real+gan", "mean"] == pytest.approx(0.8)


def test_did_not_help_is_withheld_when_the_baseline_is_at_the_ceiling():
    table = pd.DataFrame({"arm": ["real+class_weights"] * 5 + ["real+gan[dcgan]"] * 5, "seed": list(range(5)) * 2,
                          "balanced_accuracy": [0.99, 0.985, 0.99, 0.988, 0.99, 0.985, 0.99, 0.982, 0.99, 0.985]})
    pt = paired_comparison(table, "real+gan[dcgan]", "real+class_weights")
    assert pt.outcome == "did not help"
    text = verdict_sentence(pt, summarise(table, ["balanced_accuracy"]))
    assert text.startswith("No verdict about GAN images: the best non-GAN arm (real+class_weights) is at the ceiling "
                           "(balanced accuracy 0.989 >= 0.98), so a GAN arm had no room to show that it helps.")
    assert "For the record: real+gan[dcgan] changed balanced accuracy by -0.002 (95% CI -0.009 to +0.005" in text
    lower = table.assign(balanced_accuracy=table.balanced_accuracy - 0.2)  # the same test with room above
    assert verdict_sentence(pt, summarise(lower, ["balanced_accuracy"])).startswith("Adding GAN images did not help")
    hurt = PairedTest("balanced_accuracy", "real+gan[dcgan]", "real+class_weights", 5, -0.03, -0.05, -0.01, 0.01, 0.06)
    assert verdict_sentence(hurt, summarise(table, ["balanced_accuracy"])).startswith("Adding GAN images hurt")


def test_best_arms_are_chosen_on_validation_not_test():
    # Arm "real+gan[a]" wins on test but "real+gan[b]" wins on validation: selection must use validation.
    table = pd.DataFrame({
        "arm": ["real"] * 2 + ["real+oversample"] * 2 + ["real+gan[a]"] * 2 + ["real+gan[b]"] * 2,
        "seed": [0, 1] * 4,
        "balanced_accuracy": [0.70, 0.72, 0.90, 0.91, 0.95, 0.96, 0.60, 0.61],
        "val_balanced_accuracy": [0.80, 0.81, 0.70, 0.71, 0.60, 0.61, 0.90, 0.91],
    })
    assert select_arms(table, ["real+gan[a]", "real+gan[b]"], ["real", "real+oversample"]) == ("real+gan[b]", "real")


def test_summary_ci_stays_within_metric_range_and_no_negative_zero():
    table = pd.DataFrame({"arm": ["real"] * 3, "seed": [0, 1, 2], "minority_recall": [0.0, 1.0, 1.0]})
    row = summarise(table, ["minority_recall"]).iloc[0]
    assert 0.0 <= row["ci_low"] <= row["mean"] <= row["ci_high"] <= 1.0
    tiny = PairedTest("balanced_accuracy", "real+gan[x]", "real", 5, -0.0001, -0.004, 0.004, 0.98, 0.9)
    assert "by +0.000 " in verdict_sentence(tiny) and "-0.000" not in verdict_sentence(tiny)


def test_summary_table_shows_degenerate_intervals_as_na():
    table = pd.DataFrame({"arm": ["real"] * 3 + ["real+gan"] * 2 + ["one"], "seed": [0, 1, 2, 0, 1, 0],
                          "balanced_accuracy": [0.5, 0.6, 0.7, 0.8, 0.8, 0.9]})
    summary = summarise(table, ["balanced_accuracy"])
    res = UtilityResult(table, summary, None, "", ["a", "b"], 0, {}, ["balanced_accuracy"])
    wide = res.summary_table(digits=2)["balanced_accuracy"]
    half = stats.t.ppf(0.975, 2) * 0.1 / np.sqrt(3)
    assert wide["real"] == f"0.60 ({max(0.6 - half, 0):.2f} to {min(0.6 + half, 1):.2f})"
    assert wide["real+gan"] == "0.80 (n/a)"  # both seeds gave 0.8: zero width
    assert wide["one"] == "0.90 (n/a)"  # one seed: no interval


def test_induced_imbalance_thins_only_the_minority():
    rng = np.random.default_rng(4)
    train, val, test = stripes([20, 20], rng), stripes([6, 6], rng), stripes([6, 6], rng)
    calls = []

    def make_sampler(x_f, y_f, frac):
        calls.append((frac, int((y_f == 1).sum()), int((y_f == 0).sum())))
        return {"toy": lambda c, n, s: stripes([n, 0] if c == 0 else [0, n], np.random.default_rng(s))[0]}

    curves = induced_imbalance(train, val, test, 1, [1.0, 0.25], make_sampler,
                               lambda: SmallCNN(1, 2, width=2, image_size=16), ["real", "real+gan"], [0, 1],
                               epochs=1, patience=None, size=16, progress=False, n_synthetic_per_class=2)
    assert calls == [(1.0, 20, 20), (0.25, 5, 20)]
    assert list(curves.columns) == ["fraction", "n_minority", "arm", "metric", "mean", "ci_low", "ci_high", "n_seeds"]
    assert set(curves.arm) == {"real", "real+gan[toy]"} and set(curves.metric) == {"minority_recall", "balanced_accuracy"}
    assert curves.groupby("fraction").n_minority.first().to_dict() == {0.25: 5, 1.0: 20}
    assert len(curves) == 2 * 2 * 2 and (curves.n_seeds == 2).all()
    none = induced_imbalance(train, val, test, 1, [0.5], make_sampler, lambda: SmallCNN(1, 2, width=2, image_size=16),
                             ["real"], [0], epochs=1, size=16, progress=False)
    assert len(calls) == 2 and none.n_minority.tolist() == [10, 10]  # no GAN arm: no generator trained


def test_induced_imbalance_reuses_the_full_study_at_fraction_one():
    rng = np.random.default_rng(5)
    train, val, test = stripes([20, 20], rng), stripes([6, 6], rng), stripes([6, 6], rng)
    toy = {"toy": lambda c, n, s: stripes([n, 0] if c == 0 else [0, n], np.random.default_rng(s))[0]}
    build = lambda: SmallCNN(1, 2, width=2, image_size=16)  # noqa: E731
    kw = dict(epochs=1, patience=None, size=16, progress=False, n_synthetic_per_class=2)
    full = run_utility_study(build, train, val, test, toy, arms=["real", "real+oversample", "real+gan"], seeds=[0, 1], **kw)
    calls = []

    def make_sampler(x_f, y_f, frac):
        calls.append(frac)
        return toy

    curves = induced_imbalance(train, val, test, 1, [1.0, 0.5], make_sampler, build, ["real", "real+gan"], [0, 1],
                               full=full, **kw)
    assert calls == [0.5]  # fraction 1.0 is not trained again
    at_one = curves[curves.fraction == 1.0].set_index(["arm", "metric"])["mean"]
    want = full.summary.set_index(["arm", "metric"])["mean"]
    assert set(at_one.index.get_level_values(0)) == {"real", "real+gan[toy]"}  # the oversample arm is not asked for
    assert all(at_one[i] == want[i] for i in at_one.index)
    with pytest.raises(ValueError, match="full= must be the study of these arms and seeds"):
        induced_imbalance(train, val, test, 1, [1.0], make_sampler, build, ["real"], [0, 1, 2], full=full, **kw)
    with pytest.raises(ValueError, match="lacks arms"):
        induced_imbalance(train, val, test, 1, [1.0], make_sampler, build, ["real+classic_aug"], [0, 1], full=full, **kw)


# ---------------------------------------------------------------- degenerate runs

class OneClassNet(torch.nn.Module):
    """A planted degenerate classifier: whatever it sees, class 0 wins (its one weight changes nothing)."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.full((len(x), self.num_classes), -5.0)
        logits[:, 0] = 5.0
        return logits + 0 * self.w


def test_induced_imbalance_rejects_empty_or_out_of_range_fractions(task):
    for bad in ([], [1.0, 0.0], [1.5]):
        with pytest.raises(ValueError, match="fractions must be a non-empty list of kept shares"):
            induced_imbalance(task["train"], task["val"], task["test"], 2, bad, lambda x, y, f: {}, tiny_cnn,
                              ["real"], [0], progress=False)


def test_degenerate_reason_by_hand():
    assert degenerate_reason(np.array([1, 1, 1, 1]), 0.9, 3) == "one class predicted for every test image"
    assert degenerate_reason(np.array([0, 1, 2]), 1 / 3 + 0.02, 3).startswith("validation balanced accuracy 0.353 at chance")
    assert degenerate_reason(np.array([0, 1, 2]), 1 / 3 + 0.021, 3) == ""  # just above the tolerance
    assert degenerate_reason(np.array([0, 0]), 0.5, 2).count(";") == 1  # both reasons
    assert degenerate_reason(np.array([0, 1]), 0.55, 2, chance_tol=0.1) != ""
    with pytest.raises(ValueError, match="num_classes"):
        degenerate_reason(np.array([0]), 0.5, 1)


def planted_table() -> pd.DataFrame:
    """5 seeds of real, real+oversample and real+gan[x]; real+gan[x] seed 2 is a planted one-class run
    whose test score would have flipped the paired test; real+oversample is degenerate everywhere
    but has the best validation score."""
    real = [0.70, 0.71, 0.72, 0.73, 0.74]
    gan = [0.75, 0.76, 0.10, 0.78, 0.79]
    rows = []
    for arm, bacc, val, deg in (("real", real, 0.80, [""] * 5),
                                ("real+oversample", [0.5] * 5, 0.99, ["one class predicted for every test image"] * 5),
                                ("real+gan[x]", gan, 0.85, ["", "", "one class predicted for every test image", "", ""])):
        rows += [{"arm": arm, "seed": s, "balanced_accuracy": b, "val_balanced_accuracy": val, "degenerate": d}
                 for s, (b, d) in enumerate(zip(bacc, deg))]
    return pd.DataFrame(rows)


def test_planted_degenerate_run_is_flagged_and_left_out_of_the_verdict():
    table = planted_table()
    summary = summarise(table, ["balanced_accuracy"]).set_index("arm")
    assert summary.n_degenerate.to_dict() == {"real": 0, "real+oversample": 5, "real+gan[x]": 1}
    assert summary.loc["real+gan[x]", "mean"] == pytest.approx(np.mean([0.75, 0.76, 0.10, 0.78, 0.79]))  # reported
    # the all-degenerate arm is never chosen, although its validation score is the best
    assert select_arms(table, ["real+gan[x]"], ["real", "real+oversample"]) == ("real+gan[x]", "real")
    pt = paired_comparison(table, "real+gan[x]", "real")
    assert pt.n_seeds == 4 and pt.mean_diff == pytest.approx(0.05)  # seed 2 left out
    assert pt.left_out == ["real+gan[x] seed 2 (one class predicted for every test image)"]
    assert pt.outcome == "helped"
    text = verdict_sentence(pt, summarise(table, ["balanced_accuracy"]))
    assert text.startswith("Adding GAN images helped: real+gan[x] changed balanced accuracy by +0.050")
    assert "Left out of the paired test as degenerate: real+gan[x] seed 2 (one class predicted for every test image)." in text
    assert "Degenerate in every seed, so never chosen: real+oversample." in text
    # Without the flag the planted run would have dragged the difference below zero.
    assert paired_comparison(table.drop(columns="degenerate"), "real+gan[x]", "real").mean_diff < 0


def test_arm_tests_give_every_gan_arm_its_own_paired_test():
    table = planted_table()
    extra = table[table.arm == "real+gan[x]"].assign(arm="synthetic_only[x]", degenerate="",
                                                      balanced_accuracy=[0.60, 0.62, 0.61, 0.63, 0.64])
    table = pd.concat([table, extra], ignore_index=True)
    pt = paired_comparison(table, "real+gan[x]", "real")
    res = UtilityResult(table, summarise(table, ["balanced_accuracy"]), pt, "", ["a", "b"], 0, {}, ["balanced_accuracy"])
    tests = res.arm_tests()
    assert tests.index.tolist() == ["real+gan[x]", "synthetic_only[x]"] and (tests.base_arm == "real").all()
    assert tests.loc["real+gan[x]", "n_seeds"] == 4 and tests.loc["real+gan[x]", "mean_diff"] == pytest.approx(0.05)
    assert tests.loc["synthetic_only[x]", "mean_diff"] == pytest.approx(-0.10)
    assert tests.loc["synthetic_only[x]", "outcome"] == "hurt" and tests.loc["synthetic_only[x]", "t_pvalue"] < 0.05
    assert res.as_dict()["arm_tests"][1]["arm"] == "synthetic_only[x]"
    no_base = UtilityResult(table, res.summary, None, "", ["a", "b"], 0, {}, ["balanced_accuracy"])
    assert no_base.arm_tests().empty and list(no_base.arm_tests().columns)[:2] == ["base_arm", "n_seeds"]


def test_verdict_is_withheld_when_the_baseline_is_mostly_degenerate():
    table = planted_table()
    table.loc[(table.arm == "real") & table.seed.isin([0, 1, 3]), "degenerate"] = "one class predicted for every test image"
    summary = summarise(table, ["balanced_accuracy"])
    pt = paired_comparison(table, "real+gan[x]", "real")
    text = verdict_sentence(pt, summary)
    assert text.startswith("No verdict about GAN images: the baseline cannot see an effect, because the real arm "
                           "was degenerate in 3 of 5 seeds")
    assert "helped" not in text and "For the record: real+gan[x] minus real" in text
    table.loc[(table.arm == "real") & (table.seed == 3), "degenerate"] = ""  # 2 of 5: not most, a verdict again
    again = verdict_sentence(paired_comparison(table, "real+gan[x]", "real"), summarise(table, ["balanced_accuracy"]))
    assert again.startswith("Adding GAN images")
    stub = lambda v: SimpleNamespace(verdict=v)  # noqa: E731
    assert UtilityResult.withheld.fget(stub(text)) and not UtilityResult.withheld.fget(stub(again))


def test_planted_one_class_classifier_end_to_end(task):
    """A classifier that answers class 0 for everything: every run flagged, the verdict withheld."""
    res = run_utility_study(lambda: OneClassNet(3), task["train"], task["val"], task["test"],
                            lambda c, n, s: task["pool"][0][:n], arms=("real", "real+gan"), seeds=(0, 1, 2),
                            epochs=1, size=16, progress=False, interval_boot=50)
    assert (res.table.degenerate.str.startswith("one class predicted for every test image")).all()
    assert res.table.degenerate.str.contains("at chance").all()  # val balanced accuracy exactly 1/3
    assert res.summary.groupby("arm").n_degenerate.first().to_dict() == {"real": 3, "real+gan": 3}
    assert res.paired_test is None
    assert res.verdict.startswith("No verdict about GAN images: the baseline cannot see an effect")
    assert res.withheld and res.as_dict()["withheld"] is True
    assert res.summary_table(["balanced_accuracy"])["degenerate runs"].tolist() == ["3 of 3", "3 of 3"]
    assert len(res.as_dict()["degenerate_runs"]) == 6


# ---------------------------------------------------------------- settings chosen on validation

def test_settings_selection_picks_the_best_validation_point(task):
    """Planted grid: width 1 builds the one-class net (chance), lr 1e-9 leaves a CNN untrained, and
    the one sensible point must win; ties go to the earlier point."""
    def build(width: int = 8):
        return OneClassNet(3) if width == 1 else SmallCNN(1, 3, width=width, image_size=16)

    grid = [ClassifierSettings(width=1, lr=1e-3, epochs=1, patience=None),
            ClassifierSettings(width=8, lr=1e-9, epochs=1, patience=None),
            ClassifierSettings(width=8, lr=3e-3, epochs=6, patience=None),
            {"width": 1, "lr": 1e-2, "epochs": 1, "patience": None}]
    best, table = select_classifier_settings(build, task["train"], task["val"], grid, seed=0, size=16)
    scores = table.val_balanced_accuracy.to_numpy()
    assert best == grid[2] and table.chosen.tolist() == [False, False, True, False]
    assert scores[2] == scores.max() and scores[2] > 0.6
    assert scores[0] == pytest.approx(1 / 3) and table.degenerate[0] != "" and table.degenerate[2] == ""
    assert list(table.columns[:4]) == ["width", "lr", "epochs", "patience"]
    # Ties: both one-class points score exactly 1/3; the earlier one wins.
    tie, t2 = select_classifier_settings(build, task["train"], task["val"], [grid[3], grid[0]], seed=0, size=16)
    assert tie == ClassifierSettings.coerce(grid[3]) and t2.chosen.tolist() == [True, False]


def test_run_utility_study_records_the_chosen_settings(task):
    calls = []

    def build(width: int = 8):
        calls.append(width)
        return SmallCNN(1, 3, width=width, image_size=16)

    grid = [ClassifierSettings(width=4, lr=1e-9, epochs=1, patience=None),
            ClassifierSettings(width=8, lr=3e-3, epochs=3, patience=None)]
    res = run_utility_study(build, task["train"], task["val"], task["test"], arms=("real", "real+oversample"),
                            seeds=(0, 1), grid=grid, size=16, progress=False, interval_boot=50)
    assert res.settings == {"width": 8, "lr": 3e-3, "epochs": 3, "patience": None, "source": "grid"}
    assert calls == [4, 8] + [8] * 4  # the grid once (2 points), then every arm and seed at the winner
    assert res.settings_table.chosen.tolist() == [False, True] and (res.table.epochs_run == 3).all()
    assert res.as_dict()["settings"]["width"] == 8 and len(res.as_dict()["settings_grid"]) == 2
    fixed = run_utility_study(build, task["train"], task["val"], task["test"], arms=("real",), seeds=(0,),
                              settings={"width": 4, "lr": 1e-3, "epochs": 1, "patience": None}, size=16, progress=False)
    assert fixed.settings["source"] == "given" and fixed.settings_table is None and calls[-1] == 4
    default = run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], arms=("real",), seeds=(0,),
                                epochs=1, size=16, progress=False)
    assert default.settings == {"width": None, "lr": 1e-3, "epochs": 1, "patience": 5, "source": "defaults"}
    with pytest.raises(ValueError, match="must accept width"):
        run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], arms=("real",), grid=grid,
                          size=16, progress=False)
    with pytest.raises(ValueError, match="not both"):
        run_utility_study(build, task["train"], task["val"], task["test"], arms=("real",), grid=grid,
                          settings=grid[0], size=16, progress=False)


# ---------------------------------------------------------------- intervals over seeds and test cases

@pytest.mark.parametrize("k", [2, 3])
def test_metric_functions_match_classification_metrics(k):
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 200)
    logits = rng.normal(size=(200, k)) + 1.5 * np.eye(k)[y]
    logits[:20] = np.round(logits[:20])  # some tied scores
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = [f"c{c}" for c in range(k)]
    want = classification_metrics(y, proba, names, minority_class=1)
    got = {m: f(y, proba) for m, f in metric_functions(names, minority_class=1).items()}
    assert set(got) == set(want)
    for m in want:
        assert got[m] == pytest.approx(want[m], abs=1e-12), m


def test_summary_interval_covers_test_sampling(task):
    """Two seeds that agree exactly still get an interval: the test set is resampled too."""
    table = pd.DataFrame({"arm": ["real"] * 2, "seed": [0, 1], "accuracy": [0.75, 0.75]})
    y = np.array([0, 1, 0, 1] * 10)
    proba = np.stack([np.eye(2)[np.where(np.arange(40) % 4 == 0, 1 - y, y)]] * 2)  # 3 of 4 right, both seeds
    fns = {"accuracy": lambda yt, p: float(np.mean(p.argmax(1) == yt))}
    seed_only = summarise(table, ["accuracy"]).iloc[0]
    both = summarise(table, ["accuracy"], {"real": proba}, y, fns, n_boot=200).iloc[0]
    assert np.isnan(seed_only.ci_low) or seed_only.ci_low == seed_only.ci_high  # 2 equal seeds: nothing
    assert both["mean"] == pytest.approx(0.75) and both.ci_low < 0.75 < both.ci_high


def test_summary_interval_resamples_whole_test_groups():
    """Errors that come in whole smears: resampling smears widens the interval over resampling images."""
    table = pd.DataFrame({"arm": ["real"] * 3, "seed": [0, 1, 2], "accuracy": [0.75] * 3})
    groups = np.repeat(np.arange(8), 10)  # 8 smears of 10 cells
    y = np.tile([0, 1], 40)
    right = ~np.isin(groups, [0, 5])  # every cell of smears 0 and 5 misread, the rest right
    proba = np.stack([np.eye(2)[np.where(right, y, 1 - y)]] * 3)
    fns = {"accuracy": lambda yt, p: float(np.mean(p.argmax(1) == yt))}
    cells = summarise(table, ["accuracy"], {"real": proba}, y, fns, n_boot=400).iloc[0]
    smears = summarise(table, ["accuracy"], {"real": proba}, y, fns, n_boot=400, test_groups=groups).iloc[0]
    assert cells["mean"] == smears["mean"] == pytest.approx(0.75)
    assert smears.ci_low <= 0.75 <= smears.ci_high
    assert smears.ci_high - smears.ci_low > 1.5 * (cells.ci_high - cells.ci_low)


def test_utility_study_rejects_test_groups_of_the_wrong_length(task):
    with pytest.raises(ValueError, match="test_groups has 3 labels"):
        run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], arms=["real"], seeds=[0],
                          test_groups=[0, 1, 2], progress=False)


# ---------------------------------------------------------------- binary tasks, learning-rate reduction

def binary_split(split: tuple[np.ndarray, np.ndarray], n_positive: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Classes 0 (plain noise, the rare positive class like melanoma) and 1 of a stripes split, as RGB."""
    x, y = split
    keep = y < 2
    if n_positive is not None:
        keep &= (y == 1) | (np.cumsum(y == 0) <= n_positive)
    return x[keep][..., None].repeat(3, -1), y[keep]


def test_binary_study_reports_sens_at_spec80_and_every_run_reduces_the_lr(task, monkeypatch):
    import medgan_core.metrics.utility as utility

    calls = []

    def recording_fit(*args, **kw):
        calls.append((kw.get("reduce_lr_patience"), kw.get("reduce_lr_factor")))
        return utility_fit(*args, **kw)

    utility_fit = utility.fit_classifier
    monkeypatch.setattr(utility, "fit_classifier", recording_fit)
    grid = [ClassifierSettings(width=4, lr=3e-3, epochs=3, patience=None),
            ClassifierSettings(width=8, lr=3e-3, epochs=3, patience=None)]
    res = run_utility_study(lambda width=4: SmallCNN(3, 2, width=width, image_size=16),
                            binary_split(task["train"], 30), binary_split(task["val"]), binary_split(task["test"]),
                            arms=("real", "real+oversample"), seeds=(0, 1), grid=grid, size=16, positive_class=0,
                            class_names=["melanoma", "nevus"], reduce_lr_patience=1, reduce_lr_factor=0.2,
                            interval_boot=50, progress=False)
    assert calls == [(1, 0.2)] * (2 + 2 * 2)  # the two grid points, then every arm and seed
    assert res.metrics[3:5] == ["sens_at_spec90", "sens_at_spec80"]
    assert "sens_at_spec80" in set(res.summary.metric) and res.table.sens_at_spec80.notna().all()
    fns = metric_functions(res.class_names, res.minority_class, positive_class=0)
    for arm, proba in res.test_proba.items():  # the table's values are melanoma's sensitivity at 80% specificity
        want = [fns["sens_at_spec80"](res.y_test, p) for p in proba]
        assert res.table[res.table.arm == arm].sens_at_spec80.to_numpy() == pytest.approx(want, abs=1e-6)
    assert (res.table.sens_at_spec80 >= res.table.sens_at_spec90).all()  # a looser specificity never lowers it
    assert any("ReduceLROnPlateau" in note for note in res.notes)
    with pytest.raises(ValueError, match="reduce_lr_patience must be an int >= 1"):
        run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], arms=("real",), seeds=(0,),
                          reduce_lr_patience=0, progress=False)
    with pytest.raises(ValueError, match="reduce_lr_factor must be a number in"):
        select_classifier_settings(tiny_cnn, task["train"], task["val"], [ClassifierSettings()],
                                   reduce_lr_patience=2, reduce_lr_factor=2.0)
