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


WRITEUP_NUMBERS = (0.004, 0.835, 0.039, 0.038, 0.448, 3.191, 1.358, 0.022, 0.098, 0.013)


def test_writeup_layout_table_holds_every_transcribed_number_in_its_place():
    table = bagan_writeup.writeup_layout_table()
    assert list(table.index) == ["all types", "type 1", "type 2", "type 3"]
    cells = [float(v) for v in table.to_numpy().ravel() if v != "–"]
    assert sorted(cells) == sorted(WRITEUP_NUMBERS)  # every number, each once, nothing else
    assert table.loc["all types", "real train-vs-val"] == "0.004" and table.loc["all types", "DCGAN"] == "0.835"
    assert table.loc["all types", "BAGAN"] == "0.038"
    uncond = [c for c in table.columns if table.loc["all types", c] == "0.039"]
    assert uncond == ["WGAN-GP (unconditional; write-up only)"]
    assert not any("cond." in c or "conditional" in c.replace("unconditional", "") for c in table.columns)
    gen = "generated (write-up's per-type table)"
    assert [table.loc[f"type {t}", gen] for t in (1, 2, 3)] == ["0.448", "3.191", "1.358"]
    assert [table.loc[f"type {t}", "real train-vs-val"] for t in (1, 2, 3)] == ["0.022", "0.098", "0.013"]
    assert table.loc["all types", gen] == "–" and table.loc["type 1", "DCGAN"] == "–"
    assert "lower is better" in table.columns.name
    assert table.attrs["caption"] == bagan_writeup.WRITEUP_LAYOUT_WHO
    assert "student's own runs" in bagan_writeup.WRITEUP_LAYOUT_WHO and "types 0-3" in bagan_writeup.WRITEUP_LAYOUT_WHO
    assert "not on BCCD" in bagan_writeup.WRITEUP_DATA and "course exam" in bagan_writeup.WRITEUP_DATA


def test_writeup_table_puts_the_students_numbers_beside_ours_on_the_all_types_row_only():
    fid = _fid_frame()
    fid = pd.concat([fid, fid[fid.model == "dcgan"].assign(model="cwgan_gp")], ignore_index=True)
    table = bagan_writeup.writeup_table(fid, ["dcgan", "cwgan_gp", "bagan"])
    assert list(table.index) == ["all types", "RBC", "WBC"]
    wu = ": write-up (exam RBC set)"
    assert table.loc["all types", f"DCGAN{wu}"] == "0.835"
    assert table.loc["all types", f"real train-vs-val{wu}"] == "0.004"
    assert table.loc["all types", f"BAGAN{wu}"] == "0.038"
    assert table.loc["all types", f"WGAN-GP (unconditional; write-up only){wu}"] == "0.039"
    assert not any(c.startswith("cond. WGAN-GP") and "write-up" in c for c in table.columns)
    assert (table.loc["all types"] == "0.039").sum() == 1
    cols = list(table.columns)  # the unconditional WGAN-GP sits beside our conditional one, in its own column
    assert cols.index(f"WGAN-GP (unconditional; write-up only){wu}") == cols.index("cond. WGAN-GP: ours (BCCD)") + 1
    for cls in ("RBC", "WBC"):  # our classes are not the write-up's types: none of its numbers there
        assert all(table.loc[cls, c] == "–" for c in cols if "write-up" in c)
    assert table.loc["RBC", "DCGAN (per class): ours (BCCD)"] == "4.000 (3.000 to 5.000)"
    assert table.loc["WBC", "BAGAN: ours (BCCD)"] == "n/a"
    assert table.columns.name.startswith("FID, lower is better")
    assert "not on BCCD" in table.attrs["caption"]
    only_bagan = bagan_writeup.writeup_table(_fid_frame(), ["bagan"])  # the write-up's other columns still shown
    assert only_bagan.loc["all types", f"DCGAN{wu}"] == "0.835"


def _floor_row(passed, precision=0.81, recall=0.42, auc=0.71, reason=None):
    reason = reason or ("precision 0.81 >= 0.50; recall 0.42 >= 0.25" if passed
                        else f"recall {recall:.2f} < 0.25; precision {precision:.2f} >= 0.50")
    return {"passed": passed, "reason": reason, "precision": precision, "recall": recall, "c2st_auc": auc}


