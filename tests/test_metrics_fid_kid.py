"""FID against closed forms and its interval (which contains its estimate), KID against a double loop
and its bootstrap interval over images (which has a width when the subsets are whole sets), the
domain-classifier score, and the optional Inception FID (skip path, bad files, call convention)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan_core.metrics.domain_score import domain_classifier_score
from medgan_core.metrics.fid import _gaussian, fid_ci, fid_from_features, frechet_distance
from medgan_core.metrics.inception import SKIP_NOTE, inception_fid, load_inception
from medgan_core.metrics.kid import _mmd2_of_counts, kid_from_features, mmd2_unbiased, polynomial_kernel
from medgan_core.metrics.stats import interval_contains


# ---- FID ------------------------------------------------------------------------------------

# (mu1, var1, mu2, var2) with diagonal covariances:
# FID = ||mu1 - mu2||^2 + sum(s1 + s2 - 2 sqrt(s1 s2))
DIAG_CASES = [
    ([0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0]),  # identical: 0
    ([0.0, 0.0], [1.0, 1.0], [3.0, 4.0], [1.0, 1.0]),  # shift only: 25
    ([0.0], [1.0], [0.0], [4.0]),  # scale only: 1 + 4 - 4 = 1
    ([1.0, -2.0, 0.5], [0.5, 2.0, 9.0], [0.0, 0.0, 0.0], [2.0, 0.5, 1.0]),
]


@pytest.mark.parametrize("mu1, var1, mu2, var2", DIAG_CASES)
def test_frechet_distance_diagonal_closed_form(mu1, var1, mu2, var2):
    mu1, var1, mu2, var2 = map(np.asarray, (mu1, var1, mu2, var2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_hand_values():
    assert frechet_distance([0.0, 0.0], np.eye(2), [3.0, 4.0], np.eye(2)) == pytest.approx(25.0)
    assert frechet_distance([0.0], [[1.0]], [0.0], [[4.0]]) == pytest.approx(1.0)


def test_frechet_distance_non_diagonal_2x2_closed_form():
    # For 2x2 matrices with a product M of positive eigenvalues l1, l2:
    # Tr sqrt(M) = sqrt(l1) + sqrt(l2) = sqrt(Tr M + 2 sqrt(det M)). The covariances do not commute.
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    mu1, mu2 = np.array([0.5, -1.0]), np.array([0.0, 1.0])
    m = s1 @ s2
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_commuting_rotated_covariances():
    rng = np.random.default_rng(0)
    # Same eigenvectors Q, eigenvalues a and b: Tr sqrt(s1 s2) = sum sqrt(a b).
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = np.array([1.0, 2.0, 3.0, 0.5, 4.0]), np.array([2.0, 0.1, 3.0, 5.0, 1.0])
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    expected = np.sum(a + b - 2 * np.sqrt(a * b))
    assert frechet_distance(np.zeros(5), s1, np.zeros(5), s2) == pytest.approx(expected, rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_shift_is_seen():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)
    # a shift by 2 in every one of 8 dims adds exactly 8 * 4 = 32 (covariances identical)
    assert fid_from_features(x, x + 2.0) == pytest.approx(32.0, rel=1e-9)


def test_fid_singular_covariance_fewer_rows_than_dims():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 20)), rng.normal(size=(6, 20))
    fid = fid_from_features(x, y)
    assert np.isfinite(fid) and fid > 0


@pytest.mark.parametrize("a, b, message", [
    (np.zeros((10, 3)), np.zeros((10, 4)), "feature columns"),
    (np.zeros(10), np.zeros((10, 1)), "2-D array"),
    (np.zeros((1, 3)), np.zeros((10, 3)), "at least 2"),
    (np.full((10, 3), np.nan), np.zeros((10, 3)), "NaN"),
])
def test_fid_input_errors(a, b, message):
    with pytest.raises(ValueError, match=message):
        fid_from_features(a, b)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="covariance"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))


def test_fid_ci_brackets_the_true_distance_and_is_seeded():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(300, 4)) + 1.0  # true FID = 4
    res = fid_ci(x, y, n_boot=50, seed=1)
    assert res["ci_low"] <= 4.0 <= res["ci_high"]
    assert res == fid_ci(x, y, n_boot=50, seed=1)


def _bootstrap_fids(a, b, n_boot, seed, form="eig"):
    """The resample FIDs as the old ``fid_ci`` and ``experiments/bagan_study.fid_bootstrap_ci`` drew them."""
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    for i in range(n_boot):
        x, y = a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))]
        if form == "sqrtm":
            boots[i] = frechet_distance(*_gaussian(x), *_gaussian(y))
        else:
            c_a, c_b = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
            tr_root = np.sqrt(np.clip(np.linalg.eigvals(c_a @ c_b).real, 0.0, None)).sum()
            diff = x.mean(0) - y.mean(0)
            boots[i] = max(float(diff @ diff + np.trace(c_a) + np.trace(c_b) - 2.0 * tr_root), 0.0)
    return boots


def _old_basic_interval(fid, boots, level=0.95):
    """The old ``fid_ci`` interval: basic bootstrap, both ends clipped at 0."""
    q_low, q_high = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return max(2 * fid - q_high, 0.0), max(2 * fid - q_low, 0.0)


@pytest.mark.parametrize("n_a, n_b, d, shift", [(60, 40, 5, 0.5), (30, 30, 3, 0.0), (25, 20, 40, 0.3)])
def test_fid_ci_is_the_shifted_percentile_interval_of_the_same_resamples(n_a, n_b, d, shift):
    rng = np.random.default_rng(d)
    a, b = rng.normal(size=(n_a, d)), rng.normal(size=(n_b, d)) + shift
    res = fid_ci(a, b, n_boot=20, seed=3)
    boots = _bootstrap_fids(a, b, n_boot=20, seed=3)
    q_low, q_high = np.quantile(boots, [0.025, 0.975])
    shift_to_fid = res["fid"] - np.median(boots)
    assert res["ci_low"] == pytest.approx(max(q_low + shift_to_fid, 0.0), rel=1e-12, abs=1e-12)
    assert res["ci_high"] == pytest.approx(q_high + shift_to_fid, rel=1e-12)
    assert res["note"] == ("lower end clipped at 0 (FID cannot be negative)" if q_low + shift_to_fid < 0 else "")
    assert interval_contains(res["fid"], res["ci_low"], res["ci_high"])
    if n_a > d and n_b > d:  # with full-rank covariances sqrtm is exact, and the two forms agree
        assert boots == pytest.approx(_bootstrap_fids(a, b, n_boot=20, seed=3, form="sqrtm"), rel=1e-6, abs=1e-9)


def test_fid_ci_contains_a_small_fid_that_the_old_basic_interval_excluded():
    # Two tiny, nearly identical sets: FID 0.003, but every resample (repeated images, pairs broken)
    # lies far above it, so the reflected basic interval was [0, 0] after clipping.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 3))
    b = a + 0.05 * rng.normal(size=(12, 3))
    res = fid_ci(a, b, n_boot=50, seed=0)
    old = _old_basic_interval(res["fid"], _bootstrap_fids(a, b, n_boot=50, seed=0))
    assert 0.0 < res["fid"] < 0.01 and not interval_contains(res["fid"], *old)
    assert interval_contains(res["fid"], res["ci_low"], res["ci_high"]) and res["ci_high"] > res["fid"]
    assert res["ci_low"] == 0.0 and "clipped at 0" in res["note"] and "shifted" in res["interval_method"]


def test_fid_ci_with_fewer_images_than_dimensions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 64)), rng.normal(size=(12, 64)) + 1.0
    res = fid_ci(a, b, n_boot=30, seed=0)
    assert np.isfinite([res["ci_low"], res["ci_high"]]).all() and 0.0 <= res["ci_low"] <= res["ci_high"]
    assert interval_contains(res["fid"], res["ci_low"], res["ci_high"])


# ---- KID ------------------------------------------------------------------------------------

def kid_double_loop(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written with plain loops."""
    m, d = x.shape
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_double_loop_on_a_tiny_set():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)) + 0.5
    expected = kid_double_loop(x, y)
    assert mmd2_unbiased(x, y) == pytest.approx(expected, rel=1e-12)
    # one subset of the whole set is a permutation of it: the same value
    res = kid_from_features(x, y, n_subsets=3, subset_size=100, seed=0)
    assert res.subset_size == 7
    assert res.mean == pytest.approx(expected, rel=1e-12)
    assert res.std == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n, subset_size", [(7, 100), (20, 20), (40, 1000)])
