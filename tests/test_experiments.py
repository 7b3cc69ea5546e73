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
       for (label, _, _), mb in zip(sqaggan_writeup.MEMORY_SETTINGS, (8_437.0, 500.0, 300.0, 200.0))}
AUC = {"reconstruction": {"auc": 0.97, "auc_ci": (0.9, 1.0), "f1": 0.9, "f1_ci": (0.8, 1.0), "n": 40},
       "injection": {"auc": 0.61, "auc_ci": (0.5, 0.7), "f1": 0.8, "f1_ci": (0.7, 0.9), "n": 40}}
GPU = {"provenance": {"device": "NVIDIA H200", "commit": "abc1234"}, "setup": {"batch": 32, "image_size": 64},
       "records": [{"width": 84, "setting": "fp32", "role": "closest to the target parameters", "parameters": 62_625_029,
                    "max_allocated_mb": 11_425.2, "max_reserved_mb": 13_178.0, "seconds_per_step": 0.158,
                    "estimate_mb": 11_300.0, "estimate_over_measured": 0.989},
                   {"width": 84, "setting": "bf16 autocast", "error": "OutOfMemoryError"}]}


def sqaggan_numbers(none=1.5, measurable=False, memory=True):
    """The verdict's inputs as the notebook passes them."""
    reason = ("measurable control: ..." if measurable else "no measurable control: the effect's interval includes 0 "
              "(effect 0.14 [-0.10, 0.40] vs ceiling 1.20 [0.50, 1.90] rating points over a requested span of 3)")
    return {"n_patients": 3, "auc": AUC, "fid": {"model": 41.23, "reference": 12.5}, "copy": 1.08,
            "control": {"measurable": measurable, "reason": reason}, "psnr": {"SQ-AGGAN": 24.6, "reconstruction-only": 27.1},
            "cont": (0.5, none), "none_withheld": "nodule-region L1 0.598 >= 1 x 0.407 (erased input)",
            "memory": ("width 84, fp32", 11_425.2, 62_625_029, "measured on NVIDIA H200") if memory else None}


def test_sig_rounds_to_significant_figures():
    assert sqaggan_writeup.sig(8_437.0, 1) == "8,000" and sqaggan_writeup.sig(11_425.2, 3) == "11,400"
    assert sqaggan_writeup.sig(88.4, 3) == "88.4" and sqaggan_writeup.sig(0.0123, 2) == "0.012"


def test_sqaggan_verdict_speaks_in_auc_rating_points_and_yardsticks():
    text = sqaggan_writeup.verdict(sqaggan_numbers())
    assert "AUC 0.97 (0.90 to 1.00) on reconstructions and AUC 0.61 (0.50 to 0.70) on injections" in text
    assert "(0.5 = cannot tell them apart, 1 = always can)" in text and "F1" not in text
    assert "FID of its injections 41.2 against 12.5 for real held-out crops" in text
    assert "malignancy: no measurable control: the effect's interval includes 0" in text
    assert "24.6 dB PSNR outside the nodule against 27.1 dB for the reconstruction-only generator" in text
    assert "1.08 times as far from their nearest training crop" in text
    assert "(over-smoothed)" in text and "(flickering)" in text
    assert "our 62.6 M-parameter model needed 11,400 MB (width 84, fp32, measured on NVIDIA H200)" in text
    assert "32,155 MB the SQ-AGGAN paper reports for 62.4 M parameters" in text
    assert "GPU memory was not measured" in sqaggan_writeup.verdict(sqaggan_numbers(memory=False))


def test_sqaggan_verdict_withholds_the_comparison_with_an_ablation_below_the_floor():
    text = sqaggan_writeup.verdict(sqaggan_numbers(none=None))
    assert ("the comparison without it is withheld: that model is below the quality floor (nodule-region L1 0.598 "
            ">= 1 x 0.407 (erased input))") in text and "flickering" not in text
    closing = sqaggan_writeup.closing_table(sqaggan_numbers(none=None), "30 x 9 s")
    row = closing.loc["Bi-ConvLSTM vs none (slice-to-slice change / real)", "ours (this run)"]
    assert row == "0.50 with, without: withheld (below the quality floor)"


