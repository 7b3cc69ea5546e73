"""Experiment 01 helpers: training every generator, resume, fidelity table, write-up layout, induced imbalance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medgan_core.experiments import bagan_study as study
from medgan_core.metrics.fid import fid_ci
from medgan_core.models.classifier import build_classifier


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

CFG = dict(nz=4, width_G=2, width_D=2, batch_size=4, steps=2, ae_steps=2, snapshots=2, snapshot_n=2)


def _toy(n_per_class=(6, 4), size=16, seed=0):
    """uint8 squares: class 0 dark, class 1 bright."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.integers(0, 100, (n, size, size, 3)) + 120 * c for c, n in enumerate(n_per_class)])
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    return x.astype(np.uint8), y.astype(np.int64)


@pytest.mark.parametrize("name", study.GENERATORS)
def test_every_generator_trains_samples_and_reports_compute(name, tmp_path):
    x, y = _toy()
    run = study.train_generator(name, x, y, 2, study.GanConfig(**CFG), tmp_path, seed=0)
    imgs = run.sample(1, 3, seed=0)
    assert imgs.shape == (3, 16, 16, 3) and imgs.dtype == np.uint8
    assert np.array_equal(imgs, run.sample(1, 3, seed=0))
    assert sorted(run.snapshots) == [1, 2] and run.snapshots[2][1].shape == (2, 16, 16, 3)
    assert run.n_params > 0 and run.peak_memory_mb > 0 and run.seconds > 0
    assert len(run.history) == (2 * 2 if name == "dcgan" else 2)
    assert (run.autoencoder is not None) == name.startswith("bagan")
    with pytest.raises(ValueError, match="outside 0..1"):
        run.sample(2, 1, 0)


def test_resume_loads_the_finished_run_instead_of_training(tmp_path):
    x, y = _toy()
    cfg = study.GanConfig(**CFG)
    first = study.train_generator("cwgan_gp", x, y, 2, cfg, tmp_path, seed=0)
    again = study.train_generator("cwgan_gp", x, y, 2, cfg, tmp_path, seed=0)
    assert np.array_equal(first.sample(0, 2, 5), again.sample(0, 2, 5))
    assert again.seconds == first.seconds  # restored from the checkpoint, not re-measured
    other = study.train_generator("cwgan_gp", x, y, 2, study.GanConfig(**(CFG | {"lr": 1e-3})), tmp_path, seed=0)
    assert len(list(tmp_path.iterdir())) == 2  # a changed setting gets its own run folder
    assert not np.array_equal(first.sample(0, 2, 5), other.sample(0, 2, 5))


def test_train_generator_checks_its_inputs(tmp_path):
    x, y = _toy()
    with pytest.raises(ValueError, match="valid names"):
        study.train_generator("biggan", x, y, 2, study.GanConfig(**CFG), tmp_path, 0)
    with pytest.raises(ValueError, match=">= 2 training images"):
        study.train_generator("dcgan", x, np.zeros(len(y), np.int64), 2, study.GanConfig(**CFG), tmp_path, 0)
    with pytest.raises(ValueError, match="GanConfig.steps"):
        study.GanConfig(steps=0)


def test_fid_bootstrap_interval_matches_the_core_one():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 5)), rng.normal(size=(40, 5)) + 0.5
    core = fid_ci(a, b, n_boot=20, seed=3)
    low, high = study.fid_bootstrap_ci(a, b, core["fid"], n_boot=20, seed=3)
    assert low == pytest.approx(core["ci_low"], rel=1e-6) and high == pytest.approx(core["ci_high"], rel=1e-6)


def test_fidelity_study_reference_row_and_writeup_layout():
    rng = np.random.default_rng(0)
    x_tr, y_tr = _toy((30, 30), seed=1)
    x_he, y_he = _toy((12, 12), seed=2)
    features = lambda imgs: imgs.reshape(len(imgs), -1)[:, :6].astype(float) + rng.normal(size=(len(imgs), 6)) * 0.01
    fakes = {"dcgan": _toy((12, 12), seed=3), "bagan": (x_he[::-1].copy(), np.zeros(24, np.int64))}
    fid = study.fidelity_study(features, (x_tr, y_tr), (x_he, y_he), fakes, ["dark", "bright"], n_boot=5,
                               ms_ssim_pairs=10, kid_subsets=5)
    assert set(fid["class"]) == {"all", "dark", "bright"} and set(fid.model) == {study.REFERENCE, "dcgan", "bagan"}
    row = fid[(fid.model == "dcgan") & (fid["class"] == "dark")].iloc[0]
    assert row.n_eval == 12 and 0 <= row.precision <= 1 and row.ms_ssim_scales == 1
    # bagan made only "dark" cells: its bright row is skipped (no images), not an error
    assert pd.isna(fid[(fid.model == "bagan") & (fid["class"] == "bright")].iloc[0].get("fid"))
    table = study.writeup_table(fid, ["dcgan", "bagan"])
    assert list(table.index) == ["all types", "dark", "bright"]
    assert table.loc["all types", "DCGAN (per class): write-up"] == "0.835"
    assert table.loc["all types", f"{study.REFERENCE}: write-up"] == "0.004"
    assert study.rank_generators(fid, ["bagan", "dcgan"])[0] == "dcgan"  # bagan's bright FID is missing


def test_induced_imbalance_thins_only_the_minority():
    x, y = _toy((20, 20), seed=4)
    calls = []

    def make_sampler(x_f, y_f, frac):
        calls.append((frac, int((y_f == 1).sum()), int((y_f == 0).sum())))
        return {"toy": lambda c, n, s: _toy((n, 0) if c == 0 else (0, n), seed=s)[0]}

    curves = study.induced_imbalance(
        (x, y), _toy((6, 6), seed=5), _toy((6, 6), seed=6), 1, [1.0, 0.25], make_sampler,
        lambda: build_classifier("small_cnn", 3, 2, width=2, image_size=16), ["real", "real+gan"], [0, 1],
        epochs=1, patience=None, size=16, progress=False, n_synthetic_per_class=2)
    assert calls == [(1.0, 20, 20), (0.25, 5, 20)]
    assert set(curves.arm) == {"real", "real+gan[toy]"}
    assert sorted(curves.n_minority.unique()) == [5, 20]
    sentence = study.imbalance_sentence(curves, "bright")
    assert sentence.startswith("With 25% of the bright kept (5 images)")


def test_load_task_b_on_real_data(real_data):
    splits, classes, excluded = study.load_task_b(16, real_data)
    assert classes == ["NEUTROPHIL", "EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE"]  # basophils dropped
    totals = sum(np.bincount(y, minlength=4) for _, y in splits.values())
    assert totals.tolist() == [203, 84, 33, 20]
    assert excluded.loc["two subtypes", "rows"] == 15 and excluded.loc["basophil (3 images)", "rows"] == 3
