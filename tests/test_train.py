"""Tests of medgan_core.train: seeding, device, checkpoints, EMA, image pool, NaN guard, loop.

The central one is the resume test: a tiny GAN trained 20 steps in one go ends with exactly the
weights of one trained 10 steps, "killed", rebuilt from scratch and resumed.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from medgan_core.losses import get_losses
from medgan_core.train.guard import NonFiniteWeightsError, first_nonfinite_model
from medgan_core.train import (EMA, CheckpointError, ImagePool, NonFiniteLossError, adversarial_step,
                               amp_context, check_finite, checkpoint_path, checksum_path, dataloader_generator,
                               latest_checkpoint, load_checkpoint, maybe_channels_last, save_checkpoint,
                               seed_everything, seed_worker, select_device, step_batch_indices, train_loop)


def draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


# --- seeding -----------------------------------------------------------------------------------

def test_seed_everything_reproduces_every_rng():
    gen = seed_everything(7)
    first, g_first = draws(), torch.rand(2, generator=gen)
    gen = seed_everything(7)
    assert draws() == first and torch.equal(torch.rand(2, generator=gen), g_first)
    seed_everything(8)
    assert draws() != first


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed must be an integer"):
        seed_everything(bad)


def test_dataloader_order_and_worker_seed():
    data = torch.arange(10)
    orders = [list(torch.utils.data.DataLoader(data, batch_size=10, shuffle=True,
                                               generator=dataloader_generator(3)))[0] for _ in range(2)]
    assert torch.equal(orders[0], orders[1]) and not torch.equal(orders[0], data)
    torch.manual_seed(5)
    seed_worker(0)
    assert np.random.rand() == np.random.RandomState(5).rand()
    assert random.random() == random.Random(5).random()


def test_step_batch_indices_are_shuffled_epochs():
    epoch0 = torch.cat([step_batch_indices(s, 10, 3, seed=1) for s in range(3)])  # 3 batches of 3
    assert sorted(epoch0.tolist()) == sorted(set(epoch0.tolist())) and len(epoch0) == 9
    assert torch.equal(step_batch_indices(4, 10, 3, seed=1), step_batch_indices(4, 10, 3, seed=1))
    assert not torch.equal(step_batch_indices(0, 10, 10, seed=1), step_batch_indices(1, 10, 10, seed=1))
    with pytest.raises(ValueError, match="batch_size"):
        step_batch_indices(0, 4, 5, seed=1)


# --- device ------------------------------------------------------------------------------------

def test_select_device_on_this_machine():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(" CPU ") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert select_device("auto").type in ("cpu", "mps")
        with pytest.raises(RuntimeError, match="no CUDA GPU.*'auto' or 'cpu'"):
            select_device("cuda")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        select_device("tpu")


def test_amp_and_channels_last_are_no_ops_on_cpu():
    lin = nn.Linear(4, 4)
    with amp_context("cpu", enabled=True):
        assert lin(torch.ones(1, 4)).dtype == torch.float32
    conv = maybe_channels_last(nn.Conv2d(3, 4, 3), "cpu")
    assert conv.weight.is_contiguous()  # default layout kept
    with pytest.raises(ValueError, match="bfloat16 or torch.float16"):
        amp_context("cpu", dtype=torch.float32)


# --- EMA and image pool -------------------------------------------------------------------------

def test_ema_update_by_hand_and_buffers_copied():
    net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        net[0].weight.fill_(2.0)
    ema = EMA(net, decay=0.75)
    with torch.no_grad():
        net[0].weight.fill_(6.0)
        net[1].running_mean.fill_(9.0)
    ema.update(net)  # warm-up: decay min(0.75, 1/10) = 0.1, so 0.1 * 2 + 0.9 * 6 = 5.6
    assert ema.module[0].weight.item() == pytest.approx(5.6)
    assert ema.module[1].running_mean.item() == 9.0 and ema.num_updates == 1
    ema.num_updates = 30  # past the warm-up ((1 + 30) / 40 > 0.75): the full decay
    with torch.no_grad():
        ema.module[0].weight.fill_(2.0)
    ema.update(net)  # 0.75 * 2 + 0.25 * 6 = 3
    assert ema.module[0].weight.item() == pytest.approx(3.0)
    ema.num_updates = 1
    target = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    ema.copy_to(target)
    assert target[0].weight.item() == pytest.approx(3.0)
    other = EMA(target, decay=0.1)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.75 and other.num_updates == 1
    with pytest.raises(ValueError, match="decay"):
        EMA(net, decay=1.0)


def test_image_pool_is_deterministic_and_resumable():
    batches = [torch.full((4, 1, 2, 2), float(i)) for i in range(6)]
    pool_a, pool_b = ImagePool(5, seed=3), ImagePool(5, seed=3)
    out_a = [pool_a.query(b) for b in batches]
    out_b = [pool_b.query(b) for b in batches[:3]]
    resumed = ImagePool(5, seed=99)
    resumed.load_state_dict(pool_b.state_dict())
    out_b += [resumed.query(b) for b in batches[3:]]
    assert all(torch.equal(a, b) for a, b in zip(out_a, out_b))
    assert torch.equal(out_a[0], batches[0])  # the pool fills first, returning its input
    assert any(not torch.equal(o, b) for o, b in zip(out_a[2:], batches[2:]))  # old images come back
    assert len(pool_a) == 5
    assert ImagePool(0).query(batches[1]) is batches[1]


# --- non-finite guard ---------------------------------------------------------------------------

def test_check_finite_names_loss_step_and_advice():
    check_finite("loss_G", torch.tensor(1.5), step=3)
    with pytest.raises(NonFiniteLossError, match=r"'loss_D' is nan at step 12.*lower learning rate.*gradient penalty"):
        check_finite("loss_D", torch.tensor(float("nan")), step=12)
    with pytest.raises(NonFiniteLossError, match="inf"):
        check_finite("gp", float("inf"))


# --- checkpoints --------------------------------------------------------------------------------

def small_state(seed: int):
    torch.manual_seed(seed)
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    sched.step()
    return net, opt, sched


def test_checkpoint_round_trip_restores_state_and_rng(tmp_path):
    net, opt, sched = small_state(0)
    ema, pool = EMA(net, 0.9), ImagePool(2, seed=1)
    pool.query(torch.randn(3, 1, 2, 2))
    path = save_checkpoint(tmp_path / "c.pt", models={"net": net}, optimizers={"net": opt},
                           schedulers={"net": sched}, ema={"net": ema}, pools={"fake": pool},
                           step=5, extra={"note": "hello", "z": torch.ones(2)})
    after_save = draws()
    torch.load(path, weights_only=True)  # plain data only: the safe loader accepts it

    net2, opt2, sched2 = small_state(1)
    ema2, pool2 = EMA(net2, 0.5), ImagePool(2, seed=7)
    step, extra = load_checkpoint(path, models={"net": net2}, optimizers={"net": opt2},
                                  schedulers={"net": sched2}, ema={"net": ema2}, pools={"fake": pool2})
    assert step == 5 and extra["note"] == "hello" and torch.equal(extra["z"], torch.ones(2))
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], opt2.state_dict()["state"][0]["exp_avg"])
    assert sched2.get_last_lr() == sched.get_last_lr() and ema2.decay == 0.9
    assert torch.equal(pool2.state_dict()["images"], pool.state_dict()["images"])
    assert draws() == after_save  # Python, NumPy and torch RNGs continue where they were


def test_a_flipped_byte_in_a_checkpoint_is_detected(tmp_path):
    net = nn.Linear(64, 64)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    path = save_checkpoint(tmp_path / "ckpt_00000010.pt", models={"net": net}, optimizers={"net": opt}, step=10)
    assert checksum_path(path).read_text().split()[1] == path.name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the weight tensor's bytes
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"ckpt_00000010\.pt does not match its sha256.*Delete ckpt_00000010\.pt "
                                              r"and ckpt_00000010\.pt\.sha256"):
        load_checkpoint(path, models={"net": nn.Linear(64, 64)}, optimizers={"net": opt})
    checksum_path(path).unlink()  # an interrupted save: the checkpoint without its checksum
    assert latest_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointError, match="no readable checksum file"):
        load_checkpoint(path, models={"net": nn.Linear(64, 64)}, optimizers={"net": opt})


def test_checkpoint_names_must_match(tmp_path):
    net, opt, _ = small_state(0)
    save_checkpoint(tmp_path / "c.pt", models={"G": net}, optimizers={"G": opt}, step=1)
    with pytest.raises(CheckpointError, match=r"holds models \['G'\], but \['D'\] were passed"):
        load_checkpoint(tmp_path / "c.pt", models={"D": net}, optimizers={"G": opt})
    with pytest.raises(CheckpointError, match="same architecture"):
        load_checkpoint(tmp_path / "c.pt", models={"G": nn.Linear(5, 2)}, optimizers={"G": opt})


def test_checkpoint_rejects_unsafe_extra_before_writing(tmp_path):
    net, opt, _ = small_state(0)
    with pytest.raises(CheckpointError, match=r"\['extra'\]\['fid'\].*numpy.float64.*float\(x\)"):
        save_checkpoint(tmp_path / "c.pt", models={"G": net}, optimizers={"G": opt}, step=1,
                        extra={"fid": np.float64(3.0)})
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    net, opt, _ = small_state(0)
    path = save_checkpoint(tmp_path / "c.pt", models={"G": net}, optimizers={"G": opt}, step=1)
    good = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, models={"G": net}, optimizers={"G": opt}, step=2)
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "c.pt.sha256"]
    load_checkpoint(path, models={"G": net}, optimizers={"G": opt})  # still matches its checksum


def _write_with_checksum(path, data: bytes) -> None:
    """A file and a matching checksum: what a save of these bytes would have left."""
    path.write_bytes(data)
    checksum_path(path).write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")


def test_latest_checkpoint_and_corrupt_files(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    for step in (5, 40, 10):
        _write_with_checksum(checkpoint_path(tmp_path, step), b"x")
    checkpoint_path(tmp_path, 80).write_bytes(b"x")  # no checksum: an incomplete save, skipped
    (tmp_path / ".ckpt_00000099.pt.abc.tmp").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert latest_checkpoint(tmp_path).name == "ckpt_00000040.pt"
    with pytest.raises(CheckpointError, match="ckpt_00000040.pt is not a torch checkpoint.*truncated or corrupt"):
        load_checkpoint(tmp_path / "ckpt_00000040.pt", models={}, optimizers={})
    net, opt, _ = small_state(0)
    good = save_checkpoint(tmp_path / "good.pt", models={"G": net}, optimizers={"G": opt}, step=1).read_bytes()
    _write_with_checksum(tmp_path / "cut.pt", good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cut.pt.*truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pt", models={"G": net}, optimizers={"G": opt})


# --- adversarial step and training loop ----------------------------------------------------------

class ToyGAN:
    """A tiny GAN on 2-D points, with every kind of state a checkpoint must carry."""

    def __init__(self, seed: int):
        torch.manual_seed(seed)
        self.net_G = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
        self.net_D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(8, 1))
        self.opt_G = torch.optim.Adam(self.net_G.parameters(), lr=1e-2, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.net_D.parameters(), lr=1e-2, betas=(0.5, 0.999))
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt_G, step_size=3, gamma=0.9)
        self.ema = EMA(self.net_G, decay=0.8)
        self.pool = ImagePool(6, seed=seed)
        self.x_train = torch.randn(32, 2, generator=torch.Generator().manual_seed(0)) + 2.0
        self.d_fn, self.g_fn = get_losses("nonsaturating")

    def state(self) -> dict:
        return dict(models={"G": self.net_G, "D": self.net_D}, optimizers={"G": self.opt_G, "D": self.opt_D},
                    schedulers={"G": self.sched}, ema={"G": self.ema}, pools={"fake": self.pool})

    def step(self, step: int) -> dict[str, float]:
        jitter = 0.01 * (1.0 + np.random.rand() + random.random())  # NumPy and Python RNGs
        x_real = self.x_train[step_batch_indices(step, 32, 8, seed=0)] + jitter * torch.randn(8, 2)
        out = adversarial_step(self.net_G, self.net_D, self.opt_G, self.opt_D, x_real, self.d_fn, self.g_fn,
                               sample_z=lambda n: torch.randn(n, 2), ema=self.ema, step=step)
        self.sched.step()
        out["pool_mean"] = self.pool.query(self.net_G(torch.randn(4, 2)).detach()).mean().item()
        return out

    def weights(self) -> list[torch.Tensor]:
        return [*self.net_G.state_dict().values(), *self.net_D.state_dict().values(),
                *self.ema.module.state_dict().values(),
                *[s for st in self.opt_G.state.values() for s in st.values()]]


def test_resume_is_bit_exact(tmp_path):
    seed_everything(0)
    full = ToyGAN(seed=0)
    hist_full = train_loop(full.step, 20, progress=False)

    seed_everything(0)
    first = ToyGAN(seed=0)

    def crashing_step(step):
        if step == 12:
            raise KeyboardInterrupt  # killed mid-run: steps 10 and 11 were done but not saved
        return first.step(step)

    with pytest.raises(KeyboardInterrupt):
        train_loop(crashing_step, 20, run_dir=tmp_path, checkpoint_every=5, progress=False, **first.state())
    assert latest_checkpoint(tmp_path).name == "ckpt_00000010.pt"

    seed_everything(123)  # a fresh process: other initial weights, other RNG states
    fresh = ToyGAN(seed=1)
    hist = train_loop(fresh.step, 20, run_dir=tmp_path, checkpoint_every=5, progress=False, **fresh.state())
    assert all(torch.equal(a, b) for a, b in zip(full.weights(), fresh.weights()))
    pd.testing.assert_frame_equal(hist, hist_full)
    assert len(hist) == 20 and hist["step"].tolist() == list(range(20))
    assert set(hist.columns) == {"step", "loss_D", "loss_G", "d_real", "d_fake", "pool_mean"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_00000015.pt", "ckpt_00000015.pt.sha256",
                                                          "ckpt_00000020.pt", "ckpt_00000020.pt.sha256"]  # keep_last=2


def test_finished_run_is_not_rerun(tmp_path):
    seed_everything(0)
    gan = ToyGAN(seed=0)
    extra = {"z_fixed": torch.ones(3)}
    train_loop(gan.step, 4, run_dir=tmp_path, checkpoint_every=2, extra=extra, progress=False, **gan.state())
    calls, extra2 = [], {}
    hist = train_loop(lambda s: calls.append(s) or {}, 4, run_dir=tmp_path, checkpoint_every=2,
                      extra=extra2, progress=False, **ToyGAN(seed=0).state())
    assert calls == [] and len(hist) == 4 and torch.equal(extra2["z_fixed"], torch.ones(3))


def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path):
    net = nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    saved = {}

    def step_fn(step):
        with torch.no_grad():
            net.weight.add_(1.0)
        saved[step + 1] = net.weight.item()
        return {"loss_D": float("nan") if step == 9 else 1.0}  # step 9 would have been checkpoint 10

    with pytest.raises(NonFiniteLossError, match=r"'loss_D' is nan at step 9.*ckpt_00000005\.pt") as err:
        train_loop(step_fn, 20, run_dir=tmp_path, checkpoint_every=5, progress=False,
                   models={"net": net}, optimizers={"net": opt})
    assert err.value.step == 9 and err.value.name == "loss_D"
    assert latest_checkpoint(tmp_path).name == "ckpt_00000005.pt"
    probe = nn.Linear(1, 1)
    step, _ = load_checkpoint(latest_checkpoint(tmp_path), models={"net": probe},
                              optimizers={"net": torch.optim.SGD(probe.parameters(), lr=0.1)})
    assert step == 5 and probe.weight.item() == saved[5]


def test_weights_blown_up_by_a_finite_loss_step_stop_training_before_any_checkpoint(tmp_path):
    """An update with finite losses that blows the weights up (here the learning rate jumps to
    infinity at step 3): training stops there, naming the run, the model and the step, and every
    checkpoint on disk is finite."""
    seed_everything(0)
    net_G, net_D = nn.Linear(4, 4), nn.Linear(4, 1)
    opt = torch.optim.SGD(net_D.parameters(), lr=0.01)

    def step_fn(step):
        loss = net_D(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.param_groups[0]["lr"] = float("inf") if step == 3 else 0.01
        opt.step()
        return {"loss_D": loss.item()}  # finite: computed before the update

    with pytest.raises(NonFiniteWeightsError, match=r"^dcgan\[RBC\]: the weights of model 'D' are not finite after "
                                                    r"the update at step 3 \(its losses were finite\).*ckpt_00000003") as err:
        train_loop(step_fn, 50, run_dir=tmp_path, checkpoint_every=1, progress=False, desc="dcgan[RBC]",
                   models={"G": net_G, "D": net_D}, optimizers={"D": opt})
    assert err.value.name == "D" and err.value.step == 3 and first_nonfinite_model({"G": net_G, "D": net_D}) == "D"
    assert latest_checkpoint(tmp_path).name == "ckpt_00000003.pt"
    probe_G, probe_D = nn.Linear(4, 4), nn.Linear(4, 1)
    load_checkpoint(latest_checkpoint(tmp_path), models={"G": probe_G, "D": probe_D},
                    optimizers={"D": torch.optim.SGD(probe_D.parameters(), lr=1.0)})
    assert first_nonfinite_model({"G": probe_G, "D": probe_D}) is None


def test_adversarial_step_wgan_gp_and_nan_guard():
    seed_everything(0)
    gan = ToyGAN(seed=0)
    d_fn, g_fn = get_losses("wgan")
    calls = []

    def real():
        calls.append(1)
        return gan.x_train[:8]

    out = adversarial_step(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, real, d_fn, g_fn,
                           sample_z=lambda n: torch.randn(n, 2), n_critic=3, gp_weight=10.0)
    assert set(out) == {"loss_D", "loss_G", "d_real", "d_fake", "gp"} and len(calls) == 3
    assert all(p.requires_grad for p in gan.net_D.parameters())  # D unfrozen after the G step
    before = [p.clone() for p in gan.net_D.parameters()]
    x_bad = torch.full((8, 2), float("nan"))
    with pytest.raises(NonFiniteLossError, match="'loss_D' is nan at step 4"):
        adversarial_step(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, x_bad, d_fn, g_fn,
                         make_fake=lambda n: gan.net_G(torch.randn(n, 2)), step=4)
    assert all(torch.equal(a, b) for a, b in zip(before, gan.net_D.parameters()))  # no bad update
    with pytest.raises(ValueError, match="exactly one of sample_z"):
        adversarial_step(gan.net_G, gan.net_D, gan.opt_G, gan.opt_D, x_bad, d_fn, g_fn)


def test_should_stop_ends_early_with_a_checkpoint_and_stays_stopped(tmp_path):
    net = nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    calls, asked = [], []

    def step_fn(step):
        calls.append(step)
        return {"loss": 1.0}

    def should_stop(done):
        asked.append(done)
        return done >= 3

    hist = train_loop(step_fn, 10, run_dir=tmp_path, checkpoint_every=5, progress=False, should_stop=should_stop,
                      models={"net": net}, optimizers={"net": opt})
    assert calls == [0, 1, 2] and asked == [1, 2, 3] and len(hist) == 3
    assert latest_checkpoint(tmp_path).name == "ckpt_00000003.pt"  # written at the stop, off the period
    calls.clear()
    hist = train_loop(step_fn, 10, run_dir=tmp_path, checkpoint_every=5, progress=False, should_stop=should_stop,
                      models={"net": net}, optimizers={"net": opt})
    assert calls == [] and len(hist) == 3  # asked once after the resume, before any step
    hist = train_loop(step_fn, 10, run_dir=tmp_path, checkpoint_every=5, progress=False,
                      models={"net": net}, optimizers={"net": opt})
    assert calls == list(range(3, 10)) and len(hist) == 10  # without the callable it trains on


def test_should_stop_is_not_asked_after_the_last_step():
    asked = []
    hist = train_loop(lambda s: {"loss": 0.0}, 2, progress=False, should_stop=lambda d: asked.append(d) or True)
    assert asked == [1] and len(hist) == 1
    asked.clear()
    train_loop(lambda s: {"loss": 0.0}, 1, progress=False, should_stop=lambda d: asked.append(d) or True)
    assert asked == []


def test_set_threads_takes_every_available_core_for_zero(monkeypatch):
    from medgan_core.train import available_cores, set_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert set_threads(1) == 1
        assert set_threads(0) == available_cores() >= 1
        with pytest.raises(ValueError, match="num_threads"):
            set_threads(-1)
    finally:
        torch.set_num_threads(before)


def test_set_threads_zero_follows_omp_num_threads_as_a_workflow_job_sets_it(monkeypatch):
    from medgan_core.train import set_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(0) == 1
        assert set_threads(2) == 2  # an explicit count wins
        monkeypatch.setenv("OMP_NUM_THREADS", "two")
        with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
