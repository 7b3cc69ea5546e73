"""Measure the memory and seconds of SQ-AGGAN training steps at the write-up's scale on a GPU (experiment 05).

    PYTHONPATH=. python3 scripts/gpu_cost_probe.py --out docs/measurements/05_gpu_cost_probe.json \\
        --commit "$(git describe --always --dirty)" --steps 3

The write-up reports 62,406,016 parameters and 32,155 MB of GPU memory at batch 32, 64 px crops
and 3-slice sequences; the notebook can only *estimate* that scale on the CPU
(:func:`medgan_core.train.cost.training_memory_estimate`). This script measures it, for two model sizes:

- the gpu profile's width (``params/05_sqaggan_lung_nodules/gpu.yaml``: width 64, 64 px crops, batch 32:
  the defaults of ``--width``, ``--image-size`` and ``--batch``);
- the width (``--match-widths``, multiples of 4 from 64 to 128) whose SQ-AGGAN parameter count
  (generator + discriminator) comes closest to the write-up's (:func:`~medgan_core.train.cost.closest_width`),

each in the notebook's four settings (``MEMORY_SETTINGS``: fp32, bf16 autocast, gradient
checkpointing, both). Per (width, setting): a fresh seeded GAN (``build_gan("sqaggan", ...)``, the
notebook's ``cost_step``), one random batch (``sqaggan.random_batch``), one warm-up and ``--steps``
timed ``sqaggan.update`` calls, measured by :func:`~medgan_core.train.cost.measure_step`. On CUDA that
is the peak allocated memory (``torch.cuda.max_memory_allocated`` after
``torch.cuda.reset_peak_memory_stats``), with the allocator's peak reserved memory beside it; on the
CPU (``--device cpu``, for tests) it is :class:`~medgan_core.train.cost.PeakMemory`'s counted peak.
Each record names its method. At the first width the estimator is also run on the same device, so
its error is measured where the truth is known. MB are MiB (2**20 bytes). The JSON is rewritten
after every record, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medgan_core.experiments.sqaggan_lung_nodules import MEMORY_SETTINGS, WRITEUP_COST
from medgan_core.losses import Lambdas
from medgan_core.models import sqaggan
from medgan_core.models.registry import build_gan, define_D, define_G
from medgan_core.train import cost
from medgan_core.train.device import select_device
from medgan_core.train.identity import code_fingerprint

SEQ_LEN = 3  # slices per sequence (the write-up's 3 neighbouring slices)
NUM_FEATURES = 2  # length of f (malignancy and a second rating)
SEED = 0  # seeds the weights and the random batch
LAM = Lambdas(gp=10.0, f=1.0, yn=1.0, GF=10.0, GB=100.0)  # the notebook's loss weights


def parameters_at(width: int) -> int:
    """SQ-AGGAN's parameters (generator + discriminator) at ``width``, counted on the meta device (no memory).

    Args:
        width: ``width_G = width_D``.
    """
    with torch.device("meta"):
        net_G = define_G("sqaggan", num_features=NUM_FEATURES, width_G=width)
        net_D = define_D("sqaggan", num_features=NUM_FEATURES, width_D=width)
    return cost.count_parameters(net_G, net_D)


def make_step(width: int, image_size: int, batch: int, grad_ckpt: bool, bf16: bool,
              device: torch.device) -> tuple[nn.Module, nn.Module, Callable[[], object]]:
    """A fresh seeded SQ-AGGAN at ``width`` and one training step on a random batch (the notebook's ``cost_step``).

    Args:
        width: ``width_G = width_D``.
        image_size: crop side in px.
        batch: sequences per step.
        grad_ckpt: gradient checkpointing of the generator's blocks.
        bf16: bf16 autocast around the whole update.
        device: where the networks and the batch live.

    Returns:
        ``(net_G, net_D, step)``.
    """
    gan = build_gan("sqaggan", num_features=NUM_FEATURES, width_G=width, width_D=width, lam=LAM, seed=SEED,
                    device=device, grad_checkpoint=grad_ckpt)
    batch_ = sqaggan.random_batch(batch, SEQ_LEN, image_size, NUM_FEATURES, seed=SEED, device=device)

    def step() -> dict[str, float]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            return sqaggan.update(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, batch_, LAM)
    return gan.net_G, gan.net_D, step


def free_memory(device: torch.device) -> None:
    """Collect garbage and, on CUDA, return the allocator's cached blocks (between settings)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def measure(width: int, grad_ckpt: bool, bf16: bool, args: argparse.Namespace,
            device: torch.device) -> dict[str, Any]:
    """Parameters, seconds per step and peak memory of one (width, setting) on ``device``.

    Args:
        width: ``width_G = width_D``.
        grad_ckpt: gradient checkpointing.
        bf16: bf16 autocast.
        args: the command line (``image_size``, ``batch``, ``steps``).
        device: where to run.

    Returns:
        ``parameters``, ``parameters_G``, ``parameters_D``, ``start_allocated_mb`` (CUDA: weights and batch
        before the first step), ``max_allocated_mb``, ``max_reserved_mb`` (CUDA only), ``seconds_per_step``,
        ``memory_method``.
    """
    net_G, net_D, step = make_step(width, args.image_size, args.batch, grad_ckpt, bf16, device)
    start_mb = torch.cuda.memory_allocated(device) / 2**20 if device.type == "cuda" else None
    out = cost.measure_step(step, [net_G, net_D], n_steps=args.steps, device=device)
    return {"parameters": cost.count_parameters(net_G, net_D), "parameters_G": cost.count_parameters(net_G),
            "parameters_D": cost.count_parameters(net_D), "start_allocated_mb": start_mb,
            "max_allocated_mb": float(out["peak_memory_mb"]),
            "max_reserved_mb": torch.cuda.max_memory_reserved(device) / 2**20 if device.type == "cuda" else None,
            "seconds_per_step": float(out["seconds_per_step"]), "memory_method": str(out["method"])}