def test_kid_interval_has_width_when_the_subsets_are_the_whole_sets(n, subset_size):
    # Every subset is the whole set, so the subsets' spread is 0 (the old interval was [mean, mean]);
    # the bootstrap over images still sees how much KID varies with the images drawn.
    rng = np.random.default_rng(n)
    x, y = rng.normal(size=(n, 4)), rng.normal(size=(n, 4)) + 0.3
    res = kid_from_features(x, y, n_subsets=5, subset_size=subset_size, seed=1, n_boot=100)
    assert res.subset_size == n and res.std == pytest.approx(0.0, abs=1e-9)
    assert res.ci_high - res.ci_low > 0.01 and interval_contains(res.mean, res.ci_low, res.ci_high)
    assert res.n_boot == 100 and "bootstrap over images" in res.interval_method


def kid_of_resample_loop(x, y, idx_x, idx_y):
    """Unbiased MMD^2 of x[idx_x] and y[idx_y], leaving out pairs of copies of one original image."""
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731

    def within(z, idx):
        terms = [k(z[i], z[j]) for i in idx for j in idx if i != j]  # i == j: the same original image
        return sum(terms) / len(terms)

    xy = sum(k(x[i], y[j]) for i in idx_x for j in idx_y) / (len(idx_x) * len(idx_y))
    return within(x, idx_x) + within(y, idx_y) - 2 * xy


