"""Tests of multi-process training (medgan_core.train.distributed) and gradient accumulation.

Two properties carry the file: two processes with half the batch each make the update one process
makes with the whole batch (batch norm included, once converted to the global batch's statistics),
and ``accumulate = k`` micro-batches make the update of one batch (for networks without batch norm).
The 2-process runs go through torchrun (``python -m torch.distributed.run --standalone``): this
file is itself the worker script of the tiny adversarial-step cases (``__main__`` at the end), and
the registry runs go through :func:`launch` and the ``-m medgan_core.train.distributed`` entry point.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medgan_core.losses import get_losses
from medgan_core.models import biggan
from medgan_core.models.registry import build_gan
from medgan_core.train import ImageBatches, adversarial_step, latest_checkpoint, load_checkpoint, train_gan
from medgan_core.train.distributed import (DistInfo, GlobalBatchNorm, ShardedBatches, broadcast_state, check_spec,
                                           convert_batchnorm, distribute, env_info, init_distributed, launch,
                                           reseed_after_resume, seed_ranks, sync_gradients)

NZ, B, STEPS = 4, 8, 3  # latent size, global batch, steps of the tiny runs
TINY = dict(image_size=16, channels=1, nz=8, width_G=4, width_D=4, seed=0)  # a registry GAN in a second


def tiny_nets(batchnorm: bool) -> tuple[nn.Module, nn.Module]:
    """A generator `(b, NZ)` -> `(b, 2, 4, 4)` and a discriminator -> logits `(b,)`, with or without batch norm."""
    torch.manual_seed(0)
    if batchnorm:
        net_G = nn.Sequential(nn.Linear(NZ, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Unflatten(1, (1, 4, 4)),
                              nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.Tanh())
        net_D = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
                              nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0))
    else:
        net_G = nn.Sequential(nn.Linear(NZ, 16), nn.ReLU(), nn.Linear(16, 32), nn.Tanh(), nn.Unflatten(1, (2, 4, 4)))
        net_D = nn.Sequential(nn.Flatten(), nn.Linear(32, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1), nn.Flatten(0))
    return net_G, net_D


def train_tiny(batchnorm: bool, rank: int = 0, world: int = 1, batch: int = B, n_critic: int = 1,
               gp_weight: float = 0.0, r1_weight: float = 0.0, loss: str = "nonsaturating",
               **step_kw) -> tuple[nn.Module, nn.Module, list[dict]]:
    """``STEPS`` adversarial steps on fixed reals and latents; rank ``r`` of ``world`` takes its rows of each.

    Returns:
        The networks and the step outputs.
    """
    net_G, net_D = tiny_nets(batchnorm)
    if world > 1:
        net_G, net_D = convert_batchnorm(net_G), convert_batchnorm(net_D)
        broadcast_state([net_G, net_D])
    opt_G = torch.optim.Adam(net_G.parameters(), lr=1e-2, betas=(0.5, 0.9))
    opt_D = torch.optim.Adam(net_D.parameters(), lr=1e-2, betas=(0.5, 0.9))
    if world > 1:
        sync_gradients([opt_G, opt_D])
    gen = torch.Generator().manual_seed(1)
    x_all = torch.rand(STEPS, n_critic, batch, 2, 4, 4, generator=gen) * 2 - 1  # the global reals of every critic step
    z_all = torch.randn(STEPS, n_critic + 1, batch, NZ, generator=gen)  # the global latents of every fake batch
    rows = slice(rank * batch // world, (rank + 1) * batch // world)
    d_loss, g_loss = get_losses(loss)
    outs = []
    for step in range(STEPS):
        reals, latents = iter(x_all[step, :, rows]), iter(z_all[step, :, rows])
        outs.append(adversarial_step(net_G, net_D, opt_G, opt_D, lambda: next(reals), d_loss, g_loss,
                                     sample_z=lambda n: next(latents), n_critic=n_critic, gp_weight=gp_weight,
                                     r1_weight=r1_weight, step=step, **step_kw))
    return net_G, net_D, outs


def close(a: dict, b: dict, atol: float) -> bool:
    """Two state dicts with the same keys and values within ``atol``."""
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


def torchrun(*args: str, timeout: int = 120) -> None:
    """``torchrun --standalone --nproc-per-node 2 *args``, failing the test with its output."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def images(n: int = 32, size: int = 16) -> np.ndarray:
    """Random uint8 images `(n, size, size, 1)`."""
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 1), dtype=np.uint8)


