"""Experiment 03's shared pieces: the extractor cut elsewhere, features as classifier inputs, folds pooled, the feature C2ST."""

from __future__ import annotations

import copy

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from medgan_core import plots
from medgan_core.experiments import chest_feature_gan as writeup
from medgan_core.metrics import fidelity, realism, utility
from medgan_core.models import build_gan
from medgan_core.models.feature_gan import FeatureScaler
from medgan_core.models.vgg_extractor import VGGFeatureClassifier, extract_features, pool_features


def _net(split="deep", seed=0):
    torch.manual_seed(seed)
    return VGGFeatureClassifier(1, 3, width=2, image_size=32, split=split).eval()


def test_resplit_keeps_the_logits_and_moves_the_cut():
    net = _net()
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    shallow = net.resplit("shallow")
    assert shallow.feature_shape == (8, 4, 4) and net.feature_shape == (16, 2, 2)
    assert torch.allclose(shallow.eval()(x), net(x), atol=1e-6)
    assert tuple(extract_features(shallow, x).shape) == (5, 8, 4, 4)
    # the fourth stage of the shallow cut carries its features to the deep ones
    with torch.no_grad():
        assert torch.allclose(shallow.head[0](shallow.features(x)), net.features(x), atol=1e-6)
    shallow.extractor[0][0].weight.data.add_(1.0)  # a copy: the original is untouched
    assert not torch.allclose(shallow.extractor[0][0].weight, net.extractor[0][0].weight)


def test_extract_features_batches_in_eval_mode_and_restores_the_mode():
    net = _net().train()
    x = torch.rand(7, 1, 32, 32) * 2 - 1
    f = extract_features(net, x, batch_size=3)
    assert net.training and f.shape == (7, 16, 2, 2) and not f.requires_grad
    with torch.no_grad():
        assert torch.allclose(f, net.eval().features(x), atol=1e-6)
    pooled = pool_features(f)
    assert pooled.shape == (7, 16) and np.allclose(pooled, f.mean(dim=(2, 3)).numpy())
    with pytest.raises(ValueError, match="feature maps"):
        pool_features(np.zeros((3, 4)))


def test_fresh_head_follows_the_global_seed_and_fits_the_features():
    net = _net()
    torch.manual_seed(3)
    a = net.fresh_head()
    torch.manual_seed(3)
    b = net.fresh_head()
    f = torch.randn(4, 16, 2, 2)
    assert a.eval()(f).shape == (4, 3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def _feature_task(n=90, seed=0, shift=1.5):
    """Three classes of (4, 2, 2) feature maps whose class shifts the mean: separable but not trivially."""
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(np.random.default_rng(seed).choice(3, n, p=[0.6, 0.25, 0.15]))
    f = torch.randn(n, 4, 2, 2, generator=g) + shift * torch.nn.functional.one_hot(y, 4).float()[:, :, None, None]
    return f, y.numpy().astype(np.int64)


def _class_sampler(c, n, seed, shift=1.5):
    """``n`` maps of class ``c`` drawn like :func:`_feature_task`'s (a generator that learnt the classes)."""
    f = torch.randn(n, 4, 2, 2, generator=torch.Generator().manual_seed(100 + seed + 7 * c))
    f[:, c] += shift
    return f


def _head():
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))


def _study(seed=0, samplers=None):
    tr, va, te = (_feature_task(90, seed + i) for i in range(3))
    samplers = samplers if samplers is not None else {"good": _class_sampler}
    return utility.run_utility_study(_head, tr, va, te, samplers, arms=utility.FEATURE_ARMS, seeds=[0, 1, 2], size=None,
                                     class_names=["a", "b", "c"], epochs=5, lr=0.05, patience=None, interval_boot=50,
                                     progress=False)


def test_utility_study_on_feature_maps():
    res = _study()
    assert set(res.table.arm) == {"real", "real+class_weights", "real+oversample", "real+gan[good]", "synthetic_only[good]"}
    real = res.summary.query("arm == 'real' and metric == 'balanced_accuracy'")["mean"].iloc[0]
    assert real > 0.6  # the task is learnable from the features as given
    tr, va, te = (_feature_task(30, i) for i in range(3))
    with pytest.raises(ValueError, match="classic_aug"):
        utility.run_utility_study(_head, tr, va, te, None, arms=["real", "real+classic_aug"], seeds=[0], size=None)
    with pytest.raises(ValueError, match="size=None"):
        utility.run_utility_study(_head, (tr[0].numpy(), tr[1]), va, te, None, arms=["real"], seeds=[0], size=None)