def test_kid_bootstrap_leaves_out_pairs_of_copies_of_one_image():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(5, 3)) + 0.4
    idx_x, idx_y = np.array([0, 0, 2, 3, 3, 3]), np.array([1, 1, 4, 4, 0])  # resamples with repeats
    w_x = np.bincount(idx_x, minlength=6)[None].astype(float)
    w_y = np.bincount(idx_y, minlength=5)[None].astype(float)
    k = polynomial_kernel
    got = _mmd2_of_counts(k(x, x), k(y, y), k(x, y), w_x, w_y)
    assert got[0] == pytest.approx(kid_of_resample_loop(x, y, idx_x, idx_y), rel=1e-12)
    ones_x, ones_y = np.ones((1, 6)), np.ones((1, 6))  # no repeats: the unbiased estimator itself
    y6 = np.r_[y, y[:1] + 0.1]
    assert _mmd2_of_counts(k(x, x), k(y6, y6), k(x, y6), ones_x, ones_y)[0] == pytest.approx(mmd2_unbiased(x, y6))


def test_kid_is_seeded_and_separates_shifted_sets():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, 5)), rng.normal(size=(120, 5))
    same = kid_from_features(x, y, n_subsets=20, subset_size=50, seed=3)
    shifted = kid_from_features(x, y + 1.0, n_subsets=20, subset_size=50, seed=3)
    assert same == kid_from_features(x, y, n_subsets=20, subset_size=50, seed=3)
    assert abs(same.mean) < 0.05 < shifted.ci_low
    assert set(same.as_dict()) == {"mean", "std", "ci_low", "ci_high", "n_subsets", "subset_size", "n_boot",
                                   "interval_method"}
    assert interval_contains(same.mean, same.ci_low, same.ci_high)
    assert interval_contains(shifted.mean, shifted.ci_low, shifted.ci_high)


