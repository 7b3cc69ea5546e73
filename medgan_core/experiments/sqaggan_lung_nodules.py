"""Experiment 05 (SQ-AGGAN write-up): its numbers, who produced them, and the verdict sentences (the rest is core).

The radiologists' Turing-test F1 and the cost table are the **SQ-AGGAN paper's results quoted in the write-up**; the
student's own run (100 epochs, batch 8, 300 cases, out of memory at batch 32 on a 24 GB card) is the second cost row.
The write-up gives the mean F1 of the two radiologists per column (radiologist 2 left 7 cases undecided); their
individual decisions are not in the write-up's table as we have it, so only the means are transcribed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from medgan_core.metrics.stats import format_ci

# Mean F1 of "synthetic" of the two radiologists in the paper's visual Turing test (radiologist 2 left 7 undecided).
WRITEUP_TURING_F1 = {"SQ-AGGAN (reconstruction)": 0.5086, "SQ-AGGAN (injection)": 0.5585, "MCGAN": 0.5038, "T-GAN": 0.5198}
WRITEUP_COST_SOURCE = "SQ-AGGAN paper (quoted in the write-up)"
WRITEUP_TURING_SOURCE = "2 radiologists (SQ-AGGAN paper, quoted in the write-up)"
WRITEUP_COST = {"parameters": 62_406_016, "memory_mb": 32_155, "batch": 32, "crop_px": 64, "seconds_per_epoch": 330, "epochs": 1000}
DIRECTION_PAPER = "higher F1 = radiologists fooled more often, as the write-up counts it"
DIRECTION_OURS = "AUC 0.5 = cannot tell real from synthetic, 1 = always can; F1 near 1 = fakes easy to spot"
F1_ANCHOR = "F1 is not anchored at chance: a reader who always answers 'synthetic' scores 0.667"
COST_COLUMNS = ["setting", "batch", "crop px", "parameters", "training memory (MB)", "s / epoch or step", "how"]
MEMORY_SETTINGS = (("fp32", False, False), ("bf16 autocast", False, True), ("gradient checkpointing", True, False),
                   ("bf16 + checkpointing", True, True))  # at the write-up's scale: (label, checkpointing, bf16)
_ci = lambda r, k, d=2: format_ci(r[k], *r[f"{k}_ci"], d) if f"{k}_ci" in r else f"{r[k]:.{d}f}"  # noqa: E731 (CI)


def sig(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` significant figures, with thousands separators (12,345 -> '12,000' for 2)."""
    return f"{float(f'{value:.{digits}g}'):,.0f}" if abs(value) >= 10 ** (digits - 1) else f"{value:.{digits}g}"


