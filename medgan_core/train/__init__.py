"""The training core: seeding, device, checkpoint/resume, EMA, image pool, NaN guard, loop.

One concept per module; this file only re-exports the public names, so a notebook writes
``from medgan_core.train import seed_everything, train_loop``.

- :mod:`.seeding`     ``seed_everything``, ``seed_worker``, ``dataloader_generator``
- :mod:`.device`      ``set_threads``, ``available_cores``, ``select_device``, ``amp_context``, ``maybe_channels_last``
- :mod:`.checkpoint`  ``save_checkpoint``, ``load_checkpoint``, ``latest_checkpoint`` (atomic, ``weights_only``)
- :mod:`.ema`         ``EMA`` of generator weights
- :mod:`.image_pool`  ``ImagePool``, CycleGAN's history of generated images
- :mod:`.guard`       ``NonFiniteLossError``, ``NonFiniteWeightsError``, ``check_finite``
- :mod:`.loop`        ``adversarial_step``, ``train_loop``, ``step_batch_indices``
- :mod:`.trainer`     ``ImageBatches``, ``GanRun``, ``train_gan``: the one GAN trainer
- :mod:`.identity`    ``data_fingerprint``, ``code_fingerprint``, ``run_id``, ``run_folder``, ``notebook_parameters``
- :mod:`.cost`        ``count_parameters``, ``PeakMemory``, ``measure_step``, ``cost_table``, memory estimates
- :mod:`.distributed` ``launch``, ``distribute``, ``ShardedBatches``, ``convert_batchnorm``: training on several
  processes (torchrun); imported from its own module, which ``python -m`` runs as the entry point
"""

from medgan_core.train.checkpoint import (CheckpointError, checkpoint_path, checksum_path, latest_checkpoint, load_checkpoint,
                                          rng_state, save_checkpoint, set_rng_state)
from medgan_core.train.cost import (PeakMemory, cost_table, count_parameters, measure_step, saved_activation_bytes,
                                    training_memory_estimate)
from medgan_core.train.device import amp_context, available_cores, maybe_channels_last, select_device, set_threads
from medgan_core.train.ema import EMA
from medgan_core.train.guard import NonFiniteLossError, NonFiniteWeightsError, check_finite
from medgan_core.train.identity import code_fingerprint, data_fingerprint, notebook_parameters, run_folder, run_id
from medgan_core.train.image_pool import ImagePool
from medgan_core.train.loop import adversarial_step, step_batch_indices, train_loop
from medgan_core.train.seeding import dataloader_generator, seed_everything, seed_worker
from medgan_core.train.trainer import GanRun, ImageBatches, train_gan

__all__ = [
    "CheckpointError", "EMA", "GanRun", "ImageBatches", "ImagePool", "NonFiniteLossError", "NonFiniteWeightsError", "PeakMemory",
    "adversarial_step", "amp_context", "available_cores", "set_threads", "check_finite", "checkpoint_path", "checksum_path", "code_fingerprint", "cost_table",
    "count_parameters", "data_fingerprint", "dataloader_generator", "latest_checkpoint", "load_checkpoint",
    "maybe_channels_last", "measure_step", "notebook_parameters", "rng_state", "run_folder", "run_id",
    "save_checkpoint", "saved_activation_bytes", "seed_everything", "seed_worker", "select_device", "set_rng_state",
    "step_batch_indices", "train_gan", "train_loop", "training_memory_estimate",
]