def test_bagan_finding_sentence_sets_the_writeup_against_our_floor_numbers():
    text = bagan_writeup.bagan_finding_sentence({"bagan": _floor_row(True), "bagan_gp": _floor_row(False, 0.6, 0.1)},
                                                image_size=32)
    assert "Fashion-MNIST" in text and "not its cells" in text
    assert "on BCCD cells at 32 px, BAGAN passed the quality floor (precision 0.81, recall 0.42; C2ST AUC 0.71" in text
    assert "0.5 means a classifier cannot tell generated from real cells" in text
    assert "BAGAN-GP fell below the quality floor (recall 0.10 < 0.25; precision 0.60 >= 0.50" in text
    failed = bagan_writeup.bagan_finding_sentence({"bagan": _floor_row(False, 0.3, 0.05, np.nan)})
    assert "BAGAN fell below the quality floor (recall 0.05 < 0.25" in failed and "C2ST AUC not evaluated" in failed
    assert "BAGAN-GP was not evaluated" in failed
    assert "BAGAN was not evaluated" in bagan_writeup.bagan_finding_sentence({"bagan": {"passed": np.nan}})


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
    assert "was 0.90 (0.80 to 1.00) with real+gan[dcgan] (intervals do not overlap); against 0.40 (0.30 to 0.50)" in sentence
    assert sentence.endswith("with the best non-GAN method (real+oversample).")
    two = pd.concat([_curves(), _curves().query("arm == 'real+gan[dcgan]'").assign(arm="real+gan[bagan]", mean=0.45,
                                                                                     ci_low=0.35, ci_high=0.55)])
    both = bagan_writeup.imbalance_sentence(two, "Platelets")
    assert ("0.90 (0.80 to 1.00) with real+gan[dcgan] (intervals do not overlap); "
            "0.45 (0.35 to 0.55) with real+gan[bagan] (intervals overlap); against 0.40") in both
    assert bagan_writeup.imbalance_sentence(_curves().query("arm == 'real'"), "Platelets") == ""


def test_study_verdict_quotes_the_ratios_and_each_tasks_verdict():
    utility = {"Task A": SimpleNamespace(verdict="Adding GAN images helped.")}
    text = bagan_writeup.study_verdict(_fid_frame(ratio=3.0), "dcgan", utility, _curves(), "Platelets")
    assert "DCGAN (per class), whose FID was RBC 3.0x, WBC 3.0x the real-vs-real reference" in text
    assert "Task A: Adding GAN images helped." in text and "With 25% of the Platelets" in text
    assert "With 25%" not in bagan_writeup.study_verdict(_fid_frame(), "dcgan", utility, None, "Platelets")


def test_study_verdict_withholds_the_best_generator_sentence_below_the_floor():
    utility = {"Task A": SimpleNamespace(verdict="Adding GAN images helped.")}
    args = (_fid_frame(ratio=3.0), "dcgan", utility, None, "Platelets")
    failing = bagan_writeup.study_verdict(*args, floor={"dcgan": _floor_row(False, 0.52, 0.03)})
    assert failing.startswith("Withheld: DCGAN (per class) is below the quality floor (recall 0.03 < 0.25; "
                              "precision 0.52 >= 0.50)")
    assert "whose FID was" not in failing and "Task A: Adding GAN images helped." in failing
    passing = bagan_writeup.study_verdict(*args, floor={"dcgan": _floor_row(True)})
    assert "Withheld" not in passing and "whose FID was RBC 3.0x" in passing
    assert passing == bagan_writeup.study_verdict(*args)
    with pytest.raises(ValueError, match="no row for 'dcgan'"):
        bagan_writeup.study_verdict(*args, floor={"bagan": _floor_row(True)})


def test_ranking_sentence_names_the_generators_in_order():
    text = bagan_writeup.ranking_sentence(["bagan", "dcgan"], 1)
    assert "**BAGAN, DCGAN (per class)**" in text and "Each gets task-A utility arms" in text
    assert text.endswith("the first 1 also task B.") and bagan_writeup.ranking_sentence(["dcgan"], 3).endswith("first 1 also task B.")


