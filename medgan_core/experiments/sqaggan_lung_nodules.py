"""Experiment 05 (SQ-AGGAN write-up): its numbers, who produced them, and the verdict sentences.

Model, losses, data, metrics, cost meters and figures live in the core. Who produced what: the
radiologists' Turing-test F1 and the cost table (62,406,016 parameters, 32,155 MB at batch 32,
330 s per epoch) are results of the **SQ-AGGAN paper quoted in the write-up**; the student's own
run (100 epochs, batch 8, 300 cases, out of memory at batch 32 on a 24 GB card) is the second cost row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

# Radiologists' F1 for "synthetic" in the quoted paper's visual Turing test (0.5 ~ cannot tell).
WRITEUP_TURING_F1 = {"SQ-AGGAN": 0.5585, "MCGAN": 0.5038, "T-GAN": 0.5198}
WRITEUP_COST = {"parameters": 62_406_016, "memory_mb": 32_155, "batch": 32, "crop_px": 64, "seconds_per_epoch": 330,
                "epochs": 1000}
# The write-up-scale memory estimates: (label, gradient checkpointing, bf16 autocast).
MEMORY_SETTINGS = (("fp32", False, False), ("bf16 autocast", False, True),
                   ("gradient checkpointing", True, False), ("bf16 + checkpointing", True, True))


def turing_rows(c2st: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """Our classifier two-sample tests beside the quoted paper's radiologists (F1 of "synthetic").

    Args:
        c2st: ``{model: {task: result of turing.classifier_two_sample_test}}``.
    """
    rows = [{"method": f"{name} ({task})", "reader": "CNN classifier (ours)",
             "F1": f"{r['f1']:.3f} [{r['f1_ci'][0]:.3f}, {r['f1_ci'][1]:.3f}]", "accuracy": round(r["accuracy"], 3),
             "AUC": round(r["auc"], 3), "test cases": r["n"]} for name, tasks in c2st.items() for task, r in tasks.items()]
    rows += [{"method": m, "reader": "2 radiologists (SQ-AGGAN paper, quoted)", "F1": f"{v:.4f}", "accuracy": "–",
              "AUC": "–", "test cases": "–"} for m, v in WRITEUP_TURING_F1.items()]
    return pd.DataFrame(rows).set_index(["method", "reader"])


def cost_table(cpu: Mapping[str, float], cpu_est: Mapping[str, float], est: Mapping[str, Mapping[str, float]],
               setting: Mapping[str, Any]) -> pd.DataFrame:
    """The write-up's cost rows beside ours (measured at the cpu setting, estimated at the write-up's scale).

    Args:
        cpu: ``{"parameters", "peak_memory_mb", "method", "seconds_per_epoch"}`` measured in this run.
        cpu_est: :func:`medgan_core.train.cost.training_memory_estimate` at the cpu setting.
        est: ``{label: estimate}`` at the write-up's scale, one per :data:`MEMORY_SETTINGS`.
        setting: ``batch, image_size, threads, gpu_batch, gpu_image_size, probe_batch`` of this run.
    """
    w = WRITEUP_COST
    rows = [
        {"setting": "SQ-AGGAN paper (quoted in the write-up)", "batch": w["batch"], "crop px": w["crop_px"],
         "parameters": w["parameters"], "training memory (MB)": w["memory_mb"], "s / epoch": w["seconds_per_epoch"],
         "how": "reported (GPU)"},
        {"setting": "the student's run, 24 GB card", "batch": 8, "crop px": w["crop_px"], "parameters": w["parameters"],
         "training memory (MB)": "> 24 GB card", "s / epoch": "–",
         "how": "reported: batch 32 ran out of memory; cut to batch 8 and 300 cases"},
        {"setting": "ours, cpu profile", "batch": setting["batch"], "crop px": setting["image_size"],
         "parameters": cpu["parameters"], "training memory (MB)": round(cpu["peak_memory_mb"]),
         "s / epoch": round(cpu["seconds_per_epoch"], 1),
         "how": f"{cpu['method']}, over a few training steps on CPU ({setting['threads']} thread(s)); wall time"},
        {"setting": "ours, cpu profile, estimated the same way", "batch": setting["batch"],
         "crop px": setting["image_size"], "parameters": cpu["parameters"],
         "training memory (MB)": round(cpu_est["training_memory_mb"]), "s / epoch": "–",
         "how": "estimated as the rows below: a check of the estimator against the measurement above"}]
    rows += [{"setting": f"ours, write-up scale, {label}", "batch": setting["gpu_batch"],
              "crop px": setting["gpu_image_size"], "parameters": e["parameters"],
              "training memory (MB)": round(e["training_memory_mb"]), "s / epoch": "not measured",
              "how": f"estimated: activations counted at batch {setting['probe_batch']} and "
                     f"{2 * setting['probe_batch']} on CPU"} for label, e in est.items()]
    table = pd.DataFrame(rows).set_index("setting")
    table["parameters"] = table["parameters"].map("{:,}".format)
    return table


def estimator_check(estimated_mb: float, measured_mb: float) -> str:
    """How the activation-count estimator compares with the measured memory at the cpu setting.

    Args:
        estimated_mb: the estimate at the cpu setting.
        measured_mb: the measured peak growth at the same setting.
    """
    ratio = estimated_mb / max(measured_mb, 1e-9)
    how = ("it over-counts (tensors of the critic and generator updates are summed although they are not all alive at "
           "once), so read the write-up-scale rows as upper estimates." if ratio > 1.2 else
           "it under-counts (allocator overhead and temporary buffers are not in it), so read the write-up-scale rows "
           "as lower estimates." if ratio < 0.8 else "it agrees within 20%.")
    return (f"**Check of the estimator.** At the cpu setting it gives {estimated_mb:,.0f} MB where {measured_mb:,.0f} MB "
            f"were measured ({ratio:.1f} times): {how}")


def _smoothness(ratio: float) -> str:
    return "over-smoothed" if ratio < 0.8 else "flickering" if ratio > 1.25 else "close to real"


def verdict(n_patients: int, mal: Mapping[str, Any], validity: float, bg_psnr: float, f1_rec: float, f1_inj: float,
            cont_lstm: float, cont_none: float, est: Mapping[str, Mapping[str, float]]) -> str:
    """The report's verdict sentence, built from this run's numbers.

    Args:
        n_patients: held-out patients.
        mal: malignancy control of SQ-AGGAN's injections (``rho``, ``ci``, ``mae``).
        validity: the regressor's Spearman on real held-out nodules (its ceiling).
        bg_psnr: PSNR outside the nodule of SQ-AGGAN's injections (dB).
        f1_rec: the two-sample classifier's F1 on reconstructions.
        f1_inj: the same on injections.
        cont_lstm: slice-to-slice change of injections / real, with the Bi-ConvLSTM.
        cont_none: the same without it.
        est: the write-up-scale memory estimates by setting.
    """
    lo, hi = mal["ci"]
    direction = "rose with" if lo > 0 else "fell with" if hi < 0 else "did not clearly follow"
    best = min(est, key=lambda k: est[k]["training_memory_mb"])
    return (f"On {n_patients} held-out patients, the malignancy read back from injected nodules {direction} the "
            f"requested one (within-background Spearman {mal['rho']:.2f} (95% CI {lo:.2f} to {hi:.2f}), off by "
            f"{mal['mae']:.1f} rating points on average; the regressor reaches {validity:.2f} on real held-out nodules); "
            f"injection kept the background at {bg_psnr:.1f} dB PSNR outside the nodule; a CNN told real from synthetic "
            f"with F1 {f1_rec:.2f} (reconstruction) and {f1_inj:.2f} (injection), against the write-up's radiologists' "
            f"0.56; injected slices changed {cont_lstm:.2f} times as much as real neighbouring slices with the "
            f"Bi-ConvLSTM ({_smoothness(cont_lstm)}) and {cont_none:.2f} times without it ({_smoothness(cont_none)}); "
            f"at the write-up's scale, batch 32 is estimated at {est['fp32']['training_memory_mb']:,.0f} MB in fp32 and "
            f"{est[best]['training_memory_mb']:,.0f} MB with {best}, against the reported 32,155 MB.")


def closing_table(f1: Mapping[str, tuple], mal: Mapping[str, Any], bg: Mapping[str, float], cont: tuple[float, float],
                  n_params: int, width: int, est: Mapping[str, Mapping[str, float]], training: str) -> pd.DataFrame:
    """Our headline numbers beside the write-up's, one row per question.

    Args:
        f1: ``{"reconstruction"|"injection": (f1, (low, high))}`` of the two-sample classifier.
        mal: malignancy control of the injections (``rho``, ``ci``, ``mae``).
        bg: ``{"psnr", "l1"}`` outside the nodule for the injections.
        cont: slice-to-slice change / real with and without the Bi-ConvLSTM.
        n_params: parameters at the write-up-scale width.
        width: that width.
        est: the write-up-scale memory estimates by setting.
        training: our epochs and time, as a phrase.
    """
    ci = lambda v, c: f"{v:.2f} [{c[0]:.2f}, {c[1]:.2f}]"  # noqa: E731
    best = min(est, key=lambda k: est[k]["training_memory_mb"])
    paper = ", ".join(f"{m} {v}" for m, v in WRITEUP_TURING_F1.items() if m != "SQ-AGGAN")
    rows = [("visual Turing test F1 (SQ-AGGAN)", f"{WRITEUP_TURING_F1['SQ-AGGAN']} (2 radiologists; {paper})",
             f"CNN two-sample test: reconstruction {ci(*f1['reconstruction'])}, injection {ci(*f1['injection'])}"),
            ("malignancy control", "not quantified",
             f"within-background Spearman {ci(mal['rho'], mal['ci'])}, MAE {mal['mae']:.1f} points"),
            ("background kept (injection)", "not quantified", f"PSNR {bg['psnr']:.1f} dB, L1 {bg['l1']:.3f} outside the nodule"),
            ("Bi-ConvLSTM vs none (slice-to-slice change / real)", "discontinuities without it",
             f"{cont[0]:.2f} with, {cont[1]:.2f} without (injection)"),
            ("parameters", f"{WRITEUP_COST['parameters']:,}", f"{n_params:,} at width {width} (widths not given in the write-up)"),
            ("training memory, batch 32", f"{WRITEUP_COST['memory_mb']:,} MB",
             f"{est['fp32']['training_memory_mb']:,.0f} MB fp32, {est[best]['training_memory_mb']:,.0f} MB {best} (estimated)"),
            ("epochs x time per epoch", f"{WRITEUP_COST['epochs']} x {WRITEUP_COST['seconds_per_epoch']} s (GPU)", training)]
    return pd.DataFrame(rows, columns=["", "write-up", "ours (this run)"]).set_index("")
