"""Quality over training: the study's fidelity, diversity, realism and memorisation metrics at every validation.

A convergence curve of one number (the validation KID) says when a generator stopped improving;
it does not say *how* its images changed. Claims such as "longer training gave look-alike images"
need more curves: did the generated images get closer to each other (diversity falls: MS-SSIM
rises, recall and coverage fall), or closer to the training images (memorisation: generated
images nearer to a training image than new real images are)? :class:`TrainingMonitor` is an
``eval_fn`` for :func:`medgan_core.train.trainer.train_gan` that returns, at every validation:

- ``score``: the validation KID of :func:`medgan_core.metrics.fidelity.validation_kid` (held-out
  real vs generated images in the domain encoder's space; lower is better), which early stopping uses;
- per group (``all`` and every class; class columns are named ``metric[class]``) against the real
  *training* features: ``fid``, ``precision``, ``recall``, ``density``, ``coverage`` (k = 5) and
  ``nn_ratio``, the median distance of a generated image to its nearest training image over the
  same median for the held-out real images (about 1 for a generator that does not copy, below 1
  when generated images lie closer to the training set than new real images do);
- ``ms_ssim`` per group: the mean pairwise MS-SSIM of the generated images (higher = more alike);
- with ``c2st_epochs > 0``, ``c2st_auc``: a small CNN trained to tell real training images (twice
  as many as held-out ones, a fixed subsample) from generated ones, scored on the held-out images
  against a fresh generated draw (0.5: cannot tell). A quick, noisy check at every validation; the
  report's C2ST with its interval is :func:`medgan_core.metrics.realism.c2st_study`.

The generated set has the held-out set's class counts (each capped at ``max_per_class``), so every
metric is computed at the sample size of :meth:`TrainingMonitor.reference`, which scores the
held-out real images in the same way: the values a generator indistinguishable from new real
images would reach. Latents are fixed (``seed``), so two validations compare the same latents,
and no global random state is changed (the C2ST's weight seeding runs under ``torch.random.fork_rng``),
so monitoring does not change the training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from medgan_core.data.datasets import to_tensor_images, to_uint8_images
from medgan_core.metrics.diversity import ms_ssim_diversity
from medgan_core.metrics.fid import check_features, fid_from_features
from medgan_core.metrics.kid import kid_from_features
from medgan_core.metrics.memorisation import nearest_distances
from medgan_core.metrics.prdc import prdc
from medgan_core.metrics.realism import c2st_probabilities

__all__ = ["TrainingMonitor", "GROUP_METRICS"]

Split = tuple[np.ndarray, np.ndarray]
GROUP_METRICS = ("fid", "precision", "recall", "density", "coverage", "nn_ratio", "ms_ssim")


def _pick_per_class(y: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``cap`` rows of every class (all rows of a class with fewer)."""
    keep = [np.sort(rng.choice(np.flatnonzero(y == c), min(cap, int((y == c).sum())), replace=False))
            for c in np.unique(y)]
    return np.sort(np.concatenate(keep))


