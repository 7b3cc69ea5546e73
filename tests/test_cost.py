"""The cost module: parameter counts by hand, the one memory meter, step timing, the cost table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medgan_core.models.registry import build_gan
from medgan_core.train import ImageBatches, train_gan
from medgan_core.train.cost import (CPU_METHOD, PeakMemory, cost_table, count_parameters,
                                    measure_step, saved_activation_bytes, training_memory_estimate)


def test_count_parameters_by_hand():
    a, b = nn.Linear(3, 2), nn.Conv2d(1, 4, 3)  # 3*2 + 2 = 8; 1*4*9 + 4 = 40
    assert count_parameters(a) == 8 and count_parameters(a, b) == 48 and count_parameters(a, None, b) == 48
    assert count_parameters() == 0 and count_parameters(a, a) == 8  # a shared parameter counts once
    b.bias.requires_grad_(False)
    assert count_parameters(b) == 36  # trainable only
    with pytest.raises(TypeError, match="nn.Modules"):
        count_parameters(torch.zeros(3))


def test_peak_memory_counts_parameters_and_the_most_autograd_held_at_once():
    w = nn.Linear(4, 4, bias=False)  # 16 parameters: 16 x 16 bytes of weights, gradients and Adam moments
    x = torch.ones(8, 4)
    with PeakMemory("cpu", [w, None]) as mem:
        with mem.step():
            w(x).sum().backward()  # saves x (8 x 4 floats = 128 bytes) for the weight gradient
        with mem.step():
            for _ in range(3):  # three forward/backward rounds: never more than one x held at once
                w(x).sum().backward()
    assert mem.method == CPU_METHOD and mem.mb * 2**20 == 16 * 16 + 128
    with PeakMemory("cpu", [w]) as held:
        with held.step():
            losses = [w(x + i).sum() for i in range(3)]  # three inputs held before one backward
            sum(losses).backward()
    assert held.mb * 2**20 == 16 * 16 + 3 * 128
    with PeakMemory("cpu", [w], counted_steps=0) as off:
        with off.step():
            w(x).sum().backward()
    assert off.mb * 2**20 == 16 * 16  # no step counted: parameters only


def test_peak_memory_refuses_cuda_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        PeakMemory("cuda")


def test_measure_step_times_the_calls():
    calls = []
    net = nn.Linear(2, 2)  # 6 parameters
    out = measure_step(lambda: calls.append(1), [net], n_steps=4)
    assert len(calls) == 5 and out["seconds_per_step"] >= 0 and out["peak_memory_mb"] * 2**20 == 16 * 6
    assert out["method"] == CPU_METHOD
    with pytest.raises(ValueError, match="n_steps"):
        measure_step(lambda: None, [net], n_steps=0)


def test_saved_activation_bytes_by_hand():
    w = torch.ones(4, 4, requires_grad=True)
    x = torch.ones(8, 4)
    # x @ w with only w trainable saves x (8 x 4 floats = 128 bytes) for w's gradient
    assert saved_activation_bytes(lambda: x @ w) == 8 * 4 * 4
    # with x trainable too it also saves w (4 x 4 floats = 64 bytes), unless w is excluded
    x.requires_grad_(True)
    assert saved_activation_bytes(lambda: x @ w) == 128 + 64
    assert saved_activation_bytes(lambda: x @ w, exclude=[w]) == 128
    # the sum over the call: two products each save their own input, even if the first was released
    assert saved_activation_bytes(lambda: ((x @ w).sum().backward(), (2 * x) @ w), exclude=[w]) == 2 * 128


def test_training_memory_estimate_is_linear_in_the_batch():
    def make_step(b):
        g, d = nn.Linear(4, 16), nn.Linear(16, 1)  # 80 + 17 parameters
        x = torch.ones(b, 4)
        return g, d, lambda: d(torch.relu(g(x))).sum()

    est = training_memory_estimate(make_step, batch=10, probe_batch=2)
    assert est["parameters"] == 97
    # saved per sample: x (4 floats, for g's weight gradient) and relu's output (16 floats, saved by relu
    # and by d: one storage, counted once) = 20 floats = 80 bytes; nothing fixed
    assert est["per_sample_mb"] * 2**20 == pytest.approx(80) and est["fixed_mb"] == 0
    assert est["training_memory_mb"] * 2**20 == pytest.approx(16 * 97 + 10 * 80)


def test_cost_table_columns_and_values():
    rng = np.random.default_rng(0)
    data = ImageBatches(rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8), np.arange(8) % 2, batch_size=4)
    runs = {name: train_gan(build_gan(name, num_classes=2, image_size=16, nz=8, width_G=4, width_D=4), data,
                            num_steps=2, progress=False) for name in ("dcgan", "cwgan_gp")}
    table = cost_table(runs, labels={"dcgan": "DCGAN (per class)"})
    assert list(table.index) == ["DCGAN (per class)", "cwgan_gp"]
    assert list(table.columns) == ["parameters", "steps", "seconds / step", "training seconds", "peak memory (MiB)",
                                   "how measured"]
    row = table.loc["cwgan_gp"]
    gan = runs["cwgan_gp"].gan
    assert row["parameters"] == count_parameters(gan.net_G, gan.net_D) and row["steps"] == 2
    assert row["seconds / step"] == pytest.approx(runs["cwgan_gp"].seconds / 2)
    assert row["how measured"] == runs["cwgan_gp"].memory_method
    assert cost_table({}).empty


def test_cpu_bf16_probe_compares_against_float32():
    from medgan_core.train.cost import cpu_bf16_is_fast

    assert cpu_bf16_is_fast(max_slowdown=1e9) is True  # any speed passes a huge allowance
    assert cpu_bf16_is_fast(max_slowdown=0.0) is False  # no computation takes zero time


def test_closest_width_picks_the_nearest_count_not_the_first_above():
    from medgan_core.train.cost import closest_width

    calls = []

    def square(w):  # a count that grows quadratically with the width, like a convolution's
        calls.append(w)
        return w * w

    # 25, 36, 49, 64: 49 is nearest to 50 (the first count above it, 64, is not)
    assert closest_width(square, 50, (w for w in (5, 6, 7, 8))) == (7, 49) and calls == [5, 6, 7, 8]
    assert closest_width(square, 30, [8, 6, 5]) == (5, 25)  # 25 is 5 away, 36 is 6 away; the order does not matter
    assert closest_width(square, 37, [7, 5]) == (7, 49) and closest_width(square, 37, [5, 7]) == (5, 25)  # a tie: first
    assert closest_width(square, 10**9, [3]) == (3, 9)
    with pytest.raises(ValueError, match="no candidate widths"):
        closest_width(square, 50, [])


def _gpu_cost_probe():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "gpu_cost_probe.py"
    spec = importlib.util.spec_from_file_location("gpu_cost_probe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_cost_probe_defaults_are_the_gpu_profile():
    import yaml
    from pathlib import Path

    probe = _gpu_cost_probe()
    gpu = yaml.safe_load((Path(__file__).resolve().parents[1] / "params/05_sqaggan_lung_nodules/gpu.yaml").read_text())
    args = probe.parse_args(["--out", "x.json"])
    assert (args.width, args.width, args.image_size, args.batch, args.probe_batch) == (
        gpu["width_G"], gpu["width_D"], gpu["image_size"], gpu["batch_size"], gpu["cost_probe_batch"])
    gan = build_gan("sqaggan", num_features=2, width_G=8, width_D=8)
    assert args.target_params == 62_406_016 and probe.parameters_at(8) == count_parameters(gan.net_G, gan.net_D)


def test_gpu_cost_probe_runs_on_the_cpu(tmp_path):
    import json

    probe = _gpu_cost_probe()
    out = tmp_path / "probe.json"
    report = probe.main(["--out", str(out), "--device", "cpu", "--batch", "2", "--image-size", "32", "--width", "4",
                         "--steps", "1", "--match-widths", "4:8:4", "--target-params", "20000", "--commit", "abc1234"])
    assert json.loads(out.read_text()) == report
    assert set(report) == {"what", "provenance", "setup", "writeup", "target", "records"}
    prov = report["provenance"]
    assert prov["commit"] == "abc1234" and len(prov["code_fingerprint"]) == 64 and prov["torch"] == torch.__version__
    assert "--width 4" in prov["command"] and report["target"]["closest_width"] == 4
    assert [r["setting"] for r in report["records"]] == ["fp32", "bf16 autocast", "gradient checkpointing",
                                                         "bf16 + checkpointing"]
    for r in report["records"]:
        assert "error" not in r, r
        assert r["width"] == 4 and r["parameters"] == probe.parameters_at(4) == report["target"]["closest_parameters"]
        assert r["max_allocated_mb"] > 0 and r["max_reserved_mb"] is None and r["memory_method"] == CPU_METHOD
        assert r["seconds_per_step"] > 0 and r["estimate_mb"] > 0
        assert r["estimate_over_measured"] == pytest.approx(r["estimate_mb"] / r["max_allocated_mb"])
    fp32, ckpt = report["records"][0], report["records"][2]
    assert ckpt["max_allocated_mb"] < fp32["max_allocated_mb"]  # checkpointing holds fewer activations