def test_kid_mean_equals_the_old_subset_mean_and_n_boot_zero_skips_the_interval():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(80, 4)), rng.normal(size=(70, 4)) + 0.3
    res = kid_from_features(x, y, n_subsets=25, subset_size=30, seed=9)
    draw = np.random.default_rng(9)  # the subsets, drawn as kid_from_features draws them
    kids = [mmd2_unbiased(x[draw.choice(80, 30, replace=False)], y[draw.choice(70, 30, replace=False)])
            for _ in range(25)]
    assert res.mean == float(np.mean(kids)) and res.std == float(np.std(kids, ddof=1))  # bit for bit
    quick = kid_from_features(x, y, n_subsets=25, subset_size=30, seed=9, n_boot=0)
    assert quick.mean == res.mean and np.isnan(quick.ci_low) and np.isnan(quick.ci_high)
    assert quick.interval_method.startswith("none")


def test_kid_input_errors():
    with pytest.raises(ValueError, match="subset_size"):
        kid_from_features(np.zeros((5, 2)), np.zeros((5, 2)), subset_size=1)
    with pytest.raises(ValueError, match="feature columns"):
        kid_from_features(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="n_boot must be 0"):
        kid_from_features(np.zeros((5, 2)), np.zeros((5, 2)), n_boot=1)


# ---- domain-classifier score ----------------------------------------------------------------

def test_domain_classifier_score_extremes():
    k = 4
    confident_varied = np.eye(k)[np.arange(48) % k]  # one-hot, each part of 12 balanced: score = k
    assert domain_classifier_score(confident_varied, n_splits=4) == pytest.approx((4.0, 0.0))
    # halves of 20 rows: 5/5/5/5 and 10/10/0/0 one-hot counts -> scores 4 and 2, mean 3, std 1
    two_parts = np.eye(k)[np.r_[np.arange(20) % k, np.arange(20) % 2]]
    assert domain_classifier_score(two_parts, n_splits=2) == pytest.approx((3.0, 1.0))
    uniform = np.full((40, k), 1.0 / k)  # no confidence: score = 1
    assert domain_classifier_score(uniform, n_splits=2) == pytest.approx((1.0, 0.0))
    one_class = np.eye(k)[np.zeros(40, dtype=int)]  # confident but collapsed: score = 1
    assert domain_classifier_score(one_class, n_splits=1)[0] == pytest.approx(1.0)


def test_domain_classifier_score_rejects_logits():
    with pytest.raises(ValueError, match="softmax"):
        domain_classifier_score(np.array([[2.0, -1.0], [0.5, 0.5]]), n_splits=1)


# ---- Inception FID (optional file) -----------------------------------------------------------

IMAGES = np.zeros((2, 16, 16), dtype=np.uint8)


def test_inception_fid_skips_without_weights(tmp_path):
    assert inception_fid(IMAGES, IMAGES, None) == (None, SKIP_NOTE)
    missing = tmp_path / "inception-2015-12-05.pt"
    fid, note = inception_fid(IMAGES, IMAGES, missing)
    assert fid is None and str(missing) in note and "inception-2015-12-05.pt" in note
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05.pt"):
        inception_fid(IMAGES, IMAGES, missing, required=True)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_inception_fid_rejects_invalid_files(tmp_path):
    garbage = tmp_path / "weights.pt"
    garbage.write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match="weights.pt is not a TorchScript file"):
        inception_fid(IMAGES, IMAGES, garbage)

    class NoFeatures(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    wrong = tmp_path / "wrong.pt"
    torch.jit.script(NoFeatures()).save(str(wrong))
    with pytest.raises(ValueError, match="return_features"):
        load_inception(wrong)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_inception_fid_runs_a_torchscript_network_with_the_expected_call(tmp_path):
    class MeanColour(torch.nn.Module):  # stands in for inception-2015-12-05.pt: uint8 in, features out
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            assert x.dtype == torch.uint8 and x.shape[1] == 3
            return x.float().mean(dim=(2, 3))  # `(N, 3)`

    path = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(MeanColour()).save(str(path))
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (6, 16, 16), dtype=np.uint8)  # grayscale: repeated to 3 channels
    fid, note = inception_fid(a, a, path, batch_size=4)
    assert fid == pytest.approx(0.0, abs=1e-8) and "inception-2015-12-05.pt" in note
    fid_shift, _ = inception_fid(a, a // 2, path)
    assert fid_shift > 100.0
