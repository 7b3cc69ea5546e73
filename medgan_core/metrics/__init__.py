"""Metrics of generated images, one concept per module; every function takes plain arrays.

Feature spaces
    ``encoder``       the domain encoder (a CNN trained on the real training split) and its features.
    ``inception``     optional Inception-v3 FID from a user-supplied TorchScript file (nothing downloaded).

Fidelity (features `(n, d)` in, numbers out)
    ``fid``           Frechet distance, FID and its basic-bootstrap interval (``fid_ci``).
    ``kid``           KID, unbiased MMD^2 over random subsets, with the subsets' percentile interval.
    ``prdc``          improved precision/recall and density/coverage (k nearest neighbours).
    ``fidelity``      the per-class study table ``fidelity_study`` (one rule for the reference) and its row
                      ``fidelity_row``, beside the real-vs-real reference (``REFERENCE``), with
                      ``rank_generators`` and ``fid_ratios``; ``grouped_fidelity``: the same metrics with
                      intervals that resample patients.
    ``domain_score``  the Inception-Score formula on the domain encoder's class probabilities.

Images
    ``diversity``     mean pairwise MS-SSIM within a set (scales for small images), paired SSIM/PSNR.
    ``memorisation``  nearest-training-image distances against the held-out baseline (intervals by patient).
    ``sequence``      slice sequences: background error outside a region, inter-slice continuity.
    ``control``       feature control of a conditional generator via a rating regressor: the effect in
                      rating points beside the regressor's ceiling, and the verdict.

Judges and uses
    ``turing``        classifier two-sample test, the classroom visual Turing test and its giveaway check.
    ``utility``       the classifier-utility harness (arms x seeds, paired test, verdict) and the
                      induced-imbalance protocol.

Statistics
    ``stats``         every interval and test (t, bootstrap, cluster bootstrap, basic bootstrap,
                      percentile, paired t and Wilcoxon) and ``format_ci`` for reports.

Modules are imported explicitly (``from medgan_core.metrics.fid import fid_ci``); this package
imports nothing itself.
"""
