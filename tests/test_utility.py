"""The classifier-utility harness: augmentation, metrics, paired test, verdict, planted effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from medgan_core.data.augment import ClassicAug
from medgan_core.metrics.utility import (
    select_arms,
    ALL_ARMS, PairedTest, UtilityResult, classification_metrics, induced_imbalance, paired_comparison,
    run_utility_study, summarise, verdict_sentence,
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
    metrics = {"balanced_accuracy", "macro_auc", "minority_recall", "sens_at_spec90", "f1[normal]", "f1[lesion]"}
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
    # "0.612 (0.540 to 0.684)", or "0.500 (n/a)" when both seeds gave the same score (1 epoch can do that)
    expected = (f"{real['mean']:.3f} (n/a)" if real.ci_high <= real.ci_low
                else f"{real['mean']:.3f} ({real.ci_low:.3f} to {real.ci_high:.3f})")
    assert wide.iloc[0, 0] == expected
    assert res.as_dict()["n_seeds"] == 2
    assert res.paired_test.gan_arm.startswith("real+gan") and res.paired_test.base_arm in base
    assert "Training on synthetic images only (synthetic_only[a]) reached balanced accuracy" in res.verdict


def test_majority_cap_and_balanced_warning(task):
    res = run_utility_study(tiny_cnn, task["train"], task["val"], task["test"], arms=("real",), seeds=(0,),
                            epochs=1, size=16, max_train_per_class=40, progress=False)
    assert res.train_counts == {"0": 40, "1": 40, "2": 4}
    assert res.notes == ["class 0 capped from 150 to 40 training images", "class 1 capped from 150 to 40 training images"]
    assert res.table.n_train.tolist() == [84]
    assert "no paired test" not in res.verdict and "says nothing about GAN images" in res.verdict
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
    three = classification_metrics(np.array([0, 1, 2]), np.eye(3), ["a", "b", "c"], minority_class=2)
    assert three["balanced_accuracy"] == 1.0 and three["macro_auc"] == 1.0 and "sens_at_spec90" not in three


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
    assert pt.wilcoxon_pvalue == pytest.approx(0.25)  # the smallest exact two-sided p with 3 pairs
    assert pt.outcome == "did not help" and pt.ci_low < 0  # 0.2 +- 0.248
    text = verdict_sentence(pt)
    assert text == ("Adding GAN images did not help: real+gan changed balanced accuracy by +0.200 "
                    f"(95% CI {0.2 - half:+.3f} to {0.2 + half:+.3f}) versus the best non-GAN arm (real, arms chosen on validation); "
                    "the difference is not significant (paired t-test p = 0.074, Wilcoxon p = 0.25, 3 seeds).")
    helped = PairedTest("balanced_accuracy", "real+gan[x]", "real", 5, 0.03, 0.01, 0.05, 0.01, 0.06)
    hurt = PairedTest("balanced_accuracy", "real+gan[x]", "real", 5, -0.03, -0.05, -0.01, 0.01, 0.06)
    assert verdict_sentence(helped).startswith("Adding GAN images helped: real+gan[x] changed balanced accuracy by +0.030")
    assert verdict_sentence(hurt).startswith("Adding GAN images hurt: real+gan[x] changed balanced accuracy by -0.030")
    assert "says nothing about GAN images" in verdict_sentence(None)
    summary = summarise(table, ["balanced_accuracy"])
    assert summary.set_index("arm").loc["real+gan", "mean"] == pytest.approx(0.8)


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