def turing_rows(c2st: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """Our classifier two-sample tests (AUC first) beside the quoted paper's radiologists (mean F1), and how to read them.

    Args:
        c2st: ``{model: {task: result of turing.classifier_two_sample_test}}``.
    """
    rows = [{"method": f"{name} ({task})", "reader": "CNN classifier (ours)", "AUC (95% CI, patients)": _ci(r, "auc"),
             "F1 of 'synthetic'": _ci(r, "f1"), "test cases": r["n"], "how to read": DIRECTION_OURS}
            for name, tasks in c2st.items() for task, r in tasks.items()]
    rows += [{"method": m, "reader": WRITEUP_TURING_SOURCE, "AUC (95% CI, patients)": "not reported", "F1 of 'synthetic'": f"{v:.4f}",
              "test cases": "radiologist 2 left 7 undecided", "how to read": f"{DIRECTION_PAPER}; {F1_ANCHOR}"}
             for m, v in WRITEUP_TURING_F1.items()]
    return pd.DataFrame(rows).set_index(["method", "reader"])


def cost_table(cpu: Mapping[str, Any], cpu_est: Mapping[str, float], est: Mapping[str, Mapping[str, float]],
               gpu: Mapping[str, Any] | None, setting: Mapping[str, Any]) -> pd.DataFrame:
    """The write-up's cost rows beside ours: counted in this run (CPU), measured (GPU, scripts/gpu_cost_probe.py), estimated.

    Measured and counted memory is given to 3 significant figures, estimates to 1 (the estimator's error, measured on
    the GPU, reaches a factor of 2 with gradient checkpointing).

    Args:
        cpu: ``parameters``, ``peak_memory_mb``, ``method``, ``seconds_per_epoch`` measured in this run.
        cpu_est: :func:`medgan_core.train.cost.training_memory_estimate` at the cpu setting.
        est: ``{label: estimate}`` at the write-up's scale (:data:`MEMORY_SETTINGS`), on the CPU.
        gpu: the probe's JSON (``provenance``, ``records``), or ``None``.
        setting: ``batch, image_size, threads, gpu_batch, gpu_image_size, probe_batch`` of this run.
    """
    w, s, ratio = WRITEUP_COST, setting, cpu_est["training_memory_mb"] / cpu["peak_memory_mb"]
    rows = [(WRITEUP_COST_SOURCE, w["batch"], w["crop_px"], w["parameters"], f"{w['memory_mb']:,}", f"{w['seconds_per_epoch']} / epoch",
             "reported by the paper (GPU), quoted in the write-up"),
            ("the student's run, 24 GB card", 8, w["crop_px"], w["parameters"], "> 24,000 (out of memory at batch 32)", "–",
             "reported in the write-up: cut to batch 8, 300 cases, 100 epochs"),
            ("ours, cpu profile", s["batch"], s["image_size"], cpu["parameters"], sig(cpu["peak_memory_mb"], 3),
             f"{cpu['seconds_per_epoch']:.0f} / epoch", f"in this run: {cpu['method']}; time measured, CPU, {s['threads']} thread(s)"),
            ("ours, cpu profile, estimated", s["batch"], s["image_size"], cpu["parameters"], f"about {sig(cpu_est['training_memory_mb'], 1)}",
             "–", f"estimated by extrapolating from batch {s['probe_batch']} and {2 * s['probe_batch']}: {ratio:.2f} x the row above "
             "(both count the same tensors: this checks the extrapolation; the GPU rows check the counting)")]
    for r in (gpu or {}).get("records", []):
        if "error" not in r:
            rows.append((f"ours, width {r['width']}, {r['setting']}", gpu["setup"]["batch"], gpu["setup"]["image_size"], r["parameters"],
                         sig(r["max_allocated_mb"], 3), f"{r['seconds_per_step']:.3f} / step",
                         f"measured on {gpu['provenance']['device']} (torch.cuda.max_memory_allocated; reserved "
                         f"{sig(r['max_reserved_mb'], 3)}) by scripts/gpu_cost_probe.py at commit {gpu['provenance']['commit']}"
                         + (f"; the estimator gave {r['estimate_over_measured']:.2f} x this" if r.get("estimate_mb") else "")))
    checked = {(r["width"], r["setting"]): r["estimate_over_measured"] for r in (gpu or {}).get("records", []) if r.get("estimate_mb")}
    rows += [(f"ours, width {s['gpu_width']}, {label}, estimated", s["gpu_batch"], s["gpu_image_size"], e["parameters"],
              f"about {sig(e['training_memory_mb'], 1)}", "–", f"estimated on the CPU (activations at batch {s['probe_batch']} and "
              f"{2 * s['probe_batch']}); " + (f"on the GPU the estimator gave {checked[s['gpu_width'], label]:.2f} x the measured peak"
                                              if (s["gpu_width"], label) in checked else "not checked against a measurement"))
             for label, e in est.items()]
    table = pd.DataFrame(rows, columns=COST_COLUMNS).set_index("setting")
    table["parameters"] = table["parameters"].map("{:,}".format)
    return table


def verdict(v: Mapping[str, Any]) -> str:
    """The report's verdict sentence, built from this run's numbers.

    Args:
        v: ``n_patients``; ``auc`` ``{task: c2st result}`` of SQ-AGGAN; ``fid`` ``{"model", "reference"}`` (its injection's
            and the real-vs-real FID); ``control``: the malignancy injection verdict (``measurable``, ``reason``);
            ``psnr`` ``{"SQ-AGGAN", "reconstruction-only"}`` of injections (dB); ``cont`` ``(with, without or None)``
            slice-to-slice change / real, ``none_withheld`` why the ablation is below the floor; ``memory``
            ``(label, MB, parameters, how)`` of the write-up-scale row compared, or ``None``; ``copy`` the memorisation
            median ratio of injections.
    """
    smooth = lambda r: "over-smoothed" if r < 0.8 else "flickering" if r > 1.25 else "close to real"  # noqa: E731
    auc = " and ".join(f"AUC {_ci(r, 'auc')} on {t}s" for t, r in v["auc"].items())
    lstm, none = v["cont"]
    without = (f", {none:.2f} times without it ({smooth(none)})" if none is not None else
               f"; the comparison without it is withheld: that model is below the quality floor ({v['none_withheld']})")
    mem = v["memory"]
    cost = (f"at batch 32, our {mem[2] / 1e6:.1f} M-parameter model needed {sig(mem[1], 3)} MB ({mem[0]}, {mem[3]}) against "
            f"the 32,155 MB the SQ-AGGAN paper reports for 62.4 M parameters (quoted in the write-up)" if mem else
            "GPU memory was not measured")
    return (f"On {v['n_patients']} held-out patients, a CNN told SQ-AGGAN's crops from real ones with {auc} (0.5 = cannot "
            f"tell them apart, 1 = always can); FID of its injections {v['fid']['model']:.1f} against {v['fid']['reference']:.1f} "
            f"for real held-out crops; generated crops lay {v['copy']:.2f} times as far from their nearest training crop as "
            f"new real crops do (below 1 would mean copying); malignancy: {v['control']['reason']}; injection kept the "
            f"background at {v['psnr']['SQ-AGGAN']:.1f} dB PSNR outside the nodule against {v['psnr']['reconstruction-only']:.1f} "
            f"dB for the reconstruction-only generator (copying the input: infinite); injected slices changed {lstm:.2f} times as "
            f"much as real neighbouring slices with the Bi-ConvLSTM ({smooth(lstm)}){without}; {cost}.")


def closing_table(v: Mapping[str, Any], training: str) -> pd.DataFrame:
    """Our headline numbers beside the write-up's, one row per question, with who produced each and how to read it.

    Args:
        v: the :func:`verdict` numbers.
        training: our epochs and time, as a phrase.
    """
    w, paper, wu = WRITEUP_COST, WRITEUP_COST_SOURCE, "the write-up"
    auc = "; ".join(f"{t}: AUC {_ci(r, 'auc')}, F1 {_ci(r, 'f1')}" for t, r in v["auc"].items())
    mem = v["memory"]
    rows = [("visual Turing test", "mean F1 of 2 radiologists: " + ", ".join(f"{m} {x:.4f}" for m, x in WRITEUP_TURING_F1.items()),
             paper, f"CNN two-sample test, {auc}", f"write-up: {DIRECTION_PAPER}; ours: {DIRECTION_OURS}; {F1_ANCHOR}"),
            ("malignancy control", "not quantified", wu, v["control"]["reason"], "effect in rating points beside the ceiling"),
            ("background kept (injection)", "not quantified", wu, f"PSNR {v['psnr']['SQ-AGGAN']:.1f} dB (reconstruction-only "
             f"{v['psnr']['reconstruction-only']:.1f} dB)", "higher PSNR = kept"),
            ("Bi-ConvLSTM vs none (slice-to-slice change / real)", "discontinuities without it", wu, f"{v['cont'][0]:.2f} with, "
             + (f"{v['cont'][1]:.2f} without" if v["cont"][1] is not None else "without: withheld (below the quality floor)"),
             "1 = like real; < 1 smoothed, > 1 flickering"),
            ("parameters", f"{w['parameters']:,}", paper, f"{mem[2]:,} (widths not in the write-up)" if mem else "–", ""),
            ("training memory, batch 32", f"{w['memory_mb']:,} MB", paper, f"{sig(mem[1], 3)} MB ({mem[0]}; {mem[3]})" if mem
             else "not measured", "lower = cheaper"),
            ("epochs x time per epoch", f"{w['epochs']} x {w['seconds_per_epoch']} s (GPU)", paper, training, "")]
    return pd.DataFrame(rows, columns=["", "write-up", "write-up: who", "ours (this run)", "how to read"]).set_index("")