def test_sqaggan_turing_numbers_are_the_papers_reconstruction_and_injection_apart():
    f1 = sqaggan_writeup.WRITEUP_TURING_F1
    assert f1 == {"SQ-AGGAN (reconstruction)": 0.5086, "SQ-AGGAN (injection)": 0.5585, "MCGAN": 0.5038,
                  "T-GAN": 0.5198}
    rows = sqaggan_writeup.turing_rows({"SQ-AGGAN": {"reconstruction": AUC["reconstruction"]}})
    paper = sqaggan_writeup.WRITEUP_TURING_SOURCE
    assert "SQ-AGGAN paper" in paper and "quoted in the write-up" in paper
    assert rows.loc[("SQ-AGGAN (reconstruction)", paper), "F1 of 'synthetic'"] == "0.5086"
    assert rows.loc[("SQ-AGGAN (injection)", paper), "F1 of 'synthetic'"] == "0.5585"
    assert rows.loc[("SQ-AGGAN (reconstruction)", "CNN classifier (ours)"), "AUC (95% CI, patients)"] == "0.97 (0.90 to 1.00)"
    assert "fooled more often" in rows.loc[("SQ-AGGAN (injection)", paper), "how to read"]
    assert "0.667" in rows.loc[("MCGAN", paper), "how to read"]
    ours = rows.loc[("SQ-AGGAN (reconstruction)", "CNN classifier (ours)"), "how to read"]
    assert "AUC 0.5 = cannot tell real from synthetic" in ours
    closing = sqaggan_writeup.closing_table(sqaggan_numbers(), "30 x 9 s")
    turing = closing.loc["visual Turing test"]
    assert "SQ-AGGAN (reconstruction) 0.5086" in turing["write-up"] and "SQ-AGGAN (injection) 0.5585" in turing["write-up"]
    assert turing["write-up: who"] == sqaggan_writeup.WRITEUP_COST_SOURCE
    assert "injection: AUC 0.61 (0.50 to 0.70), F1 0.80 (0.70 to 0.90)" in turing["ours (this run)"]
    assert "fooled more often" in turing["how to read"] and "AUC 0.5 = cannot tell" in turing["how to read"]


def test_sqaggan_cost_table_labels_measured_and_estimated_rows():
    cpu = {"parameters": 12345, "peak_memory_mb": 88.4, "method": "process peak", "seconds_per_epoch": 9.4}
    setting = dict(batch=16, image_size=32, threads=2, gpu_width=64, gpu_batch=32, gpu_image_size=64, probe_batch=1)
    table = sqaggan_writeup.cost_table(cpu, {"training_memory_mb": 284.0}, EST, GPU, setting)
    paper = sqaggan_writeup.WRITEUP_COST_SOURCE
    assert table.loc[paper, "training memory (MB)"] == "32,155" and "reported by the paper" in table.loc[paper, "how"]
    assert table.loc["ours, cpu profile", "parameters"] == "12,345" and table.loc["ours, cpu profile", "training memory (MB)"] == "88.4"
    assert table.loc["ours, cpu profile", "how"].startswith("in this run: process peak")
    assert "3.21 x the row above" in table.loc["ours, cpu profile, estimated", "how"]
    assert table.loc["ours, width 64, fp32, estimated", "training memory (MB)"] == "about 8,000"  # 1 significant figure
    assert table.loc["ours, width 64, fp32, estimated", "how"].startswith("estimated")
    assert "not checked against a measurement" in table.loc["ours, width 64, fp32, estimated", "how"]  # GPU: width 84 only
    checked = sqaggan_writeup.cost_table(cpu, {"training_memory_mb": 284.0}, EST, GPU, setting | {"gpu_width": 84})
    assert "on the GPU the estimator gave 0.99 x the measured peak" in checked.loc["ours, width 84, fp32, estimated", "how"]
    gpu = table.loc["ours, width 84, fp32"]
    assert gpu["training memory (MB)"] == "11,400" and gpu["parameters"] == "62,625,029"
    assert "measured on NVIDIA H200" in gpu["how"] and "abc1234" in gpu["how"] and "0.99 x this" in gpu["how"]
    assert "ours, width 84, bf16 autocast" not in table.index  # a failed measurement is not a row
    closing = sqaggan_writeup.closing_table(sqaggan_numbers(), "30 x 9 s")
    assert closing.loc["parameters", "write-up"] == "62,406,016" and closing.loc["parameters", "ours (this run)"].startswith("62,625,029")
    assert closing.loc["training memory, batch 32", "ours (this run)"] == "11,400 MB (width 84, fp32; measured on NVIDIA H200)"
    assert closing.loc["parameters", "write-up: who"] == "SQ-AGGAN paper (quoted in the write-up)"


# ---------------------------------------------------------------- experiment 02 (ISIC write-up)
from medgan_core.experiments import isic_skin_lesions as isic_writeup  # noqa: E402


