"""The write-up modules: the write-ups' numbers are placed where they belong and the sentences follow ours."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from medgan_core.experiments import bagan_blood_cells as bagan_writeup
from medgan_core.experiments import sqaggan_lung_nodules as sqaggan_writeup
from medgan_core.metrics.fidelity import REFERENCE


def _fid_frame(ratio: float = 4.0) -> pd.DataFrame:
    rows = []
    for cls in ("all", "RBC", "WBC"):
        rows.append({"model": REFERENCE, "class": cls, "fid": 1.0, "fid_ci_low": 0.5, "fid_ci_high": 1.5})
        rows.append({"model": "dcgan", "class": cls, "fid": ratio, "fid_ci_low": ratio - 1, "fid_ci_high": ratio + 1})
        rows.append({"model": "bagan", "class": cls, "fid": np.nan if cls == "WBC" else 2.0, "fid_ci_low": 1.0,
                     "fid_ci_high": 3.0})
    return pd.DataFrame(rows)


def test_writeup_table_puts_the_students_numbers_beside_ours():
    table = bagan_writeup.writeup_table(_fid_frame(), ["dcgan", "bagan"])
    assert list(table.index) == ["all types", "RBC", "WBC"]
    assert table.loc["all types", "DCGAN (per class): write-up"] == "0.835"
    assert table.loc["all types", f"{REFERENCE}: write-up"] == "0.004"
    assert table.loc["RBC", "DCGAN (per class): write-up"] == "–"  # the write-up gave no per-type value here
    assert table.loc["RBC", "DCGAN (per class): ours"] == "4.000 [3.000, 5.000]"
    assert table.loc["WBC", "BAGAN: ours"] == "n/a"


def _curves() -> pd.DataFrame:
    rows = []
    for frac, n in ((1.0, 20), (0.25, 5)):
        for arm, mean, lo, hi in (("real", 0.2, 0.1, 0.3), ("real+oversample", 0.4, 0.3, 0.5), ("real+gan[dcgan]", 0.9, 0.8, 1.0)):
            rows.append({"fraction": frac, "n_minority": n, "arm": arm, "metric": "minority_recall", "mean": mean,
                         "ci_low": lo, "ci_high": hi, "n_seeds": 3})
    return pd.DataFrame(rows)


def test_imbalance_sentence_picks_the_smallest_fraction_and_best_arms():
    sentence = bagan_writeup.imbalance_sentence(_curves(), "Platelets")
    assert sentence.startswith("With 25% of the Platelets kept (5 images)")
    assert "0.90 (95% CI 0.80 to 1.00) with real+gan[dcgan] against 0.40" in sentence
    assert "(real+oversample); the intervals do not overlap." in sentence
    assert bagan_writeup.imbalance_sentence(_curves().query("arm == 'real'"), "Platelets") == ""


def test_study_verdict_quotes_the_ratios_and_each_tasks_verdict():
    utility = {"Task A": SimpleNamespace(verdict="Adding GAN images helped.")}
    text = bagan_writeup.study_verdict(_fid_frame(ratio=3.0), "dcgan", utility, _curves(), "Platelets")
    assert "DCGAN (per class), whose FID was RBC 3.0x, WBC 3.0x the real-vs-real reference" in text
    assert "Task A: Adding GAN images helped." in text and "With 25% of the Platelets" in text
    assert "With 25%" not in bagan_writeup.study_verdict(_fid_frame(), "dcgan", utility, None, "Platelets")


def test_ranking_sentence_names_the_generators_in_order():
    text = bagan_writeup.ranking_sentence(["bagan", "dcgan"], 1)
    assert "**BAGAN, DCGAN (per class)**" in text and "uses the first 1" in text


EST = {label: {"parameters": 1000, "training_memory_mb": mb}
       for (label, _, _), mb in zip(sqaggan_writeup.MEMORY_SETTINGS, (800.0, 500.0, 300.0, 200.0))}


@pytest.mark.parametrize("lo, hi, word", [(0.2, 0.9, "rose with"), (-0.9, -0.1, "fell with"),
                                          (-0.2, 0.5, "did not clearly follow")])
def test_sqaggan_verdict_direction_follows_the_interval(lo, hi, word):
    text = sqaggan_writeup.verdict(3, {"rho": 0.3, "ci": (lo, hi), "mae": 1.5}, 0.4, 24.0, 0.9, 0.8, 0.5, 1.5, EST)
    assert f"injected nodules {word} the requested one" in text
    assert "(over-smoothed)" in text and "(flickering)" in text
    assert "800 MB in fp32 and 200 MB with bf16 + checkpointing" in text


def test_sqaggan_tables_tag_who_produced_each_number():
    r = {"f1": 0.8, "f1_ci": (0.7, 0.9), "accuracy": 0.75, "auc": 0.85, "n": 40}
    rows = sqaggan_writeup.turing_rows({"sqaggan": {"injection": r}})
    assert rows.loc[("sqaggan (injection)", "CNN classifier (ours)"), "F1"] == "0.800 [0.700, 0.900]"
    assert rows.loc[("SQ-AGGAN", "2 radiologists (SQ-AGGAN paper, quoted)"), "F1"] == "0.5585"
    cpu = {"parameters": 12345, "peak_memory_mb": 100.0, "method": "measured", "seconds_per_epoch": 9.4}
    setting = dict(batch=16, image_size=32, threads=2, gpu_batch=32, gpu_image_size=64, probe_batch=1)
    table = sqaggan_writeup.cost_table(cpu, {"training_memory_mb": 150.0}, EST, setting)
    assert table.loc["SQ-AGGAN paper (quoted in the write-up)", "training memory (MB)"] == 32_155
    assert table.loc["ours, cpu profile", "parameters"] == "12,345"
    assert table.loc["ours, write-up scale, fp32", "training memory (MB)"] == 800
    assert "over-counts" in sqaggan_writeup.estimator_check(150.0, 100.0)
    assert "under-counts" in sqaggan_writeup.estimator_check(50.0, 100.0)
    closing = sqaggan_writeup.closing_table({"reconstruction": (0.9, (0.8, 1.0)), "injection": (0.7, (0.6, 0.8))},
                                            {"rho": 0.3, "ci": (0.1, 0.5), "mae": 1.2}, {"psnr": 24.6, "l1": 0.1},
                                            (0.4, 1.4), 36_000_000, 64, EST, "30 x 9 s")
    assert closing.loc["parameters", "write-up"] == "62,406,016"
    assert closing.loc["malignancy control", "ours (this run)"].startswith("within-background Spearman 0.30 [0.10, 0.50]")
