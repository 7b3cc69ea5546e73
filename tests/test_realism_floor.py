"""C2ST realism (one distribution vs separable sets, the draw rules, the AUC bootstrap) and the quality floor."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medgan_core import results
from medgan_core.metrics import realism
from medgan_core.metrics.fidelity import REFERENCE
from medgan_core.metrics.floor import QualityFloor, floor_table, gate, gate_verdicts
from medgan_core.metrics.realism import _weighted_auc, c2st_auc, c2st_study

FAST = dict(width=4, num_epochs=4, batch_size=32, lr=1e-2, n_boot=200)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def noise(n: int, seed: int, lo: int = 0, hi: int = 256) -> np.ndarray:
    """uint8 `(n, 16, 16, 3)` uniform noise in ``lo..hi-1``."""
    return np.random.default_rng(seed).integers(lo, hi, (n, 16, 16, 3), dtype=np.uint8)


def test_c2st_cannot_tell_one_distribution_apart():
    out = c2st_auc(noise(150, 0), noise(150, 1), noise(60, 2), noise(60, 3), **FAST)
    assert out["auc_ci_low"] <= 0.5 <= out["auc_ci_high"] or abs(out["auc"] - 0.5) < 0.15
    assert out["n_train"] == 300 and out["n_test"] == 120


def test_c2st_tells_bright_from_dark_and_reads_both_layouts():
    dark = lambda n, s: noise(n, s, 0, 140)  # noqa: E731
    bright = lambda n, s: torch.from_numpy(noise(n, s, 116, 256)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    out = c2st_auc(dark(150, 0), bright(150, 1), dark(60, 2), bright(90, 3), **FAST)  # channel-first float fakes
    assert out["auc"] > 0.95 and out["accuracy"] > 0.9
    assert out["n_test"] == 120  # the larger test side is cut to the smaller
    with pytest.raises(ValueError, match="share"):
        c2st_auc(dark(10, 0), bright(10, 1), dark(10, 2)[..., :1], bright(10, 3), **FAST)
    with pytest.raises(ValueError, match="groups"):
        c2st_auc(dark(10, 0), bright(10, 1), dark(10, 2), bright(10, 3), groups=[0, 1], **FAST)


def test_weighted_auc_is_the_mann_whitney_auc_of_the_resample():
    prob = np.array([0.1, 0.4, 0.4, 0.8, 0.4, 0.9])
    truth = np.array([0, 0, 1, 1, 0, 1], bool)
    # pairs (fake > real) over 3 x 3: 0.4 beats 0.1, ties 0.4 twice -> 1 + 2 * 0.5 = 2; 0.8, 0.9 beat all -> 6
    assert _weighted_auc(prob, truth, np.ones((1, 6)))[0] == pytest.approx(8 / 9)
    counts = np.array([[2, 0, 1, 1, 1, 0]])  # a resample: image 0 twice, images 1 and 5 absent
    expanded = np.repeat(np.arange(6), counts[0])
    assert _weighted_auc(prob, truth, counts.astype(float))[0] == pytest.approx(
        roc_auc_score(truth[expanded], prob[expanded]))
    assert np.isnan(_weighted_auc(prob, truth, np.array([[1.0, 1, 0, 0, 1, 0]]))[0])  # no generated image


def test_cluster_bootstrap_widens_the_interval_of_clustered_reals():
    rng = np.random.default_rng(0)
    real = np.repeat(rng.normal(0, 1, 10), 20)  # 10 smears of 20 identical scores
    prob = np.r_[real, rng.normal(0.3, 1, 200)]
    truth = np.r_[np.zeros(200, bool), np.ones(200, bool)]
    auc, lo, hi = realism._auc_ci(prob, truth, None, 300, 0)
    auc_g, lo_g, hi_g = realism._auc_ci(prob, truth, np.repeat(np.arange(10), 20), 300, 0)
    assert auc == auc_g == pytest.approx(roc_auc_score(truth, prob))
    assert hi_g - lo_g > 1.5 * (hi - lo)


def test_c2st_study_draws_disjoint_balanced_sets(monkeypatch):
    seen = []

    def record(real_train, fake_train, real_test, fake_test, groups=None, **kw):
        seen.append((real_train, fake_train, real_test, fake_test, groups))
        return {"auc": 0.5, "auc_ci_low": 0.4, "auc_ci_high": 0.6, "accuracy": 0.5}

    monkeypatch.setattr(realism, "c2st_auc", record)
    y_tr, y_he = np.r_[np.zeros(40, int), np.ones(20, int)], np.r_[np.zeros(10, int), np.ones(8, int)]
    y_f = np.r_[np.zeros(30, int), np.ones(6, int), np.full(3, 2)]
    x_f = np.arange(len(y_f))[:, None] * np.ones((1, 4))  # each fake carries its own id
    table = c2st_study((np.zeros((60, 4)), y_tr), (np.zeros((18, 4)), y_he), {"gan": (x_f, y_f)},
                       ["A", "B", "C"], groups=np.arange(18) // 3)
    assert table["class"].tolist() == ["all", "A", "B", "C"]
    # A: 10 test per side, 20 fakes left for training (the real side cut to 20); B: 3 + 3 fakes (< 5: NaN row)
    assert table.set_index("class").loc[["A", "B"], ["n_train", "n_test"]].values.tolist() == [[40, 20], [6, 6]]
    assert np.isnan(table.set_index("class").loc["B", "auc"]) and len(seen) == 2  # "all" and "A"
    for real_train, fake_train, real_test, fake_test, groups in seen:
        assert len(real_train) == len(fake_train) and len(real_test) == len(fake_test) == len(groups)
        assert not set(fake_train[:, 0]) & set(fake_test[:, 0])  # disjoint generated draws


def test_c2st_study_with_a_sampler_per_class():
    calls = []

    def sampler(cls, n, seed):
        calls.append((cls, n, seed))
        return noise(n, 100 + 10 * cls + seed, 116 if cls else 0, 256 if cls else 140)  # class 1 far too bright

    y_tr, y_he = np.repeat([0, 1], 60), np.repeat([0, 1], 30)
    x_tr = np.concatenate([noise(60, 1, 0, 140), noise(60, 2, 0, 140)])
    x_he = np.concatenate([noise(30, 3, 0, 140), noise(30, 4, 0, 140)])
    table = c2st_study((x_tr, y_tr), (x_he, y_he), {"gan": sampler}, ["dark", "bright"], **FAST).set_index("class")
    assert table.loc["bright", "auc"] > 0.95
    assert abs(table.loc["dark", "auc"] - 0.5) < 0.25
    assert sorted(calls) == [(0, 30, 1), (0, 60, 0), (1, 30, 1), (1, 60, 0)]  # test and training seeds differ


def planted_fidelity() -> pd.DataFrame:
    return pd.DataFrame({"model": [REFERENCE, "good", "bagan_gp", "blob", REFERENCE, "good"],
                         "class": ["all", "all", "all", "all", "WBC", "WBC"],
                         "precision": [0.95, 0.80, 0.52, 0.10, 0.9, 0.1],
                         "recall": [0.97, 0.40, 0.00, np.nan, 0.9, 0.1]})


def test_quality_floor_validates_its_ranges():
    assert QualityFloor() == QualityFloor(0.5, 0.25, None)
    with pytest.raises(ValueError, match="recall_min"):
        QualityFloor(recall_min=1.5)
    with pytest.raises(ValueError, match="c2st_auc_max"):
        QualityFloor(c2st_auc_max=0.2)


def test_floor_table_passes_and_fails_planted_generators():
    c2st = pd.DataFrame({"model": ["good", "bagan_gp"], "class": ["all", "all"], "auc": [0.97, 0.99],
                         "auc_ci_low": [0.95, 0.98], "auc_ci_high": [0.99, 1.0]})
    table = floor_table(planted_fidelity(), QualityFloor(), c2st).set_index("model")
    assert table["passed"].to_dict() == {"good": True, "bagan_gp": False, "blob": False}
    assert table.loc["bagan_gp", "reason"] == "recall 0.00 < 0.25; precision 0.52 >= 0.50"
    assert table.loc["blob", "reason"].startswith("precision 0.10 < 0.50; recall not measured")
    assert table.loc["good", "c2st_auc"] == 0.97 and table.loc["good", "ref_recall"] == 0.97
    strict = floor_table(planted_fidelity(), QualityFloor(c2st_auc_max=0.9), c2st).set_index("model")
    assert not strict.loc["good", "passed"] and "C2ST AUC 0.97 > 0.90" in strict.loc["good", "reason"]
    assert not floor_table(planted_fidelity(), class_name="WBC").iloc[0]["passed"]
    near = planted_fidelity().assign(recall=[0.97, 0.249, 0.25, 0.3, 0.9, 0.1])  # 0.249 must not print as 0.25
    assert floor_table(near).set_index("model").loc["good", "reason"] == "recall 0.249 < 0.250; precision 0.80 >= 0.50"
    with pytest.raises(ValueError, match="no rows of class"):
        floor_table(planted_fidelity(), class_name="RBC")


def test_gate_withholds_a_verdict_below_the_floor():
    table = floor_table(planted_fidelity())
    row = table.set_index("model").loc["bagan_gp"]
    said = gate("BAGAN-GP helped the minority class.", "BAGAN-GP", row)
    assert said == ("Withheld: BAGAN-GP is below the quality floor (recall 0.00 < 0.25; precision 0.52 >= 0.50); "
                    "its utility verdict would speak for a generator that has not learnt.")
    verdict = "DCGAN did not help."
    assert gate(verdict, "DCGAN", table.set_index("model").loc["good"]) is verdict
    gated, withheld = gate_verdicts({"good": verdict, "bagan_gp": "x"}, table, labels={"bagan_gp": "BAGAN-GP"})
    assert gated["good"] == verdict and withheld == [said] == [gated["bagan_gp"]]
    with pytest.raises(ValueError, match="no floor row"):
        gate_verdicts({"cgan": "y"}, table)


def test_results_log_quality_floor_and_withheld(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RUN_DIR_VAR, str(tmp_path))
    results.log_verdict("kept")
    table = floor_table(planted_fidelity())
    results.log_quality_floor(table)
    results.log_withheld(["Withheld: BAGAN-GP is below the quality floor."])
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["verdict"] == "kept"
    assert data["quality_floor"]["bagan_gp"] == {"passed": False,
                                                 "reason": "recall 0.00 < 0.25; precision 0.52 >= 0.50",
                                                 "precision": 0.52, "recall": 0.0, "c2st_auc": None}
    assert data["quality_floor"]["good"]["passed"] is True and data["quality_floor"]["blob"]["recall"] is None
    assert data["withheld"] == ["Withheld: BAGAN-GP is below the quality floor."]
    with pytest.raises(ValueError, match="list of sentences"):
        results.log_withheld("one sentence")