class TrainingMonitor:
    """An ``eval_fn`` returning the validation KID and the study's metrics per group (module docstring).

    Args:
        features: ``images -> (N, d)`` features (the domain encoder's ``features``).
        train: the real training split ``(uint8 images (N, H, W, C), labels (N,))`` the generator learns.
        heldout: the real held-out split (validation), same layout.
        classes: class names in label order (the column suffixes).
        max_per_class: the most held-out (and so generated) images of any class.
        max_train_per_class: the most training images of any class the metrics compare against.
        seed: seed of the latents and every subsample.
        k: neighbours of precision/recall/density/coverage.
        kid_subsets: KID subsets of the score.
        ms_ssim_pairs: image pairs of the MS-SSIM (0: no MS-SSIM columns).
        c2st_epochs: epochs of the C2ST classifier (0: no C2ST column).
        c2st_width: its first-block width.
        device: where the C2ST trains.
    """

    def __init__(self, features: Callable[[Any], np.ndarray], train: Split, heldout: Split,
                 classes: Sequence[str], *, max_per_class: int = 200, max_train_per_class: int = 500,
                 seed: int = 0, k: int = 5, kid_subsets: int = 20, ms_ssim_pairs: int = 100,
                 c2st_epochs: int = 0, c2st_width: int = 8, device: str | torch.device = "cpu") -> None:
        if min(max_per_class, max_train_per_class) <= k:
            raise ValueError(f"max_per_class and max_train_per_class must exceed k = {k} (k-NN metrics), got "
                             f"{max_per_class} and {max_train_per_class}.")
        if c2st_epochs < 0 or ms_ssim_pairs < 0:
            raise ValueError(f"c2st_epochs and ms_ssim_pairs must be >= 0, got {c2st_epochs} and {ms_ssim_pairs}.")
        x_tr, y_tr = (np.asarray(a) for a in train)
        x_h, y_h = (np.asarray(a) for a in heldout)
        if len(x_tr) != len(y_tr) or len(x_h) != len(y_h):
            raise ValueError("train and heldout must be (images, labels) with one label per image.")
        if max(int(y_tr.max()), int(y_h.max())) >= len(classes):
            raise ValueError(f"labels reach {max(int(y_tr.max()), int(y_h.max()))} but {len(classes)} classes were named.")
        self.features, self.classes, self.seed, self.k = features, [str(c) for c in classes], int(seed), int(k)
        self.kid_subsets, self.ms_ssim_pairs, self.max_per_class = int(kid_subsets), int(ms_ssim_pairs), int(max_per_class)
        self.c2st_epochs, self.c2st_width, self.device = int(c2st_epochs), int(c2st_width), device
        tr = _pick_per_class(y_tr, max_train_per_class, np.random.default_rng([seed, 2]))
        he = _pick_per_class(y_h, max_per_class, np.random.default_rng([seed, 1]))
        self.x_tr, self.y_tr, self.x_h, self.y_h = x_tr[tr], y_tr[tr], x_h[he], y_h[he]
        self.f_tr = check_features(features(self.x_tr), "features(training images)", k + 1)
        self.f_h = check_features(features(self.x_h), "features(held-out images)", 4)
        self.d_h = nearest_distances(self.f_h, self.f_tr)[0]  # `(n_heldout,)` held-out -> nearest training image
        c2st_rows = np.random.default_rng([seed, 3]).permutation(len(self.x_tr))[:2 * len(self.x_h)]
        self.x_c2st = self.x_tr[np.sort(c2st_rows)]  # the C2ST's real training side: twice the held-out count

    def _groups(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(suffix, training rows, evaluated rows)`` of ``all`` and every class."""
        out = [("", np.ones(len(self.y_tr), bool), np.ones(len(self.y_h), bool))]
        return out + [(f"[{c}]", self.y_tr == i, self.y_h == i) for i, c in enumerate(self.classes)]

    def metrics(self, images: np.ndarray, fresh: np.ndarray | None = None) -> dict[str, float]:
        """Every column for an evaluated set with the held-out set's class counts (rows in its class order).

        Args:
            images: uint8 `(n_heldout, H, W, C)` evaluated images; row ``i`` has the class of held-out row ``i``.
            fresh: a second, independent draw like ``images`` for the C2ST's test side (``None``: no C2ST).

        Returns:
            ``{"score": KID, "fid": ..., "recall[melanoma]": ..., ...}``.
        """
        f = check_features(self.features(images), "features(evaluated images)", 4)
        size = max(2, min(len(self.f_h), len(f)) // 2)
        out = {"score": kid_from_features(self.f_h, f, n_subsets=self.kid_subsets, subset_size=size, seed=self.seed,
                                          n_boot=0).mean}
        d_f = nearest_distances(f, self.f_tr)[0]
        for suffix, in_tr, in_ev in self._groups():
            if in_ev.sum() <= self.k or in_tr.sum() <= self.k:
                continue
            p = prdc(self.f_tr[in_tr], f[in_ev], k=self.k)
            out |= {f"fid{suffix}": fid_from_features(self.f_tr[in_tr], f[in_ev]),
                    **{f"{m}{suffix}": float(p[m]) for m in ("precision", "recall", "density", "coverage")},
                    f"nn_ratio{suffix}": float(np.median(d_f[in_ev]) / max(np.median(self.d_h[in_ev]), 1e-12))}
            if self.ms_ssim_pairs:
                out[f"ms_ssim{suffix}"] = float(ms_ssim_diversity(images[in_ev], n_pairs=self.ms_ssim_pairs,
                                                                  seed=self.seed)["ms_ssim"])
        if self.c2st_epochs and fresh is not None:
            out["c2st_auc"] = self._c2st(images, fresh)
        return out

    def _c2st(self, fake_train: np.ndarray, fake_test: np.ndarray) -> float:
        """AUC of real-vs-generated: trained on training vs ``fake_train``, scored on held-out vs ``fake_test``."""
        from sklearn.metrics import roc_auc_score  # noqa: PLC0415 - only needed with a C2ST

        side = self.x_tr.shape[1]  # generated images are resized to the real images' side
        with torch.random.fork_rng(devices=[]):
            prob = c2st_probabilities(to_tensor_images(self.x_c2st), to_tensor_images(fake_train, side),
                                      torch.cat([to_tensor_images(self.x_h), to_tensor_images(fake_test, side)]),
                                      width=self.c2st_width, num_epochs=self.c2st_epochs, seed=self.seed,
                                      device=self.device)
        return float(roc_auc_score(np.r_[np.zeros(len(self.x_h)), np.ones(len(fake_test))], prob))

    def score_sampler(self, sample: Callable[[int, int, int], torch.Tensor]) -> dict[str, float]:
        """The columns for a sampler ``sample(cls, n, seed) -> (n, C, S, S)`` in [-1, 1] (e.g. a truncated draw).

        Two draws (``seed`` and ``seed + 1``) with the held-out set's class counts; the second is the
        C2ST's test side.
        """
        draws = []
        for s in (self.seed, self.seed + 1):
            images = None
            for c in np.unique(self.y_h):
                rows = np.flatnonzero(self.y_h == c)
                x = to_uint8_images(sample(int(c), len(rows), s), squeeze_gray=False)  # `(n_c, S, S, C)`
                images = np.empty((len(self.y_h), *x.shape[1:]), np.uint8) if images is None else images
                images[rows] = x
            draws.append(images)
            if not self.c2st_epochs:
                break
        return self.metrics(draws[0], draws[1] if self.c2st_epochs else None)

    def __call__(self, gan: Any) -> dict[str, float]:
        """The columns for ``gan`` (anything with ``sample(cls, n, seed)``)."""
        return self.score_sampler(gan.sample)

    def reference(self) -> dict[str, float]:
        """The held-out real images scored as a generator: what one indistinguishable from new real images reaches.

        ``score`` is 0 here by construction (held-out vs itself), and no C2ST is run.
        """
        return self.metrics(self.x_h)

    @staticmethod
    def checkpoint_table(evals: Mapping[str, pd.DataFrame], classes: Sequence[str], n_points: int = 4) -> pd.DataFrame:
        """The monitor's columns at ``n_points`` validations spread over each run, one row per model, step and class.

        Args:
            evals: ``{model: GanRun.evals}`` of runs validated by a :class:`TrainingMonitor`.
            classes: the class names (the ``metric[class]`` columns).
            n_points: validations shown per model (evenly spaced, the last included).

        Returns:
            Rows indexed by ``(model, step, class)`` (``all`` pools the classes), columns
            ``kid`` (the pooled validation KID, on the ``all`` rows) and :data:`GROUP_METRICS`, plus ``c2st_auc``.
        """
        rows = []
        for model, ev in evals.items():
            if not len(ev):
                continue
            picks = np.unique(np.linspace(0, len(ev) - 1, max(1, n_points)).round().astype(int))
            for _, r in ev.iloc[picks].iterrows():
                for group, suffix in [("all", ""), *[(c, f"[{c}]") for c in classes]]:
                    row = {"model": model, "step": int(r["step"]), "class": group,
                           "kid": r["score"] if group == "all" else np.nan}
                    row |= {m: r.get(f"{m}{suffix}", np.nan) for m in GROUP_METRICS}
                    row["c2st_auc"] = r.get("c2st_auc", np.nan) if group == "all" else np.nan
                    rows.append(row)
        return pd.DataFrame(rows).set_index(["model", "step", "class"])
