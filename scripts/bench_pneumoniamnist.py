"""Hold the utility harness against a published table: the `real` arm on PneumoniaMNIST at 28 px.

    MEDGAN_DATA=../shared/data .venv/bin/python scripts/bench_pneumoniamnist.py   # 3 seeds, all cores, 2-6 min on 2 cores

The harness's `real` arm (``metrics/utility.py``: the small CNN of ``models/classifier.py``,
plain cross-entropy, early stopping on validation balanced accuracy) is trained on the official
PneumoniaMNIST train split, its settings chosen on the official validation split by
``select_classifier_settings`` over a 4-point grid (inside ``run_utility_study(..., grid=...)``),
and scored once on the official test split. The table gives our mean +- sd over the seeds beside
MedMNIST v2's ResNet-18 (28 px): accuracy 0.854, AUC 0.944 (Yang et al. 2023, "MedMNIST v2",
Scientific Data 10:41, the PneumoniaMNIST rows of its benchmark table). Ours is a 3-block CNN
with 7 k (width 8) to 28 k (width 16) weights, not a ResNet-18 (11 M), trained for at most 20
epochs, not 100: an accuracy near 0.85 is the expected ballpark, and a `real` arm far below it
would mean the harness, not the data, limits every utility verdict. A benchmark, not a test: its time depends
on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from medgan_core.data.medmnist import CLASSES, load_pneumoniamnist
from medgan_core.metrics.utility import ClassifierSettings, run_utility_study
from medgan_core.models.classifier import build_classifier
from medgan_core.train.device import select_device, set_threads

PAPER = {"accuracy": 0.854, "macro_auc": 0.944}  # MedMNIST v2, ResNet-18 (28), PneumoniaMNIST test split
# The grid the harness chooses from (one run per point on the validation split, seed = max(seeds) + 1).
BENCH_GRID = (
    ClassifierSettings(width=8, lr=1e-3, epochs=20, patience=5),
    ClassifierSettings(width=8, lr=3e-3, epochs=20, patience=5),
    ClassifierSettings(width=16, lr=1e-3, epochs=20, patience=5),
    ClassifierSettings(width=16, lr=3e-3, epochs=20, patience=5),
)


def git_commit() -> str:
    """The checkout's commit (``"unknown"`` outside git), with ``+dirty`` when files differ from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="classifier seeds (0, 1, ...)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every available core)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $MEDGAN_DATA, then ./data)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    commit = git_commit()  # the code that runs, read before training (others may commit meanwhile)
    threads = set_threads(args.threads)
    device = select_device(args.device)
    data = load_pneumoniamnist(args.data_dir)

    def net(width: int = 16) -> torch.nn.Module:
        return build_classifier("small_cnn", 1, len(CLASSES), width=width, image_size=28)

    res = run_utility_study(net, data["train"], data["val"], data["test"], arms=("real",),
                            seeds=tuple(range(args.seeds)), grid=BENCH_GRID, class_names=list(CLASSES), size=28,
                            device=device, progress=True)
    seconds = time.perf_counter() - t0

    print(f"\nPneumoniaMNIST 28 px, official splits (train {len(data['train'][1])}, val {len(data['val'][1])}, "
          f"test {len(data['test'][1])}); {args.seeds} seeds; {threads} thread(s) on {device}")
    print("\nSettings grid (validation balanced accuracy, one seed):")
    print(res.settings_table[["width", "lr", "epochs", "patience", "val_balanced_accuracy", "epochs_run",
                              "seconds", "chosen"]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    chosen = {k: v for k, v in res.settings.items() if k != "source"}
    print(f"chosen: {chosen}")
    runs = res.table.set_index("seed")
    s = res.summary.set_index("metric")
    print("\n| metric (test) | ours: small CNN, mean ± sd | ours: 95% CI (seeds + test cases) | "
          "MedMNIST v2 ResNet-18 (28) |")
    print("|---|---|---|---|")
    for metric, label in (("accuracy", "accuracy"), ("macro_auc", "AUC"), ("balanced_accuracy", "balanced accuracy")):
        v = runs[metric].to_numpy(dtype=float)
        paper = f"{PAPER[metric]:.3f}" if metric in PAPER else "not reported"
        print(f"| {label} | {v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else float('nan'):.3f} | "
              f"{s.loc[metric, 'ci_low']:.3f} to {s.loc[metric, 'ci_high']:.3f} | {paper} |")
    print(f"\nper seed: " + ", ".join(f"seed {i}: acc {r.accuracy:.3f} auc {r.macro_auc:.3f} "
                                      f"({r.epochs_run} epochs, {r.seconds:.0f} s)" for i, r in runs.iterrows()))
    degenerate = int(res.table.degenerate.astype(bool).sum())
    print(f"degenerate runs: {degenerate} of {len(res.table)}")
    print(f"wall time {seconds:.0f} s; {datetime.date.today().isoformat()}; commit {commit}; "
          f"torch {torch.__version__}; numpy {np.__version__}")


if __name__ == "__main__":
    main()