def test_isic_look_alike_needs_a_trend_and_enough_validations():
    flat = {m: {"rho": 0.1, "p": 0.6} for m in ("ms_ssim", "recall", "coverage", "nn_ratio")}
    assert isic_writeup.look_alike_evidence(flat, 4000, 8)[0] == "not seen at our scale"
    alike = flat | {"ms_ssim": {"rho": 0.9, "p": 0.001}, "recall": {"rho": -0.8, "p": 0.01}}
    verdict, text = isic_writeup.look_alike_evidence(alike, 4000, 8)
    assert verdict == "supported at our scale" and "grew more alike to each other" in text and "recall fell" in text
    assert "showed no trend in their distance to the training images" in text
    copying = flat | {"nn_ratio": {"rho": -0.9, "p": 0.001}}
    assert isic_writeup.look_alike_evidence(copying, 4000, 8)[0] == "supported at our scale"
    assert isic_writeup.look_alike_evidence(flat, 4000, 3)[0].startswith("withheld")
    nan = flat | {"recall": {"rho": float("nan"), "p": float("nan")}}
    assert isic_writeup.look_alike_evidence(nan, 4000, 8)[0].startswith("withheld")


def test_isic_batch_evidence_reads_interval_overlap():
    rows = {16: {"fid": 10.0, "fid_ci_low": 9.0, "fid_ci_high": 11.0, "steps": 100},
            64: {"fid": 5.0, "fid_ci_low": 4.0, "fid_ci_high": 6.0, "steps": 25}}
    verdict, text = isic_writeup.batch_evidence(rows, 1600)
    assert verdict.startswith("supported") and "batch 16 (100 steps)" in text and "1,600" in text
    rows[64] = {"fid": 10.5, "fid_ci_low": 9.5, "fid_ci_high": 12.0, "steps": 25}
    assert isic_writeup.batch_evidence(rows, 1600)[0].startswith("not shown")
    rows[64] = {"fid": 20.0, "fid_ci_low": 18.0, "fid_ci_high": 22.0, "steps": 25}
    assert isic_writeup.batch_evidence(rows, 1600)[0].startswith("contradicted")


def test_isic_dcgan_first_and_no_help_and_the_claims_table():
    fid = {"dcgan": {"fid": 3.0, "fid_ci_low": 2.5, "fid_ci_high": 3.5}, "biggan": {"fid": 8.0, "fid_ci_low": 7.0, "fid_ci_high": 9.0}}
    floor_rows = {"dcgan": {"passed": True}, "biggan": {"passed": True}}
    assert isic_writeup.dcgan_first_evidence(floor_rows, fid, {"dcgan": 200, "biggan": 400})[0] == "supported at our scale"
    floor_rows["dcgan"]["passed"] = False
    assert isic_writeup.dcgan_first_evidence(floor_rows, fid, {"dcgan": 200, "biggan": 400})[0].startswith("contradicted")
    assert isic_writeup.no_help_evidence(None, [], {"dcgan": "2.0"})[0].startswith("withheld")
    test = SimpleNamespace(gan_arm="real+gan[dcgan]", base_arm="real+classic_aug", mean_diff=0.01, ci_low=-0.02,
                           ci_high=0.04, n_seeds=5)
    assert isic_writeup.no_help_evidence(test, ["dcgan"], {"dcgan": "2.0"})[0] == "supported (no measurable help)"
    test.ci_low = 0.005
    assert isic_writeup.no_help_evidence(test, ["dcgan"], {"dcgan": "2.0"})[0].startswith("contradicted")
    test.ci_low, test.ci_high = -0.11, -0.05  # would read "hurt", but the utility verdict was withheld
    verdict, evidence = isic_writeup.no_help_evidence(test, ["dcgan"], {"dcgan": "2.0"}, withheld=True)
    assert verdict.startswith("withheld") and "hurt" not in verdict and "-0.110" in evidence
    table = isic_writeup.claims_table({"no_help": ("x", "y")})
    assert len(table) == len(isic_writeup.CLAIMS) and table.iloc[0]["our verdict"] == "x"
    assert table.iloc[-1]["our verdict"] == "not tested here" and "experiment 04" in table.iloc[-1]["our evidence"]


# ---------------------------------------------------------------- experiment 04 (CycleGAN style-transfer write-up)
from medgan_core.experiments import cyclegan_style_transfer as cyclegan_writeup  # noqa: E402

NAN = float("nan")


@pytest.mark.parametrize("diff,verdict", [
    ((1.2, 0.5, 1.9), "supported (the paired baseline beat CycleGAN)"),
    ((-0.8, -1.5, -0.1), "contradicted (CycleGAN beat the paired baseline)"),
    ((0.3, -0.2, 0.8), "not shown (no measurable difference)"),
    ((0.0, 0.0, 0.0), "not shown (no measurable difference)"),  # an interval touching 0 is not above it
    ((1.2, NAN, NAN), "withheld (no interval)"),
    ((1.2, 0.5, NAN), "withheld (no interval)"),
    ((NAN, 0.5, 1.9), "withheld (no interval)"),
])
def test_cyclegan_paired_evidence_branches(diff, verdict):
    assert cyclegan_writeup.paired_evidence(diff, "PSNR, dB; higher is better", 3)[0] == verdict