def spec(run_dir: Path, num_steps: int, gan: dict | None = None, **data) -> dict:
    """A spec of a tiny DCGAN (or ``gan``) on :func:`images` with the global batch 8."""
    return {"gan": gan or {"name": "dcgan", **TINY},
            "data": {"images": images(), "batch_size": 8, "seed": 0, **data},
            "train": {"num_steps": num_steps, "run_dir": run_dir, "checkpoint_every": 2}}


# --- two processes equal one ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_ranks(tmp_path_factory) -> list[dict]:
    """What each rank of a 2-process torchrun of this file's worker returned."""
    out = tmp_path_factory.mktemp("tiny_ranks")
    torchrun(__file__, str(out))
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


@pytest.mark.parametrize("batchnorm", [False, True], ids=["no_batchnorm", "global_batchnorm"])
def test_two_processes_with_half_batches_equal_one_process_with_the_whole(tiny_ranks, batchnorm, one_thread):
    net_G, net_D, outs = train_tiny(batchnorm)  # one process, plain batch norm over the global batch
    for rank in tiny_ranks:
        got = rank[f"bn={batchnorm}"]
        assert close(got["G"], net_G.state_dict(), 1e-5) and close(got["D"], net_D.state_dict(), 1e-5)
    # the state-dict keys are plain batch norm's: rank 0's weights load strictly into the one-process networks
    net_G.load_state_dict(tiny_ranks[0][f"bn={batchnorm}"]["G"])
    net_D.load_state_dict(tiny_ranks[0][f"bn={batchnorm}"]["D"])


def test_ranks_draw_independent_latents_and_rank_0_keeps_the_runs_stream(tiny_ranks):
    torch.manual_seed(3)
    expected = torch.randn(3)  # rank 0 after seed_ranks: as if there were one process
    first, second = (r["draws"] for r in tiny_ranks)
    assert torch.equal(first, expected) and not torch.equal(second, expected)
    resumed_0, resumed_1 = (r["draws_after_resume"] for r in tiny_ranks)
    assert not torch.equal(resumed_0, resumed_1)  # both restored rank 0's states; rank 1 re-derived its own