EST = {label: {"parameters": 1000, "training_memory_mb": mb}
       for (label, _, _), mb in zip(sqaggan_writeup.MEMORY_SETTINGS, (800.0, 500.0, 300.0, 200.0))}


@pytest.mark.parametrize("lo, hi, word", [(0.2, 0.9, "rose with"), (-0.9, -0.1, "fell with"),
                                          (-0.2, 0.5, "did not clearly follow")])
def test_sqaggan_verdict_direction_follows_the_interval(lo, hi, word):
    text = sqaggan_writeup.verdict(3, {"rho": 0.3, "ci": (lo, hi), "mae": 1.5}, 0.4, 24.0, 0.9, 0.8, 0.5, 1.5, EST)
    assert f"injected nodules {word} the requested one" in text
    assert "(over-smoothed)" in text and "(flickering)" in text
    assert "800 MB in fp32 and 200 MB with bf16 + checkpointing" in text


def test_sqaggan_verdict_speaks_in_auc_when_given_and_quotes_the_papers_two_numbers():
    args = (3, {"rho": 0.3, "ci": (0.2, 0.9), "mae": 1.5}, 0.4, 24.0, 0.9, 0.8, 0.5, 1.5, EST)
    old = sqaggan_writeup.verdict(*args)
    assert "F1 0.90 (reconstruction) and F1 0.80 (injection), against" in old and "AUC" not in old
    assert "0.5086 (reconstruction) and 0.5585 (injection) in the SQ-AGGAN paper quoted by the write-up" in old
    assert "fooled more often" in old and "0.667" in old
    new = sqaggan_writeup.verdict(*args, auc_rec=0.97, auc_inj=0.61)
    assert "AUC 0.97 (reconstruction; F1 0.90) and AUC 0.61 (injection; F1 0.80)" in new
    assert "AUC 0.5 = cannot tell them apart" in new
    assert "AUC" not in sqaggan_writeup.verdict(*args, auc_rec=float("nan"))


def test_sqaggan_verdict_withholds_the_comparison_with_an_ablation_below_the_floor():
    args = (3, {"rho": 0.3, "ci": (0.2, 0.9), "mae": 1.5}, 0.4, 24.0, 0.9, 0.8, 0.57, None, EST)
    text = sqaggan_writeup.verdict(*args, none_withheld="nodule-region L1 0.598 >= 1 x 0.407 (erased input)")
    assert "0.57 times as much as real neighbouring slices with the Bi-ConvLSTM (over-smoothed)" in text
    assert ("the comparison without it is withheld: that model is below the quality floor (nodule-region L1 0.598 "
            ">= 1 x 0.407 (erased input))") in text and "flickering" not in text
    closing = sqaggan_writeup.closing_table({"reconstruction": (0.9, (0.8, 1.0)), "injection": (0.7, (0.6, 0.8))},
                                            {"rho": 0.3, "ci": (0.1, 0.5), "mae": 1.2}, {"psnr": 24.6, "l1": 0.1},
                                            (0.57, None), 36_000_000, 64, EST, "30 x 9 s")
    row = closing.loc["Bi-ConvLSTM vs none (slice-to-slice change / real)", "ours (this run)"]
    assert row == "0.57 with, without: withheld (that model is below the quality floor)"


