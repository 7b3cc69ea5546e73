"""Turing tests: the answer-file scorer on known answers, the sheet files, and the classifier two-sample test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fixtures_data import LIDC_FOLDER, real_data_dir
from medgan_core.data import lidc
from medgan_core.data.nodule_sequences import LIDC_RANGE, build_nodule_sequences, keep_outside_lung, normalise
from medgan_core.metrics.turing import (binary_scores, bootstrap_f1_ci, classifier_two_sample_test, constant_pixel_auc,
                                        score_answers,
                                        write_turing_sheet)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_score_known_answer_file(tmp_path):
    key = pd.DataFrame({"case": [1, 2, 3, 4], "truth": ["real", "synthetic", "synthetic", "real"]})
    key.to_csv(tmp_path / "key.csv", index=False)
    # reader A: TP = 1 (case 2), FP = 1 (case 1), FN = 1 (case 3) -> precision = recall = F1 = 0.5
    # reader B: all right -> F1 = 1
    pd.DataFrame({"reader": ["A"] * 4 + ["B"] * 4, "case": [1, 2, 3, 4, 4, 3, 2, 1],
                  "answer": ["synthetic", "Synthetic", "real", "r", "real", "s", "fake", "REAL"]}
                 ).to_csv(tmp_path / "answers.csv", index=False)
    out = score_answers(tmp_path / "answers.csv", tmp_path / "key.csv")
    per = out["per_reader"]
    assert per.loc["A", "f1"] == pytest.approx(0.5)
    assert per.loc["A", "accuracy"] == pytest.approx(0.5)
    assert per.loc["B", "f1"] == pytest.approx(1.0)
    assert out["mean_f1"] == pytest.approx(0.75)
    # pooled over 8 answers: TP 3, FP 1, FN 1 -> F1 = 6 / 8
    assert out["f1"] == pytest.approx(0.75)
    assert out["n"] == 8


def test_score_rejects_incomplete_or_invalid_answers(tmp_path):
    key = pd.DataFrame({"case": [1, 2], "truth": ["real", "synthetic"]})
    with pytest.raises(ValueError, match="missing"):
        score_answers(pd.DataFrame({"case": [1], "answer": ["real"]}), key)
    with pytest.raises(ValueError, match="no valid answer"):
        score_answers(pd.DataFrame({"case": [1, 2], "answer": ["real", "maybe"]}), key)
    with pytest.raises(ValueError, match="lacks the columns"):
        score_answers(pd.DataFrame({"case": [1, 2]}), key)


def test_binary_scores_and_bootstrap():
    truth = np.array([1, 1, 0, 0], bool)
    assert binary_scores(truth, truth)["f1"] == 1.0
    assert binary_scores(truth, ~truth)["f1"] == 0.0
    many = np.repeat(truth, 20)  # 40 cases: every resample holds synthetic ones
    assert bootstrap_f1_ci(many, many, n_boot=50) == (1.0, 1.0)
    lo, hi = bootstrap_f1_ci(many, np.ones_like(many), n_boot=200)  # "all synthetic": F1 = 2/3 on average
    assert lo < 2 / 3 < hi


def test_sheet_files_and_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 0, (5, 3, 8, 8)).astype(np.float32)
    fake = rng.uniform(0, 1, (5, 3, 8, 8)).astype(np.float32)
    paths = write_turing_sheet(real, fake, tmp_path, n_cases=6, seed=1)
    page = paths["sheet"].read_text()
    key = pd.read_csv(paths["key"])
    assert sorted(key["truth"].value_counts().to_dict().items()) == [("real", 3), ("synthetic", 3)]
    assert page.count('<section class="case">') == 6 and page.count("<img ") == 18
    assert "source_index" not in page and "http" not in page  # no answers, nothing fetched
    filled = pd.read_csv(paths["blank"]).assign(answer=key["truth"])  # a perfect reader
    assert score_answers(filled, paths["key"])["f1"] == 1.0
    with pytest.raises(ValueError, match="even"):
        write_turing_sheet(real, fake, tmp_path, n_cases=5)


@pytest.mark.skipif(real_data_dir(LIDC_FOLDER) is None, reason="the real LIDC slices are not staged")
def test_prepared_sheet_has_no_outside_lung_giveaway(tmp_path):
    """Real crops carry the constant outside the lungs; an unprepared output never hits it, a prepared one copies it.

    On the real slices the count of exactly-constant pixels tells real crops from a stand-in generator's
    reconstructions; after keep_outside_lung it is the same for every real crop and its reconstruction (AUC
    exactly 0.5 over all pairs), and a sheet matched by nodule leaves the count at chance (mean AUC over draws).
    """
    data_dir = real_data_dir(LIDC_FOLDER)
    slices = lidc.load_slices(data_dir)
    features = lidc.nodule_features(data_dir, slices.meta)
    seqs, _ = build_nodule_sequences(slices, features, ["malignancy"], seq_len=3, crop=32, crops_per_slice=1,
                                     jitter_px=4, dilate_px=2, seed=0)
    const = normalise(np.float32([0.0]), LIDC_RANGE)[0]
    assert (seqs.x == const).any(axis=(1, 2, 3)).mean() > 0.2  # the giveaway exists in the real crops
    rng = np.random.default_rng(0)
    fake = np.clip(0.9 * seqs.x_removed + rng.normal(0, 0.02, seqs.x.shape), -0.999, 0.999).astype(np.float32)
    assert constant_pixel_auc(seqs.x, fake, const) > 0.65  # unprepared: the count alone spots real crops
    prepared = keep_outside_lung(fake, seqs.x)
    counts = [(a == const).sum(axis=(1, 2, 3)) for a in (seqs.x, prepared)]
    assert np.array_equal(counts[0], counts[1]) and constant_pixel_auc(seqs.x, prepared, const) == 0.5
    nodules = seqs.meta["nodule_id"].to_numpy()
    aucs = []
    for seed in range(10):  # the sheet draws 10 real and 10 synthetic cases, matched by nodule
        paths = write_turing_sheet(seqs.x, prepared, tmp_path / str(seed), n_cases=20, seed=seed, groups=nodules)
        key = pd.read_csv(paths["key"])
        rows = {t: key.source_index[key.truth == t].to_numpy() for t in ("real", "synthetic")}
        assert sorted(nodules[rows["real"]]) == sorted(nodules[rows["synthetic"]])  # the same nodules on both sides
        assert not set(rows["real"]) & set(rows["synthetic"])  # never a crop beside its own copy
        aucs.append(constant_pixel_auc(seqs.x[rows["real"]], prepared[rows["synthetic"]], const))
    assert abs(np.mean(aucs) - 0.5) < 0.1, aucs  # the count cannot tell the sheet's halves apart
    with pytest.raises(ValueError, match="paired"):
        write_turing_sheet(seqs.x, prepared[:-1], tmp_path, n_cases=4, groups=nodules)
    with pytest.raises(ValueError, match="one shape"):
        keep_outside_lung(fake[:2], seqs.x[:3])


def test_classifier_two_sample_test_spots_an_obvious_difference():
    rng = np.random.default_rng(0)
    real = lambda n: rng.uniform(-1, -0.4, (n, 3, 16, 16)).astype(np.float32)  # noqa: E731
    fake = lambda n: rng.uniform(0.4, 1, (n, 3, 16, 16)).astype(np.float32)  # noqa: E731
    out = classifier_two_sample_test(real(24), fake(24), real(10), fake(10), width=4, num_epochs=3, batch_size=16,
                                     lr=1e-2, n_boot=50)
    assert out["f1"] >= 0.9 and out["n"] == 20 and out["n_train"] == 48
    assert out["auc"] >= 0.9 and out["auc_ci"][0] <= out["auc"] <= out["auc_ci"][1] and out["n_units"] == 20
    by_patient = classifier_two_sample_test(real(24), fake(24), real(10), fake(10), width=4, num_epochs=3,
                                            batch_size=16, lr=1e-2, n_boot=50, groups=np.tile(["p1", "p2"], 10))
    assert by_patient["n_units"] == 2 and np.isnan(by_patient["auc_ci"]).all()  # 2 patients: no interval
    with pytest.raises(ValueError, match="one unit per test case"):
        classifier_two_sample_test(real(8), fake(8), real(4), fake(4), width=4, num_epochs=1, groups=["a"] * 3)
    with pytest.raises(ValueError, match="share"):
        classifier_two_sample_test(real(4), fake(4), real(4)[:, :1], fake(4))
