"""Domain-classifier score: an Inception-Score analogue computed with our own domain classifier.

The Inception Score (Salimans et al. 2016) is ``exp(E_x KL(p(y|x) || p(y)))`` with ``p(y|x)`` from
Inception-v3 trained on the 1,000 ImageNet classes. It rewards images that the classifier
labels confidently (sharp ``p(y|x)``) and a spread of labels over the whole set (broad ``p(y)``).
ImageNet classes mean nothing for a chest X-ray or a blood cell, so we do not compute it. We
compute the same formula with the class probabilities of the *domain encoder* (a CNN trained by
us on the real training split of the dataset, with the dataset's own k classes). Hence the name
"domain-classifier score", never "Inception Score":

- it lies between 1 and k (the number of the dataset's classes), not up to 1,000;
- it depends on our classifier, so it compares models on one dataset only;
- it says nothing about realism within a class, only about confident, varied class predictions.
  Always read it next to the value for real held-out images.

As in the original, the set is cut into ``n_splits`` consecutive parts; the score is computed on
each part and the mean and standard deviation over parts are returned.
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr

__all__ = ["domain_classifier_score"]


def domain_classifier_score(probs: np.ndarray, n_splits: int = 10,
                            atol: float = 1e-3) -> tuple[float, float]:
    """``exp(E_x KL(p(y|x) || p(y)))`` over ``n_splits`` parts, from the domain classifier's probabilities.

    Args:
        probs: class probabilities `(n, k)` from the domain encoder's ``predict_proba``;
            each row must be non-negative and sum to 1 (softmax output, not logits).
        n_splits: number of consecutive parts (>= 1 and <= n); shuffle ``probs`` first if its
            order is meaningful (e.g. sorted by class).
        atol: tolerance on the row sums.

    Returns:
        ``(mean, std)`` of the score over the parts (std is 0 for one part).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"probs must be `(n, k)` class probabilities with k >= 2, got shape {probs.shape}.")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("probs holds negative, NaN or infinite values: pass softmax probabilities, not logits.")
    sums = probs.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=atol):
        worst = float(sums[np.argmax(np.abs(sums - 1.0))])
        raise ValueError(f"Rows of probs must sum to 1 (one row sums to {worst:.4f}); apply softmax to "
                         "logits first, e.g. scipy.special.softmax(logits, axis=1).")
    if not 1 <= n_splits <= len(probs):
        raise ValueError(f"n_splits must be between 1 and the number of samples ({len(probs)}), got {n_splits}.")

    scores = []
    for part in np.array_split(probs, n_splits):
        p_y = part.mean(axis=0, keepdims=True)  # `(1, k)` marginal over the part
        kl = rel_entr(part, p_y).sum(axis=1)  # `(n_part,)`, 0 * log 0 = 0
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))
