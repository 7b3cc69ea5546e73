"""The per-class fidelity study: one rule for the reference and the generators, tiny classes, ranking."""

from __future__ import annotations

import numpy as np
import torch
import pandas as pd
import pytest

import medgan_core.metrics.fidelity as fidelity
from medgan_core.metrics.fid import fid_ci
from medgan_core.metrics.stats import interval_contains
from medgan_core.metrics.fidelity import (REFERENCE, STUDY_COLUMNS, as_nested_dict, fid_ratios, fidelity_study,
                                         rank_generators)

NUMERIC = [c for c in STUDY_COLUMNS if c not in ("model", "class")]


def cells(counts: tuple[int, ...], seed: int, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """uint8 `(N, size, size, 3)` noise squares, class c brighter by 60 c, with labels."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.integers(0, 120, (n, size, size, 3)) + 60 * c for c, n in enumerate(counts)])
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    return x.astype(np.uint8), y.astype(np.int64)


def features(images: np.ndarray) -> np.ndarray:
    """A deterministic stand-in encoder: per-channel mean and std and four pixel values `(N, 10)`."""
    x = images.astype(np.float64) / 255.0
    return np.c_[x.mean(axis=(1, 2)), x.std(axis=(1, 2)), x.reshape(len(x), -1)[:, :4]]


SETTINGS = dict(seed=0, k=3, max_n=30, n_boot=10, ms_ssim_pairs=10, kid_subsets=10)  # max_n caps the 70 training cells of "all"


@pytest.fixture(scope="module")
def study():
    train, held = cells((40, 30), seed=1), cells((14, 12), seed=2)
    x_s, y_s = cells((20, 20), seed=3)
    shifted = (np.clip(x_s.astype(int) + 70, 0, 255).astype(np.uint8), y_s)  # every image 70 levels brighter
    fakes = {"copy": held, "shifted": shifted, "dark_only": cells((16, 0), seed=4)}
    captured = []
    original = fidelity.fidelity_row

    def spy(ft, fe, **kw):
        captured.append((ft.copy(), fe.copy()))
        return original(ft, fe, **kw)

    fidelity.fidelity_row = spy
    try:
        table = fidelity_study(features, train, held, fakes, ["dark", "bright"], **SETTINGS)
    finally:
        fidelity.fidelity_row = original
    return table, captured, (train, held, fakes)


def test_columns_groups_and_sizes(study):
    table, _, _ = study
    assert list(table.columns) == STUDY_COLUMNS
    assert list(table["class"].unique()) == ["all", "dark", "bright"]
    assert list(table[table["class"] == "all"].model) == [REFERENCE, "copy", "shifted", "dark_only"]
    n_eval = table.groupby("class")["n_eval"].first()
    assert n_eval.to_dict() == {"all": 16, "dark": 14, "bright": 0}  # smallest set of the group: dark_only's


def test_a_generator_that_returns_heldout_images_gets_the_reference_numbers(study):
    table, _, _ = study
    ref = table[table.model == REFERENCE].set_index("class")[NUMERIC]
    copy = table[table.model == "copy"].set_index("class")[NUMERIC]
    pd.testing.assert_frame_equal(ref, copy)
    assert ref.loc["all"].notna().all()


def test_every_row_of_a_group_shares_one_training_subsample_of_at_most_max_n_rows(study):
    table, captured, _ = study
    computed = table[table.fid.notna()].reset_index(drop=True)
    assert len(captured) == len(computed)  # one fidelity_row call per computed row, in order
    for cls, grp in computed.groupby("class"):
        first = captured[grp.index[0]][0]
        for i, row in grp.iterrows():
            ft, fe = captured[i]
            n_train = int((study[2][0][1] == ["dark", "bright"].index(cls)).sum()) if cls != "all" else len(study[2][0][1])
            assert np.array_equal(ft, first) and len(fe) == row.n_eval and len(ft) == min(n_train, SETTINGS["max_n"])
            ci = fid_ci(ft, fe, n_boot=SETTINGS["n_boot"], seed=SETTINGS["seed"])  # the FID interval is fid_ci's
            assert (row.fid, row.fid_ci_low, row.fid_ci_high) == (ci["fid"], ci["ci_low"], ci["ci_high"])


def test_kid_intervals_have_width_and_the_shifted_generator_is_worse(study):
    table, _, _ = study
    done = table[table.fid.notna()]
    assert (done.kid_ci_high > done.kid_ci_low).all()
    assert (done.fid_ci_high > done.fid_ci_low).all()
    all_rows = table[table["class"] == "all"].set_index("model")
    assert all_rows.loc["shifted", "fid"] > 5 * all_rows.loc[REFERENCE, "fid"]
    assert all_rows.loc["shifted", "kid_ci_low"] > all_rows.loc[REFERENCE, "kid_ci_high"]
    assert all_rows.loc[REFERENCE, "ms_ssim_scales"] == 1  # 16-px images allow one MS-SSIM scale


def test_no_interval_excludes_its_estimate(study):
    table, _, _ = study
    done = table[table.fid.notna()]
    assert len(done) == 8
    for _, row in done.iterrows():
        assert interval_contains(row.fid, row.fid_ci_low, row.fid_ci_high), (row.model, row["class"])
        assert interval_contains(row.kid, row.kid_ci_low, row.kid_ci_high), (row.model, row["class"])


def test_kid_interval_has_width_when_every_row_of_a_group_is_the_whole_set():
    # A group of 6 evaluated images: KID subsets of half the set still overlap heavily, and a
    # subset size equal to the set would make every subset the same; the interval comes from
    # the bootstrap over images, so it has a width either way.
    train, held = cells((12, 12), seed=1), cells((6, 6), seed=2)
    table = fidelity_study(features, train, held, {"copy": held}, ["dark", "bright"],
                           **(SETTINGS | {"k": 3, "n_boot": 20}))
    done = table[table.kid.notna()]
    assert len(done) == 6 and (done.kid_ci_high > done.kid_ci_low).all()
    row = fidelity.fidelity_row(features(train[0]), features(held[0]), kid_subsets=5, kid_subset_size=100, n_boot=20)
    assert row["kid_subset_size"] == 12 and row["kid_ci_high"] > row["kid_ci_low"]
    assert interval_contains(row["kid_mean"], row["kid_ci_low"], row["kid_ci_high"])


def test_tiny_or_missing_classes_give_nan_rows_not_errors(study):
    table, _, _ = study
    bright = table[table["class"] == "bright"]
    assert len(bright) == 4 and bright[NUMERIC[1:]].isna().all().all()  # dark_only made no bright cell
    train, held, _ = study[2]
    few = fidelity_study(features, train, held, {"few": cells((14, 3), seed=5)}, ["dark", "bright"], **SETTINGS)
    row = few[(few["class"] == "bright")].iloc[0]
    assert row.n_eval == 3 and np.isnan(row.fid)  # 3 <= k images


def test_fidelity_study_is_seeded_and_checks_inputs(study):
    table, _, (train, held, fakes) = study
    again = fidelity_study(features, train, held, fakes, ["dark", "bright"], **SETTINGS)
    pd.testing.assert_frame_equal(table, again)
    with pytest.raises(ValueError, match="max_n must be at least"):
        fidelity_study(features, train, held, fakes, ["dark", "bright"], max_n=2)
    with pytest.raises(ValueError, match="one label per image"):
        fidelity_study(features, (train[0], train[1][:5]), held, fakes, ["dark", "bright"])
    with pytest.raises(ValueError, match="another name"):
        fidelity_study(features, train, held, {REFERENCE: held}, ["dark", "bright"])


def test_rank_generators_and_fid_ratios_by_hand():
    fid = pd.DataFrame({
        "model": [REFERENCE, "a", "b", "c"] * 3,
        "class": ["all"] * 4 + ["x"] * 4 + ["y"] * 4,
        "fid": [1.0, 9.0, 9.0, 9.0, 2.0, 4.0, 3.0, np.nan, 4.0, 4.0, 8.0, np.nan],
    })
    # per-class gaps: a: 2 and 0 (mean 1); b: 1 and 4 (mean 2.5); c: missing -> last
    assert rank_generators(fid, ["c", "b", "a"]) == ["a", "b", "c"]
    assert fid_ratios(fid, "b") == {"all": 9.0, "x": 1.5, "y": 2.0}
    assert fid_ratios(fid, "c") == {"all": 9.0}


def test_as_nested_dict_for_metrics_json(study):
    table, _, _ = study
    nested = as_nested_dict(table)
    assert list(nested) == [REFERENCE, "copy", "shifted", "dark_only"]
    ref_all = table[(table.model == REFERENCE) & (table["class"] == "all")].iloc[0]
    assert nested[REFERENCE]["all"]["fid"] == ref_all.fid and nested[REFERENCE]["all"]["n_eval"] == 16
    assert np.isnan(nested["dark_only"]["bright"]["kid"]) and "ms_ssim_scales" not in nested["copy"]["all"]
    with pytest.raises(ValueError, match="lacks the columns"):
        as_nested_dict(table.drop(columns=["kid"]))


def test_real_images_score_like_a_generator_and_reach_about_zero_kid():
    from medgan_core.metrics.fidelity import RealImages, validation_kid
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (120, 8, 8, 3), dtype=np.uint8)
    labels = np.repeat([0, 1], 60)
    real = RealImages((images, labels))
    x = real.sample(1, 5, seed=3)
    assert x.shape == (5, 3, 8, 8) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert torch.equal(x, real.sample(1, 5, seed=3))
    first = ((x.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8)
    assert all(any(np.array_equal(f, im) for im in images[60:]) for f in first)  # drawn from class 1 only

    def features(imgs):  # mean colour per channel: real vs real is near 0, real vs a shifted set is not
        return np.asarray(imgs, dtype=np.float64).reshape(len(imgs), -1, 3).mean(1) / 255 + rng.normal(0, 1e-3, (len(imgs), 3))

    score = validation_kid(features, (images, labels), max_per_class=30, seed=0)
    bright = RealImages((np.clip(images.astype(int) + 80, 0, 255).astype(np.uint8), labels))
    assert abs(score(real)) < score(bright)


# --- grouped_fidelity: intervals by patient (crops of one patient are not independent) ---

from medgan_core.metrics.fidelity import GROUPED_COLUMNS, GROUPED_METRICS, grouped_fidelity  # noqa: E402
from medgan_core.metrics.stats import format_ci  # noqa: E402

GROUPED = dict(seed=0, k=3, n_boot=60, kid_subsets=10)


def patient_crops(n_patients: int, per_patient: int, rng: np.random.Generator, d: int = 8,
                  spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Jittered crops around each patient's centre (centres sd ``spread``, crops sd 0.4), and their patient ids."""
    centres = rng.normal(0.0, spread, (n_patients, d))
    groups = np.repeat([f"p{i}" for i in range(n_patients)], per_patient)
    return centres[np.repeat(np.arange(n_patients), per_patient)] + rng.normal(0.0, 0.4, (len(groups), d)), groups


@pytest.fixture(scope="module")
def grouped():
    rng = np.random.default_rng(0)
    f_tr, _ = patient_crops(10, 12, rng, spread=0.3)  # 120 training crops of 10 other patients
    f_he, g_he = patient_crops(4, 12, rng, spread=0.3)  # 48 held-out crops of 4 patients
    fakes = {"copy": f_he.copy(), "shifted": f_he + 1.5 + rng.normal(0.0, 0.1, f_he.shape),
             "three_patients": f_he[g_he != "p3"]}
    groups_fakes = {"copy": g_he, "shifted": g_he, "three_patients": g_he[g_he != "p3"]}
    table = grouped_fidelity(f_tr, f_he, fakes, g_he, groups_fakes, **GROUPED)
    return table.set_index("model"), (f_tr, f_he, g_he, fakes)


def test_grouped_columns_sizes_and_order(grouped):
    table, _ = grouped
    assert list(table.reset_index().columns) == GROUPED_COLUMNS
    assert list(table.index) == [REFERENCE, "copy", "shifted", "three_patients"]
    assert table.n_eval.tolist() == [48, 48, 48, 36] and table.n_patients.tolist() == [4, 4, 4, 3]


def test_grouped_copy_of_heldout_gets_the_reference_numbers(grouped):
    table, _ = grouped
    pd.testing.assert_series_equal(table.loc[REFERENCE], table.loc["copy"], check_names=False)
    assert table.loc[REFERENCE].notna().all()


def test_grouped_shifted_generator_is_worse_beyond_its_interval(grouped):
    table, _ = grouped
    ref, shifted = table.loc[REFERENCE], table.loc["shifted"]
    assert shifted.fid > 5 * ref.fid and shifted.fid_ci_low > ref.fid_ci_high
    assert shifted.kid_ci_low > ref.kid and shifted.precision < ref.precision


def test_grouped_intervals_contain_their_estimate_and_stay_in_range(grouped):
    table, _ = grouped
    for model, row in table.iterrows():
        for m in GROUPED_METRICS:
            assert interval_contains(row[m], row[f"{m}_ci_low"], row[f"{m}_ci_high"]), (model, m)
        assert row.fid_ci_low >= 0 and row.precision_ci_high <= 1 and row.coverage_ci_high <= 1
        assert row.fid_ci_high > row.fid_ci_low and row.kid_ci_high > row.kid_ci_low, model
    ref = table.loc[REFERENCE]
    assert all(ref[f"{m}_ci_high"] > ref[f"{m}_ci_low"] for m in GROUPED_METRICS)  # no zero-width interval


def test_grouped_interval_by_patient_is_wider_than_by_image():
    # Crops of a patient sit close together: resampling images pretends 48 independent samples,
    # resampling the 6 patients does not, so its interval must be wider.
    rng = np.random.default_rng(1)
    f_tr, _ = patient_crops(12, 10, rng, spread=2.0)
    f_he, g_he = patient_crops(6, 8, rng, spread=2.0)
    row = grouped_fidelity(f_tr, f_he, {}, g_he, **(GROUPED | {"n_boot": 100})).iloc[0]
    by_image = fid_ci(f_tr, f_he, n_boot=100, seed=0)
    assert row.fid == pytest.approx(by_image["fid"])
    assert row.fid_ci_high - row.fid_ci_low > 1.5 * (by_image["ci_high"] - by_image["ci_low"])


def test_grouped_two_patients_give_no_interval(grouped):
    _, (f_tr, f_he, g_he, fakes) = grouped
    two = np.where(np.isin(g_he, ["p0", "p1"]), "a", "b")
    table = grouped_fidelity(f_tr, f_he, {"copy": fakes["copy"]}, two, **GROUPED)
    ci = [c for c in GROUPED_COLUMNS if c.endswith(("_ci_low", "_ci_high"))]
    assert table[ci].isna().all().all() and table[list(GROUPED_METRICS)].notna().all().all()
    assert table.n_patients.tolist() == [2, 2]
    row = table.iloc[0]
    assert format_ci(row.fid, row.fid_ci_low, row.fid_ci_high, n=2, unit="patients").endswith(
        "(n/a: 2 patients; an interval needs at least 3)")


def test_grouped_checks_inputs(grouped):
    _, (f_tr, f_he, g_he, fakes) = grouped
    with pytest.raises(ValueError, match=r"groups_fakes is None, so feats_fakes\['few'\] must be paired"):
        grouped_fidelity(f_tr, f_he, {"few": f_he[:30]}, g_he, **GROUPED)
    with pytest.raises(ValueError, match="groups_heldout has 47 labels but feats_heldout has 48 rows"):
        grouped_fidelity(f_tr, f_he, {}, g_he[:-1], **GROUPED)
    with pytest.raises(ValueError, match=r"groups_fakes\['copy'\] has 30 labels"):
        grouped_fidelity(f_tr, f_he, {"copy": f_he}, g_he, {"copy": g_he[:30]}, **GROUPED)
    with pytest.raises(ValueError, match="groups_fakes has no entry for 'copy'"):
        grouped_fidelity(f_tr, f_he, {"copy": f_he}, g_he, {}, **GROUPED)
    with pytest.raises(ValueError, match="not held-out patients"):
        grouped_fidelity(f_tr, f_he, {"copy": f_he}, g_he, {"copy": np.full(48, "stranger")}, **GROUPED)
    with pytest.raises(ValueError, match="another name"):
        grouped_fidelity(f_tr, f_he, {REFERENCE: f_he}, g_he, **GROUPED)
    with pytest.raises(ValueError, match="feature columns"):
        grouped_fidelity(f_tr, f_he, {"narrow": f_he[:, :4]}, g_he, **GROUPED)
