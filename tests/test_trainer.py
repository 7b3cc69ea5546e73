"""The one GAN trainer: batches by step, exact resume, time budget, snapshots kept across a resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medgan_core.data.datasets import to_tensor_images
from medgan_core.models.registry import build_gan
from medgan_core.train import GanRun, ImageBatches, latest_checkpoint, step_batch_indices, train_gan
from medgan_core.train.trainer import snapshot_steps


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


def uint8_images(n: int = 12, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 3


def tiny_gan(name: str, seed: int = 0, **kw):
    k = 3 if name in ("dcgan", "cwgan_gp") else 1
    return build_gan(name, num_classes=k, image_size=16, nz=8, width_G=4, width_D=4, n_critic=2, seed=seed, **kw)


def state(gan) -> list[torch.Tensor]:
    """Every weight, buffer and optimiser moment of a GAN."""
    out = [*gan.net_G.state_dict().values(), *gan.net_D.state_dict().values()]
    for opt in (gan.opt_G, gan.opt_D):
        out += [v for s in opt.state.values() for v in s.values()]
    return out


# --- ImageBatches -------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size, step, seed", [(4, 0, 0), (5, 3, 2), (100, 7, 1)])
def test_image_batches_follow_step_batch_indices(batch_size, step, seed):
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=batch_size, seed=seed)
    x_all = to_tensor_images(images)
    assert torch.equal(data.x, x_all) and data.num_classes == 3 and len(data) == 12 and data.image_size == 16
    x, y = data.batch(step)
    idx = step_batch_indices(step, 12, min(batch_size, 12), seed)
    assert torch.equal(x, x_all[idx]) and torch.equal(y, torch.from_numpy(labels)[idx])
    for c in range(3):
        x_c, y_c = data.batch(step, cls=c)
        rows = np.flatnonzero(labels == c)
        idx_c = step_batch_indices(step, len(rows), min(batch_size, len(rows)), seed + c)
        assert torch.equal(x_c, x_all[rows][idx_c]) and (y_c == c).all()


def test_image_batches_take_float_tensors_and_no_labels():
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    data = ImageBatches(x, None, batch_size=4, seed=0)
    assert data.num_classes == 1 and data.channels == 1
    assert torch.equal(data.batch(2)[0], data.batch(2, cls=0)[0])  # one class: the same draw


@pytest.mark.parametrize("images, labels, match", [
    (np.zeros((4, 16, 8, 3), np.uint8), None, "square uint8"),
    (np.zeros((4, 16, 16, 3), np.float32), None, "square uint8"),
    (torch.full((4, 3, 16, 16), 2.0), None, r"\[-1, 1\]"),
    (np.zeros((4, 16, 16, 3), np.uint8), np.array([0, 0, 1, 2]), "every class needs >= 2 images"),
    (np.zeros((4, 16, 16, 3), np.uint8), np.array([0, 0, 1]), r"shape \(4,\)"),
    (np.zeros((4, 16, 16, 3), np.uint8), np.array([0.0, 0.0, 1.0, 1.0]), "integers"),
    ([[0]], None, "uint8 NumPy array or a float tensor"),
])
def test_image_batches_refuse_bad_inputs(images, labels, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ImageBatches(images, labels, batch_size=2)


def test_snapshot_steps_are_evenly_spaced_and_end_at_num_steps():
    assert snapshot_steps(200, 4) == [50, 100, 150, 200]
    assert snapshot_steps(3, 5) == [1, 2, 3]
    assert snapshot_steps(10, 0) == [] and snapshot_steps(0, 3) == []


# --- train_gan ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dcgan", "cwgan_gp"])
def test_resume_equals_a_straight_run(tmp_path, name):
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=4, seed=1)
    straight = tiny_gan(name)
    run_a = train_gan(straight, data, num_steps=6, progress=False)

    first = tiny_gan(name)
    run_1 = train_gan(first, data, num_steps=3, run_dir=tmp_path, progress=False)
    assert run_1.steps == 3 and latest_checkpoint(tmp_path).name == "ckpt_00000003.pt"
    torch.manual_seed(123)  # a fresh process: other RNG state, other initial weights
    resumed = tiny_gan(name, seed=99)
    run_b = train_gan(resumed, data, num_steps=6, run_dir=tmp_path, progress=False)

    assert run_b.resumed_from == 3 and run_b.steps == 6 and run_b.stopped_by == "num_steps"
    assert all(torch.equal(a, b) for a, b in zip(straight.net_G.state_dict().values(),
                                                 resumed.net_G.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(state(straight), state(resumed)))
    pd.testing.assert_frame_equal(run_a.history, run_b.history)
    assert torch.equal(straight.sample(1, 4, 0), resumed.sample(1, 4, 0))


def test_resume_restores_extras_and_ema(tmp_path, capsys):
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=4, seed=0)
    ae = build_gan("bagan_autoencoder", image_size=16, nz=8, width_G=4, width_D=4)
    from medgan_core.models import bagan

    latent = bagan.fit_latent(ae.net_G, data.x, data.y)
    kw = dict(num_classes=3, image_size=16, nz=8, autoencoder=ae.net_G, ema_decay=0.5)
    gan = build_gan("bagan", latent=latent, **kw)
    train_gan(gan, data, num_steps=2, run_dir=tmp_path, progress=False)
    other = bagan.ClassLatent(3, 8)  # unfitted: its buffers must come back from the checkpoint
    fresh = build_gan("bagan", latent=other, **kw)
    run = train_gan(fresh, data, num_steps=2, run_dir=tmp_path, progress=False)
    assert run.resumed_from == 2 and run.steps == 2
    said = capsys.readouterr().out  # the report says that these weights come from an earlier run
    assert f"bagan: loaded run {tmp_path.name} at step 2 (ckpt_00000002.pt, written " in said
    assert "finished, not trained in this run" in said
    assert torch.equal(fresh.extras["latent"].means, gan.extras["latent"].means)
    assert fresh.ema.num_updates == 2 and torch.equal(fresh.sample(0, 3, 1), gan.sample(0, 3, 1))


def test_time_budget_stops_early_records_it_and_stays_stopped(tmp_path):
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=4, seed=0)
    run = train_gan(tiny_gan("cwgan_gp"), data, num_steps=50, time_budget_s=1e-9, run_dir=tmp_path, progress=False)
    assert run.stopped_by == "time_budget" and run.steps == 1 and len(run.history) == 1
    assert latest_checkpoint(tmp_path).name == "ckpt_00000001.pt"
    again = train_gan(tiny_gan("cwgan_gp"), data, num_steps=50, time_budget_s=1e-9, run_dir=tmp_path, progress=False)
    assert again.stopped_by == "time_budget" and again.steps == 1 and again.resumed_from == 1
    assert again.seconds == run.seconds
    full = train_gan(tiny_gan("cwgan_gp"), data, num_steps=3, time_budget_s=3600.0, progress=False)
    assert full.stopped_by == "num_steps" and full.steps == 3 and full.resumed_from == 0 and full.run_dir is None


def test_snapshots_are_kept_across_a_resume(tmp_path):
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=4, seed=0)
    straight = train_gan(tiny_gan("dcgan"), data, num_steps=6, n_snapshots=3, snapshot_n=2, progress=False)
    assert sorted(straight.snapshots) == [2, 4, 6]
    assert set(straight.snapshots[2]) == {0, 1, 2} and straight.snapshots[2][1].shape == (2, 16, 16, 3)
    assert straight.snapshots[2][1].dtype == np.uint8

    gan = tiny_gan("dcgan")
    real_step = gan.train_step

    def crashing(d, step):
        if step == 4:
            raise KeyboardInterrupt  # killed after 4 steps (checkpointed at 2 and 4)
        return real_step(d, step)

    gan.train_step = crashing
    with pytest.raises(KeyboardInterrupt):
        train_gan(gan, data, num_steps=6, run_dir=tmp_path, checkpoint_every=2, n_snapshots=3, snapshot_n=2,
                  progress=False)
    run = train_gan(tiny_gan("dcgan", seed=5), data, num_steps=6, run_dir=tmp_path, checkpoint_every=2,
                    n_snapshots=3, snapshot_n=2, progress=False)
    assert run.resumed_from == 4 and sorted(run.snapshots) == [2, 4, 6]
    for s in (2, 4, 6):
        for c in range(3):
            np.testing.assert_array_equal(run.snapshots[s][c], straight.snapshots[s][c])
    assert run.seconds > 0


def test_gan_run_samples_uint8_and_reports_cost():
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=4, seed=0)
    run = train_gan(tiny_gan("cwgan_gp"), data, num_steps=2, progress=False)
    assert isinstance(run, GanRun)
    x = run.sample(2, 5, seed=0)
    assert x.shape == (5, 16, 16, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, run.sample(2, 5, seed=0))
    assert run.peak_memory_mb >= 0 and run.memory_method.startswith("counted")
    assert list(run.history["step"]) == [0, 1] and {"loss_D", "loss_G", "gp"} <= set(run.history.columns)


def test_sample_like_matches_class_counts_with_a_cap():
    images, labels = uint8_images()
    run = train_gan(tiny_gan("cwgan_gp"), ImageBatches(images, labels, batch_size=4, seed=0), num_steps=1, progress=False)
    x, y = run.sample_like(np.array([0, 0, 0, 0, 2]), max_per_class=3, seed=7)
    assert y.tolist() == [0, 0, 0, 2] and x.shape == (4, 16, 16, 3)
    np.testing.assert_array_equal(x[:3], run.sample(0, 3, seed=7))  # each class drawn with the same seed
    np.testing.assert_array_equal(x[3:], run.sample(2, 1, seed=7))
    with pytest.raises(ValueError, match="makes 3 classes"):
        run.sample_like(np.array([5]), 3, 0)
    with pytest.raises(ValueError, match="nothing to generate"):
        run.sample_like(np.array([0]), 0, 0)


def test_train_gan_checks_its_arguments():
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=4, seed=0)
    with pytest.raises(ValueError, match="num_steps >= 0"):
        train_gan(tiny_gan("dcgan"), data, num_steps=-1)
    with pytest.raises(ValueError, match="time_budget_s"):
        train_gan(tiny_gan("dcgan"), data, num_steps=1, time_budget_s=-1.0)


def test_the_autoencoder_snapshots_reconstructions():
    images, labels = uint8_images()
    data = ImageBatches(images, labels, batch_size=4, seed=0)
    ae = build_gan("bagan_autoencoder", num_classes=3, image_size=16, nz=8, width_G=4, width_D=4)
    run = train_gan(ae, data, num_steps=2, n_snapshots=1, snapshot_n=3, progress=False)
    from medgan_core.models.bagan import reconstruct

    assert list(run.snapshots) == [2] and list(run.snapshots[2]) == [0]
    np.testing.assert_array_equal(run.snapshots[2][0], reconstruct(ae.net_G, data.x[:3]))
    assert list(run.history.columns) == ["step", "loss_AE"]