def test_cyclegan_paired_evidence_text_holds_the_numbers():
    verdict, text = cyclegan_writeup.paired_evidence((1.234, 0.5, 1.9), "PSNR, dB; higher is better", 3)
    assert text == "pix2pix minus CycleGAN, PSNR, dB; higher is better: +1.23 (95% CI +0.5 to +1.9), 3 seeds each"
    assert "-0.8 (95% CI -1.5 to -0.1)" in cyclegan_writeup.paired_evidence((-0.8, -1.5, -0.1), "SSIM", 5)[1]


PATCHES, BATCHES = (64, 128), (2, 16)


@pytest.mark.parametrize("patch,batch,verdict", [
    ((2.0, 1.0, 3.0), (0.2, -0.5, 0.9), "supported (patch size helped; batch size made no measurable change)"),
    ((-2.0, -3.0, -1.0), (0.2, -0.5, 0.9), "supported (patch size hurt; batch size made no measurable change)"),
    ((0.2, -0.5, 0.9), (2.0, 1.0, 3.0), "contradicted (batch size helped; patch size made no measurable change)"),
    ((0.2, -0.5, 0.9), (-2.0, -3.0, -1.0), "contradicted (batch size hurt; patch size made no measurable change)"),
    ((0.2, -0.5, 0.9), (-0.3, -1.0, 0.4), "not shown (neither made a measurable change)"),
    ((2.0, 1.0, 3.0), (1.0, 0.5, 1.5), "supported (both changed the metric; patch size more)"),
    ((1.0, 0.5, 1.5), (-2.0, -3.0, -1.0), "contradicted (both changed the metric; batch size more)"),
    ((NAN, NAN, NAN), (1.0, 0.5, 1.5), "withheld (no interval)"),
    ((2.0, 1.0, 3.0), (1.0, NAN, 1.5), "withheld (no interval)"),
])
def test_cyclegan_patch_evidence_branches(patch, batch, verdict):
    assert cyclegan_writeup.patch_evidence(patch, batch, PATCHES, BATCHES, "SSIM")[0] == verdict


def test_cyclegan_patch_evidence_text_holds_the_sizes_and_numbers():
    _, text = cyclegan_writeup.patch_evidence((2.5, 1.25, 3.75), (-0.125, -0.5, 0.25), PATCHES, BATCHES,
                                              "PSNR (dB, higher is better)")
    assert text == ("PSNR (dB, higher is better): patch 64 -> 128 px +2.5 (95% CI +1.25 to +3.75); "
                    "batch 2 -> 16 -0.125 (95% CI -0.5 to +0.25)")


@pytest.mark.parametrize("change,verdict", [
    ((0.4, 0.1, 0.7), "sharper"),
    ((-0.4, -0.7, -0.1), "smoother"),
    ((0.1, -0.2, 0.4), "no measurable change"),
    ((0.1, NAN, 0.4), "withheld (no interval)"),
    ((0.1, 0.05, NAN), "withheld (no interval)"),
])
def test_cyclegan_change_evidence_branches(change, verdict):
    out, text = cyclegan_writeup.change_evidence(change, "MTF50, translated minus source", "sharper", "smoother")
    assert out == verdict and text.startswith("MTF50, translated minus source: ")
    assert f"{change[0]:+.3g} (95% CI {change[1]:+.3g} to {change[2]:+.3g})" in text


def test_cyclegan_writeup_and_claims_tables():
    table = cyclegan_writeup.writeup_table()
    assert list(table.columns) == [cyclegan_writeup.WRITEUP_WHO] and "student's own runs" in table.columns[0]
    assert table.index.name == "the write-up's setting" and len(table) == len(cyclegan_writeup.WRITEUP_SETTINGS)
    assert table.loc["patches and batches", cyclegan_writeup.WRITEUP_WHO] == (
        "64 x 64 patches with batch 16, and 128 x 128 patches with batch 2")
    assert table.loc["metrics reported"].item() == "none (samples only)"
    claims = cyclegan_writeup.claims_table({"paired": ("supported (x)", "e1"), "patch": ("not shown (y)", "e2")})
    assert list(claims.index) == [cyclegan_writeup.CLAIMS["paired"], cyclegan_writeup.CLAIMS["patch"]]
    assert claims.index.name == "the write-up observed" and list(claims.columns) == ["our verdict", "evidence"]
    assert claims.loc[cyclegan_writeup.CLAIMS["patch"], "evidence"] == "e2"
    with pytest.raises(KeyError):
        cyclegan_writeup.claims_table({"unknown": ("a", "b")})


def test_patch_evidence_does_not_say_both_changed_when_only_the_patch_did():
    verdict, _ = cyclegan_writeup.patch_evidence((0.1, 0.05, 0.15), (0.5, -1.0, 2.0), (64, 128), (2, 16), "PSNR")
    assert "both changed" not in verdict and verdict.startswith("supported")