def _widths(spec: str) -> range:
    """``"64:128:4"`` -> ``range(64, 129, 4)`` (the stop is included)."""
    try:
        start, stop, step = (int(v) for v in spec.split(":"))
    except ValueError as err:
        raise SystemExit(f"--match-widths must be START:STOP:STEP (e.g. 64:128:4), got {spec!r}.") from err
    if start < 1 or step < 1 or stop < start:
        raise SystemExit(f"--match-widths needs 1 <= START <= STOP and STEP >= 1, got {spec!r}.")
    return range(start, stop + 1, step)


def _commit(given: str) -> str | None:
    if given:
        return given
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per setting (after one warm-up)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per step (gpu profile: 32)")
    parser.add_argument("--image-size", type=int, default=64, help="crop side in px (gpu profile: 64)")
    parser.add_argument("--width", type=int, default=64, help="generator and discriminator width (gpu profile: 64)")
    parser.add_argument("--target-params", type=int, default=WRITEUP_COST["parameters"],
                        help="parameter count the second width comes closest to (0: measure --width only)")
    parser.add_argument("--match-widths", default="64:128:4", help="candidate widths START:STOP:STEP (stop included)")
    parser.add_argument("--probe-batch", type=int, default=2,
                        help="smaller batch the estimator runs (gpu profile's cost_probe_batch: 2)")
    parser.add_argument("--estimate-budget-s", type=float, default=120.0,
                        help="seconds of estimator runs after which the remaining estimates are skipped (0: none)")
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu (tests)")
    parser.add_argument("--commit", default="", help="the code's commit (default: git describe --always --dirty)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch < 1 or args.width < 1 or args.probe_batch < 1:
        parser.error("--steps, --batch, --width and --probe-batch must be >= 1.")
    if args.image_size % 8 or args.image_size < 16:
        parser.error(f"--image-size must be a multiple of 8 and at least 16, got {args.image_size}.")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure every (width, setting), write the JSON to ``--out`` and return it.

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    device = select_device(args.device)
    widths = [(args.width, "gpu profile")]
    if args.target_params > 0:
        match, n_match = cost.closest_width(parameters_at, args.target_params, _widths(args.match_widths))
        if match == args.width:
            widths = [(args.width, "gpu profile; also the closest to the target parameters")]
        else:
            widths.append((match, "closest to the target parameters"))
    else:
        match = n_match = None
    report: dict[str, Any] = {
        "what": "SQ-AGGAN training step: peak memory and seconds per step, measured per (width, setting); "
                "the estimator's prediction beside it at the first width",
        "provenance": {"commit": _commit(args.commit), "code_fingerprint": code_fingerprint(),
                       "torch": torch.__version__, "cuda": torch.version.cuda,
                       "device": torch.cuda.get_device_name(device) if device.type == "cuda"
                       else f"cpu ({platform.processor() or platform.machine()})",
                       "python": platform.python_version(),
                       "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "command": shlex.join([sys.executable, "scripts/gpu_cost_probe.py", *argv])},
        "setup": {"batch": args.batch, "image_size": args.image_size, "seq_len": SEQ_LEN, "num_features": NUM_FEATURES,
                  "n_critic": 1, "lam": asdict(LAM), "seed": SEED, "warmup_steps": 1, "timed_steps": args.steps,
                  "probe_batch": args.probe_batch, "device": str(device), "mb": "MiB (2**20 bytes)",
                  "cudnn_benchmark": torch.backends.cudnn.benchmark},
        "writeup": WRITEUP_COST,
        "target": {"parameters": args.target_params or None, "candidate_widths": args.match_widths,
                   "closest_width": match, "closest_parameters": n_match},
        "records": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    estimate_s = 0.0
    for i, (width, role) in enumerate(widths):
        for label, grad_ckpt, bf16 in MEMORY_SETTINGS:
            record: dict[str, Any] = {"width": width, "role": role, "setting": label, "grad_checkpoint": grad_ckpt,
                                      "bf16": bf16}
            print(f"width {width}, {label} ...", flush=True)
            try:
                record |= measure(width, grad_ckpt, bf16, args, device)
            except Exception as err:  # noqa: BLE001  (one failed setting, e.g. out of memory, must not lose the rest)
                record["error"] = f"{type(err).__name__}: {err}"
            free_memory(device)
            record |= {"estimate_mb": None, "estimate_over_measured": None, "estimate": None}
            if i > 0:
                record["estimate_note"] = "estimated at the first width only"
            elif "error" in record:
                record["estimate_note"] = "not estimated: the measurement failed"
            elif args.estimate_budget_s and estimate_s > args.estimate_budget_s:
                record["estimate_note"] = (f"skipped: the estimates so far took {estimate_s:.0f} s, over the "
                                           f"--estimate-budget-s of {args.estimate_budget_s:.0f} s")
            else:
                start = time.perf_counter()
                try:
                    est = cost.training_memory_estimate(
                        lambda b: make_step(width, args.image_size, b, grad_ckpt, bf16, device), args.batch,
                        probe_batch=args.probe_batch)
                    record |= {"estimate_mb": est["training_memory_mb"], "estimate": est,
                               "estimate_over_measured": est["training_memory_mb"] / record["max_allocated_mb"],
                               "estimate_note": f"cost.training_memory_estimate on {device.type}, probe batches "
                                                f"{args.probe_batch} and {2 * args.probe_batch}"}
                except Exception as err:  # noqa: BLE001
                    record["estimate_note"] = f"estimate failed: {type(err).__name__}: {err}"
                record["estimate_seconds"] = time.perf_counter() - start
                estimate_s += record["estimate_seconds"]
                free_memory(device)
            report["records"].append(record)
            shown = {k: record.get(k) for k in ("parameters", "max_allocated_mb", "max_reserved_mb", "seconds_per_step",
                                                "estimate_mb", "error")}
            print(f"  {shown}", flush=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