def test_pool_folds_scores_the_concatenated_out_of_fold_predictions():
    folds = [_study(0), _study(10)]
    groups = [np.repeat(np.arange(30), 3).astype(str), np.repeat(np.arange(30, 60), 3).astype(str)]
    pooled = utility.pool_folds(folds, groups, interval_boot=50)
    y = np.concatenate([f.y_test for f in folds])
    for arm in ("real", "real+gan[good]"):
        proba = np.concatenate([f.test_proba[arm][1] for f in folds])  # seed 1
        row = pooled.table.query("arm == @arm and seed == 1").iloc[0]
        by_hand = utility.classification_metrics(y, proba, ["a", "b", "c"], pooled.minority_class)
        assert row.balanced_accuracy == pytest.approx(by_hand["balanced_accuracy"])
        assert row.val_balanced_accuracy == pytest.approx(np.mean(row.fold_val_balanced_accuracy))
    assert pooled.test_proba["real"].shape == (3, 180, 3)
    assert pooled.train_counts == {c: sum(f.train_counts[c] for f in folds) for c in "abc"}
    assert pooled.paired_test is not None and "pooled" in pooled.notes[0]
    kept = utility.pool_folds(folds, groups, gans=[], interval_boot=20)  # no generator above the floor
    assert set(kept.table.arm) == {"real", "real+class_weights", "real+oversample"} and kept.paired_test is None
    with pytest.raises(ValueError, match="differs from fold 0"):
        utility.pool_folds([folds[0], _study(0, samplers={"other": lambda c, n, s: torch.zeros(n, 4, 2, 2)})])


def test_c2st_features_tells_shifted_maps_apart_and_not_identical_ones():
    g = torch.Generator().manual_seed(0)
    real_tr, real_te = torch.randn(150, 4, 3, 3, generator=g), torch.randn(80, 4, 3, 3, generator=g)
    same_tr, same_te = torch.randn(150, 4, 3, 3, generator=g), torch.randn(80, 4, 3, 3, generator=g)
    same = realism.c2st_features(real_tr, same_tr, real_te, same_te, n_components=10, n_boot=50)
    far = realism.c2st_features(real_tr, same_tr + 1.0, real_te, same_te + 1.0, n_components=10, n_boot=50,
                                groups=np.repeat(np.arange(40), 2))
    assert 0.35 < same["auc"] < 0.65 and far["auc"] > 0.95
    assert far["auc_ci_low"] <= far["auc"] <= far["auc_ci_high"] and far["n_test"] == 160
    with pytest.raises(ValueError, match="same feature size"):
        realism.c2st_features(real_tr, same_tr[:, :2], real_te, same_te)


def test_validation_kid_scores_a_feature_gan_in_its_own_space():
    f, y = _feature_task(60, 0)
    scaler = FeatureScaler.fit(f)
    gan = build_gan("feature_gan", num_classes=3, image_size=2, channels=4, nz=8, width_G=4, width_D=4, seed=0)
    score = fidelity.validation_kid(lambda s: pool_features(scaler.inverse(torch.as_tensor(s))), (scaler(f), y),
                                    max_per_class=20, seed=0, kid_subsets=5, as_images=False)
    value = score(gan)
    assert np.isfinite(value) and value == score(gan)  # fixed latents: the same generator scores the same


def test_feature_projection_draws_one_panel_per_generator():
    f, y = _feature_task(60, 0)
    fig = plots.feature_projection(pool_features(f), y, {"g1": (pool_features(f[:20]), y[:20]),
                                                          "g2": (pool_features(f[20:40]), y[20:40])}, ["a", "b", "c"])
    assert len(fig.axes) == 2
    with pytest.raises(ValueError, match="N >= 3"):
        plots.feature_projection(np.zeros((2, 4)), np.zeros(2), {}, ["a"])


def test_writeup_evidence_reads_the_numbers():
    paired = pd.Series({"gan_arm": "real+gan[feature_gan]", "base_arm": "real", "mean_diff": 0.05, "ci_low": 0.01,
                        "ci_high": 0.09, "t_pvalue": 0.01, "n_seeds": 5})
    assert writeup.gain_evidence(paired, ["feature_gan"], False, "X")[0].startswith("supported")
    assert writeup.gain_evidence(paired, [], False, "X")[0].startswith("withheld")
    assert writeup.gain_evidence(paired, ["feature_gan"], True, "X")[0].startswith("withheld")
    flat = {"mean_diff": 0.0, "ci_low": -0.02, "ci_high": 0.02, "t_pvalue": 0.9, "n": 5}
    assert writeup.depth_evidence(flat, "X")[0].startswith("not shown")
    assert writeup.depth_evidence(flat | {"mean_diff": -0.1, "ci_high": -0.05, "ci_low": -0.15, "t_pvalue": 0.001},
                                  "X")[0].startswith("contradicted")
    assert list(writeup.writeup_table().iloc[:, 0]) == [0.568, 0.617]


def test_head_drift_separates_weights_from_batchnorm_statistics():
    from medgan_core.models.feature_gan import head_drift

    head = _net().head
    moved = copy.deepcopy(head)
    assert head_drift(head, moved) == {"weights": 0.0, "bn_running_stats": 0.0}
    moved.train()(torch.randn(8, 16, 2, 2) + 3.0)  # a forward pass in train mode: running statistics move, weights do not
    drift = head_drift(head, moved)
    assert drift["weights"] == 0.0 and drift["bn_running_stats"] > 0.01
    with pytest.raises(ValueError, match="same head"):
        head_drift(head, torch.nn.Linear(2, 2))