def test_global_batchnorm_is_plain_batchnorm_in_one_process_and_reaches_nested_ones():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, momentum=None)
    converted = convert_batchnorm(nn.Sequential(bn))
    assert isinstance(converted[0], GlobalBatchNorm) and converted[0].weight is bn.weight
    x = torch.randn(4, 3, 5, 5)
    plain = nn.BatchNorm2d(3, momentum=None)
    plain.load_state_dict(converted[0].state_dict())  # plain batch norm's keys
    assert torch.equal(converted(x), plain(x)) and close(converted[0].state_dict(), plain.state_dict(), 0.0)
    net_G = biggan.Generator(num_classes=2, nz=12, image_size=32, width=4)  # BigGAN's conditional batch norm
    keys = set(net_G.state_dict())
    convert_batchnorm(net_G)
    norms = [m for m in net_G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(isinstance(m, GlobalBatchNorm) for m in norms) and set(net_G.state_dict()) == keys
    assert all(isinstance(block.bn1.bn, GlobalBatchNorm) for block in net_G.blocks)


def test_sharded_batches_split_every_global_batch_in_rank_order():
    data = ImageBatches(images(), np.repeat([0, 1], 16), batch_size=8, seed=0)
    shards = [ShardedBatches(data, rank=r, world_size=2) for r in range(2)]
    for cls in (None, 1):
        x, y = data.batch(5, cls)
        parts = [s.batch(5, cls) for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    assert shards[1].num_classes == 2 and len(shards[1]) == 32 and shards[1].x is data.x
    with pytest.raises(ValueError, match="does not split over 3 processes; choose a batch_size divisible"):
        ShardedBatches(data, rank=0, world_size=3)
    with pytest.raises(ValueError, match="need 0 <= rank < world_size"):
        ShardedBatches(data, rank=2, world_size=2)


def test_without_torchrun_everything_is_one_plain_process(monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert init_distributed() == DistInfo(rank=0, local_rank=0, world_size=1)
    gan = build_gan("dcgan", **TINY)
    norms = [type(m) for m in gan.net_G.modules()]
    assert distribute(gan) is gan and [type(m) for m in gan.net_G.modules()] == norms  # no conversion, no hooks
    assert not gan.opt_G._optimizer_step_pre_hooks
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(RuntimeError, match=r"sets \['RANK'\] but not \['LOCAL_RANK', 'WORLD_SIZE'\]; launch with torchrun"):
        env_info()


# --- checkpoints between 2 processes and 1 --------------------------------------------------------

@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> Path:
    """The run folder of a fresh 2-process DCGAN run of 3 steps (batch norm over the global batch)."""
    run_dir = tmp_path_factory.mktemp("two_process_run")
    launch(spec(run_dir, 3), 2, timeout_s=120)
    return run_dir


def test_a_two_process_checkpoint_resumes_in_one_process(two_process_run, one_thread):
    data = ImageBatches(images(), batch_size=8, seed=0)
    gan = build_gan("dcgan", **TINY)  # plain batch norm, one process
    run = train_gan(gan, data, num_steps=3, run_dir=two_process_run, progress=False)
    assert (run.resumed_from, run.steps, len(run.history)) == (3, 3, 3)  # finished, not trained again
    probe = build_gan("dcgan", **TINY)
    load_checkpoint(latest_checkpoint(two_process_run), models={"G": probe.net_G, "D": probe.net_D},
                    optimizers={"G": probe.opt_G, "D": probe.opt_D})
    assert close(gan.net_G.state_dict(), probe.net_G.state_dict(), 0.0)
    run = train_gan(build_gan("dcgan", **TINY), data, num_steps=5, run_dir=two_process_run, progress=False)
    assert (run.resumed_from, run.steps) == (3, 5) and run.history["step"].tolist() == list(range(5))
    assert "2 processes" in (two_process_run / "torchrun.log").read_text()


def test_a_one_process_checkpoint_resumes_in_two_processes_with_accumulation(tmp_path, one_thread):
    gan_kw = {"name": "cwgan_gp", **TINY, "num_classes": 2, "accumulate": 2}  # local batch 4: micro-batches of 2
    labels = np.repeat([0, 1], 16)
    first = train_gan(build_gan(**gan_kw), ImageBatches(images(), labels, batch_size=8, seed=0), num_steps=2,
                      run_dir=tmp_path, checkpoint_every=2, progress=False)
    log = launch(spec(tmp_path, 4, gan=gan_kw, labels=labels), 2, timeout_s=120)
    assert "loaded run" in log.read_text() and latest_checkpoint(tmp_path).name == "ckpt_00000004.pt"
    gan = build_gan(**gan_kw)
    _, extra = load_checkpoint(latest_checkpoint(tmp_path), models={"G": gan.net_G, "D": gan.net_D},
                               optimizers={"G": gan.opt_G, "D": gan.opt_D})
    history = extra["history"]
    assert [h["step"] for h in history] == [0, 1, 2, 3] and history[:2] == first.history.to_dict("records")
    assert not close(gan.net_G.state_dict(), first.gan.net_G.state_dict(), 1e-6)  # trained on


def test_launch_refuses_bad_specs_and_names_the_log_when_a_rank_fails(tmp_path):
    with pytest.raises(ValueError, match="does not split over nproc=3 processes"):
        launch(spec(tmp_path, 1), 3)
    with pytest.raises(ValueError, match=r"spec\['data'\] needs \['images', 'batch_size'\]"):
        check_spec({"gan": {"name": "dcgan"}, "data": {"images": images()}, "train": {"num_steps": 1, "run_dir": "x"}})
    with pytest.raises(ValueError, match="nproc must be an int >= 1"):
        launch(spec(tmp_path, 1), 0)
    bad = spec(tmp_path, 1, gan={"name": "dcgan", **TINY, "width_G": 0})  # build_gan fails on every rank
    with pytest.raises(RuntimeError, match=f"see the log {tmp_path / 'torchrun.log'}") as err:
        launch(bad, 2, timeout_s=120)
    assert re.search(r"rank \d raised ValueError: nz, width and channels must be >= 1", str(err.value))


# --- gradient accumulation ------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(), dict(gp_weight=10.0, n_critic=2, loss="wgan"), dict(r1_weight=1.0),
                                dict(reuse_fake=True)], ids=["plain", "wgan_gp_n_critic_2", "r1", "reuse_fake"])
@pytest.mark.parametrize("accumulate", [2, 4])
def test_accumulation_over_k_micro_batches_equals_one_batch(kw, accumulate, one_thread):
    ref_G, ref_D, ref_outs = train_tiny(False, **kw)
    net_G, net_D, outs = train_tiny(False, accumulate=accumulate, **kw)
    assert close(net_G.state_dict(), ref_G.state_dict(), 1e-5) and close(net_D.state_dict(), ref_D.state_dict(), 1e-5)
    assert outs[-1].keys() == ref_outs[-1].keys()
    assert all(abs(outs[-1][k] - ref_outs[-1][k]) < 1e-5 for k in outs[-1])


@pytest.mark.parametrize("name", ["cwgan_gp", "bagan_gp"])
def test_accumulation_through_the_registry_equals_one_batch(name, one_thread):
    """WGAN-GP critics without batch norm (the generators' batch norm sees the whole batch once)."""
    extra = {}
    labels = np.repeat([0, 1], 16)
    if name == "bagan_gp":
        from medgan_core.models import bagan

        ae = build_gan("bagan_autoencoder", **TINY).net_G
        extra = dict(autoencoder=ae, latent=bagan.fit_latent(ae, images(), labels))
    states = []
    for accumulate in (1, 4):
        gan = build_gan(name, **TINY, num_classes=2, n_critic=2, accumulate=accumulate, **extra)
        torch.manual_seed(5)
        train_gan(gan, ImageBatches(images(), labels, batch_size=8, seed=0), num_steps=2, progress=False)
        states.append({**gan.net_G.state_dict(), **{f"D.{k}": v for k, v in gan.net_D.state_dict().items()}})
    assert close(states[0], states[1], 1e-5)


def test_accumulate_1_is_bit_identical_to_the_call_without_it(one_thread):
    ref_G, ref_D, ref_outs = train_tiny(True, n_critic=2, gp_weight=10.0, r1_weight=1.0)
    net_G, net_D, outs = train_tiny(True, n_critic=2, gp_weight=10.0, r1_weight=1.0, accumulate=1)
    assert outs == ref_outs and close(net_G.state_dict(), ref_G.state_dict(), 0.0)
    assert close(net_D.state_dict(), ref_D.state_dict(), 0.0)
    runs = []
    for kw in ({}, {"accumulate": 1}):
        gan = build_gan("dcgan", **TINY, **kw)
        runs.append(train_gan(gan, ImageBatches(images(), batch_size=8, seed=0), num_steps=2, progress=False))
    assert runs[0].history.equals(runs[1].history)
    assert close(runs[0].gan.net_D.state_dict(), runs[1].gan.net_D.state_dict(), 0.0)


def test_accumulation_errors_are_clear():
    with pytest.raises(ValueError, match="accumulate=3 must divide the batch size, got a batch of 8"):
        train_tiny(False, accumulate=3)
    with pytest.raises(ValueError, match="accumulate must be an int >= 1"):
        train_tiny(False, accumulate=0)
    for name in ("cyclegan", "bagan_autoencoder"):
        with pytest.raises(ValueError, match=f"{name} has its own update step.*pass accumulate=1"):
            build_gan(name, **TINY, accumulate=2)
    with pytest.raises(ValueError, match="accumulate must be an int >= 1"):
        build_gan("dcgan", **TINY, accumulate=1.5)


# --- the torchrun worker of the tiny cases ---------------------------------------------------------

def _worker(out: Path) -> None:
    """Rank ``r`` trains both tiny cases on its half of every batch and saves them to ``out/rank{r}.pt``."""
    info = init_distributed("gloo")
    result: dict = {}
    for batchnorm in (False, True):
        net_G, net_D, _ = train_tiny(batchnorm, info.rank, info.world_size)
        result[f"bn={batchnorm}"] = {"G": net_G.state_dict(), "D": net_D.state_dict()}
    torch.manual_seed(3)
    seed_ranks(7)
    result["draws"] = torch.randn(3)
    torch.manual_seed(11)  # a resume restores rank 0's random states on every rank
    reseed_after_resume(5)
    result["draws_after_resume"] = torch.randn(3)
    torch.save(result, out / f"rank{info.rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