def test_sqaggan_turing_numbers_are_the_papers_reconstruction_and_injection_apart():
    f1 = sqaggan_writeup.WRITEUP_TURING_F1
    assert f1 == {"SQ-AGGAN (reconstruction)": 0.5086, "SQ-AGGAN (injection)": 0.5585, "MCGAN": 0.5038,
                  "T-GAN": 0.5198}
    r = {"f1": 0.8, "f1_ci": (0.7, 0.9), "accuracy": 0.75, "auc": 0.85, "auc_ci": (0.8, 0.9), "n": 40}
    rows = sqaggan_writeup.turing_rows({"sqaggan": {"reconstruction": r}})
    paper = sqaggan_writeup.WRITEUP_TURING_SOURCE
    assert "SQ-AGGAN paper" in paper and "quoted in the write-up" in paper
    assert rows.loc[("SQ-AGGAN (reconstruction)", paper), "F1"] == "0.5086"
    assert rows.loc[("SQ-AGGAN (injection)", paper), "F1"] == "0.5585"
    assert rows.loc[("sqaggan (reconstruction)", "CNN classifier (ours)"), "AUC"] == "0.850 (0.800 to 0.900)"
    assert "fooled more often" in rows.loc[("SQ-AGGAN (injection)", paper), "how to read"]
    ours = rows.loc[("sqaggan (reconstruction)", "CNN classifier (ours)"), "how to read"]
    assert "AUC 0.5 = indistinguishable" in ours and "0.667" in ours
    closing = sqaggan_writeup.closing_table({"reconstruction": (0.9, (0.8, 1.0)), "injection": (0.7, (0.6, 0.8))},
                                            {"rho": 0.3, "ci": (0.1, 0.5), "mae": 1.2}, {"psnr": 24.6, "l1": 0.1},
                                            (0.4, 1.4), 36_000_000, 64, EST, "30 x 9 s", c2st={"injection": r})
    turing = closing.loc["visual Turing test"]
    assert "SQ-AGGAN (reconstruction) 0.5086" in turing["write-up"] and "SQ-AGGAN (injection) 0.5585" in turing["write-up"]
    assert turing["write-up: who"] == sqaggan_writeup.WRITEUP_COST_SOURCE
    assert "injection F1 0.70 (0.60 to 0.80), AUC 0.85 (0.80 to 0.90)" in turing["ours (this run)"]
    assert "reconstruction F1 0.90 (0.80 to 1.00), AUC not given" in turing["ours (this run)"]
    assert "fooled more often" in turing["how to read"] and "AUC 0.5 = indistinguishable" in turing["how to read"]


def test_sqaggan_tables_tag_who_produced_each_number():
    r = {"f1": 0.8, "f1_ci": (0.7, 0.9), "accuracy": 0.75, "auc": 0.85, "n": 40}
    rows = sqaggan_writeup.turing_rows({"sqaggan": {"injection": r}})
    assert rows.loc[("sqaggan (injection)", "CNN classifier (ours)"), "F1"] == "0.800 (0.700 to 0.900)"
    assert rows.loc[("sqaggan (injection)", "CNN classifier (ours)"), "AUC"] == "0.850"  # no auc_ci: no interval
    assert rows.loc[("MCGAN", "2 radiologists (SQ-AGGAN paper, quoted in the write-up)"), "F1"] == "0.5038"
    cpu = {"parameters": 12345, "peak_memory_mb": 100.0, "method": "measured", "seconds_per_epoch": 9.4}
    setting = dict(batch=16, image_size=32, threads=2, gpu_batch=32, gpu_image_size=64, probe_batch=1)
    table = sqaggan_writeup.cost_table(cpu, {"training_memory_mb": 150.0}, EST, setting)
    assert table.loc[sqaggan_writeup.WRITEUP_COST_SOURCE, "training memory (MB)"] == 32_155
    assert sqaggan_writeup.WRITEUP_COST_SOURCE == "SQ-AGGAN paper (quoted in the write-up)"
    assert "reported by the paper" in table.loc[sqaggan_writeup.WRITEUP_COST_SOURCE, "how"]
    assert table.loc["ours, cpu profile", "parameters"] == "12,345"
    assert table.loc["ours, write-up scale, fp32", "training memory (MB)"] == 800
    assert "over-counts" in sqaggan_writeup.estimator_check(150.0, 100.0)
    assert "under-counts" in sqaggan_writeup.estimator_check(50.0, 100.0)
    closing = sqaggan_writeup.closing_table({"reconstruction": (0.9, (0.8, 1.0)), "injection": (0.7, (0.6, 0.8))},
                                            {"rho": 0.3, "ci": (0.1, 0.5), "mae": 1.2}, {"psnr": 24.6, "l1": 0.1},
                                            (0.4, 1.4), 36_000_000, 64, EST, "30 x 9 s")
    assert closing.loc["parameters", "write-up"] == "62,406,016"
    assert closing.loc["malignancy control", "ours (this run)"].startswith("within-background Spearman 0.30 (0.10 to 0.50)")
    assert closing.loc["parameters", "write-up: who"] == "SQ-AGGAN paper (quoted in the write-up)"
    assert "AUC not given" in closing.loc["visual Turing test", "ours (this run)"]
