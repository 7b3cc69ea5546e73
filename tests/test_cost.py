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
